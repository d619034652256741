"""Rendered plan responses, kept while the database provably has not changed.

The registry is read-mostly and a plan read costs several queries. On SQLite we ask
`PRAGMA data_version` on a connection of our own: it changes whenever any other
connection, in any process, commits. So a hit is never stale and costs microseconds.
Visibility is checked on every hit (public, or the caller's lab). On PostgreSQL there is
no such cheap signal, so the cache stays off there.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.settings import get_settings


@dataclass(frozen=True)
class Entry:
    body: bytes
    lab_id: int
    public: bool
    version: int


class PlanCache:
    def __init__(self, sqlite_path: str | None) -> None:
        self._entries: dict[int, Entry] = {}
        self._lock = threading.Lock()
        self._conn = None
        self._seen = None
        if sqlite_path:
            self._conn = sqlite3.connect(sqlite_path, check_same_thread=False,
                                         isolation_level=None)

    def _fresh(self) -> bool:
        """Drop everything if anyone committed since we last looked."""
        if self._conn is None:
            return False
        version = self._conn.execute("PRAGMA data_version").fetchone()[0]
        if version != self._seen:
            self._entries.clear()
            self._seen = version
        return True

    def get(self, plan_id: int) -> Entry | None:
        with self._lock:
            return self._entries.get(plan_id) if self._fresh() else None

    def put(self, plan_id: int, entry: Entry, seen_before: int | None) -> None:
        with self._lock:
            # Store only if nothing was committed while the entry was being built.
            if self._fresh() and self._seen == seen_before:
                self._entries[plan_id] = entry

    def token(self) -> int | None:
        with self._lock:
            return self._seen if self._fresh() else None

    def drop(self, plan_ids) -> None:
        with self._lock:
            for plan_id in plan_ids:
                self._entries.pop(plan_id, None)


_cache: PlanCache | None = None
_cache_url: str | None = None


def plan_cache() -> PlanCache:
    global _cache, _cache_url
    url = get_settings().database_url
    if _cache is None or _cache_url != url:
        path = url.split("///", 1)[1] if url.startswith("sqlite:///") else None
        _cache, _cache_url = PlanCache(path), url
    return _cache


def drop_on_commit(session: Session, plan_id: int) -> None:
    session.info.setdefault("changed_plans", set()).add(plan_id)


def drop_changed_on_commit(session: Session) -> None:
    # Our own process's commits also bump data_version for the cache connection, but
    # dropping explicitly keeps the PostgreSQL path and the intent obvious.
    changed = session.info.pop("changed_plans", None)
    if changed and _cache is not None:
        _cache.drop(changed)
