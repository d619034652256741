"""SQLite plans with table statistics: a new connection analyzes tables that have rows
but no statistics, so the incident list walks its (occurred, id) index instead of
sorting every public incident found through the status index."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import insert, text

from app.db import engine_for
from app.incidents.tables import Incident

LIST = ("SELECT id FROM incident WHERE status IN ('confirmed', 'resolved') "
        "AND (embargo_until IS NULL OR embargo_until <= '2030-01-01') "
        "ORDER BY occurred DESC, id DESC LIMIT 21")


def test_a_new_connection_gathers_statistics_and_the_list_uses_its_index(settings, backend):
    if backend != "sqlite":
        pytest.skip("PostgreSQL's autovacuum analyzes tables itself")
    engine = engine_for(settings.database_url)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [dict(title=f"i{i}", summary="s", occurred=date(2020, 1, 1 + i % 28), year=2020,
                 harm_types=[], taxonomy_version="1", severity="low", stage_ids=[],
                 checkpoint_ids=[], status=("confirmed", "resolved")[i % 2], version=1,
                 created_at=now, updated_at=now, search_text="s") for i in range(3000)]
    with engine.begin() as conn:
        conn.execute(insert(Incident.__table__), rows)
    engine.dispose()  # the next connection is a new one
    with engine.connect() as conn:
        plan = " | ".join(r[3] for r in conn.execute(text("EXPLAIN QUERY PLAN " + LIST)))
        stats = conn.execute(text("SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'incident'"))
        assert stats.scalar() > 0
    assert "ix_incident_occurred_id" in plan and "TEMP B-TREE" not in plan, plan


def test_a_connection_opened_during_a_write_is_not_held_up_by_statistics(settings, backend):
    """Statistics are skipped, not waited for, while another connection writes."""
    if backend != "sqlite":
        pytest.skip("SQLite's write lock")
    engine = engine_for(settings.database_url)
    engine.dispose()
    writer = sqlite3.connect(settings.database_url.split("///", 1)[1], isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # holds the write lock, as a long write unit does
    try:
        started = time.perf_counter()
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM incident")).scalar() == 0
        assert time.perf_counter() - started < 2   # busy_timeout is 10 s
    finally:
        writer.execute("ROLLBACK")
        writer.close()
