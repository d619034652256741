"""AI models and their model cards (a "model" here is always an AI model)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, Text
from sqlmodel import Field, UniqueConstraint

from app.markdown import RenderedMarkdown
from app.sqltypes import BIGINT
from app.timeutil import utcnow

# The sections of "Model Cards for Model Reporting" (Mitchell et al.), as Markdown.
CARD_SECTIONS = (
    "model_details", "intended_use", "factors", "metrics", "evaluation_data",
    "training_data", "quantitative_analyses", "ethical_considerations",
    "caveats_and_recommendations",
)


def _md() -> Column:
    return Column(Text, nullable=False, default="")


class AIModel(RenderedMarkdown, table=True):
    __tablename__ = "ai_model"
    __markdown__ = CARD_SECTIONS
    __table_args__ = (UniqueConstraint("lab_id", "slug"),)
    id: int | None = Field(default=None, primary_key=True, sa_type=BIGINT)
    lab_id: int = Field(foreign_key="lab.id", index=True, sa_type=BIGINT)
    slug: str = Field(max_length=64)
    name: str = Field(max_length=200)
    # A private model (and its card) is seen only by its lab and coordinators.
    public: bool = True
    version: int = 1
    licence: str | None = Field(default=None, max_length=100)
    architecture: str | None = Field(default=None, max_length=100)
    parameter_count: int | None = Field(default=None, sa_type=BIGINT)
    languages: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # Hugging Face card metadata (validated against the Hub's identifiers on write).
    library_name: str | None = Field(default=None, max_length=64)
    pipeline_tag: str | None = Field(default=None, max_length=64)
    base_model: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    datasets: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    model_details: str = Field(default="", sa_column=_md())
    intended_use: str = Field(default="", sa_column=_md())
    factors: str = Field(default="", sa_column=_md())
    metrics: str = Field(default="", sa_column=_md())
    evaluation_data: str = Field(default="", sa_column=_md())
    training_data: str = Field(default="", sa_column=_md())
    quantitative_analyses: str = Field(default="", sa_column=_md())
    ethical_considerations: str = Field(default="", sa_column=_md())
    caveats_and_recommendations: str = Field(default="", sa_column=_md())
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
