"""Recording the statements the app's engine runs, for tests of what a read costs."""

from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import event

from app.db import get_engine


@contextmanager
def count_queries(selects_only: bool = False):
    """Yields a list that fills with (statement, parameters) for each statement run
    inside the block; `selects_only` keeps the SELECTs (what EXPLAIN can judge)."""
    seen: list[tuple[str, object]] = []

    def before(conn, cursor, statement, parameters, context, executemany):
        if not selects_only or statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    engine = get_engine()
    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)
