"""Appending events and reading the ones a principal may see."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from app.access import visible_events
from app.auth.principal import Principal
from app.events.tables import Event
from app.pagination import PageRequest, paginate
from app.timeutil import digest


def record(session: Session, actor: Principal, entity_type: str, entity_id: Any, action: str,
           state: Any, *, lab_id: int | None = None, visibility: str = "lab",
           visible_from=None, data: dict | None = None) -> Event:
    """Append one event; `state` is the entity's canonical content after the change."""
    event = Event(actor_id=actor.user_id, actor=actor.name, entity_type=entity_type,
                  entity_id=str(entity_id), action=action, digest=digest(state),
                  lab_id=lab_id, visibility=visibility, visible_from=visible_from,
                  data=data or {})
    session.add(event)
    return event


def list_events(session: Session, principal: Principal, page: PageRequest, *,
                entity_type: str | None = None, entity_id: str | None = None):
    """Oldest first, so a follower can poll with the last cursor it saw."""
    query = select(Event).where(visible_events(principal))
    if entity_type:
        query = query.where(Event.entity_type == entity_type)
    if entity_id:
        query = query.where(Event.entity_id == entity_id)
    return paginate(session, query, Event.id, page, descending=False)
