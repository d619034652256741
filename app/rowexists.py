"""EXISTS of one row by primary key, checked per outer row: how visibility follows a parent."""

from __future__ import annotations

from sqlalchemy import exists, literal, select


def row_exists(table, *where):
    """EXISTS (SELECT 1 FROM table WHERE where... OFFSET 0), correlated to everything
    outside `table` (pass an alias when the outer query may hold the same table).

    The OFFSET 0 is PostgreSQL's documented optimization fence: without it the planner
    turns a correlated EXISTS into a hash of every matching row (the whole visible set
    of checkpoints, runs, models ...) built on each query, because it costs the outer
    scan as if it ran to the end, not to the page's LIMIT. With it the EXISTS stays a
    per-row primary-key probe: a page of 50 costs 50 probes at any table size. SQLite
    runs a correlated EXISTS per row anyway; the clause is harmless there.
    """
    return exists(select(literal(1)).select_from(table).where(*where)
                  .correlate_except(table).offset(0))
