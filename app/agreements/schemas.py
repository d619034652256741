"""Disclosure agreement input/output shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from app.agreements.tables import STATUSES
from app.ids import Id, OptionalId

Kind = Literal["research_access", "pre_release_evaluation", "coordinated_disclosure",
               "data_sharing"]


class StageRef(BaseModel):
    """A stage of a release plan, named the way plans name it: plan id and position."""
    model_config = ConfigDict(extra="forbid")
    plan: Id
    position: Id


class ScopeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    models: list[str] = Field(default_factory=list, max_length=100,
                              description="LAB/MODEL references (the discloser's models)")
    stages: list[StageRef] = Field(default_factory=list, max_length=100)
    checkpoints: list[Id] = Field(default_factory=list, max_length=1000)


class AgreementFields(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=200)
    kind: Kind
    parties: list[str] = Field(default_factory=list, max_length=100,
                               description="slugs of the receiving labs")
    scope: ScopeIn = Field(default_factory=ScopeIn)
    terms: str = Field(default="", max_length=200_000, description="Markdown")
    non_commercial: bool = False
    terms_private: bool = False
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    confidential_until: AwareDatetime | None = None


class AgreementCreate(AgreementFields):
    discloser: str = Field(min_length=1, max_length=63,
                           description="slug of the disclosing lab; you must belong to it")


class AgreementUpdate(BaseModel):
    """Drafts only; the fields sent replace the stored ones; `version` must match."""
    model_config = ConfigDict(extra="forbid")
    version: OptionalId = None
    title: str | None = Field(default=None, min_length=1, max_length=200)
    kind: Kind | None = None
    parties: list[str] | None = Field(default=None, max_length=100)
    scope: ScopeIn | None = None
    terms: str | None = Field(default=None, max_length=200_000)
    non_commercial: bool | None = None
    terms_private: bool | None = None
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    confidential_until: AwareDatetime | None = None


class TemplateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    template: str = Field(min_length=1, max_length=100, pattern=r"^[a-z0-9_]+$",
                          description="name of a file in app/agreements/templates/")
    discloser: str = Field(min_length=1, max_length=63)
    parties: list[str] = Field(default_factory=list, max_length=100)
    scope: ScopeIn = Field(default_factory=ScopeIn)
    starts_at: AwareDatetime
    ends_at: AwareDatetime | None = Field(default=None,
                                          description="default: the template's duration")
    confidential_until: AwareDatetime | None = None
    title: str | None = Field(default=None, min_length=1, max_length=200)


class TransitionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: Literal[STATUSES]
    version: OptionalId = None
    reason: str | None = Field(default=None, max_length=2000)


class SignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lab: str = Field(min_length=1, max_length=63, description="the party lab you sign for")
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
