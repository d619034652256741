"""Appending events and reading the ones a principal may see."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, and_, case, cast, false, or_, true
from sqlmodel import Session, select

from app.auth.principal import Principal
from app.events.tables import Event
from app.pagination import PageRequest, paginate
from app.rowexists import row_exists
from app.timeutil import digest, utcnow


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


def visible_events(principal: Principal):
    """The WHERE clause for events this principal may read.

    Two rules, both must hold. (1) The event's own audience, fixed when it was written
    (public from visible_from, the lab, or only the actor): it keeps what was confidential
    at the time confidential. (2) The entity the event is about must be visible to the
    caller now, by that entity's own visible_* filter, so making a model private later
    hides its old events, its checkpoints' and its runs' events too.
    """
    if principal.is_coordinator:
        return true()
    now = utcnow()
    public = and_(Event.visibility == "public",
                  or_(Event.visible_from.is_(None), Event.visible_from <= now))
    clauses = [public]
    if principal.lab_ids:
        clauses.append(and_(Event.visibility != "private", Event.lab_id.in_(principal.lab_ids)))
    if principal.user_id is not None:
        clauses.append(Event.actor_id == principal.user_id)
    return and_(or_(*clauses), entity_visible(principal))


# Entity types whose events carry no parent but their lab (labs are public; users, tokens
# and memberships are private or lab events): rule (1) alone decides.
OWN_AUDIENCE = ("lab", "user", "token", "membership")


def entity_visible(principal: Principal):
    """Rule (2): the event's entity passes its visible_* filter. An entity type with no
    rule here is shown to coordinators only (fail closed): a new kind of event needs a
    line below."""
    # Imported here: every domain imports record() from this module.
    from app.agreements.service import visible_agreements
    from app.agreements.tables import DisclosureAgreement
    from app.checkpoints.service import checkpoint_visibility
    from app.checkpoints.tables import Checkpoint
    from app.evals.service import visible_runs
    from app.evals.tables import EvalRun
    from app.incidents.service import reachable
    from app.incidents.tables import Incident
    from app.models.service import visible_models
    from app.models.tables import AIModel
    from app.plans.service import visible_plans
    from app.plans.tables import ReleasePlan

    rules = {
        "plan": (ReleasePlan, visible_plans(principal)),
        "model": (AIModel, visible_models(principal)),
        "checkpoint": (Checkpoint, checkpoint_visibility(principal)),
        "eval_run": (EvalRun, visible_runs(principal)),
        "agreement": (DisclosureAgreement, visible_agreements(principal)),
        "incident": (Incident, reachable(principal)),
    }
    # One correlated EXISTS per row, on the entity's primary key: a page checks the
    # entities of its own rows only. (An uncorrelated `entity_id IN (every visible id)`
    # built the visible set of every kind on each read: seconds at 500k events.)
    # entity_id is text. Only the canonical decimal form of an id is cast (no sign, no
    # leading zero, at most 18 digits: below BIGINT's limit), inside the CASE branch of
    # its kind, so a cast never fails on PostgreSQL and "07" never matches 7; any other
    # entity_id of these kinds matches nothing (fail closed), as before. \A and \Z, not ^
    # and $: Python's $ (SQLite's REGEXP) also matches before a final newline.
    canonical = Event.entity_id.regexp_match(r"\A[1-9][0-9]{0,17}\Z")
    branches = []
    for kind, (table, where) in rules.items():
        entity = row_exists(table, table.id == cast(Event.entity_id, BigInteger), where)
        branches.append((and_(Event.entity_type == kind, canonical), entity))
    branches.append((Event.entity_type.in_(OWN_AUDIENCE), true()))
    return case(*branches, else_=false())


def list_events(session: Session, principal: Principal, page: PageRequest, *,
                entity_type: str | None = None, entity_id: str | None = None):
    """Oldest first, so a follower can poll with the last cursor it saw."""
    query = select(Event).where(visible_events(principal))
    if entity_type:
        query = query.where(Event.entity_type == entity_type)
    if entity_id:
        query = query.where(Event.entity_id == entity_id)
    return paginate(session, query, Event.id, page, descending=False)
