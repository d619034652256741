"""Which evaluation runs and results a principal may see."""

from __future__ import annotations

from sqlalchemy import and_, exists, literal, not_, or_, select, true
from sqlalchemy.orm import aliased

from app.access.checkpoints import checkpoint_visible, visible_checkpoints
from app.access.models import model_visible
from app.auth.principal import Principal
from app.checkpoints.tables import Checkpoint
from app.evals.tables import EvalResult, EvalResultCheckpoint, EvalRun


def visible_runs(principal: Principal):
    """A run is as visible as its checkpoint (which follows its model)."""
    return checkpoint_visible(principal, EvalRun.checkpoint_id)


_NAMED = aliased(Checkpoint, name="named_checkpoint")


def visible_results(principal: Principal):
    """A result is as visible as its checkpoint; a reported result without one as its
    model. A derived result (a transfer matrix) is visible only to a reader who may see
    every checkpoint it names (eval_result_checkpoint): its numbers are about all of
    them, and its details name them and their digests."""
    if principal.is_coordinator:
        return true()
    own = or_(checkpoint_visible(principal, EvalResult.checkpoint_id),
              and_(EvalResult.checkpoint_id.is_(None),
                   model_visible(principal, EvalResult.model_id)))
    hidden_named = exists(
        select(literal(1)).select_from(EvalResultCheckpoint)
        .join(_NAMED, _NAMED.id == EvalResultCheckpoint.checkpoint_id)
        .where(EvalResultCheckpoint.result_id == EvalResult.id,
               not_(visible_checkpoints(principal, _NAMED)))
        .correlate(EvalResult))
    return and_(own, not_(hidden_named))
