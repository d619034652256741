"""Users and their API tokens (stored only as keyed hashes)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, LargeBinary
from sqlmodel import Field, SQLModel

from app.sqltypes import BIGINT
from app.timeutil import utcnow


class User(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True, sa_type=BIGINT)
    name: str = Field(max_length=64, unique=True, index=True)
    display_name: str | None = Field(default=None, max_length=200)
    is_coordinator: bool = False
    # argon2id (argon2-cffi's encoded form); None: this user cannot sign in to the web.
    password_hash: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow)
    # Set when the account is switched off: its tokens answer 401 from then on.
    deactivated_at: datetime | None = None


TOKEN_SCOPES = ("full", "worker")


class ApiToken(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True, sa_type=BIGINT)
    user_id: int = Field(foreign_key="user.id", index=True, sa_type=BIGINT)
    prefix: str = Field(max_length=16, unique=True, index=True)
    token_hash: str = Field(max_length=64)
    label: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    # "full": acts as its user. "worker": a remote evaluation worker named by `label`,
    # which may only claim, renew, download and report its own jobs (/api/v1/worker/).
    scope: str = Field(default="full", max_length=16)


class WebSession(SQLModel, table=True):
    """A signed-in browser's server-side session (Litestar's session store, in the
    database so every server process, on any machine, sees the same sessions)."""
    __tablename__ = "web_session"
    # SHA-256 of the session id: a copy of the table cannot be replayed as cookies.
    key_hash: str = Field(primary_key=True, max_length=64)
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    expires_at: datetime | None = Field(default=None, index=True)


class LoginFailure(SQLModel, table=True):
    """One failed sign-in, keyed by account and by client; throttling counts recent rows."""
    __tablename__ = "login_failure"
    id: int | None = Field(default=None, primary_key=True, sa_type=BIGINT)
    key: str = Field(max_length=200, index=True)
    at: datetime = Field(default_factory=utcnow, index=True)
