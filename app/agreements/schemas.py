"""Disclosure agreement input/output shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from app.agreements.tables import STATUSES
from app.ids import Id, OptionalId
from app.labs.schemas import Slug
from app.models.schemas import MODEL_REF_PATTERN
from app.plans.schemas import StagePosition

ModelRef = Annotated[str, Field(pattern=MODEL_REF_PATTERN)]

Kind = Literal["research_access", "pre_release_evaluation", "coordinated_disclosure",
               "data_sharing"]


class StageRef(BaseModel):
    """A stage of a release plan, named the way plans name it: plan id and position."""
    model_config = ConfigDict(extra="forbid")
    plan: Id
    position: StagePosition


class ScopeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    models: list[ModelRef] = Field(default_factory=list, max_length=100,
                                   description="LAB/MODEL references (the discloser's models)")
    stages: list[StageRef] = Field(default_factory=list, max_length=100)
    checkpoints: list[Id] = Field(default_factory=list, max_length=1000)


class AgreementFields(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=200)
    kind: Kind
    parties: list[Slug] = Field(default_factory=list, max_length=100,
                                description="slugs of the receiving labs (not the "
                                "discloser: 422)")
    scope: ScopeIn = Field(default_factory=ScopeIn)
    terms: str = Field(default="", max_length=200_000, description="Markdown")
    non_commercial: bool = False
    terms_private: bool = False
    starts_at: AwareDatetime
    ends_at: AwareDatetime = Field(description="after starts_at (else 422)")
    confidential_until: AwareDatetime | None = None


class AgreementCreate(AgreementFields):
    discloser: Slug = Field(min_length=1, max_length=63,
                            description="slug of the disclosing lab; you must belong to it")


class AgreementUpdate(BaseModel):
    """Drafts only; the fields sent replace the stored ones; `version` must match."""
    model_config = ConfigDict(extra="forbid")
    # Absent means unchanged; null is refused (422) except where it means "none":
    # confidential_until. (A default pydantic does not check: absent stays None.)
    version: OptionalId = None
    title: str = Field(default=None, min_length=1, max_length=200)
    kind: Kind = None
    parties: list[Slug] | None = Field(default=None, max_length=100)
    scope: ScopeIn | None = None
    terms: str = Field(default=None, max_length=200_000)
    non_commercial: bool = None
    terms_private: bool = None
    starts_at: AwareDatetime = None
    ends_at: AwareDatetime = None
    confidential_until: AwareDatetime | None = None


class TemplateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    template: str = Field(min_length=1, max_length=100, pattern=r"^[a-z0-9_]+$",
                          description="name of a file in app/agreements/templates/")
    discloser: Slug = Field(min_length=1, max_length=63)
    parties: list[Slug] = Field(default_factory=list, max_length=100)
    scope: ScopeIn = Field(default_factory=ScopeIn)
    starts_at: AwareDatetime
    ends_at: AwareDatetime | None = Field(default=None,
                                          description="default: the template's duration")
    confidential_until: AwareDatetime | None = None
    title: str | None = Field(default=None, min_length=1, max_length=200)


class TransitionIn(BaseModel):
    # Ending an agreement early says why (else 422).
    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "if": {"properties": {"to": {"const": "terminated"}}, "required": ["to"]},
        "then": {"required": ["reason"], "properties": {
            "reason": {"type": "string",
                       "pattern": r"^[^\u0000]*[^\s\u0000\u001c-\u001f\u0085][^\u0000]*$"}}}})
    to: Literal[STATUSES]
    version: OptionalId = None
    reason: str | None = Field(default=None, max_length=2000)


class SignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lab: Slug = Field(min_length=1, max_length=63, description="the party lab you sign for")
    version: OptionalId = Field(default=None, description="optional: refuse if changed")


class PartyRead(BaseModel):
    lab: str
    signed: bool
    signer: str | None = None
    signed_at: datetime | None = None


class StageScopeRead(BaseModel):
    id: int
    plan: int
    position: int
    name: str


class ScopeRead(BaseModel):
    models: list[str]
    stages: list[StageScopeRead]
    checkpoints: list[int]


class AgreementRead(BaseModel):
    id: int
    title: str
    kind: str
    discloser: str
    parties: list[PartyRead]
    status: str = Field(description="effective: an active agreement past ends_at is expired")
    in_force: bool = Field(description="active, all signed, and starts_at <= now < ends_at")
    scope: ScopeRead
    terms: str | None = Field(description="null when the terms are private to the signatories")
    terms_html: str | None
    terms_private: bool
    non_commercial: bool
    starts_at: datetime
    ends_at: datetime
    confidential_until: datetime | None
    template: str | None
    version: int
    created_at: datetime
    updated_at: datetime
    proposed_at: datetime | None
    activated_at: datetime | None
    terminated_at: datetime | None
    termination_reason: str | None
    # The transparency-log leaf of the latest event about it that the reader may open:
    # ask /api/v1/log/proof/inclusion for it (README "Transparency log").
    log_index: int | None = None
