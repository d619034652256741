"""The append-only event log: every state change, who made it, and a digest of the result."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from app.sqltypes import BIGINT
from app.timeutil import utcnow

# Who may read an event: "public" (everyone, from visible_from on), "lab" (members of
# lab_id and coordinators), "private" (the actor and coordinators).
EVENT_VISIBILITY = ("public", "lab", "private")


class Event(SQLModel, table=True):
    # An entity's history (entity_type and entity_id together): see migration 0012.
    __table_args__ = (Index("ix_event_entity", "entity_type", "entity_id"),)
    id: int | None = Field(default=None, primary_key=True, sa_type=BIGINT)
    at: datetime = Field(default_factory=utcnow, index=True)
    actor_id: int | None = Field(default=None, foreign_key="user.id", sa_type=BIGINT)
    actor: str = Field(max_length=64)
    entity_type: str = Field(max_length=40, index=True)
    entity_id: str = Field(max_length=64, index=True)
    action: str = Field(max_length=60)
    digest: str = Field(max_length=64)
    lab_id: int | None = Field(default=None, foreign_key="lab.id", index=True, sa_type=BIGINT)
    visibility: str = Field(default="lab", max_length=10)
    visible_from: datetime | None = Field(default=None, index=True)
    data: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
