"""Demo: the tiny GPT-2-shaped family hosted as checkpoints of openai/gpt-2, then measured."""

from __future__ import annotations

from collections.abc import Iterator

from sqlmodel import select

from app.auth.principal import SYSTEM
from app.checkpoints.schemas import CheckpointCreate
from app.checkpoints.service import upload_checkpoint
from app.checkpoints.tables import Checkpoint
from app.db import session_scope
from app.models.service import find_model
from app.settings import get_settings

DEMO_MODEL = "openai/gpt-2"


def load_demo_family(model_ref: str = DEMO_MODEL, dirs: dict | None = None) -> Iterator[str]:
    """Idempotent: uploads each size once (public, as all four were by November 2019) and
    queues its suites; the worker measures them. Yields progress lines."""
    if dirs is None:
        from app.evals.demo_family import build_demo_family

        dirs = build_demo_family(get_settings().data_dir, progress=True)
    for name, path in dirs.items():
        with session_scope() as session:
            model = find_model(session, SYSTEM, model_ref)
            exists = session.exec(select(Checkpoint.id).where(
                Checkpoint.model_id == model.id, Checkpoint.name == name)).first()
            if exists is not None:
                yield f"checkpoint {model_ref}@{name}: already hosted"
                continue
            paths = sorted(p for p in path.iterdir() if p.is_file()
                           and not p.name.startswith("."))
            handles = [(p.name, p.open("rb")) for p in paths]
            try:
                ckpt = upload_checkpoint(session, SYSTEM, CheckpointCreate(
                    model=model_ref, name=name, access_level="public"), handles)
            finally:
                for _, f in handles:
                    f.close()
            yield (f"checkpoint {model_ref}@{name}: {ckpt.parameter_count:,} parameters, "
                   "evaluations queued")
