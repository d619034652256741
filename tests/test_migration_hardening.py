"""Migration 0005 upgrades a populated 0004 database and downgrades back, keeping its rows."""

from __future__ import annotations


import sqlalchemy
from alembic import command
from sqlalchemy import inspect, text

from app.db import alembic_config, engine_for
from tests.conftest import drop_database_url, empty_database_url

ROWS = [
    "INSERT INTO lab (slug, name, created_at) VALUES ('a', 'A', '2020-01-01')",
    """INSERT INTO "user" (name, is_coordinator, created_at) VALUES ('u', false, '2020-01-01')""",
    "INSERT INTO membership (user_id, lab_id, role) VALUES (1, 1, 'lab_member')",
    "INSERT INTO event (at, actor_id, actor, entity_type, entity_id, action, digest, "
    "visibility, data) VALUES ('2020-01-01', 1, 'u', 'x', '1', 'y', 'd', 'lab', '{}')",
]


def test_0005_round_trip_keeps_rows(backend, tmp_path):
    url = empty_database_url(backend, tmp_path / "m.db", "sg_m")
    cfg = alembic_config(url)
    engine = engine_for(url)
    try:
        command.upgrade(cfg, "0004_checkpoints_evals")
        with engine.begin() as conn:
            for row in ROWS:
                conn.execute(text(row))
        command.upgrade(cfg, "head")
        cols = {c["name"]: str(c["type"]) for c in inspect(engine).get_columns("ai_model")}
        assert "deactivated_at" in {c["name"] for c in inspect(engine).get_columns("user")}
        if backend == "postgresql":
            assert cols["parameter_count"] == "BIGINT" and cols["id"] == "BIGINT"
        with engine.begin() as conn:  # the insert guard is in place
            try:
                verb, tail = (("INSERT OR REPLACE", "") if backend == "sqlite" else
                              ("INSERT", " ON CONFLICT (id) DO UPDATE SET action = 'forged'"))
                conn.execute(text(f"{verb} INTO event (id, at, actor, entity_type, entity_id, "
                                  "action, digest, visibility, data) SELECT id, at, actor, "
                                  "entity_type, entity_id, 'forged', digest, visibility, data "
                                  f"FROM event{tail}"))
                raise AssertionError("an event was replaced")
            except sqlalchemy.exc.DatabaseError:
                conn.rollback()
        command.downgrade(cfg, "0004_checkpoints_evals")
        assert "rate_counter" not in inspect(engine).get_table_names()
        command.upgrade(cfg, "head")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM membership")).scalar() == 1
            assert conn.execute(text("SELECT action FROM event")).scalars().all() == ["y"]
    finally:
        engine.dispose()
        engine_for.cache_clear()
        drop_database_url(url)
