"""The registry's clock (UTC, overridable in tests) and canonical JSON digests."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime
from typing import Any

_frozen: datetime | None = None


def utcnow() -> datetime:
    # Aware UTC everywhere: SQLModel's UTCDateTime refuses naive values.
    return _frozen or datetime.now(UTC)


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
