"""Steps that span domains: a release through the policy gate, an upload that queues its
evaluations. Services stay in their layer (plans below norms, checkpoints below evals);
the API, CLI, web and demo call these."""

from __future__ import annotations

from typing import BinaryIO

from sqlmodel import Session

from app.auth.principal import Principal
from app.checkpoints import service as checkpoints
from app.checkpoints.schemas import CheckpointCreate
from app.checkpoints.tables import Checkpoint
from app.evals.service import enqueue_for_checkpoint
from app.norms.gate import gate_release
from app.plans import service as plans
from app.plans.tables import ReleasePlan
from app.settings import Settings


def transition_stage(session: Session, actor: Principal, plan_id: int, position: int,
                     to: str, version: int | None, actual_date=None,
                     reason: str | None = None) -> ReleasePlan:
    """Move a stage; a release goes through the policy gate (409, nothing changed)."""
    return plans.transition_stage(session, actor, plan_id, position, to, version,
                                  actual_date, reason, gate=gate_release)


def upload_checkpoint(session: Session, actor: Principal, data: CheckpointCreate,
                      files: list[tuple[str, BinaryIO]], *, settings: Settings | None = None,
                      enqueue: bool = True) -> Checkpoint:
    """Store a checkpoint, then queue the suites its model's policies ask for."""
    ckpt = checkpoints.upload_checkpoint(session, actor, data, files, settings=settings)
    if enqueue:
        enqueue_for_checkpoint(session, actor, ckpt, reason="upload")
    return ckpt
