"""Labs (and partner organisations) and who belongs to them."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel, UniqueConstraint

from app.sqltypes import BIGINT
from app.timeutil import utcnow

LAB_ROLES = ("lab_admin", "lab_member")


class Lab(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True, sa_type=BIGINT)
    slug: str = Field(max_length=64, unique=True, index=True)
    name: str = Field(max_length=200)
    url: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow)


class Membership(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("user_id", "lab_id"),)
    id: int | None = Field(default=None, primary_key=True, sa_type=BIGINT)
    user_id: int = Field(foreign_key="user.id", index=True, sa_type=BIGINT)
    lab_id: int = Field(foreign_key="lab.id", index=True, sa_type=BIGINT)
    role: str = Field(max_length=20)
