"""Incidents, their source reports, the link between them, and facet link tables."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Column, Index, Text
from sqlmodel import Field, SQLModel

from app.markdown import RenderedMarkdown
from app.sqltypes import BIGINT
from app.timeutil import utcnow

SEVERITIES = ("low", "medium", "high", "critical")
INCIDENT_STATUSES = ("submitted", "triaged", "confirmed", "resolved", "rejected", "duplicate")
# Statuses everyone may read once the embargo (if any) has passed.
PUBLIC_STATUSES = ("confirmed", "resolved")


class Incident(RenderedMarkdown, table=True):
    """One harm event. Its text is indexed for search with its linked reports' text."""
    __markdown__ = ("summary",)
    # (occurred, id): the list's order and keyset (migration 0011).
    __table_args__ = (Index("ix_incident_status_embargo", "status", "embargo_until"),
                      Index("ix_incident_occurred_id", "occurred", "id"))
    id: int | None = Field(default=None, primary_key=True, sa_type=BIGINT)
    title: str = Field(max_length=200)
    summary: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    occurred: date
    # Denormalised from `occurred` so the year facet is a plain GROUP BY on both backends.
    year: int = Field(index=True)
    harm_types: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    taxonomy_version: str = Field(max_length=20)
    severity: str = Field(max_length=10, index=True)
    stage_ids: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    checkpoint_ids: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    reporter_id: int | None = Field(default=None, foreign_key="user.id", index=True, sa_type=BIGINT)
    reporter_contact: str | None = Field(default=None, max_length=200)
    embargo_until: datetime | None = Field(default=None, index=True)
    status: str = Field(default="submitted", max_length=12)
    # A member of an affected lab acknowledged the incident as real: with a coordinator's
    # confirmation, the only way an open incident counts against a release (app/norms).
    acknowledged_at: datetime | None = None
    acknowledged_by: int | None = Field(default=None, foreign_key="user.id", sa_type=BIGINT)
    duplicate_of: int | None = Field(default=None, foreign_key="incident.id", sa_type=BIGINT)
    version: int = 1
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    # The text of every linked report, kept by the service so one row carries all the
    # searchable text (FTS5 external content on SQLite, a generated tsvector on PostgreSQL).
    search_text: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))


class IncidentReport(RenderedMarkdown, table=True):
    __markdown__ = ("text",)
    """A source, account or piece of evidence; may support several incidents."""
    __tablename__ = "incident_report"
    id: int | None = Field(default=None, primary_key=True, sa_type=BIGINT)
    text: str = Field(sa_column=Column(Text, nullable=False))
    url: str | None = Field(default=None, max_length=2000)
    submitted_by: int | None = Field(default=None, foreign_key="user.id", sa_type=BIGINT)
    contact: str | None = Field(default=None, max_length=200)
    submitted_at: datetime = Field(default_factory=utcnow)


class IncidentReportLink(SQLModel, table=True):
    __tablename__ = "incident_report_link"
    incident_id: int = Field(foreign_key="incident.id", primary_key=True, sa_type=BIGINT)
    report_id: int = Field(foreign_key="incident_report.id", primary_key=True, index=True, sa_type=BIGINT)
    linked_at: datetime = Field(default_factory=utcnow)


class IncidentLab(SQLModel, table=True):
    """An affected lab: its members may read the incident while it is not public."""
    __tablename__ = "incident_lab"
    incident_id: int = Field(foreign_key="incident.id", primary_key=True, sa_type=BIGINT)
    lab_id: int = Field(foreign_key="lab.id", primary_key=True, index=True, sa_type=BIGINT)


class IncidentModel(SQLModel, table=True):
    __tablename__ = "incident_model"
    incident_id: int = Field(foreign_key="incident.id", primary_key=True, sa_type=BIGINT)
    model_id: int = Field(foreign_key="ai_model.id", primary_key=True, index=True, sa_type=BIGINT)


class IncidentHarm(SQLModel, table=True):
    __tablename__ = "incident_harm"
    incident_id: int = Field(foreign_key="incident.id", primary_key=True, sa_type=BIGINT)
    harm_type: str = Field(max_length=40, primary_key=True, index=True)
