"""Database refusal of UPDATE, DELETE and REPLACE on the event log (SQLite, PostgreSQL)."""

from __future__ import annotations

SQLITE = [
    """CREATE TRIGGER IF NOT EXISTS event_no_update BEFORE UPDATE ON event
       BEGIN SELECT RAISE(ABORT, 'event log is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS event_no_delete BEFORE DELETE ON event
       BEGIN SELECT RAISE(ABORT, 'event log is append-only'); END""",
]

POSTGRESQL = [
    """CREATE OR REPLACE FUNCTION event_append_only() RETURNS trigger AS $$
       BEGIN RAISE EXCEPTION 'event log is append-only'; END; $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER event_no_change BEFORE UPDATE OR DELETE ON event
       FOR EACH ROW EXECUTE FUNCTION event_append_only()""",
    """CREATE TRIGGER event_no_truncate BEFORE TRUNCATE ON event
       FOR EACH STATEMENT EXECUTE FUNCTION event_append_only()""",
]


def install(connection) -> None:
    """Run on a SQLAlchemy connection (Alembic's op.get_bind() or a test engine)."""
    for statement in SQLITE if connection.dialect.name == "sqlite" else POSTGRESQL:
        connection.exec_driver_sql(statement)


# SQLite's REPLACE (`INSERT OR REPLACE`, `REPLACE INTO`) deletes the conflicting row
# without firing DELETE triggers (recursive_triggers is off), so an insert that reuses an
# existing id is refused before it starts. PostgreSQL needs nothing more: a plain INSERT
# with a taken id violates the primary key, and `INSERT ... ON CONFLICT DO UPDATE` fires
# the BEFORE UPDATE trigger above (SQLite's UPSERT likewise fires event_no_update).
SQLITE_INSERT = """CREATE TRIGGER IF NOT EXISTS event_no_replace BEFORE INSERT ON event
   WHEN NEW.id IS NOT NULL AND EXISTS (SELECT 1 FROM event WHERE id = NEW.id)
   BEGIN SELECT RAISE(ABORT, 'event log is append-only'); END"""


def install_insert_guard(connection, *, drop: bool = False) -> None:
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("DROP TRIGGER IF EXISTS event_no_replace" if drop
                                   else SQLITE_INSERT)
