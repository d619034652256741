"""Checkpoint input/output shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.models.schemas import MODEL_REF_PATTERN

AccessLevel = Literal["public", "partners", "internal"]


class CheckpointCreate(BaseModel):
    """The form fields of an upload; the files travel beside them as multipart parts."""
    model_config = ConfigDict(extra="forbid")
    model: str = Field(min_length=1, max_length=130, pattern=MODEL_REF_PATTERN,
                       description="LAB/MODEL or a model id")
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    access_level: AccessLevel = "internal"
    # Attach the checkpoint to a stage of one of its model's plans at upload (both or
    # neither): a stage-scoped agreement then grants it, and the gate reads it as the
    # stage's checkpoint.
    plan: int | None = Field(default=None, ge=1, le=2**63 - 1, description="plan id")
    stage: int | None = Field(default=None, ge=1, le=1000, description="stage position")


class StageAttach(BaseModel):
    """PUT /api/v1/checkpoints/{id}/stage."""
    model_config = ConfigDict(extra="forbid")
    plan: int = Field(ge=1, le=2**63 - 1, description="plan id (a plan of the same model)")
    stage: int = Field(ge=1, le=1000, description="stage position in that plan")


class StageOf(BaseModel):
    plan: int
    stage: int
    name: str


class ManifestEntry(BaseModel):
    name: str
    sha256: str
    size: int


class CheckpointRead(BaseModel):
    id: int
    model: str
    model_id: int
    lab: str
    name: str
    access_level: str
    manifest: list[ManifestEntry]
    manifest_digest: str
    total_bytes: int
    parameter_count: int
    architecture: str | None
    model_type: str | None
    # The plan stage it is attached to; null also when the plan is hidden from you.
    stage: StageOf | None = None
    created_at: datetime
