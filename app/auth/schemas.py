"""User and token input/output shapes; a token's secret appears only in TokenCreated."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from app.labs.schemas import Role, Slug


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    display_name: str | None = Field(default=None, max_length=200)
    lab: Slug | None = Field(default=None, description="slug of an existing lab")
    role: Role = "lab_member"
    coordinator: bool = False


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    name: str
    display_name: str | None
    is_coordinator: bool


class Me(UserRead):
    labs: dict[str, str]


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str | None = Field(default=None, max_length=200)
    expires_at: AwareDatetime | None = Field(default=None,
                                             description="in the future (else 422)")
    user: str | None = Field(default=None, description="coordinators may mint for others")
    worker: str | None = Field(
        default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$",
        description="coordinators: a worker token for the remote evaluation worker of this "
                    "name (`stagegate worker --url`); it may only claim, renew, download "
                    "and report evaluation jobs, and belongs to a coordinator")


class TokenRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    prefix: str
    label: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    scope: str = Field(default="full", description='"full", or "worker" (label: its name)')


class TokenCreated(TokenRead):
    token: str = Field(description="shown once; store it now")
