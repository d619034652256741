"""Recomputing stored verdicts when their evidence changes, in the same transaction.

A session listener notes which evidence rows a flush wrote (results, runs, agreements
and their signatures and scopes, incidents, model cards, plans, stages, exemptions) and,
just before commit, re-judges only the plans that evidence can touch and records each
verdict that changed as an event. No other service has to remember to call us, so no
write path can forget to; the clock's part is `service.refresh_due`. `install` is called
by app/listeners.py (create_app, the CLI, the worker, the tests), not on import.
"""

from __future__ import annotations

from sqlalchemy import event
from sqlmodel import Session, select

from app.agreements.tables import AgreementScope, AgreementSignature, DisclosureAgreement
from app.checkpoints.tables import Checkpoint
from app.evals.tables import EvalResult, EvalRun
from app.incidents.tables import Incident, IncidentModel
from app.models.tables import AIModel
from app.norms.tables import PolicyExemption
from app.plans.tables import ReleasePlan, Stage

KEY = "norms_touched"


def _note(session: Session, kind: str, value) -> None:
    if value is not None:
        session.info.setdefault(KEY, set()).add((kind, value))


def _after_flush(session: Session, _context) -> None:
    if session.info.get("norms_syncing"):
        return
    for obj in (*session.new, *session.dirty):
        if isinstance(obj, (ReleasePlan,)):
            _note(session, "plan", obj.id)
        elif isinstance(obj, (Stage, PolicyExemption)):
            _note(session, "plan", obj.plan_id)
        elif isinstance(obj, (EvalResult, EvalRun, Checkpoint)):
            _note(session, "model", obj.model_id)
        elif isinstance(obj, AIModel):
            _note(session, "model", obj.id)
        elif isinstance(obj, (DisclosureAgreement,)):
            _note(session, "agreement", obj.id)
        elif isinstance(obj, (AgreementSignature, AgreementScope)):
            _note(session, "agreement", obj.agreement_id)
        elif isinstance(obj, Incident):
            _note(session, "incident", obj.id)
        elif isinstance(obj, IncidentModel):
            _note(session, "model", obj.model_id)


def affected_plans(session: Session, touched: set) -> set[int]:
    """Plan ids whose evidence the touched rows belong to, in at most four queries."""
    by: dict[str, set] = {}
    for kind, value in touched:
        by.setdefault(kind, set()).add(value)
    plans = set(by.get("plan", ()))
    models = set(by.get("model", ()))
    if by.get("incident"):
        models |= set(session.exec(select(IncidentModel.model_id).where(
            IncidentModel.incident_id.in_(by["incident"]))).all())
    if by.get("agreement"):
        scopes = session.exec(select(AgreementScope).where(
            AgreementScope.agreement_id.in_(by["agreement"]))).all()
        models |= {s.model_id for s in scopes if s.model_id}
        stage_ids = {s.stage_id for s in scopes if s.stage_id}
        ckpt_ids = {s.checkpoint_id for s in scopes if s.checkpoint_id}
        if stage_ids:
            plans |= set(session.exec(select(Stage.plan_id).where(
                Stage.id.in_(stage_ids))).all())
        if ckpt_ids:
            models |= set(session.exec(select(Checkpoint.model_id).where(
                Checkpoint.id.in_(ckpt_ids))).all())
    if models:
        plans |= set(session.exec(select(ReleasePlan.id).where(
            ReleasePlan.model_id.in_(models))).all())
    return plans


def _before_commit(session: Session) -> None:
    if session.info.get("norms_syncing"):
        return
    session.flush()  # rows still pending get noted by the listener above first
    touched = session.info.pop(KEY, None)
    if not touched:
        return
    from app.norms.service import sync_verdicts

    session.info["norms_syncing"] = True
    try:
        plans = affected_plans(session, touched)
        if plans:
            sync_verdicts(session, plans)
    finally:
        session.info.pop("norms_syncing", None)


def _after_rollback(session: Session) -> None:
    session.info.pop(KEY, None)


def install() -> None:
    if not event.contains(Session, "after_flush", _after_flush):
        event.listen(Session, "after_flush", _after_flush)
        event.listen(Session, "before_commit", _before_commit)
        event.listen(Session, "after_soft_rollback", _after_soft_rollback)


def _after_soft_rollback(session: Session, _transaction) -> None:
    _after_rollback(session)
