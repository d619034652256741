"""The registry's clock (UTC, overridable in tests) and canonical JSON digests."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, date, datetime
from typing import Any

_frozen: datetime | None = None
# STAGEGATE_CLOCK_FILE: a rehearsal clock for a whole deployment (server, worker, CLI on
# the server's machine): the file holds an ISO time that the operator moves forward, so
# a nine-month release story plays in minutes under the real policies. Operator-set only
# (an environment variable of the processes), never reachable over HTTP.
_clock_file: tuple[str, float, datetime] | None = None


def _rehearsal_now(path: str) -> datetime:
    global _clock_file
    mtime = os.stat(path).st_mtime_ns
    if _clock_file is None or _clock_file[:2] != (path, mtime):
        with open(path, encoding="utf-8") as f:
            at = datetime.fromisoformat(f.read().strip())
        _clock_file = (path, mtime, at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC))
    return _clock_file[2]


def utcnow() -> datetime:
    # Aware UTC everywhere: SQLModel's UTCDateTime refuses naive values.
    if _frozen is not None:
        return _frozen
    path = os.environ.get("STAGEGATE_CLOCK_FILE")
    return _rehearsal_now(path) if path else datetime.now(UTC)


def as_utc(at: datetime | None) -> datetime | None:
    """A naive datetime read back (SQLite, click) is UTC: the registry stores UTC."""
    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at


def freeze(at: datetime | None) -> None:
    """Pin the clock (tests of time-based visibility); None releases it."""
    global _frozen
    _frozen = at


def _default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_default,
                      ensure_ascii=False)


def digest(obj: Any) -> str:
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()
