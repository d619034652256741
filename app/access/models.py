"""Which AI models (and so which of their children) a principal may see."""

from __future__ import annotations

from sqlalchemy import or_, true
from sqlalchemy.orm import aliased

from app.auth.principal import Principal
from app.models.tables import AIModel
from app.rowexists import row_exists


def visible_models(principal: Principal, table=AIModel):
    """WHERE clause: public models, the caller's labs' models; coordinators see all."""
    if principal.is_coordinator:
        return true()
    clauses = [table.public.is_(True)]
    if principal.lab_ids:
        clauses.append(table.lab_id.in_(principal.lab_ids))
    return or_(*clauses)


def model_visible(principal: Principal, model_id):
    """WHERE clause for a row whose model is `model_id` (a column of the outer query):
    that model passes visible_models. A correlated EXISTS on the primary key, so a page
    of children checks its own rows' models, never the set of every visible model."""
    if principal.is_coordinator:
        return true()
    return row_exists(_PARENT, _PARENT.id == model_id, visible_models(principal, _PARENT))


# Made once: aliasing a wide table costs a few ms per request. Reusing it is safe as
# row_exists never correlates its own table, so nested or sibling uses stay apart.
_PARENT = aliased(AIModel, name="parent_model")
