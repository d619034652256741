"""Exact cache of anonymous public GET answers (API and pages), dropped whenever the database or the clock could change them.

Why it is exact:
- Data: a cache entry is valid only while the database's change token is what it was
  before the answer was computed. On SQLite the token is `PRAGMA data_version` on a
  connection of our own (it moves whenever any other connection, in any process,
  commits). On PostgreSQL it is `read_cache_version.version`, bumped by a deferred
  trigger on every table in the same transaction as any write (migration 0009), so it is
  visible exactly when the write is, to every server process.
- Clock: visibility also depends on time (embargoes, confidentiality, agreement terms,
  events' `visible_from`), and compliance verdicts on today's date and on exemptions'
  expiry. With each token we compute the next instant any of those flips (`horizon`,
  at the latest the next midnight UTC); entries live only while now < horizon, and an
  answer computed past it is never stored.
- Audience: only answers to anonymous callers (no Authorization, no cookie but the CSRF
  one) of routes marked public are stored and served, so an answer is only ever given to
  a caller whose answer it is. A page that carries the request's CSRF token (a form) is
  that browser's own and never stored, nor is the CSRF cookie a page sets: the cache sits
  before the session and CSRF middleware, so a hit costs neither, and a browser gets its
  CSRF cookie from the first form page it opens.
- Address: the scheme and the Host/forwarding headers are part of the key (feeds and
  exported cards hold absolute links built from them).
An entry is stored only if the token did not move while it was computed.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import re
import sqlite3
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, time, timedelta

import anyio
from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine

from app.runtime_tables import ReadCacheVersion  # noqa: F401 - its table (app/runtime_tables.py)
from app.timeutil import utcnow

log = logging.getLogger(__name__)

TRIGGER = "stagegate_read_version"
MAX_ENTRY_BYTES = 64 * 2**20  # a full incidents export at 50k incidents is ~30 MB
MAX_TOTAL_BYTES = 256 * 2**20
# No public answer reads these, so writes to them need not drop the cache.
# The transparency log's tables: a leaf is only ever written beside its event (tracked),
# and /log answers are never cached (_UNCACHED).
_UNTRACKED = ("alembic_version", "read_cache_version", "rate_counter", "web_session",
              "login_failure", "log_leaf", "log_node", "log_head", "log_checkpoint")


# --- PostgreSQL change counter (used by migration 0009 and by later migrations) -------

PG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION {TRIGGER}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- Once per transaction: the flag is transaction-local (set_config(..., true)).
  IF coalesce(current_setting('stagegate.read_version_bumped', true), '') <> 'y' THEN
    UPDATE read_cache_version SET version = version + 1 WHERE id = 1;
    PERFORM set_config('stagegate.read_version_bumped', 'y', true);
  END IF;
  RETURN NULL;
END $$"""


