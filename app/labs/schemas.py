"""Lab and membership input/output shapes."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.labs.tables import LAB_ROLES
from app.urls import HttpURL

# A lab's (and a model's) slug, as app.labs.service.check_slug accepts it.
SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
Slug = Annotated[str, Field(pattern=SLUG_PATTERN)]
Role = Literal[LAB_ROLES]


class LabCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    slug: Slug = Field(min_length=1, max_length=63)
    name: str = Field(min_length=1, max_length=200)
    url: HttpURL | None = Field(default=None, max_length=500)


class LabRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    slug: str
    name: str
    url: str | None


class MemberCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: str = Field(min_length=1, max_length=64, description="a user's name")
    role: Role = "lab_member"


class MemberRoleUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role
