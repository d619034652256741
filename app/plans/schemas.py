"""Release plan, stage and revision input/output shapes."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.sqltypes import MAX_ID

AccessLevel = Literal["internal", "partners", "researchers", "api", "public_weights"]
Artifact = Literal["weights", "code", "paper", "model_card", "detector", "output_samples",
                   "dataset"]


class StageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    parameter_count: int | None = Field(default=None, ge=0, le=MAX_ID)
    checkpoint_ref: str | None = Field(default=None, max_length=200)
    planned_date: date | None = None
    access_level: AccessLevel
    artifacts: list[Artifact] = Field(default_factory=list)
    rationale: str = Field(default="", max_length=100_000)
    risk_assessment: str = Field(default="", max_length=100_000)


class PlanCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str = Field(min_length=1, max_length=130, description="LAB/MODEL or a model id")
    title: str = Field(min_length=1, max_length=200)
    summary: str = Field(default="", max_length=100_000)
    stages: list[StageIn] = Field(min_length=1, max_length=50)
    file: bool = Field(default=False, description="file the plan at once instead of a draft")


class PlanUpdate(BaseModel):
    """Replaces what is sent; stages, if sent, replace the not-yet-released ones by position."""
    model_config = ConfigDict(extra="forbid")
    version: int | None = None
    title: str | None = Field(default=None, min_length=1, max_length=200)
    summary: str | None = Field(default=None, max_length=100_000)
    stages: list[StageIn] | None = Field(default=None, min_length=1, max_length=50)


class TransitionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: str = Field(min_length=1, max_length=20)
    version: int | None = None
    actual_date: date | None = None
    reason: str | None = Field(default=None, max_length=2000)


class StageRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    position: int
    name: str
    parameter_count: int | None
    checkpoint_ref: str | None
    planned_date: date | None
    actual_date: date | None
    access_level: str
    artifacts: list[str]
    rationale: str
    risk_assessment: str
    status: str


class PlanRead(BaseModel):
    id: int
    model: str
    lab: str
    title: str
    summary: str
    summary_html: str
    status: str
    version: int
    created_at: datetime
    updated_at: datetime
    filed_at: datetime | None
    stages: list[StageRead]


class RevisionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    number: int
    author: str
    created_at: datetime
    change: str
    digest: str
    content: dict


class RevisionSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    number: int
    author: str
    created_at: datetime
    change: str
    digest: str
