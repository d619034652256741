"""Which incidents a principal may see, and which ones count against a release."""

from __future__ import annotations

from sqlalchemy import and_, exists, false, or_, true
from sqlalchemy.orm import aliased

from app.auth.principal import Principal
from app.incidents.tables import PUBLIC_STATUSES, Incident, IncidentLab
from app.rowexists import row_exists
from app.timeutil import utcnow


def visible_incidents(principal: Principal, table=Incident, status: str | None = None):
    """WHERE clause: public once confirmed/resolved and past embargo; else reporter,
    affected labs and coordinators. Evaluated against the clock at query time.
    `status`: the query also requires this status; the public branch is then dropped
    when it cannot hold (same rows, but the planner sees it: it cannot tell that
    `status IN (public) AND status = 'submitted'` is empty, and walks every row)."""
    if principal.is_coordinator:
        return true()
    now = utcnow()
    clauses = [] if status is not None and status not in PUBLIC_STATUSES else \
        [and_(table.status.in_(PUBLIC_STATUSES),
              or_(table.embargo_until.is_(None), table.embargo_until <= now))]
    if principal.user_id is not None:
        clauses.append(table.reporter_id == principal.user_id)
    if principal.lab_ids:
        clauses.append(exists().where(IncidentLab.incident_id == table.id,
                                      IncidentLab.lab_id.in_(principal.lab_ids)))
    return or_(*clauses) if clauses else false()


def reachable(principal: Principal):
    """Visible, or a duplicate whose target is visible (it redirects there forever)."""
    target = aliased(Incident)
    # A per-row probe of the target by its key (app.rowexists), not a set of every
    # visible incident built for each query.
    via_target = and_(Incident.status == "duplicate", row_exists(
        target, target.id == Incident.duplicate_of, visible_incidents(principal, target)))
    return or_(visible_incidents(principal), via_target)


def counts_against_release(table=Incident):
    """WHERE clause: an incident someone accountable has vouched for. A coordinator
    confirmed it, or a member of an affected lab acknowledged it while it was still under
    review. A claim nobody reviewed (submitted or triaged, unacknowledged) is shown in the
    evidence as under review but decides nothing: anyone, anonymous included, can file
    one."""
    return or_(table.status == "confirmed",
               and_(table.status.in_(("submitted", "triaged")),
                    table.acknowledged_at.is_not(None)))
