"""Model and model-card input/output shapes."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from app.ids import MAX_ID, OptionalId


class CardFields(BaseModel):
    model_config = ConfigDict(extra="forbid")
    licence: str | None = Field(default=None, max_length=100)
    architecture: str | None = Field(default=None, max_length=100)
    parameter_count: int | None = Field(default=None, ge=0, le=MAX_ID)
    languages: list[str] = Field(default_factory=list, max_length=200)
    model_details: str = Field(default="", max_length=100_000)
    intended_use: str = Field(default="", max_length=100_000)
    factors: str = Field(default="", max_length=100_000)
    metrics: str = Field(default="", max_length=100_000)
    evaluation_data: str = Field(default="", max_length=100_000)
    training_data: str = Field(default="", max_length=100_000)
    quantitative_analyses: str = Field(default="", max_length=100_000)
    ethical_considerations: str = Field(default="", max_length=100_000)
    caveats_and_recommendations: str = Field(default="", max_length=100_000)


class ModelCreate(CardFields):
    lab: str = Field(min_length=1, max_length=63, description="slug of the owning lab")
    slug: str = Field(min_length=1, max_length=63)
    name: str = Field(min_length=1, max_length=200)
    public: bool = True


class ModelUpdate(BaseModel):
    """Only the fields sent change; `version` must match the stored one."""
    model_config = ConfigDict(extra="forbid")
    version: OptionalId = None
    name: str | None = Field(default=None, min_length=1, max_length=200)
    public: bool | None = None
    card: dict | None = None


class ModelRead(CardFields):
    model_config = ConfigDict(from_attributes=True, extra="ignore")
    id: int
    lab: str
    slug: str
    name: str
    public: bool
    version: int
    created_at: datetime
    updated_at: datetime
    card_html: dict[str, str] = Field(default_factory=dict)
