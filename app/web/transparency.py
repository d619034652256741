"""/transparency: the log's newest signed checkpoint, its key, how to monitor it, and its
latest leaves as the reader may open them (the same service as /api/v1/log)."""

from __future__ import annotations

import json
from typing import Annotated

from annotated_types import Interval
from litestar import Request
from litestar.response import Template

from app.auth.principal import Principal
from app.db import session_scope
from app.http import PUBLIC, get
from app.ids import MAX_ID
from app.settings import get_settings
from app.transparency import service
from app.transparency.log import tree_size
from app.web.pages import page

PER_PAGE = 50
LINKED = {"plan": "/plans/{}", "incident": "/incidents/{}", "agreement": "/agreements/{}"}


def _row(entry: dict) -> dict:
    leaf = json.loads(entry["leaf"])
    row = {"index": entry["index"], "at": leaf.get("at", ""), "type": leaf.get("entity_type"),
           "state": entry["state"], "commitment": leaf.get("commitment", "")}
    if entry["opening"]:
        event = json.loads(entry["opening"]["content"])
        row |= {"action": event.get("action"), "entity_id": event.get("entity_id"),
                "actor": event.get("actor")}
        link = LINKED.get(row["type"])
        if link and str(event.get("entity_id", "")).isdigit():
            row["href"] = link.format(event["entity_id"])
    return row


@get("/transparency", opt=PUBLIC, name="transparency")
def transparency_page(principal: Principal, request: Request,
                      before: Annotated[int | None, Interval(ge=0, le=MAX_ID)] = None
                      ) -> Template:
    with session_scope(write=False) as session:
        checkpoint = service.latest_checkpoint(session)
    with session_scope(write=False) as session:
        size = tree_size(session)
        end = size if before is None else min(before, size)
        start = max(0, end - PER_PAGE)
        found = service.entries(session, principal, start, end)
    rows = [_row(e) for e in reversed(found["entries"])]
    return page("transparency.html", checkpoint=checkpoint, size=size, rows=rows,
                key=str(service.signer().verifier), older=start if start > 0 else None,
                root=service.b64(checkpoint.root),
                base=get_settings().public_url or str(request.base_url).rstrip("/"))


def transparency_handlers() -> list:
    return [transparency_page]
