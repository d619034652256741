"""Rate limits shared by every server process (counters in the database), and the client
address they are keyed by (forwarded headers trusted only from configured proxies)."""

from __future__ import annotations

import ipaddress
import math
import random
import time

from sqlalchemy import text

from app.db import session_scope
from app.runtime_tables import RateCounter  # noqa: F401 - its table (app/runtime_tables.py)

# One statement on both databases: the row lock (PostgreSQL) or the write lock (SQLite)
# makes concurrent callers each see a different count, so the limit holds exactly.
_INCREMENT = text(
    "INSERT INTO rate_counter (bucket, window_start, count) VALUES (:b, :w, 1) "
    "ON CONFLICT (bucket, window_start) DO UPDATE SET count = rate_counter.count + 1 "
    "RETURNING count")


def take(bucket: str, limit: int, per_seconds: int, *, now: float | None = None) -> float:
    """Count one hit of `bucket`; 0 if it is within `limit` per `per_seconds`, else the
    seconds to wait. A sliding window: the previous window's count weighs by how much of it
    still overlaps the last `per_seconds`, so there is no burst of 2 x limit at a boundary.
    Refused hits count too: a client that keeps trying stays refused."""
    now = time.time() if now is None else now
    window = int(now // per_seconds) * per_seconds
    overlap = 1 - (now - window) / per_seconds
    with session_scope() as session:
        conn = session.connection()
        current = conn.execute(_INCREMENT, {"b": bucket, "w": window}).scalar_one()
        previous = conn.execute(text(
            "SELECT count FROM rate_counter WHERE bucket = :b AND window_start = :w"),
            {"b": bucket, "w": window - per_seconds}).scalar() or 0
        if random.random() < 0.01:  # forget windows nobody can count any more
            conn.execute(text("DELETE FROM rate_counter WHERE window_start < :w"),
                         {"w": window - per_seconds})
    if previous * overlap + current <= limit:
        return 0.0
    if current > limit:  # over on this window alone: wait for it to end
        return max(1.0, window + per_seconds - now)
    # Wait until the previous window's weight has slid down enough.
    need = (previous * overlap + current - limit) / previous * per_seconds
    return max(1.0, math.ceil(need))


def _ip(value: str):
    try:
        addr = ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        return None
    return getattr(addr, "ipv4_mapped", None) or addr


def client_address(peer: str | None, forwarded_for: str | None, trusted: tuple) -> str:
    """The address a limit is keyed by.

    X-Forwarded-For is read only when the peer is a configured proxy, and then from the
    right: each trusted proxy appended the address it saw, so the first hop from the right
    that is not a trusted proxy is the client; anything further left is the client's own
    claim. IPv6 clients are keyed by their /64, which one subscriber usually holds whole.
    """
    addr = _ip(peer or "")
    if addr is None:
        return peer or "unknown"
    if forwarded_for and trusted:
        hops = [h for h in forwarded_for.split(",") if h.strip()]
        while hops and any(addr in net for net in trusted):
            hop = _ip(hops.pop())
            if hop is None:
                break
            addr = hop
    if addr.version == 6:
        return str(ipaddress.ip_network(f"{addr}/64", strict=False))
    return str(addr)
