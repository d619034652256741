"""Evaluation run, result and reported-result import shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

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


# --- Remote evaluation workers (app/evals/remote_api.py) -----------------------------------

SHA256 = r"^[0-9a-f]{64}$"
# Free-form JSON a suite produces (config, details). The server refuses NUL anywhere in a
# body (app/http.py); the document says so for keys and for text three levels down.
_NO_NUL = r"^[^\u0000]*$"
_KEY = {"pattern": r"^[^\u0000]{1,200}$"}
_SCALARS = [{"type": "string", "pattern": _NO_NUL}, {"type": "number"},
            {"type": "boolean"}, {"type": "null"}]


def _json_value(depth: int) -> dict:
    if depth == 0:
        return {"anyOf": list(_SCALARS)}
    inner = _json_value(depth - 1)
    return {"anyOf": [*_SCALARS, {"type": "array", "items": inner},
                      {"type": "object", "propertyNames": _KEY,
                       "additionalProperties": inner}]}


def _object_of(values: dict, description: str) -> WithJsonSchema:
    return WithJsonSchema({"type": "object", "propertyNames": _KEY,
                           "additionalProperties": values, "description": description})


JsonObject = Annotated[dict[str, Any], _object_of(_json_value(2), "a JSON object")]
Numbers = Annotated[dict[str, float], _object_of({"type": "number"}, "name -> number")]
Versions = Annotated[dict[str, str], _object_of(
    {"type": "string", "maxLength": 200, "pattern": _NO_NUL}, "library -> version")]


def _lease():
    return Field(min_length=1, max_length=128, pattern=r"^[^\u0000]+$",
                 description="`lease` of the claim (the lease owner the registry recorded)")


def _attempt():
    return Field(ge=1, le=1_000_000, description="`attempt` of the claim")


class ClaimRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    worker: str = Field(default="remote", min_length=1, max_length=64,
                        pattern=r"^[A-Za-z0-9._:@-]+$",
                        description="this worker process (e.g. host:pid:random); recorded "
                                    "after the token's worker name as the lease owner")
    lease_s: float = Field(default=120.0, ge=1.0, le=3600.0,
                           description="seconds the lease lasts; each heartbeat renews it "
                                       "for as long again")


class JobFile(BaseModel):
    name: str
    sha256: str
    size: int
    url: str = Field(description="where to download it (may redirect; follow redirects)")


class JobCheckpoint(BaseModel):
    id: int
    name: str
    manifest_digest: str
    files: list[JobFile]


class Claim(BaseModel):
    """A job leased to the calling worker until `lease_expires_at`."""
    run_id: int
    attempt: int
    lease: str
    lease_expires_at: datetime
    suite_id: str
    suite_version: int
    seed: int
    checkpoint_id: int
    model_id: int
    transfer: bool = Field(description="a transfer matrix over `checkpoints` (each in a "
                                       "folder named after it) rather than one suite")
    checkpoints: list[JobCheckpoint]


class Heartbeat(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lease: str = _lease()
    attempt: int = _attempt()
    progress: float | None = Field(default=None, ge=0.0, le=1.0)


class JobState(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    status: str
    attempts: int
    progress: float
    lease_expires_at: datetime | None
    result_id: int | None
    error: str | None


class ResultUpload(BaseModel):
    """What the suite measured, with its provenance, as app.evals.suites.SuiteResult has
    it; the registry computes the key and digests (config, manifest) itself."""
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    lease: str = _lease()
    attempt: int = _attempt()
    suite_id: str = Field(min_length=1, max_length=64, description="the claim's")
    suite_version: int = Field(ge=0, le=1_000_000, description="the claim's")
    seed: int = Field(ge=-(2**31), le=2**31 - 1, description="the claim's")
    config: JsonObject
    metrics: Numbers
    details: JsonObject
    corpus_name: str = Field(min_length=1, max_length=200)
    corpus_digest: str = Field(pattern=SHA256)
    library_versions: Versions
    device: str = Field(min_length=1, max_length=64)
    dtype: str = Field(min_length=1, max_length=32)
    duration_s: float = Field(ge=0.0, le=1e9)
    tokens_processed: int = Field(ge=0, le=2**62)
    code_version: str | None = Field(default=None, max_length=100,
                                     description="the worker's Stagegate version")


class FailureReport(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lease: str = _lease()
    attempt: int = _attempt()
    error: str = Field(min_length=1, max_length=4000)
    log: str | None = Field(default=None, max_length=64000,
                            description="the worker's log; its tail is kept with the error")
