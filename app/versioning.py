"""Optimistic locking on versioned rows: the one compare-and-set every write goes through."""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import Session

from app.errors import Conflict, Invalid
from app.timeutil import utcnow


def check_version(expected: int | None, current: int) -> None:
    if expected is None:
        raise Invalid("send the version you edited (body 'version' or If-Match)",
                      field="version")
    if expected != current:
        raise Conflict(f"version {expected} is stale; the current version is {current}",
                       field="version", current_version=current)


def claim_version(session: Session, row, expected: int | None):
    """Check the caller's version, then compare-and-set it in the database (so of two
    concurrent writers exactly one wins), then advance the row in memory. Call it before
    changing any attribute, so nothing is autoflushed ahead of the compare-and-set."""
    check_version(expected, row.version)
    table = type(row)
    result = session.execute(update(table)
                             .where(table.id == row.id, table.version == row.version)
                             .values(version=row.version + 1)
                             .execution_options(synchronize_session=False))
    if result.rowcount != 1:
        raise Conflict(f"version {expected} is stale; someone else saved first",
                       field="version")
    row.version += 1
    row.updated_at = utcnow()
    return row
