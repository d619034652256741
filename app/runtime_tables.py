"""Tables the registry keeps for its own running, not domain rows: rate-limit counters
and the read cache's change counter. Apart from app/ratelimit.py and app/readcache.py,
which use the database, so that app.tables (imported by app.db) imports no module that
imports app.db."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index
from sqlmodel import Field, SQLModel


class RateCounter(SQLModel, table=True):
    __tablename__ = "rate_counter"
    __table_args__ = (Index("ix_rate_counter_window_start", "window_start"),)
    bucket: str = Field(max_length=200, primary_key=True)
    window_start: int = Field(sa_column=Column(BigInteger, primary_key=True))
    count: int


class ReadCacheVersion(SQLModel, table=True):
    """One row: PostgreSQL's change counter (SQLite has `PRAGMA data_version` instead)."""
    __tablename__ = "read_cache_version"
    id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    version: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
