"""Policy exemptions granted by coordinators, and the last verdict seen per plan x stage x rule."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel, UniqueConstraint

from app.timeutil import utcnow


class PolicyExemption(SQLModel, table=True):
    """One rule waived on one stage of one plan, with a written reason, until it expires."""
    __tablename__ = "policy_exemption"
    id: int | None = Field(default=None, primary_key=True)
    plan_id: int = Field(foreign_key="release_plan.id", index=True)
    position: int
    policy_id: str = Field(max_length=64)
    rule_id: str = Field(max_length=64)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    expires_at: datetime = Field(index=True)
    granted_by_id: int | None = Field(default=None, foreign_key="user.id")
    granted_by: str = Field(max_length=64)
    granted_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None


class ComplianceVerdict(SQLModel, table=True):
    """The verdict last recorded for a rule on a stage, so a change can become an event.

    Reads compute verdicts from the evidence; this table only remembers what was last
    announced, and `due` (the day a verdict turns by the clock alone) so a sweep finds
    the plans whose verdicts a date may flip.
    """
    __tablename__ = "compliance_verdict"
    __table_args__ = (UniqueConstraint("plan_id", "position", "policy_id", "rule_id"),)
    id: int | None = Field(default=None, primary_key=True)
    plan_id: int = Field(foreign_key="release_plan.id", index=True)
    position: int
    policy_id: str = Field(max_length=64)
    rule_id: str = Field(max_length=64)
    verdict: str = Field(max_length=10)
    due: date | None = Field(default=None, index=True)
    updated_at: datetime = Field(default_factory=utcnow)
