"""Model and model-card input/output shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.ids import MAX_ID, OptionalId
from app.labs.schemas import Slug
from app.models.hub_ids import HUB_LICENCES, LIBRARY, PIPELINE_TAGS, REPO_ID

# How requests name a model: "LAB/MODEL" (two slugs) or its id.
MODEL_REF_PATTERN = r"^(?:[a-z0-9][a-z0-9-]{0,62}/[a-z0-9][a-z0-9-]{0,62}|[0-9]{1,18})$"

# What CardInput's validators accept, for the document (the validators are the rule).
Licence = Annotated[str, Field(json_schema_extra={"enum": sorted(HUB_LICENCES)})]
PipelineTag = Annotated[str, Field(json_schema_extra={"enum": sorted(PIPELINE_TAGS)})]
LibraryName = Annotated[str, Field(json_schema_extra={"pattern": LIBRARY.pattern})]
RepoId = Annotated[str, Field(json_schema_extra={
    "pattern": r"^(?:[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/)?[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$"})]


class CardMetadata(BaseModel):
    """The card's short facts: what lists show beside a model's name."""
    model_config = ConfigDict(extra="forbid")
    licence: Licence | None = Field(default=None, max_length=100,
                                    description="a Hub licence identifier")
    architecture: str | None = Field(default=None, max_length=100)
    parameter_count: int | None = Field(default=None, ge=0, le=MAX_ID)
    languages: list[str] = Field(default_factory=list, max_length=200)
    # Hugging Face card metadata, written to the exported README as the Hub reads it.
    library_name: LibraryName | None = Field(default=None, max_length=64)
    pipeline_tag: PipelineTag | None = Field(default=None, max_length=64)
    base_model: list[RepoId] = Field(default_factory=list, max_length=20)
    datasets: list[RepoId] = Field(default_factory=list, max_length=100)


class CardFields(CardMetadata):
    """The whole card: its facts and its prose sections."""
    model_details: str = Field(default="", max_length=100_000)
    intended_use: str = Field(default="", max_length=100_000)
    factors: str = Field(default="", max_length=100_000)
    metrics: str = Field(default="", max_length=100_000)
    evaluation_data: str = Field(default="", max_length=100_000)
    training_data: str = Field(default="", max_length=100_000)
    quantitative_analyses: str = Field(default="", max_length=100_000)
    ethical_considerations: str = Field(default="", max_length=100_000)
    caveats_and_recommendations: str = Field(default="", max_length=100_000)


class CardInput(CardFields):
    """Card fields as written: Hub identifiers are checked here, not on read, so a
    stored value that predates a rule can still be shown (and then corrected)."""

    @field_validator("licence")
    @classmethod
    def _licence(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().lower()
        if value not in HUB_LICENCES:
            raise ValueError("not a Hugging Face Hub licence identifier (e.g. 'mit', "
                             "'apache-2.0', 'other'; see "
                             "https://huggingface.co/docs/hub/repositories-licenses)")
        return value

    @field_validator("pipeline_tag")
    @classmethod
    def _pipeline_tag(cls, value: str | None) -> str | None:
        if value is not None and value not in PIPELINE_TAGS:
            raise ValueError("not a Hub pipeline tag (e.g. 'text-generation')")
        return value

    @field_validator("library_name")
    @classmethod
    def _library(cls, value: str | None) -> str | None:
        if value is not None and not LIBRARY.match(value):
            raise ValueError("a library name is lower-case letters, digits, '-', '_', '.'")
        return value

    @field_validator("base_model", "datasets")
    @classmethod
    def _repo_ids(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if not REPO_ID.match(v)]
        if bad:
            raise ValueError(f"not Hub repository ids (NAME or OWNER/NAME): {bad[:5]}")
        return value


class ModelCreate(CardInput):
    lab: Slug = Field(min_length=1, max_length=63, description="slug of the owning lab")
    slug: Slug = Field(min_length=1, max_length=63)
    name: str = Field(min_length=1, max_length=200)
    public: bool = True


class ModelUpdate(BaseModel):
    """Only the fields sent change; `version` must match the stored one."""
    model_config = ConfigDict(extra="forbid")
    version: OptionalId = None
    name: str | None = Field(default=None, min_length=1, max_length=200)
    public: bool | None = None
    card: CardInput | None = Field(default=None, description=(
        "the card fields to change; the others keep their values"))


class ModelIdentity(BaseModel):
    """What names a model in every read of it (the reads set their own config)."""
    id: int
    lab: str
    slug: str
    name: str
    public: bool
    version: int
    created_at: datetime
    updated_at: datetime


class ModelSummary(CardMetadata, ModelIdentity):
    """A model as lists show it: identity and card metadata, not the card's prose. A page
    of 50 full cards with their rendered HTML is over half a megabyte; the prose is one
    `GET /api/v1/models/{id}` away."""
    model_config = ConfigDict(from_attributes=True, extra="ignore")


class ModelRead(ModelIdentity, CardFields):
    model_config = ConfigDict(from_attributes=True, extra="ignore")
    card_html: dict[str, str] = Field(default_factory=dict)
