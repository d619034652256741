"""Evaluation jobs (EvalRun, leased by workers) and their results (EvalResult)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, Index, Text, text
from sqlmodel import Field, SQLModel

from app.sqltypes import BIGINT
from app.timeutil import utcnow

RUN_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
ACTIVE = ("queued", "running")


class EvalRun(SQLModel, table=True):
    __tablename__ = "eval_run"
    __table_args__ = (
        # At most one queued-or-running job per checkpoint x suite version x seed, so
        # two workers enqueueing at once cannot both add it.
        Index("uq_eval_run_active", "checkpoint_id", "suite_id", "suite_version", "seed",
              unique=True, sqlite_where=text("status IN ('queued', 'running')"),
              postgresql_where=text("status IN ('queued', 'running')")),
        Index("ix_eval_run_claim", "status", "lease_expires_at"),
    )
    id: int | None = Field(default=None, primary_key=True, sa_type=BIGINT)
    checkpoint_id: int = Field(foreign_key="checkpoint.id", index=True, sa_type=BIGINT)
    model_id: int = Field(foreign_key="ai_model.id", index=True, sa_type=BIGINT)
    suite_id: str = Field(max_length=64)
    suite_version: int
    seed: int = 0
    status: str = Field(default="queued", max_length=16)
    progress: float = 0.0
    attempts: int = 0
    reason: str = Field(default="upload", max_length=32)
    requested_by: int | None = Field(default=None, foreign_key="user.id", sa_type=BIGINT)
    lease_owner: str | None = Field(default=None, max_length=128)
    lease_expires_at: datetime | None = None
    heartbeat_at: datetime | None = None
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    result_id: int | None = Field(default=None, foreign_key="eval_result.id", sa_type=BIGINT)
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None


class EvalResult(SQLModel, table=True):
    __tablename__ = "eval_result"
    id: int | None = Field(default=None, primary_key=True, sa_type=BIGINT)
    # sha256 over what identifies the measurement (see service.result_key): one row per key,
    # however many workers or re-runs produce it.
    result_key: str = Field(max_length=64, unique=True)
    source: str = Field(max_length=16)  # "measured" (by the registry) | "reported" (by the lab)
    model_id: int = Field(foreign_key="ai_model.id", index=True, sa_type=BIGINT)
    checkpoint_id: int | None = Field(default=None, foreign_key="checkpoint.id", index=True, sa_type=BIGINT)
    run_id: int | None = Field(default=None, sa_type=BIGINT)
    manifest_digest: str | None = Field(default=None, max_length=64)
    suite_id: str = Field(max_length=128)
    suite_version: int = 0
    config: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    config_digest: str = Field(max_length=64)
    dataset_name: str | None = Field(default=None, max_length=200)
    dataset_digest: str | None = Field(default=None, max_length=64)
    seed: int | None = None
    code_version: str | None = Field(default=None, max_length=100)
    library_versions: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    device: str | None = Field(default=None, max_length=64)
    dtype: str | None = Field(default=None, max_length=32)
    duration_s: float | None = None
    tokens_processed: int | None = Field(default=None, sa_type=BIGINT)
    metrics: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    details: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # For reported results: where the numbers came from (format, file, source name/url).
    origin: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_by: int | None = Field(default=None, foreign_key="user.id", sa_type=BIGINT)
    created_at: datetime = Field(default_factory=utcnow)


class EvalResultCheckpoint(SQLModel, table=True):
    """Every checkpoint a result's numbers are about: its own, and for a derived result
    (a transfer matrix) each checkpoint it compares. app/access shows a result only to a
    reader who may see all of them."""
    __tablename__ = "eval_result_checkpoint"
    result_id: int = Field(foreign_key="eval_result.id", primary_key=True, sa_type=BIGINT)
    checkpoint_id: int = Field(foreign_key="checkpoint.id", primary_key=True, index=True,
                               sa_type=BIGINT)


class ModelChart(SQLModel, table=True):
    """A model card's metric charts as one audience sees them, drawn when the numbers
    behind them change (app/evals/charts.py, from a session listener) and read on view.

    `audience` is one of results_audience's keys (app/access): "public" (what anyone may
    see) or "lab" (the model's own lab and coordinators). `charts` lists, in card order,
    {suite, metric, digest, svg}; `digest` names the whole list. A page serves a stored
    SVG only for a series whose digest equals the one it computed for its own reader, so
    a stored chart never shows a reader more than the reader's own rows would draw."""
    __tablename__ = "model_chart"
    model_id: int = Field(foreign_key="ai_model.id", primary_key=True, sa_type=BIGINT)
    audience: str = Field(primary_key=True, max_length=16)
    digest: str = Field(max_length=64)
    # app.evals.charts.CHART_VERSION of the drawing code that made them: the worker's
    # sweep redraws rows an older version drew.
    version: int = 1
    charts: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow)
