"""The transparency log's tables: leaves, the tree's complete-subtree nodes, the head
(its size, and the lock appends take) and the signed checkpoints."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, LargeBinary, SmallInteger, Text
from sqlmodel import Field, SQLModel

from app.sqltypes import BIGINT
from app.timeutil import utcnow


class LogLeaf(SQLModel, table=True):
    """Leaf `idx` of the tree: `leaf` is the exact bytes hashed (canonical JSON, UTF-8),
    a commitment to the event `event_id`; `salt` opens it. No foreign key to the event:
    the log is the evidence that outlives an event row someone removed."""
    __tablename__ = "log_leaf"
    idx: int = Field(primary_key=True, sa_type=BIGINT, sa_column_kwargs={"autoincrement": False})
    event_id: int = Field(sa_type=BIGINT, unique=True)
    salt: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    leaf: str = Field(sa_column=Column(Text, nullable=False))


class LogNode(SQLModel, table=True):
    """Hash of the complete subtree over leaves [idx·2^level, (idx+1)·2^level): level 0
    holds the leaf hashes. Hash tiles are ranges of one level."""
    __tablename__ = "log_node"
    level: int = Field(primary_key=True, sa_type=SmallInteger,
                       sa_column_kwargs={"autoincrement": False})
    idx: int = Field(primary_key=True, sa_type=BIGINT, sa_column_kwargs={"autoincrement": False})
    hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class LogHead(SQLModel, table=True):
    """One row: the tree's size. An append updates it first, so appends queue on its row
    lock and leaf indexes come out without gaps or twins."""
    __tablename__ = "log_head"
    id: int = Field(default=1, primary_key=True, sa_type=BIGINT,
                    sa_column_kwargs={"autoincrement": False})
    size: int = Field(default=0, sa_type=BIGINT)


class LogCheckpoint(SQLModel, table=True):
    """Every checkpoint the log signed: the history a monitor or witness can compare."""
    __tablename__ = "log_checkpoint"
    size: int = Field(primary_key=True, sa_type=BIGINT, sa_column_kwargs={"autoincrement": False})
    root: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    note: str = Field(sa_column=Column(Text, nullable=False))
    at: datetime = Field(default_factory=utcnow)
