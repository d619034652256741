"""Hosted checkpoints: one row per uploaded checkpoint, its manifest and access level."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Column
from sqlmodel import Field, SQLModel, UniqueConstraint

from app.sqltypes import BIGINT
from app.timeutil import utcnow

ACCESS_LEVELS = ("public", "partners", "internal")


class Checkpoint(SQLModel, table=True):
    __tablename__ = "checkpoint"
    __table_args__ = (UniqueConstraint("model_id", "name"),)
    id: int | None = Field(default=None, primary_key=True, sa_type=BIGINT)
    model_id: int = Field(foreign_key="ai_model.id", index=True, sa_type=BIGINT)
    # Copied from the model so visibility filters need no join.
    lab_id: int = Field(foreign_key="lab.id", index=True, sa_type=BIGINT)
    name: str = Field(max_length=100)
    # The plan stage this checkpoint is the artefact of (attach_to_stage): an agreement
    # scoped to that stage grants it, and the gate's partner evidence reads it.
    stage_id: int | None = Field(default=None, foreign_key="stage.id", index=True,
                                 sa_type=BIGINT)
    access_level: str = Field(default="internal", max_length=16)
    # [{"name", "sha256", "size"}] sorted by name; the digest names the exact file set.
    manifest: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    manifest_digest: str = Field(max_length=64, index=True)
    total_bytes: int = Field(sa_column=Column(BigInteger, nullable=False))
    parameter_count: int = Field(sa_column=Column(BigInteger, nullable=False))
    architecture: str | None = Field(default=None, max_length=100)
    model_type: str | None = Field(default=None, max_length=100)
    uploaded_by: int | None = Field(default=None, foreign_key="user.id", sa_type=BIGINT)
    created_at: datetime = Field(default_factory=utcnow)
