"""Which disclosure agreements a principal may read."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, exists, or_, true

from app.agreements.tables import AgreementParty, DisclosureAgreement
from app.auth.principal import Principal
from app.timeutil import utcnow

A = DisclosureAgreement


def visible_agreements(principal: Principal, now: datetime | None = None, table=A):
    """WHERE clause. An agreement that was never proposed (proposed_at unset: a draft)
    is seen by the disclosing lab and coordinators only, whatever happens to it. A
    proposed one (proposed, active, expired or terminated) is also seen by its party
    labs, and by everyone once confidential_until has passed (never while no date is
    set)."""
    if principal.is_coordinator:
        return true()
    now = now or utcnow()
    proposed = table.proposed_at.is_not(None)
    clauses = [and_(proposed, table.confidential_until.is_not(None),
                    table.confidential_until <= now)]
    if principal.lab_ids:
        clauses.append(table.lab_id.in_(principal.lab_ids))
        clauses.append(and_(proposed, exists().where(
            AgreementParty.agreement_id == table.id,
            AgreementParty.lab_id.in_(principal.lab_ids))))
    return or_(*clauses)
