"""Incident and report input/output shapes."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from app.ids import Id, OptionalId
from app.labs.schemas import Slug
from app.models.schemas import MODEL_REF_PATTERN
from app.urls import HttpURL

Severity = Literal["low", "medium", "high", "critical"]
# Size limits: a public form must not become a file store (413 for the whole body).
MAX_TEXT = 20_000
MAX_REPORT = 50_000
# Search marks matches with these two private-use characters (app.incidents.search) and
# counts them to score a row: text that carried them could forge matches or <mark> tags.
RESERVED = ("\ue000", "\ue001")


def _no_reserved(value: str) -> str:
    if any(ch in value for ch in RESERVED):
        raise ValueError("contains a reserved character (U+E000 or U+E001)")
    return value


Text = Annotated[str, AfterValidator(_no_reserved), Field(json_schema_extra={
    "pattern": r"^[^\u0000\ue000\ue001]*$"})]  # NUL: app/http.py refuses it in any text
ModelRef = Annotated[str, Field(pattern=MODEL_REF_PATTERN)]


class ReportCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: Text = Field(min_length=1, max_length=MAX_REPORT, description="Markdown")
    url: HttpURL | None = Field(default=None, max_length=2000)


class IncidentCreate(BaseModel):
    """What a reporter (signed in or anonymous) submits; it enters the moderation queue."""
    model_config = ConfigDict(extra="forbid")
    title: Text = Field(min_length=1, max_length=200)
    summary: Text = Field(default="", max_length=MAX_TEXT, description="Markdown")
    occurred: date
    harm_types: list[str] = Field(min_length=1, max_length=10)
    severity: Severity
    labs: list[Slug] = Field(default_factory=list, max_length=20, description="lab slugs")
    models: list[ModelRef] = Field(default_factory=list, max_length=20,
                                   description="LAB/MODEL")
    stage_ids: list[Id] = Field(default_factory=list, max_length=50)
    checkpoint_ids: list[Id] = Field(default_factory=list, max_length=50)
    reporter_contact: str | None = Field(default=None, max_length=200,
                                         description="how to reach an anonymous reporter")
    reports: list[ReportCreate] = Field(default_factory=list, max_length=10)


class IncidentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: OptionalId = None
    title: Text | None = Field(default=None, min_length=1, max_length=200)
    summary: Text | None = Field(default=None, max_length=MAX_TEXT)
    occurred: date | None = None
    harm_types: list[str] | None = Field(default=None, min_length=1, max_length=10)
    severity: Severity | None = None
    labs: list[Slug] | None = Field(default=None, max_length=20)
    models: list[ModelRef] | None = Field(default=None, max_length=20)
    stage_ids: list[Id] | None = Field(default=None, max_length=50)
    checkpoint_ids: list[Id] | None = Field(default=None, max_length=50)


class TransitionIn(BaseModel):
    # `duplicate_of` goes with `to: duplicate` and only with it (else 422): said in the
    # document, which pydantic's schema of the fields alone cannot.
    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "if": {"properties": {"to": {"const": "duplicate"}}, "required": ["to"]},
        "then": {"required": ["duplicate_of"],
                 "properties": {"duplicate_of": {"type": "integer"}}},
        "else": {"properties": {"duplicate_of": {"type": "null"}}}})
    to: Literal["triaged", "confirmed", "resolved", "rejected", "duplicate"]
    version: OptionalId = None
    reason: str | None = Field(default=None, max_length=2000)
    duplicate_of: OptionalId = Field(default=None, description=(
        "with to=duplicate only: the incident this one duplicates (another one, else 422)"))


class EmbargoIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    embargo_until: AwareDatetime | None
    version: OptionalId = None


class AcknowledgeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: OptionalId = None


class LinkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    report_id: Id


class ReportRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    text: str
    text_html: str = ""
    url: str | None
    submitted_at: datetime


class IncidentRead(BaseModel):
    id: int
    title: str
    summary: str
    summary_html: str | None = Field(description="absent in search hits and exports")
    occurred: date
    harm_types: list[str]
    taxonomy_version: str
    severity: str
    labs: list[str]
    models: list[str]
    stage_ids: list[int]
    checkpoint_ids: list[int]
    status: str
    duplicate_of: int | None
    embargo_until: datetime | None
    acknowledged_at: datetime | None = Field(
        default=None, description="when a member of an affected lab acknowledged it (who "
        "is not shown); open incidents count against a release only once confirmed or "
        "acknowledged")
    version: int
    created_at: datetime
    updated_at: datetime
    report_count: int
    # Only the reporter and coordinators see who reported.
    reporter_id: int | None = None
    reporter_contact: str | None = None
    # The transparency-log leaf of the latest event about it that the reader may open:
    # ask /api/v1/log/proof/inclusion for it (README "Transparency log").
    log_index: int | None = None


class DuplicateRead(BaseModel):
    """What a duplicate answers forever: where the incident now lives (null where the
    caller may not see that incident)."""
    id: int
    status: Literal["duplicate"] = "duplicate"
    duplicate_of: int | None
    location: str | None


class FacetCount(BaseModel):
    value: str
    count: int


class SearchHit(BaseModel):
    incident: IncidentRead
    score: float | None
    snippet: str | None = Field(description="HTML-escaped text, matches in <mark>")


class SearchPage(BaseModel):
    items: list[SearchHit]
    total: int
    facets: dict[str, list[FacetCount]]
    next_cursor: str | None = None
    # True when the match set exceeded the bounded candidate set (SQLite): total and
    # facet counts are then extrapolated from visible candidates, paging ends with them.
    total_is_estimate: bool = False
    facets_are_estimates: bool = False
