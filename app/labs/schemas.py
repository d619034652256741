"""Lab and membership input/output shapes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.urls import HttpURL


class LabCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    slug: str = Field(min_length=1, max_length=63)
    name: str = Field(min_length=1, max_length=200)
    url: HttpURL | None = Field(default=None, max_length=500)


class LabRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    slug: str
    name: str
    url: str | None


class MemberCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: str = Field(min_length=1, max_length=64)
    role: str = "lab_member"


class MemberRoleUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["lab_admin", "lab_member"]
