"""Release plan, stage and revision input/output shapes."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from annotated_types import Interval
from pydantic import BaseModel, ConfigDict, Field

from app.ids import MAX_ID, OptionalId
from app.models.schemas import MODEL_REF_PATTERN
from app.plans.tables import PLAN_STATUSES, STAGE_STATUSES

AccessLevel = Literal["internal", "partners", "researchers", "api", "public_weights"]
POLICY_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}$"
# A stage's position and a revision's number are 32-bit columns: a larger number in a
# query overflows the driver on PostgreSQL (a 500), so requests are bounded here.
StagePosition = Annotated[int, Interval(ge=1, le=1000)]
RevisionNumber = Annotated[int, Interval(ge=1, le=2**31 - 1)]
PolicyId = Annotated[str, Field(pattern=POLICY_ID_PATTERN)]
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
    model: str = Field(min_length=1, max_length=130, pattern=MODEL_REF_PATTERN,
                       description="LAB/MODEL or a model id")
    title: str = Field(min_length=1, max_length=200)
    summary: str = Field(default="", max_length=100_000)
    stages: list[StageIn] = Field(min_length=1, max_length=50)
    policies: list[PolicyId] = Field(default_factory=list, max_length=20,
                                     description="ids of the policies (policies/<id>) it follows")
    file: bool = Field(default=False, description="file the plan at once instead of a draft")


class PlanUpdate(BaseModel):
    """Replaces what is sent; stages, if sent, replace the not-yet-released ones by position."""
    model_config = ConfigDict(extra="forbid")
    version: OptionalId = None
    title: str | None = Field(default=None, min_length=1, max_length=200)
    summary: str | None = Field(default=None, max_length=100_000)
    stages: list[StageIn] | None = Field(default=None, min_length=1, max_length=50)
    policies: list[PolicyId] | None = Field(default=None, max_length=20)


class PlanTransitionIn(BaseModel):
    """POST /api/v1/plans/{id}/transitions: a plan status (a stage status is 422)."""
    model_config = ConfigDict(extra="forbid")
    to: Literal[PLAN_STATUSES]
    version: OptionalId = None
    reason: str | None = Field(default=None, max_length=2000)


class StageTransitionIn(BaseModel):
    """POST /api/v1/plans/{id}/stages/{position}/transitions: a stage status."""
    model_config = ConfigDict(extra="forbid")
    to: Literal[STAGE_STATUSES]
    version: OptionalId = None
    actual_date: date | None = Field(default=None, description=(
        "a stage's release day; default today (UTC). Never a future day; an earlier one "
        "only by a coordinator importing history, recorded as backdated (else 422)"))
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
    policies: list[str] = []
    stages: list[StageRead]
    # The transparency-log leaf of the latest event about it that the reader may open:
    # ask /api/v1/log/proof/inclusion for it (README "Transparency log").
    log_index: int | None = None


class RevisionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    number: int
    author: str
    created_at: datetime
    change: str
    digest: str
    content: dict
    # The transparency-log leaf of the event that recorded this revision.
    log_index: int | None = None


class RevisionSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    number: int
    author: str
    created_at: datetime
    change: str
    digest: str
    # The transparency-log leaf of the event that recorded this revision.
    log_index: int | None = None
