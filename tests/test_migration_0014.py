"""Migration 0014 adds model_chart (a model card's charts, stored per audience when
results land); it downgrades and upgrades again on both databases, and on PostgreSQL the
new table moves the read cache's counter like every other."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect, text
from sqlmodel import Session

from app.db import alembic_config, engine_for
from app.evals.tables import ModelChart
from app.labs.tables import Lab
from app.models.tables import AIModel
from app.readcache import untracked_pg_tables
from tests.conftest import drop_database_url, empty_database_url


def test_0014_adds_model_chart_and_takes_it_away(backend, tmp_path):
    url = empty_database_url(backend, tmp_path / "m.db", "sg_m14")
    cfg = alembic_config(url)
    engine = engine_for(url)
    try:
        command.upgrade(cfg, "0013")
        assert "model_chart" not in inspect(engine).get_table_names()
        command.upgrade(cfg, "head")
        assert "model_chart" in inspect(engine).get_table_names()
        with Session(engine) as s:
            lab = Lab(slug="a", name="A")
            s.add(lab)
            s.flush()
            model = AIModel(lab_id=lab.id, slug="m", name="M", public=True)
            s.add(model)
            s.flush()
            s.commit()
            s.add(ModelChart(model_id=model.id, audience="public", digest="d" * 64, version=1,
                             charts=[{"suite": "perplexity", "metric": "perplexity",
                                      "digest": "e" * 64, "svg": "<svg></svg>"}]))
            s.commit()
        with engine.connect() as conn:
            assert conn.execute(text("SELECT audience, version FROM model_chart")).all() == [
                ("public", 1)]
        if backend == "postgresql":
            with engine.connect() as conn:
                assert untracked_pg_tables(conn) == []
                before = conn.execute(text("SELECT version FROM read_cache_version")).scalar()
            with engine.begin() as conn:
                conn.execute(text("UPDATE model_chart SET digest = :d"), {"d": "f" * 64})
            with engine.connect() as conn:
                after = conn.execute(text("SELECT version FROM read_cache_version")).scalar()
            assert after == before + 1
        command.downgrade(cfg, "0013")
        assert "model_chart" not in inspect(engine).get_table_names()
        with engine.connect() as conn:  # the rest is untouched
            assert conn.execute(text("SELECT count(*) FROM ai_model")).scalar() == 1
        command.upgrade(cfg, "head")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM model_chart")).scalar() == 0
            if backend == "postgresql":
                assert untracked_pg_tables(conn) == []
    finally:
        engine.dispose()
        engine_for.cache_clear()
        drop_database_url(url)
