"""Demo data: the 2019 non-commercial access agreement for GPT-2's larger sizes."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Session, select

from app.agreements.schemas import ScopeIn, StageRef
from app.agreements.service import instantiate_template, sign_agreement, transition_agreement
from app.agreements.tables import DisclosureAgreement
from app.auth.principal import SYSTEM
from app.labs.service import get_lab
from app.models.service import find_model
from app.plans.tables import ReleasePlan, Stage

TEMPLATE = "non_commercial_access_2019"
TITLE = "GPT-2 774M and 1.5B: non-commercial research access for partner organisations"
PARTNERS = ["cornell", "ctec-middlebury", "uoregon", "ut-austin"]
STARTS = datetime(2019, 8, 20, tzinfo=UTC)       # with the 774M release
RELEASE_1_5B = datetime(2019, 11, 5, tzinfo=UTC)  # the 1.5B release ends confidentiality
ENDS = datetime(2019, 11, 30, tzinfo=UTC)         # a little after the final release


def _stage_refs(session: Session, model_id: int) -> list[StageRef]:
    plan = session.exec(select(ReleasePlan).where(ReleasePlan.model_id == model_id)
                        .order_by(ReleasePlan.id)).first()
    if plan is None:
        return []
    stages = session.exec(select(Stage).where(Stage.plan_id == plan.id,
                                              Stage.name.in_(["774M", "1.5B"]))).all()
    return [StageRef(plan=plan.id, position=s.position) for s in stages]


def load_demo_agreement(session: Session) -> DisclosureAgreement:
    """Idempotent: returns the existing agreement on a rerun."""
    lab = get_lab(session, "openai")
    existing = session.exec(select(DisclosureAgreement).where(
        DisclosureAgreement.lab_id == lab.id, DisclosureAgreement.title == TITLE)).first()
    if existing:
        return existing
    model = find_model(session, SYSTEM, "openai/gpt-2")
    stages = _stage_refs(session, model.id)
    # Without the demo plan the agreement covers the model as a whole.
    scope = ScopeIn(stages=stages) if stages else ScopeIn(models=["openai/gpt-2"])
    agreement = instantiate_template(session, SYSTEM, TEMPLATE, "openai", PARTNERS, scope,
                                     STARTS, ENDS, RELEASE_1_5B, TITLE)
    # Paper signatures entered by the console operator, dated when access began (the
    # exact signing dates are not public); by today's clock the agreement reads expired.
    transition_agreement(session, SYSTEM, agreement.id, "proposed", agreement.version,
                         at=STARTS)
    for slug in PARTNERS:
        sign_agreement(session, SYSTEM, agreement.id, slug, at=STARTS)
    return agreement
