"""The event log cannot be rewritten through inserts that replace rows (REPLACE, UPSERT)."""

from __future__ import annotations

import pytest
import sqlalchemy
from sqlalchemy import text

from app.db import get_engine

COLS = "id, at, actor_id, actor, entity_type, entity_id, action, digest, lab_id, " \
       "visibility, visible_from, data"
FORGED = COLS.replace("action", "'forged'")
REWRITES = {
    "sqlite": [
        f"INSERT OR REPLACE INTO event ({COLS}) SELECT {FORGED} FROM event",
        f"REPLACE INTO event ({COLS}) SELECT {FORGED} FROM event",
        f"INSERT INTO event ({COLS}) SELECT {COLS} FROM event WHERE true "
        "ON CONFLICT (id) DO UPDATE SET action = 'forged'",
        f"INSERT INTO event ({COLS}) SELECT {FORGED} FROM event",
    ],
    "postgresql": [
        f"INSERT INTO event ({COLS}) SELECT {COLS} FROM event "
        "ON CONFLICT (id) DO UPDATE SET action = 'forged'",
        f"INSERT INTO event ({COLS}) SELECT {COLS} FROM event "
        "ON CONFLICT ON CONSTRAINT event_pkey DO UPDATE SET action = excluded.action || '!'",
        f"INSERT INTO event ({COLS}) SELECT {FORGED} FROM event",
    ],
}


def snapshot() -> list:
    with get_engine().connect() as conn:
        return [tuple(r) for r in conn.execute(text(f"SELECT {COLS} FROM event ORDER BY id"))]


@pytest.mark.parametrize("n", range(4))
def test_an_insert_cannot_replace_an_event(client, world, backend, n):
    if n >= len(REWRITES[backend]):
        pytest.skip("fewer rewrite forms on this database")
    before = snapshot()
    assert before
    with pytest.raises(sqlalchemy.exc.DatabaseError):
        with get_engine().begin() as conn:
            conn.execute(text(REWRITES[backend][n]))
    assert snapshot() == before
    # The log still takes new events afterwards.
    r = client.post("/api/v1/plans", json={"model": "lab-a/m", "title": "After",
                          "stages": [{"name": "s", "access_level": "api"}]},
                    headers=world.a_member.headers)
    assert r.status_code == 201, r.text
    after = snapshot()
    assert after[:len(before)] == before and len(after) > len(before)


def test_sqlite_refuses_replace_from_a_plain_sqlite3_connection(world, backend, settings):
    """The guard lives in the database file: any client, not just the registry's engine."""
    if backend != "sqlite":
        return
    import sqlite3

    before = snapshot()
    conn = sqlite3.connect(settings.database_url.split("///", 1)[1])
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute(f"REPLACE INTO event ({COLS}) SELECT {FORGED} FROM event")
    conn.close()
    assert snapshot() == before
