import stat

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlmodel import SQLModel

import app.tables  # noqa: F401
from app.db import get_engine, needs_migration


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sqlite_runs_with_wal_busy_timeout_and_foreign_keys(settings):
    with get_engine().connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() >= 5000


# Full-text index structures differ per database and exist only in the migration:
# SQLite's FTS5 table (and its shadow tables), PostgreSQL's tsvector column and GIN index.
MIGRATION_ONLY = ("incident_fts", "search_vector", "ix_incident_search_vector")


def _declared(obj, name, type_, reflected, compare_to):
    return not (reflected and compare_to is None and name and name.startswith(MIGRATION_ONLY))


def test_migrations_match_the_tables(settings):
    """The reviewed migrations build exactly the schema the code declares."""
    engine = get_engine()
    assert not needs_migration(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": _declared})
        diff = compare_metadata(context, SQLModel.metadata)
    assert diff == []


def test_secret_key_is_generated_once_and_private(settings):
    key = settings.secret_key
    assert len(key) == 32 and settings.secret_key == key
    path = settings.data_dir / "secret.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
