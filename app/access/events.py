"""Which events a principal may read, and the audience an event is written for."""

from __future__ import annotations

from sqlalchemy import BigInteger, and_, case, cast, false, or_, true
from sqlmodel import Session, select

from app.access.agreements import visible_agreements
from app.access.checkpoints import visible_checkpoints
from app.access.evals import visible_runs
from app.access.incidents import reachable, visible_incidents
from app.access.models import visible_models
from app.access.plans import visible_plans
from app.agreements.tables import DisclosureAgreement
from app.auth.principal import ANONYMOUS, Principal
from app.checkpoints.tables import Checkpoint
from app.evals.tables import EvalRun
from app.events.tables import Event
from app.incidents.tables import Incident
from app.models.tables import AIModel
from app.plans.tables import ReleasePlan
from app.rowexists import row_exists
from app.timeutil import utcnow

# Entity types whose events carry no parent but their lab (labs are public; users, tokens
# and memberships are private or lab events): rule (1) alone decides.
OWN_AUDIENCE = ("lab", "user", "token", "membership")


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
    return and_(event_audience(principal), entity_visible(principal))


def event_audience(principal: Principal):
    """Rule (1) of visible_events alone: the event's own audience."""
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
    return or_(*clauses)


# Incident events whose openings the public may read once the incident is public.
REVEALED_INCIDENT_ACTIONS = ("submitted", "revised", "triaged", "confirmed", "resolved",
                             "rejected", "acknowledged", "embargo_set", "embargo_lifted")


def openable_events(principal: Principal, *, entity_readable: bool = False):
    """The WHERE clause for events whose transparency-log openings a principal may read:
    the events it may read (visible_events), and the lab events of an incident it may read
    now, so once an embargo lifts anyone can check what the log committed to while it was
    sealed. (Incident events are never written for the public, so the feed never carries
    embargoed text; an opening shows the event's digest, status, actor and time.) Only the
    moves of the incident itself: never a private event (the coordinators' full record),
    the events of a duplicate (their digests cover a target the reader may not see), one
    naming another incident or a report (merged, report_*), nor one its reporter made (the
    public is not told who reported).

    `entity_readable`: the caller has already read the entities these events are about
    through their own visible_* filter (an answer naming its log_index), so rule (2) and
    the incident's visibility need no second check: the same answer, several times
    cheaper (a plan read paid ~9 ms for it on SQLite)."""
    if principal.is_coordinator:
        return true()
    incident = row_exists(Incident, and_(
        Incident.id == cast(Event.entity_id, BigInteger), Incident.duplicate_of.is_(None),
        or_(Incident.reporter_id.is_(None), Event.actor_id.is_(None),
            Event.actor_id != Incident.reporter_id)),
        true() if entity_readable else visible_incidents(principal))
    revealed = and_(Event.entity_type == "incident", Event.visibility == "lab",
                    Event.action.in_(REVEALED_INCIDENT_ACTIONS),
                    Event.entity_id.regexp_match(r"\A[1-9][0-9]{0,17}\Z"), incident)
    readable = event_audience(principal) if entity_readable else visible_events(principal)
    return or_(readable, revealed)


def entity_visible(principal: Principal):
    """Rule (2): the event's entity passes its visible_* filter. An entity type with no
    rule here is shown to coordinators only (fail closed): a new kind of event needs a
    line below."""
    rules = {
        "plan": (ReleasePlan, visible_plans(principal)),
        "model": (AIModel, visible_models(principal)),
        "checkpoint": (Checkpoint, visible_checkpoints(principal)),
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


# -- write-time audiences: who an event is written for (visible_events rule 1) ---------

def model_audience(model: AIModel) -> str:
    return "public" if model.public else "lab"


def plan_audience(session: Session, plan: ReleasePlan) -> str:
    """Public once the public may read the plan (filed, of a visible model): the same
    filter as reads, never "status is not draft" (a withdrawn draft stays with its lab)."""
    return "public" if session.exec(select(ReleasePlan.id).where(
        ReleasePlan.id == plan.id, visible_plans(ANONYMOUS))).first() is not None else "lab"


def agreement_audience(agreement: DisclosureAgreement) -> tuple[str, object]:
    """(visibility, visible_from): the disclosing lab until confidential_until, then
    public; a draft or an undated agreement stays with the lab."""
    public = agreement.proposed_at is not None and agreement.confidential_until is not None
    return ("public", agreement.confidential_until) if public else ("lab", None)


def results_audience(session: Session, model: AIModel, checkpoint_ids) -> str:
    """Public only if every number is: results on a non-public checkpoint keep the event
    (and its count) with the lab."""
    return "public" if model.public and all(
        session.get(Checkpoint, c).access_level == "public"
        for c in checkpoint_ids if c is not None) else "lab"


def checkpoint_audience(session: Session, ckpt: Checkpoint) -> str:
    """The audience an event about this checkpoint (or one of its runs or results) is
    written for: public only for a public checkpoint of a public model. Read time also
    checks the checkpoint's current visibility (visible_events rule 2)."""
    model = session.get(AIModel, ckpt.model_id)
    return "public" if ckpt.access_level == "public" and model.public else "lab"