def install_pg_triggers(conn) -> None:
    """Bump the counter from every table. Deferred to commit, so the counter row is the
    last lock a writer takes (no lock-order deadlocks); TRUNCATE gets a statement trigger.
    Idempotent: a migration that adds tables calls this again."""
    conn.execute(text(PG_FUNCTION))
    tables = conn.execute(text(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")).scalars()
    for table in tables:
        if table in _UNTRACKED:
            continue
        conn.execute(text(f'DROP TRIGGER IF EXISTS {TRIGGER} ON "{table}"'))
        conn.execute(text(f'DROP TRIGGER IF EXISTS {TRIGGER}_truncate ON "{table}"'))
        conn.execute(text(
            f'CREATE CONSTRAINT TRIGGER {TRIGGER} AFTER INSERT OR UPDATE OR DELETE ON "{table}" '
            f"DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {TRIGGER}()"))
        conn.execute(text(
            f'CREATE TRIGGER {TRIGGER}_truncate AFTER TRUNCATE ON "{table}" '
            f"FOR EACH STATEMENT EXECUTE FUNCTION {TRIGGER}()"))


def untracked_pg_tables(conn) -> list[str]:
    """Tables a write to which would not move the counter (the cache stays off then)."""
    return list(conn.execute(text(
        "SELECT t.tablename FROM pg_tables t WHERE t.schemaname = current_schema() "
        f"AND t.tablename NOT IN ({', '.join(repr(t) for t in _UNTRACKED)}) "
        "AND NOT EXISTS (SELECT 1 FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid "
        f"JOIN pg_namespace n ON n.oid = c.relnamespace WHERE g.tgname = '{TRIGGER}' "
        "AND c.relname = t.tablename AND n.nspname = t.schemaname)")).scalars())


# --- the cache ----------------------------------------------------------------------

@dataclass(frozen=True)
class Answer:
    status: int
    headers: list
    body: bytes
    # The same answer gzip-compressed, once, when it is worth it: most HTTP clients
    # (browsers, curl --compressed, requests, httpx) accept gzip, and the big public
    # answers (cards, pages of results, the incidents export) shrink 5-10x.
    gzip_headers: list | None = None
    gzip_body: bytes | None = None

    @property
    def size(self) -> int:
        return len(self.body) + len(self.gzip_body or b"")


GZIP_MIN_BYTES = 1024
_COMPRESSIBLE = (b"application/json", b"text/", b"application/problem+json")


def with_gzip(answer: Answer) -> Answer:
    """The answer with its gzip variant. Both say `Vary: Accept-Encoding`; the gzip one
    carries the ETag weakened (W/), as a weak validator may be shared by encodings of
    the same content, so If-None-Match from either still matches (RFC 9110 8.8.1)."""
    headers = vary_on_encoding(answer.headers)
    kind = next((v for n, v in answer.headers if n.lower() == b"content-type"), b"")
    if len(answer.body) < GZIP_MIN_BYTES or not kind.startswith(_COMPRESSIBLE):
        return Answer(answer.status, headers, answer.body)
    packed = gzip.compress(answer.body, compresslevel=5, mtime=0)
    if len(packed) >= len(answer.body):
        return Answer(answer.status, headers, answer.body)
    zipped = [(n, _weak(v) if n.lower() == b"etag" else v) for n, v in headers
              if n.lower() != b"content-length"]
    zipped += [(b"content-encoding", b"gzip"), (b"content-length", str(len(packed)).encode())]
    return Answer(answer.status, headers, answer.body, zipped, packed)


def vary_on_encoding(headers: list) -> list:
    if any(n.lower() == b"vary" and b"accept-encoding" in v.lower() for n, v in headers):
        return headers
    return [*headers, (b"vary", b"Accept-Encoding")]


def _weak(etag: bytes) -> bytes:
    return etag if etag.startswith(b"W/") else b"W/" + etag


def accepts_gzip(headers) -> bool:
    """True if Accept-Encoding lists gzip (or *) with a q-value above 0."""
    for name, value in headers:
        if name != b"accept-encoding":
            continue
        for part in value.decode("latin-1").lower().split(","):
            coding, _, params = part.strip().partition(";")
            q = params.strip().removeprefix("q=") if params.strip().startswith("q=") else "1"
            if coding.strip() in ("gzip", "*"):
                try:
                    return float(q) > 0
                except ValueError:
                    return False
    return False


def clock_horizon(engine: Engine, now: datetime) -> datetime:
    """The next instant after `now` at which any time-dependent answer may change: a
    visibility flips (embargo, confidentiality, agreement terms, an event's
    `visible_from`), an exemption expires, or the day changes (compliance verdicts on
    the plan and model pages are judged on today's date: evaluation age, days between
    stages)."""
    from app.agreements.tables import DisclosureAgreement as A
    from app.events.tables import Event
    from app.incidents.tables import Incident
    from app.norms.tables import PolicyExemption

    columns = (Incident.embargo_until, Event.visible_from, A.confidential_until,
               A.starts_at, A.ends_at, PolicyExemption.expires_at)
    with engine.connect() as conn:
        found = [conn.execute(select(func.min(col)).where(col > now)).scalar()
                 for col in columns]
    midnight = datetime.combine(now.date() + timedelta(days=1), time(), now.tzinfo)
    return min([f for f in found if f is not None] + [midnight])


class ReadCache:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._entries: OrderedDict[tuple, Answer] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._seen: object = None
        self._horizon: datetime | None = None
        self._since: datetime | None = None
        self._generation = 0
        self._sqlite: sqlite3.Connection | None = None
        self._pg = None
        self.enabled = self._setup()

    def _setup(self) -> bool:
        url = self.engine.url
        if self.engine.dialect.name == "sqlite":
            if not url.database or url.database == ":memory:":
                return False
            self._sqlite = sqlite3.connect(url.database, check_same_thread=False,
                                           isolation_level=None)
            return True
        try:
            with self.engine.connect() as conn:
                missing = untracked_pg_tables(conn)
                conn.execute(text("SELECT version FROM read_cache_version WHERE id = 1"))
        except Exception as exc:  # noqa: BLE001 - no counter yet (un-migrated): no cache
            log.warning("read cache off: %s", exc)
            return False
        if missing:
            log.warning("read cache off: no change trigger on %s", ", ".join(missing))
            return False
        return True

    def _version(self):
        if self._sqlite is not None:
            return self._sqlite.execute("PRAGMA data_version").fetchone()[0]
        # A connection of our own in autocommit: each read sees the latest commit, and no
        # pool checkout (with its pre-ping round trip) per request.
        import psycopg

        with self._lock:
            try:
                if self._pg is None or self._pg.closed:
                    url = self.engine.url.set(drivername="postgresql")
                    self._pg = psycopg.connect(url.render_as_string(hide_password=False),
                                               autocommit=True)
                return self._pg.execute(
                    "SELECT version FROM read_cache_version WHERE id = 1").fetchone()[0]
            except psycopg.Error:
                if self._pg is not None:
                    self._pg.close()
                self._pg = None
                raise

    def token(self) -> tuple | None:
        """The current (version, clock generation); entries of another token are gone."""
        if not self.enabled:
            return None
        try:
            version = self._version()
        except Exception:  # noqa: BLE001 - the database went away: serve uncached
            return None
        now = utcnow()
        with self._lock:
            # Valid for since <= now < horizon: no visibility flips inside that interval
            # (a clock set back, as tests do, leaves it too).
            stale_clock = ((self._horizon is not None and now >= self._horizon)
                           or (self._since is not None and now < self._since))
            if version != self._seen or stale_clock:
                self._entries.clear()
                self._bytes = 0
                self._generation += 1
                try:
                    self._horizon = clock_horizon(self.engine, now)
                except Exception:  # noqa: BLE001
                    self._seen = None
                    return None
                self._seen, self._since = version, now
            return (version, self._generation)

    def get(self, key: tuple, token: tuple) -> Answer | None:
        with self._lock:
            if token != (self._seen, self._generation):
                return None
            answer = self._entries.get(key)
            if answer is not None:
                self._entries.move_to_end(key)
            return answer

    def put(self, key: tuple, answer: Answer, token: tuple) -> bool:
        if len(answer.body) > MAX_ENTRY_BYTES:
            return False
        # Nothing may have been committed, nor the clock passed a flip, since `token`.
        if self.token() != token:
            return False
        with self._lock:
            if token != (self._seen, self._generation):
                return False
            old = self._entries.pop(key, None)
            self._bytes -= old.size if old else 0
            self._entries[key] = answer
            self._bytes += answer.size
            while self._bytes > MAX_TOTAL_BYTES and self._entries:
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= dropped.size
            return True


# --- ASGI middleware -----------------------------------------------------------------

_BYPASS = (b"authorization", b"if-none-match", b"if-modified-since", b"range")
# The only cookie an anonymous browser carries: the CSRF cookie every page sets. Any other
# (the sign-in session) means the answer may be someone's own.
CSRF_COOKIE = "sg_csrf"
# Answers that depend on more than the database, the clock horizon and the policies this
# process loaded at start: example files read from disk on each request, static files,
# and the live compliance endpoints (they carry the instant they were judged at). Pages
# that embed compliance show its date only, which the horizon covers (it ends at midnight).
# /log and /api/v1/log: the checkpoint is signed on read, and tiles carry their own
# immutable Cache-Control for HTTP caches.
# /files/: a checkpoint file is a redirect or a stream by the request's Accept and
# ?redirect= (object storage), and the OS page cache already holds a local one.
_UNCACHED = re.compile(r"^/policies/[^/]+/examples/|/compliance|/exemptions|^/static/|^/schema"
                       r"|^/log/|^/api/v1/log/|/files/")
# What the request's own address decides in an answer (absolute links in feeds and
# exported cards), so it is part of the key.
_ADDRESS = (b"host", b"x-forwarded-host", b"x-forwarded-proto", b"forwarded")


def anonymous(headers) -> bool:
    """No credentials and no cookie but the CSRF one."""
    for name, value in headers:
        if name in _BYPASS:
            return False
        if name == b"cookie":
            names = {part.split("=", 1)[0].strip()
                     for part in value.decode("latin-1").split(";") if part.strip()}
            if names - {CSRF_COOKIE}:
                return False
    return True


def wants_fresh(headers) -> bool:
    """`Cache-Control: no-cache` (or `Pragma: no-cache`) from the client: the stored answer
    may not be used without validation (RFC 9111 5.2.1.4), so it is computed (and kept)."""
    for name, value in headers:
        if name in (b"cache-control", b"pragma") and (
                b"no-cache" in value.lower() or b"max-age=0" in value.lower()):
            return True
    return False


def embeds_csrf_token(scope, body: bytes) -> bool:
    """A page with a form carries this request's CSRF token: it is that browser's own."""
    from litestar.utils.scope.state import ScopeState

    token = ScopeState.from_scope(scope).csrf_token
    return isinstance(token, str) and token.encode() in body


def cache_key(scope) -> tuple:
    from app.settings import get_settings

    settings = get_settings()
    address = tuple((n, v) for n, v in scope["headers"] if n in _ADDRESS)
    # Which policies judge plans is a setting (tests and tools switch it in-process).
    judged_by = (str(settings.policy_dir), tuple(settings.mandatory_policies))
    return (scope["scheme"], address, judged_by, scope["path"], scope["query_string"])


async def _compute_and_store(app, scope, receive, send, cache: ReadCache, key: tuple,
                             token: tuple) -> None:
    start: dict = {}
    chunks: list[bytes] = []
    size = 0

    async def capture(message):
        nonlocal size
        if message["type"] == "http.response.start":
            # A copy: the before_send hook adds per-request headers (X-Request-ID) to the
            # message in place; those must be added afresh on every replay, not stored.
            # Vary already on a miss: the hits that follow may be gzip-encoded.
            message["headers"] = vary_on_encoding(list(message.get("headers", [])))
            start.update(message, headers=list(message["headers"]))
        elif message["type"] == "http.response.body" and size <= MAX_ENTRY_BYTES:
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
        await send(message)

    await app(scope, receive, capture)
    # The CSRF cookie a page hands a new browser is that browser's own: not stored (a page
    # without a form does not need it; a form page is never stored). Any other cookie
    # keeps the answer out of the cache.
    kept = [(n, v) for n, v in start.get("headers", [])
            if not (n.lower() == b"set-cookie" and v.startswith(CSRF_COOKIE.encode() + b"="))]
    names = {n.lower() for n, _ in kept}
    if (start.get("status") == 200 and size <= MAX_ENTRY_BYTES
            and not names & {b"set-cookie", b"content-encoding"}):
        body = b"".join(chunks)
        if embeds_csrf_token(scope, body):
            return
        headers = [(n, v) for n, v in kept if n.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        # Compressing a big answer takes a while: off the event loop.
        answer = await anyio.to_thread.run_sync(with_gzip, Answer(start["status"], headers, body))
        cache.put(key, answer, token)


def read_cache_middleware(app):
    """Litestar middleware (runs after routing, so the route's `public` marking is known)."""
    caches: dict[str, ReadCache] = {}
    inflight: dict[tuple, tuple] = {}
    lock = threading.Lock()

    def cache_for() -> ReadCache:
        from app.db import get_engine

        engine = get_engine()
        key = str(engine.url)
        with lock:
            if key not in caches:
                caches[key] = ReadCache(engine)
            return caches[key]

    async def middleware(scope, receive, send):
        handler = scope.get("route_handler")
        if (scope["type"] != "http" or scope["method"] != "GET"
                or _UNCACHED.search(scope["path"])
                or handler is None or not handler.opt.get("public")
                or not anonymous(scope["headers"])):
            await app(scope, receive, send)
            return
        cache = cache_for()
        token = cache.token()
        if token is None:
            await app(scope, receive, send)
            return
        # A 200 does not depend on Accept (pages are HTML, the API JSON); only 200s are
        # stored (error bodies follow Accept), never an encoded body (Accept-Encoding).
        key = cache_key(scope)
        flight = (id(asyncio.get_running_loop()), key)
        fresh = wants_fresh(scope["headers"])
        while True:
            answer = None if fresh else cache.get(key, token)
            if answer is not None:
                zipped = answer.gzip_body is not None and accepts_gzip(scope["headers"])
                headers = answer.gzip_headers if zipped else answer.headers
                await send({"type": "http.response.start", "status": answer.status,
                            "headers": list(headers)})  # hooks edit it in place
                await send({"type": "http.response.body",
                            "body": answer.gzip_body if zipped else answer.body})
                return
            # One computation per key at a time: after a write, a burst of identical reads
            # would otherwise all miss at once and queue behind each other.
            # Per event loop: an anyio Event wakes waiters of its own loop only (one app
            # may be served by two loops, e.g. a test client beside a live server).
            running = inflight.get(flight)
            if running is None or running[0] != token:
                break
            await running[1].wait()
            token = cache.token()
            if token is None:
                await app(scope, receive, send)
                return
        done = anyio.Event()
        inflight[flight] = (token, done)
        try:
            await _compute_and_store(app, scope, receive, send, cache, key, token)
        finally:
            if inflight.get(flight, (None, None))[1] is done:
                del inflight[flight]
            done.set()

    return middleware
