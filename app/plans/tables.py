"""Release plans, their ordered stages, and immutable revisions."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Column, Text
from sqlmodel import Field, SQLModel, UniqueConstraint

from app.markdown import RenderedMarkdown
from app.sqltypes import BIGINT
from app.timeutil import utcnow

PLAN_STATUSES = ("draft", "filed", "active", "completed", "withdrawn")
STAGE_STATUSES = ("planned", "ready", "released", "deferred", "cancelled")
ACCESS_LEVELS = ("internal", "partners", "researchers", "api", "public_weights")
ARTIFACTS = ("weights", "code", "paper", "model_card", "detector", "output_samples", "dataset")


class ReleasePlan(RenderedMarkdown, table=True):
    __tablename__ = "release_plan"
    __markdown__ = ("summary",)
    id: int | None = Field(default=None, primary_key=True, sa_type=BIGINT)
    model_id: int = Field(foreign_key="ai_model.id", index=True, sa_type=BIGINT)
    # Copied from the model so the tenancy filter needs no join.
    lab_id: int = Field(foreign_key="lab.id", index=True, sa_type=BIGINT)
    title: str = Field(max_length=200)
    summary: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    status: str = Field(default="draft", max_length=12, index=True)
    version: int = 1
    created_by: int | None = Field(default=None, foreign_key="user.id", sa_type=BIGINT)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    filed_at: datetime | None = None
    # Policy ids (policies/<id>) the plan declares it follows; see app/norms.
    policies: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class Stage(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("plan_id", "position"),)
    id: int | None = Field(default=None, primary_key=True, sa_type=BIGINT)
    plan_id: int = Field(foreign_key="release_plan.id", index=True, sa_type=BIGINT)
    position: int
    name: str = Field(max_length=200)
    parameter_count: int | None = Field(default=None, sa_type=BIGINT)
    checkpoint_ref: str | None = Field(default=None, max_length=200)
    planned_date: date | None = None
    actual_date: date | None = None
    access_level: str = Field(max_length=20)
    artifacts: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    rationale: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    risk_assessment: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    status: str = Field(default="planned", max_length=12)


class PlanRevision(SQLModel, table=True):
    __tablename__ = "plan_revision"
    __table_args__ = (UniqueConstraint("plan_id", "number"),)
    id: int | None = Field(default=None, primary_key=True, sa_type=BIGINT)
    plan_id: int = Field(foreign_key="release_plan.id", index=True, sa_type=BIGINT)
    number: int
    author_id: int | None = Field(default=None, foreign_key="user.id", sa_type=BIGINT)
    author: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    change: str = Field(max_length=200)
    content: dict = Field(sa_column=Column(JSON, nullable=False))
    digest: str = Field(max_length=64)
