"""Database engine, sessions, SQLite pragmas and migrations."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from sqlalchemy import create_engine, event, inspect
from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.settings import get_settings

ROOT = Path(__file__).resolve().parent.parent


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # Let SQLAlchemy's "begin" event emit BEGIN itself (the pysqlite recipe), so write
    # units can take the write lock up front.
    dbapi_conn.isolation_level = None
    # Unicode case-insensitive matching (SQLite's own lower() folds ASCII only).
    dbapi_conn.create_function("casefold", 1, _casefold, deterministic=True)
    cur = dbapi_conn.cursor()
    # WAL lets readers run beside one writer; busy_timeout makes writers queue, not fail.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    # Table statistics for the query planner, as SQLite advises for each new connection:
    # without them it picks an index on `status` for the incident list and sorts 50,000
    # rows (37 ms) instead of walking the (occurred, id) index (0.1 ms). ANALYZE writes:
    # while another connection holds the write lock it is skipped at once (busy_timeout
    # 0), never waited for; a connection opened during a long write answered 10 s late.
    cur.execute("PRAGMA busy_timeout=0")
    try:
        _plan_statistics(cur)
    except sqlite3.Error:  # a read-only or busy database: plan without fresh statistics
        pass
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def _casefold(value):
    return value.casefold() if isinstance(value, str) else value


def _plan_statistics(cur) -> None:
    """A full ANALYZE (0.4 s at 500k events) when a table with rows has no statistics;
    else PRAGMA optimize, which re-analyzes only tables that grew a lot (and, in SQLite
    3.40, never a table that had no rows when last analyzed, hence the check). A sampled
    ANALYZE (analysis_limit) misjudged the status index as selective."""
    known = set()
    if cur.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone():
        known = {row[0] for row in cur.execute("SELECT DISTINCT tbl FROM sqlite_stat1")}
    indexed = [row[0] for row in cur.execute(
        "SELECT DISTINCT tbl_name FROM sqlite_master WHERE type = 'index' "
        "AND tbl_name NOT LIKE 'sqlite_%'")]
    missing = any(cur.execute(f'SELECT 1 FROM "{t}" LIMIT 1').fetchone()
                  for t in indexed if t not in known)
    cur.execute("ANALYZE" if missing else "PRAGMA optimize=0x10002")


def _sqlite_begin(conn) -> None:
    # A write unit takes the write lock at BEGIN, so two writers queue on busy_timeout
    # instead of the later one failing on lock upgrade after reading a stale snapshot.
    write = conn.get_execution_options().get("write")
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    # Every process that talks to the database maps every table (the CLI imports lazily),
    # so a flush can always order rows by their foreign keys.
    import app.tables  # noqa: F401
    from app import markdown
    from app.installers import run_installers

    # Listeners come from here and from the entry point (app/installers.py), never from
    # an import. Markdown is rendered on every write path, scripts included.
    markdown.install()
    run_installers()
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


def get_engine() -> Engine:
    return engine_for(get_settings().database_url)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def open_session(engine: Engine | None = None, *, write: bool = False) -> Session:
    session = Session(engine or get_engine(), expire_on_commit=False)
    if write:
        session.connection(execution_options={"write": True})
    return session


@contextmanager
def session_scope(engine: Engine | None = None, *, write: bool = True) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    with open_session(engine, write=write) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def alembic_config(url: str):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def needs_migration(engine: Engine) -> bool:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config(str(engine.url)))
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_heads()
    return set(current) != set(script.get_heads())


def upgrade(url: str | None = None) -> None:
    from alembic import command

    url = url or get_settings().database_url
    command.upgrade(alembic_config(url), "head")


def has_tables(engine: Engine) -> bool:
    return bool(inspect(engine).get_table_names())
