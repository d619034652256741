"""Disclosure agreements, their party labs, signatures and scope references."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Column, Text
from sqlmodel import Field, SQLModel, UniqueConstraint

from app.markdown import RenderedMarkdown
from app.sqltypes import BIGINT
from app.timeutil import utcnow

KINDS = ("research_access", "pre_release_evaluation", "coordinated_disclosure", "data_sharing")
# Stored statuses; "expired" is never stored: an active (or proposed) agreement reads as
# expired from ends_at on, computed from the clock (see service.effective_status).
STORED_STATUSES = ("draft", "proposed", "active", "terminated")
STATUSES = ("draft", "proposed", "active", "expired", "terminated")
# Terms, period, parties and scope can be revised only while the agreement is one of these.
EDITABLE_STATUSES = ("draft",)


class DisclosureAgreement(RenderedMarkdown, table=True):
    __tablename__ = "disclosure_agreement"
    __markdown__ = ("terms",)
    __table_args__ = (CheckConstraint("ends_at > starts_at", name="agreement_period"),)
    id: int | None = Field(default=None, primary_key=True, sa_type=BIGINT)
    # The disclosing lab: owns the agreement and the checkpoints it opens up.
    lab_id: int = Field(foreign_key="lab.id", index=True, sa_type=BIGINT)
    title: str = Field(max_length=200)
    kind: str = Field(max_length=30, index=True)
    status: str = Field(default="draft", max_length=12, index=True)
    terms: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    non_commercial: bool = False
    terms_private: bool = False
    starts_at: datetime
    ends_at: datetime = Field(index=True)
    # Until then only the discloser, the parties and coordinators see it; None = no
    # date set yet, so it stays confidential.
    confidential_until: datetime | None = None
    template: str | None = Field(default=None, max_length=100)
    version: int = 1
    created_by: int | None = Field(default=None, foreign_key="user.id", sa_type=BIGINT)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    proposed_at: datetime | None = None
    activated_at: datetime | None = None
    terminated_at: datetime | None = None
    termination_reason: str | None = Field(default=None, max_length=2000)


class AgreementParty(SQLModel, table=True):
    """A receiving lab; its lab_admin signs for it."""
    __tablename__ = "agreement_party"
    __table_args__ = (UniqueConstraint("agreement_id", "lab_id"),)
    id: int | None = Field(default=None, primary_key=True, sa_type=BIGINT)
    agreement_id: int = Field(foreign_key="disclosure_agreement.id", index=True, sa_type=BIGINT)
    lab_id: int = Field(foreign_key="lab.id", index=True, sa_type=BIGINT)


class AgreementSignature(SQLModel, table=True):
    __tablename__ = "agreement_signature"
    __table_args__ = (UniqueConstraint("agreement_id", "lab_id"),)
    id: int | None = Field(default=None, primary_key=True, sa_type=BIGINT)
    agreement_id: int = Field(foreign_key="disclosure_agreement.id", index=True, sa_type=BIGINT)
    lab_id: int = Field(foreign_key="lab.id", sa_type=BIGINT)
    signer_id: int | None = Field(default=None, foreign_key="user.id", sa_type=BIGINT)
    signer: str = Field(max_length=64)
    signed_at: datetime = Field(default_factory=utcnow)


class AgreementScope(SQLModel, table=True):
    """One thing an agreement covers: a model, a plan stage, or a checkpoint.

    Rows rather than a JSON list so the checkpoint access filter is an indexed EXISTS on
    both databases. checkpoint_id is a plain integer: the checkpoint table lives elsewhere.
    """
    __tablename__ = "agreement_scope"
    __table_args__ = (CheckConstraint(" + ".join(
        f"(CASE WHEN {c} IS NULL THEN 0 ELSE 1 END)" for c in
        ("model_id", "stage_id", "checkpoint_id")) + " = 1", name="agreement_scope_one_ref"),)
    id: int | None = Field(default=None, primary_key=True, sa_type=BIGINT)
    agreement_id: int = Field(foreign_key="disclosure_agreement.id", index=True, sa_type=BIGINT)
    model_id: int | None = Field(default=None, foreign_key="ai_model.id", index=True, sa_type=BIGINT)
    stage_id: int | None = Field(default=None, foreign_key="stage.id", index=True, sa_type=BIGINT)
    checkpoint_id: int | None = Field(default=None, index=True, sa_type=BIGINT)
