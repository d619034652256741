"""Migration 0013 names the checkpoints of results stored before it (a transfer matrix
names its whole family), so a withheld checkpoint stops showing through an old result;
it downgrades and upgrades again on both databases."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text
from sqlmodel import Session

from app.checkpoints.tables import Checkpoint
from app.db import alembic_config, engine_for
from app.evals.tables import EvalResult
from app.labs.tables import Lab
from app.models.tables import AIModel
from tests.conftest import drop_database_url, empty_database_url


def test_0013_links_existing_results_to_every_checkpoint_they_name(backend, tmp_path):
    url = empty_database_url(backend, tmp_path / "m.db", "sg_m13")
    cfg = alembic_config(url)
    engine = engine_for(url)
    try:
        command.upgrade(cfg, "head")
        with Session(engine) as s:
            lab = Lab(slug="a", name="A")
            s.add(lab)
            s.flush()
            model = AIModel(lab_id=lab.id, slug="m", name="M", public=True)
            s.add(model)
            s.flush()
            ckpts = [Checkpoint(model_id=model.id, lab_id=lab.id, name=n, access_level=lvl,
                                manifest=[], manifest_digest=d * 64, total_bytes=1,
                                parameter_count=1)
                     for n, lvl, d in (("355M", "public", "a"), ("774M", "partners", "b"))]
            s.add_all(ckpts)
            s.flush()
            s.add(EvalResult(result_key="k" * 64, source="measured", model_id=model.id,
                             checkpoint_id=ckpts[0].id, suite_id="detectability_transfer",
                             config_digest="0" * 64,
                             details={"checkpoints": {"355M": "a" * 64, "774M": "b" * 64}}))
            s.commit()
            ids = sorted(c.id for c in ckpts)
        command.downgrade(cfg, "0012")
        command.upgrade(cfg, "head")
        with engine.connect() as conn:
            links = conn.execute(text("SELECT checkpoint_id FROM eval_result_checkpoint "
                                      "ORDER BY checkpoint_id")).scalars().all()
        assert links == ids
    finally:
        engine.dispose()
        engine_for.cache_clear()
        drop_database_url(url)
