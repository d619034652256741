"""/api/v1/events: the log, filtered to what the caller may see."""

from __future__ import annotations

from datetime import datetime

from litestar import Controller
from pydantic import BaseModel

from app.auth.principal import Principal
from app.db import session_scope
from app.events.service import list_events
from app.http import PUBLIC, get
from app.pagination import Page, PageRequest


class EventRead(BaseModel):
    id: int
    at: datetime
    actor: str
    entity_type: str
    entity_id: str
    action: str
    digest: str
    data: dict


class EventController(Controller):
    path = "/api/v1/events"
    tags = ["events"]

    @get("/", opt=PUBLIC)
    def list_events(self, principal: Principal, page: PageRequest,
                    entity_type: str | None = None,
                    entity_id: str | None = None) -> Page[EventRead]:
        with session_scope(write=False) as session:
            rows, cursor = list_events(session, principal, page, entity_type=entity_type,
                                       entity_id=entity_id)
            return Page(items=[EventRead.model_validate(r, from_attributes=True)
                               for r in rows], next_cursor=cursor)
