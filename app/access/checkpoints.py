"""Who may see and download a hosted checkpoint, and what a disclosure agreement grants.

The one checkpoint rule (README "Who sees what"): a `public` checkpoint goes to whoever
may see its model; every checkpoint to its own lab and coordinators; a `partners` one
(or a public one, trivially) also to each party lab of an agreement that is in force
now, was made by the checkpoint's lab and covers the checkpoint, by model, by the plan
stage the checkpoint is attached to, or by the checkpoint itself. `internal` is granted
to nobody outside the lab. The download route, the lists and pages, and the policy
gate's partner evidence (grants_for) all read these functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, exists, false, literal, or_, true
from sqlalchemy import select as sa_select
from sqlalchemy.orm import aliased
from sqlmodel import Session, select

from app.access.models import model_visible
from app.agreements.tables import AgreementParty, AgreementScope, DisclosureAgreement
from app.auth.principal import Principal
from app.checkpoints.tables import Checkpoint
from app.rowexists import row_exists
from app.timeutil import as_utc, utcnow

A = DisclosureAgreement
# Access levels an agreement opens to its parties. `internal` stays with the lab.
GRANTED_LEVELS = ("partners", "public")


def agreement_in_force_at(at: datetime, table=A):
    """An agreement grants from the later of its activation (the last signature) and its
    start, until the earlier of its end and its termination. The same window as
    Grant.start/end below, so a download today and the gate's day count agree."""
    return and_(table.status.in_(("active", "terminated")),
                table.activated_at.is_not(None), table.activated_at <= at,
                table.starts_at <= at, table.ends_at > at,
                or_(table.terminated_at.is_(None), table.terminated_at > at))


def _covers(ckpt):
    """The scope row names the checkpoint's model, its stage, or the checkpoint."""
    return or_(AgreementScope.model_id == ckpt.model_id,
               AgreementScope.checkpoint_id == ckpt.id,
               and_(ckpt.stage_id.is_not(None), AgreementScope.stage_id == ckpt.stage_id))


def partner_grant(lab_ids: list[int], ckpt=Checkpoint, at: datetime | None = None):
    """WHERE clause on `ckpt` (Checkpoint or an alias): one of `lab_ids` is a party to an
    agreement by the checkpoint's own lab, in force at `at` (now), covering it."""
    if not lab_ids:
        return false()
    at = at or utcnow()
    return and_(ckpt.access_level.in_(GRANTED_LEVELS), ckpt.created_at <= at, exists(
        sa_select(literal(1)).select_from(A)
        .join(AgreementParty, AgreementParty.agreement_id == A.id)
        .join(AgreementScope, AgreementScope.agreement_id == A.id)
        .where(A.lab_id == ckpt.lab_id, agreement_in_force_at(at),
               AgreementParty.lab_id.in_(lab_ids), _covers(ckpt))))


def visible_checkpoints(principal: Principal, table=Checkpoint, now: datetime | None = None):
    """WHERE clause for checkpoints `principal` may see and download."""
    if principal.is_coordinator:
        return true()
    clauses = [and_(table.access_level == "public", model_visible(principal, table.model_id))]
    if principal.lab_ids:
        clauses.append(table.lab_id.in_(principal.lab_ids))
        clauses.append(partner_grant(principal.lab_ids, table, now))
    return or_(*clauses)


_PARENT = aliased(Checkpoint, name="parent_checkpoint")  # once: see access.models


def checkpoint_visible(principal: Principal, checkpoint_id):
    """WHERE clause for a row whose checkpoint is `checkpoint_id` (an outer column): a
    correlated EXISTS on the primary key, so a page checks only its own rows."""
    if principal.is_coordinator:
        return true()
    return row_exists(_PARENT, _PARENT.id == checkpoint_id,
                      visible_checkpoints(principal, _PARENT))


def may_download(session: Session, principal: Principal, checkpoint_id: int) -> bool:
    """The download grant for one checkpoint: the same clause as the lists."""
    return session.exec(select(Checkpoint.id).where(
        Checkpoint.id == checkpoint_id, visible_checkpoints(principal))).first() is not None


@dataclass(frozen=True)
class Grant:
    """Party lab `lab_id` may download checkpoint `checkpoint_id` under agreement
    `agreement_id` for start <= t < end (end None: open)."""
    agreement_id: int
    kind: str
    lab_id: int
    checkpoint_id: int
    start: datetime
    end: datetime | None

    def at(self, t: datetime) -> bool:
        return self.start <= t and (self.end is None or t < self.end)


def _window(activated, starts, ends, terminated, *not_before) -> tuple | None:
    """agreement_in_force_at as a time window [start, end): from the latest of activation,
    start (and `not_before`, e.g. the checkpoint's upload) to the earlier of end and
    termination; None when it never opens."""
    start = max(as_utc(t) for t in (activated, starts, *not_before))
    end = min(as_utc(t) for t in (ends, terminated) if t is not None)
    return (start, end) if start < end else None


def agreement_window(agreement) -> tuple[datetime, datetime] | None:
    """The window of one loaded agreement (None: it never came into force)."""
    if agreement.activated_at is None or agreement.status not in ("active", "terminated"):
        return None
    return _window(agreement.activated_at, agreement.starts_at, agreement.ends_at,
                   agreement.terminated_at)


def agreement_in_force(agreement, at: datetime | None = None) -> bool:
    window = agreement_window(agreement)
    at = as_utc(at or utcnow())
    return window is not None and window[0] <= at < window[1]


def grants_for(session: Session, checkpoint_ids: list[int]) -> list[Grant]:
    """Every grant any agreement ever gave (or will give) on these checkpoints, as time
    windows: partner_grant(lab, at=t) holds exactly when one of these windows holds t."""
    if not checkpoint_ids:
        return []
    ckpt = Checkpoint
    rows = session.exec(
        select(A.id, A.kind, AgreementParty.lab_id, ckpt.id, A.activated_at, A.starts_at,
               A.ends_at, A.terminated_at, ckpt.created_at)
        .select_from(ckpt)
        .join(A, A.lab_id == ckpt.lab_id)
        .join(AgreementParty, AgreementParty.agreement_id == A.id)
        .join(AgreementScope, AgreementScope.agreement_id == A.id)
        .where(ckpt.id.in_(checkpoint_ids), ckpt.access_level.in_(GRANTED_LEVELS),
               A.status.in_(("active", "terminated")), A.activated_at.is_not(None),
               _covers(ckpt))).all()
    out = set()
    for agreement_id, kind, lab_id, ckpt_id, activated, starts, ends, terminated, created in rows:
        if window := _window(activated, starts, ends, terminated, created):
            out.add(Grant(agreement_id, kind, lab_id, ckpt_id, *window))
    return sorted(out, key=lambda g: (g.agreement_id, g.lab_id, g.checkpoint_id))
