"""Which release plans (and their stages, revisions and diffs) a principal may see."""

from __future__ import annotations

from sqlalchemy import and_, or_, true

from app.access.models import model_visible
from app.auth.principal import Principal
from app.plans.tables import ReleasePlan


def visible_plans(principal: Principal, table=ReleasePlan):
    """WHERE clause. Public: a plan that was filed (filed_at is set: filed, active,
    completed, or withdrawn after filing) of a model the caller may see. A plan that was
    never filed (a draft, or a draft withdrawn) stays with its lab and coordinators for
    ever, and so does every plan of a private model: naming it would reveal the model.
    Its stages, revisions, diffs and events follow it."""
    if principal.is_coordinator:
        return true()
    clauses = [and_(table.filed_at.is_not(None), model_visible(principal, table.model_id))]
    if principal.lab_ids:
        clauses.append(table.lab_id.in_(principal.lab_ids))
    return or_(*clauses)
