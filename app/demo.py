"""Demo data: the GPT-2 staged release of 2019 as registry entries (facts only)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

from sqlmodel import Session, select

from app.auth.principal import SYSTEM
from app.db import session_scope
from app.demo_reported import import_2019_detection
from app.errors import NotFound
from app.flows import transition_stage
from app.labs.service import create_lab
from app.labs.tables import Lab
from app.models.schemas import ModelCreate
from app.models.service import create_model, find_model
from app.plans.schemas import PlanCreate, StageIn
from app.plans.service import file_plan, transition_plan
from app.plans.tables import ReleasePlan

LABS = [
    ("openai", "OpenAI", "https://openai.com"),
    ("cornell", "Cornell University", "https://www.cornell.edu"),
    ("ctec-middlebury", "Middlebury Institute, Center on Terrorism, Extremism, and "
                        "Counterterrorism (CTEC)", "https://www.middlebury.edu/institute"),
    ("uoregon", "University of Oregon", "https://www.uoregon.edu"),
    ("ut-austin", "University of Texas at Austin", "https://www.utexas.edu"),
]

CARD = dict(
    licence="MIT", architecture="GPT-2 (decoder-only transformer)",
    parameter_count=1_558_000_000, languages=["en"],
    model_details="A family of decoder-only language models trained to predict the next "
                  "token of web text, released in four sizes over 2019.",
    intended_use="Research on language models, their behaviour and their risks; writing "
                 "assistance. Not for settings that need factual accuracy.",
    evaluation_data="Detection studies used the released output dataset: for each size, "
                    "250k samples at temperature 1 and 250k at top-k 40.",
    training_data="WebText: outbound links from Reddit with at least 3 karma.",
    quantitative_analyses="A TF-IDF + logistic-regression detector told model output from "
                          "WebText less accurately as models grew (temperature 1: 88.29 % "
                          "on 117M, 74.31 % on 1542M).",
    ethical_considerations="Synthetic text at scale can serve disinformation, spam and "
                           "phishing; partner studies looked at credibility, extremist "
                           "misuse, bias and detectability.",
    caveats_and_recommendations="Machine detection reached the low-to-mid 90s, short of "
                                "the 99.9 % the lab judged a deployed detector would need.",
)

STAGES = [
    StageIn(name="124M", parameter_count=124_000_000, checkpoint_ref="117M (early label)",
            planned_date=date(2019, 2, 14), access_level="public_weights",
            artifacts=["weights", "code", "paper"],
            rationale="Release the smallest model with code, paper and blog post; hold the "
                      "larger ones back while misuse risks are studied."),
    StageIn(name="355M", parameter_count=355_000_000, checkpoint_ref="345M (early label)",
            planned_date=date(2019, 5, 3), access_level="public_weights",
            artifacts=["weights", "output_samples", "dataset", "code"],
            rationale="Ship the next size with an output dataset (250k samples per model at "
                      "temperature 1 and at top-k 40) and a detection baseline."),
    StageIn(name="774M", parameter_count=774_000_000, checkpoint_ref="762M (early label)",
            planned_date=date(2019, 8, 20), access_level="public_weights",
            artifacts=["weights", "paper"],
            rationale="Release 774M with a six-month report and a legal template for "
                      "sharing models between organisations; partners study 774M and 1.5B.",
            risk_assessment="The 1.5B release would follow in a few months unless partner "
                            "findings or misuse of 774M changed the plan."),
    StageIn(name="1.5B", parameter_count=1_558_000_000, checkpoint_ref="1542M (early label)",
            planned_date=date(2019, 11, 5), access_level="public_weights",
            artifacts=["weights", "detector", "model_card"],
            rationale="Final stage: full model with detector weights (RoBERTa base and "
                      "large) and a model card.",
            risk_assessment="No strong evidence of misuse was seen; some discussion of spam "
                            "and phishing uses."),
]

PLAN_TITLE = "GPT-2 staged release (2019)"


def _ensure_labs(session: Session) -> None:
    for slug, name, url in LABS:
        if not session.exec(select(Lab).where(Lab.slug == slug)).first():
            create_lab(session, SYSTEM, slug, name, url)


def _ensure_gpt2_plan(session: Session) -> ReleasePlan:
    try:
        model = find_model(session, SYSTEM, "openai/gpt-2")
    except NotFound:
        model = create_model(session, SYSTEM, ModelCreate(lab="openai", slug="gpt-2",
                                                          name="GPT-2", **CARD))
    plan = session.exec(select(ReleasePlan).where(ReleasePlan.model_id == model.id,
                                                  ReleasePlan.title == PLAN_TITLE)).first()
    if plan:
        return plan
    plan = file_plan(session, SYSTEM, PlanCreate(
        model="openai/gpt-2", title=PLAN_TITLE, stages=STAGES, file=True,
        policies=["gpt2-2019"],
        summary="Four sizes over about nine months, each gated on what was learnt about "
                "misuse and detection from the one before."))
    # Evidence before releases: the gpt2-2019 policy gates each release on it.
    from app.agreements.demo import load_demo_agreement

    import_2019_detection(session)
    load_demo_agreement(session)
    for position, stage in enumerate(STAGES, start=1):
        transition_stage(session, SYSTEM, plan.id, position, "ready", plan.version)
        transition_stage(session, SYSTEM, plan.id, position, "released", plan.version,
                         actual_date=stage.planned_date)
    transition_plan(session, SYSTEM, plan.id, "completed", plan.version)
    return plan


def load_demo(with_models: bool = True) -> Iterator[str]:
    """Idempotent; yields progress lines for the CLI."""
    with session_scope() as session:
        _ensure_labs(session)
        plan = _ensure_gpt2_plan(session)
        yield f"GPT-2 2019: plan {plan.id} ({plan.status}) with 4 stages and 4 partner labs"
    with session_scope() as session:
        count = import_2019_detection(session)
        yield f"GPT-2 2019: {count} detection results imported as reported by the lab"
    for name, loader in _extensions(with_models):
        yield from loader()
        yield f"{name}: loaded"


def _extensions(with_models: bool):
    """Demo parts owned by other domains."""
    from app.agreements.demo import load_demo_agreement
    from app.checkpoints.demo import load_demo_family
    from app.incidents.demo import load_demo_extras

    def agreements():
        with session_scope() as session:
            load_demo_agreement(session)
        return iter(())

    parts = [("2019 non-commercial access agreement", agreements)]
    if with_models:
        parts.append(("tiny model family", load_demo_family))
    # After the family: the fictional lab's partners-only checkpoint reuses its files.
    parts.append(("illustrative incidents and a fictional lab",
                  lambda: load_demo_extras(with_models)))
    return parts
