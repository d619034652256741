"""Appending every event to the log, in the event's own transaction, and reading the tree.

A session listener collects the events a transaction inserts and, just before it
commits (after the verdict recompute, which records events of its own), appends one leaf
per event in event-id order: a failed or rolled-back write leaves no leaf. The append
takes the log head's row lock first and holds it only for the commit, so leaf indexes are
gapless and unique across processes, and an append never waits inside other locks.

Every leaf is a commitment: SHA-256(salt ‖ content), where content is the canonical JSON
of the event's public fields (what /api/v1/events shows), beside the entity type and the
time. The opening (salt and content) is served to whoever may read the event now, by the
same filter as /api/v1/events; so the log itself is public and reveals, of an event
nobody may read yet, only that something happened to an entity of that type, and when.
Content is recomputed from the event row on every read, so an edited event no longer
opens its leaf: that is how a monitor notices a rewritten history.
"""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime

from sqlalchemy import event as sa_event
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.events.tables import Event
from app.timeutil import canonical_json
from app.transparency import merkle
from app.transparency.tables import LogHead

PENDING = "log_pending"
FILL = "log_fill"
LEAF_VERSION = 1


def iso(at: datetime) -> str:
    """The one time format of leaves and openings (UTC, microseconds): what the database
    gives back must print exactly as what was written."""
    if at.tzinfo is not None:
        at = at.astimezone(UTC).replace(tzinfo=None)
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_content(e: Event, at: str | None = None) -> bytes:
    """The event's public fields, as /api/v1/events shows them: the committed content.
    `e`: an Event or a row with the same attributes; `at`: iso(e.at), when known."""
    return canonical_json({"id": e.id, "at": at or iso(e.at), "actor": e.actor,
                           "entity_type": e.entity_type, "entity_id": e.entity_id,
                           "action": e.action, "digest": e.digest,
                           "data": e.data or {}}).encode()


def commitment(salt: bytes, content: bytes) -> str:
    return hashlib.sha256(salt + content).hexdigest()


def leaf_bytes(e: Event, salt: bytes) -> bytes:
    at = iso(e.at)
    return canonical_json({"v": LEAF_VERSION, "entity_type": e.entity_type, "at": at,
                           "commitment": commitment(salt, event_content(e, at))}).encode()


# -- appending --------------------------------------------------------------------------

def _collect(session: Session, _context) -> None:
    found = [o for o in session.new if isinstance(o, Event)]
    if found:
        session.info.setdefault(PENDING, []).extend(found)


def _append_pending(session: Session) -> None:
    if not session.info.get(PENDING):
        return
    session.flush()  # ids for every new event (and their rows, for the foreign keys)
    events = sorted(session.info.pop(PENDING), key=lambda e: e.id)
    _fill(session, events, append_events(session, events))


def _forget(session: Session, *_args) -> None:
    session.info.pop(PENDING, None)
    session.info.pop(FILL, None)


def fill_on_append(session: Session, entity_type: str, reads: list,
                   actions: tuple[str, ...] = ()) -> None:
    """A write's answer names the leaf of the event it just recorded, which gets its
    index only at commit: set each read's `log_index` then (the answer is sent after)."""
    if session.info.get(PENDING) or any(isinstance(o, Event) for o in session.new):
        session.info.setdefault(FILL, []).append((entity_type, reads, actions))


def _fill(session: Session, events: list[Event], first: int) -> None:
    for entity_type, reads, actions in session.info.pop(FILL, []):
        for read in reads:
            for offset, e in enumerate(events):
                if (e.entity_type == entity_type and e.entity_id == str(read.id)
                        and (not actions or e.action in actions)):
                    read.log_index = first + offset


def append_events(session: Session, events: list[Event]) -> int:
    """Append one leaf per event (already flushed, in order); returns the first index."""
    n = len(events)
    raw = Raw(session)
    # The head row's lock: every other appender waits here until this commit ends.
    size = raw.one("UPDATE log_head SET size = size + ? WHERE id = 1 RETURNING size", (n,))
    size -= n
    leaves, hashes = [], []
    for offset, e in enumerate(events):
        salt = os.urandom(32)
        data = leaf_bytes(e, salt)
        leaves.append((size + offset, e.id, salt, data.decode()))
        hashes.append(merkle.leaf_hash(data))
    nodes = merkle.new_nodes(size, hashes, reader(session))
    raw.many("INSERT INTO log_leaf (idx, event_id, salt, leaf) VALUES (?, ?, ?, ?)", leaves)
    raw.many("INSERT INTO log_node (level, idx, hash) VALUES (?, ?, ?)", nodes)
    return size


class Raw:
    """The session's own connection and transaction, driven through its DB-API cursor:
    an append runs on every commit, and SQLAlchemy's per-statement work was most of its
    cost. `?` placeholders, rewritten for psycopg."""

    def __init__(self, session: Session) -> None:
        conn = session.connection()
        self.pg = conn.dialect.name == "postgresql"
        self.cursor = conn.connection.dbapi_connection.cursor()

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.pg else sql

    def all(self, sql: str, params=()) -> list:
        self.cursor.execute(self._sql(sql), params)
        return self.cursor.fetchall()

    def one(self, sql: str, params=()):
        return self.all(sql, params)[0][0]

    def many(self, sql: str, rows: list) -> None:
        if rows:
            self.cursor.executemany(self._sql(sql), rows)


def install() -> None:
    """Idempotent; app/listeners.py calls it after the verdict recompute's listener, so
    the verdicts a commit records are logged with it."""
    from sqlalchemy.orm import Session as OrmSession

    for name, fn in (("after_flush", _collect), ("before_commit", _append_pending),
                     ("after_rollback", _forget)):
        if not sa_event.contains(OrmSession, name, fn):
            sa_event.listen(OrmSession, name, fn)


# -- reading the tree -------------------------------------------------------------------

def _nodes_query(n: int) -> str:
    """SELECT n nodes through a VALUES list joined on the primary key: SQLite 3.40 scans
    the whole table for `(level, idx) IN (...)` (0.7 s at a million leaves); this is one
    index lookup per node on both databases."""
    rows = ", ".join(["(?, ?)"] * n)
    return (f"WITH wanted(l, i) AS (VALUES {rows}) SELECT n.level, n.idx, n.hash "
            "FROM wanted JOIN log_node n ON n.level = wanted.l AND n.idx = wanted.i")


def reader(session: Session) -> merkle.Reader:
    """Stored node hashes, in one query per call."""
    raw = Raw(session)

    def read(nodes: list[merkle.Node]) -> list[bytes]:
        if not nodes:
            return []
        got = {}
        for chunk in range(0, len(nodes), 200):
            part = nodes[chunk:chunk + 200]
            params = [x for node in part for x in node]
            got.update({(lv, i): bytes(h) for lv, i, h in raw.all(
                _nodes_query(len(part)), params)})
        missing = [n for n in nodes if n not in got]
        if missing:
            raise LookupError(f"the log has no node {missing[0]}")
        return [got[n] for n in nodes]
    return read


def tree_size(session: Session) -> int:
    return session.execute(select(LogHead.size).where(LogHead.id == 1)).scalar_one_or_none() or 0
