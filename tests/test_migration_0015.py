"""Migration 0015 adds the transparency log and logs the history already there: every
existing event becomes one leaf in id order, the tree's root is the root of those leaves,
and new events carry on from there. It downgrades and upgrades again on both databases."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import inspect, text
from sqlmodel import Session

from app.db import alembic_config, engine_for
from app.events.tables import Event
from app.transparency import merkle
from app.transparency.log import reader, tree_size
from tests.conftest import drop_database_url, empty_database_url

LOG_TABLES = {"log_leaf", "log_node", "log_head", "log_checkpoint"}


def _leaves(engine):
    with engine.connect() as conn:
        return conn.execute(text("SELECT idx, event_id, leaf FROM log_leaf ORDER BY idx")).all()


def test_0015_logs_the_events_already_recorded(backend, tmp_path):
    url = empty_database_url(backend, tmp_path / "m.db", "sg_m15")
    cfg = alembic_config(url)
    engine = engine_for(url)
    try:
        command.upgrade(cfg, "0014")
        assert not LOG_TABLES & set(inspect(engine).get_table_names())
        # Core inserts: the registry's session listener would log them, into tables this
        # schema does not have yet.
        with engine.begin() as conn:
            conn.execute(Event.__table__.insert(), [
                {"actor": "system", "entity_type": "lab", "entity_id": f"lab-{n}",
                 "action": "created", "digest": "d" * 64, "visibility": "public",
                 "data": {}, "at": datetime(2019, 2, 14, n, tzinfo=UTC)} for n in range(5)])
        command.upgrade(cfg, "head")
        assert LOG_TABLES <= set(inspect(engine).get_table_names())
        leaves = _leaves(engine)
        with engine.connect() as conn:
            ids = conn.execute(text("SELECT id FROM event ORDER BY id")).scalars().all()
        assert [(i, e) for i, e, _ in leaves] == list(enumerate(ids))
        with Session(engine) as s:
            stored = merkle.tree_root(tree_size(s), reader(s))
            assert tree_size(s) == 5
            # New events carry on from the migrated history.
            event = Event(actor="system", entity_type="lab", entity_id="lab-9",
                          action="created", digest="e" * 64)
            s.add(event)
            s.flush()
            event_id = event.id
            s.commit()  # logged by the registry's session listener
        with engine.connect() as conn:
            assert conn.execute(text("SELECT idx FROM log_leaf WHERE event_id = :e"),
                                {"e": event_id}).scalar_one() == 5
        hashes = [merkle.leaf_hash(leaf.encode()) for _, _, leaf in leaves]
        assert stored == merkle.MemoryTree(hashes).root()
        command.downgrade(cfg, "0014")
        assert not LOG_TABLES & set(inspect(engine).get_table_names())
        command.upgrade(cfg, "head")
        assert len(_leaves(engine)) == 6  # every event logged again, fresh salts
    finally:
        engine.dispose()
        engine_for.cache_clear()
        drop_database_url(url)
