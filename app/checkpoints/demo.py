"""Demo: a fictional lab's tiny GPT-2-shaped family, hosted, planned and measured live."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

from sqlmodel import Session, select

from app.auth.principal import SYSTEM
from app.checkpoints.schemas import CheckpointCreate
from app.checkpoints.tables import Checkpoint
from app.db import session_scope
from app.errors import NotFound
from app.flows import upload_checkpoint
from app.labs.service import create_lab
from app.labs.tables import Lab
from app.models.schemas import ModelCreate
from app.models.service import create_model, find_model
from app.plans.schemas import PlanCreate, StageIn
from app.plans.service import file_plan
from app.plans.tables import ReleasePlan, Stage
from app.settings import get_settings

# Invented on purpose: the hosted checkpoints are ours, trained on first run; they are
# not anybody's real model, so they must not be filed under a real lab.
DEMO_LAB = ("tinyscale", "Tinyscale (fictional demo lab)")
DEMO_MODEL = "tinyscale/tiny-gpt2"
PLAN_TITLE = "Tiny GPT-2 family: staged release"
CARD = dict(
    architecture="GPT-2 (decoder-only transformer)", languages=["en"], licence="MIT",
    model_details="Four tiny GPT-2-architecture models sized in the proportions of "
                  "124M / 355M / 774M / 1.5B, trained by the registry on first run.",
    intended_use="Demonstrating staged release and live evaluation. Not for any real use.",
    training_data="The Python standard library's documentation text (pydoc topics), "
                  "deterministic train split.",
    evaluation_data="The held-out split of the same corpus.",
    caveats_and_recommendations="These models are tiny and undertrained; their samples are "
                                "garbled. The measured numbers are real, but only the "
                                "trends across sizes are meant to mean anything.",
)


def _ensure_model(session: Session) -> None:
    if not session.exec(select(Lab).where(Lab.slug == DEMO_LAB[0])).first():
        create_lab(session, SYSTEM, *DEMO_LAB)
    try:
        find_model(session, SYSTEM, DEMO_MODEL)
    except NotFound:
        create_model(session, SYSTEM, ModelCreate(lab=DEMO_LAB[0], slug="tiny-gpt2",
                                                  name="Tiny GPT-2 family", **CARD))


def _ensure_plan(session: Session, names: list[str]) -> None:
    model = find_model(session, SYSTEM, DEMO_MODEL)
    if session.exec(select(ReleasePlan).where(ReleasePlan.model_id == model.id)).first():
        return
    stages = [StageIn(name=name, checkpoint_ref=name, planned_date=date(2027, 1 + 2 * i, 1),
                      access_level="public_weights" if i == 0 else "partners",
                      artifacts=["weights", "model_card"] if i == 0 else ["weights"],
                      rationale="Release the next size once the registry's detectability "
                                "numbers for it are in.")
              for i, name in enumerate(names)]
    file_plan(session, SYSTEM, PlanCreate(model=DEMO_MODEL, title=PLAN_TITLE, stages=stages,
                                          policies=["capability-thresholds"], file=True))


def _stage_of(session: Session, model_id: int, name: str) -> dict:
    """{plan, stage} of the demo plan's stage whose checkpoint_ref is `name`, if any."""
    row = session.exec(select(ReleasePlan.id, Stage.position)
                       .join(Stage, Stage.plan_id == ReleasePlan.id)
                       .where(ReleasePlan.model_id == model_id,
                              Stage.checkpoint_ref == name)).first()
    return {"plan": row[0], "stage": row[1]} if row else {}


def load_demo_family(dirs: dict | None = None) -> Iterator[str]:
    """Idempotent: trains (or reuses) the family, uploads each size once through the normal
    path and queues its suites; the worker measures them. Yields progress lines."""
    if dirs is None:
        from app.evals.demo_family import build_demo_family

        dirs = build_demo_family(get_settings().data_dir, progress=True)
    with session_scope() as session:
        _ensure_model(session)
        _ensure_plan(session, list(dirs))
    for name, path in dirs.items():
        with session_scope() as session:
            model = find_model(session, SYSTEM, DEMO_MODEL)
            exists = session.exec(select(Checkpoint.id).where(
                Checkpoint.model_id == model.id, Checkpoint.name == name)).first()
            if exists is not None:
                yield f"checkpoint {DEMO_MODEL}@{name}: already hosted"
                continue
            # The cache also keeps the training record (demo_family.json); only the
            # checkpoint's own files are uploaded.
            paths = sorted(p for p in path.iterdir() if p.is_file()
                           and not p.name.startswith(".") and p.name != "demo_family.json")
            handles = [(p.name, p.open("rb")) for p in paths]
            try:
                # Public so that anyone browsing the demo can compare all four sizes.
                # Each size is the artefact of its stage of the demo plan.
                ckpt = upload_checkpoint(session, SYSTEM, CheckpointCreate(
                    model=DEMO_MODEL, name=name, access_level="public",
                    **_stage_of(session, model.id, name)), handles)
            finally:
                for _, f in handles:
                    f.close()
            yield (f"checkpoint {DEMO_MODEL}@{name}: {ckpt.parameter_count:,} parameters, "
                   "evaluations queued")
