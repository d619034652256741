"""Checkpoint input/output shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

AccessLevel = Literal["public", "partners", "internal"]


class CheckpointCreate(BaseModel):
    """The form fields of an upload; the files travel beside them as multipart parts."""
    model_config = ConfigDict(extra="forbid")
    model: str = Field(min_length=1, max_length=130, description="LAB/MODEL or a model id")
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    access_level: AccessLevel = "internal"


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
    created_at: datetime
