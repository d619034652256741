"""GET /healthz: a liveness probe for load balancers (no database work)."""

from __future__ import annotations

from litestar import get

from app.http import PUBLIC


@get("/healthz", opt=PUBLIC, sync_to_thread=False)
def healthz() -> dict:
    return {"status": "ok"}
