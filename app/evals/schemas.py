"""Evaluation run, result and reported-result import shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.ids import Id, OptionalId
from app.urls import HttpURL


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    checkpoint_id: Id
    suite: str = Field(min_length=1, max_length=64)


class RunRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    checkpoint_id: Id
    model_id: int
    suite_id: str
    suite_version: int
    seed: int
    status: str
    progress: float
    attempts: int
    reason: str
    lease_owner: str | None
    lease_expires_at: datetime | None
    heartbeat_at: datetime | None
    error: str | None
    result_id: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class ResultRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    source: str
    model_id: int
    checkpoint_id: int | None
    run_id: int | None
    manifest_digest: str | None
    suite_id: str
    suite_version: int
    config: dict
    config_digest: str
    dataset_name: str | None
    dataset_digest: str | None
    seed: int | None
    code_version: str | None
    library_versions: dict
    device: str | None
    dtype: str | None
    duration_s: float | None
    tokens_processed: int | None
    metrics: dict[str, Any]
    details: dict
    origin: dict
    created_at: datetime


class ReportedImport(BaseModel):
    """Results a lab reports: an lm-evaluation-harness results JSON or a README with
    Hugging Face `model-index` metadata (the YAML front matter, or the parsed mapping)."""
    model_config = ConfigDict(extra="forbid")
    format: Literal["lm-eval-harness", "model-index"]
    content: dict | str = Field(description="the results JSON object, or README.md text")
    checkpoint_id: OptionalId = Field(default=None, description="the checkpoint they describe")
    source_name: str | None = Field(default=None, max_length=200)
    source_url: HttpURL | None = Field(default=None, max_length=500)


class ReportedUpdate(BaseModel):
    """Repairs to a reported result (its source, its Hub names); only fields sent change."""
    model_config = ConfigDict(extra="forbid")
    source_name: str | None = Field(default=None, min_length=1, max_length=200)
    source_url: HttpURL | None = Field(default=None, max_length=500)
    task_type: str = Field(default="text-generation", min_length=1, max_length=64,
                           description="the Hub task type, e.g. text-generation")
    task_name: str | None = Field(default=None, min_length=1, max_length=200)
    dataset_name: str | None = Field(default=None, min_length=1, max_length=200)
