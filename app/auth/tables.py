"""Users and their API tokens (stored only as keyed hashes)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from app.sqltypes import BIGINT
from app.timeutil import utcnow


class User(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True, sa_type=BIGINT)
    name: str = Field(max_length=64, unique=True, index=True)
    display_name: str | None = Field(default=None, max_length=200)
    is_coordinator: bool = False
    created_at: datetime = Field(default_factory=utcnow)
    # Set when the account is switched off: its tokens answer 401 from then on.
    deactivated_at: datetime | None = None


class ApiToken(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True, sa_type=BIGINT)
    user_id: int = Field(foreign_key="user.id", index=True, sa_type=BIGINT)
    prefix: str = Field(max_length=16, unique=True, index=True)
    token_hash: str = Field(max_length=64)
    label: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
