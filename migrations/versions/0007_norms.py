"""Policies: exemptions and compliance verdicts.

Revision ID: 0007_norms
Revises: 0006_rendered_markdown
Create Date: 2026-11-28 04:15:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0007_norms'
down_revision = '0006_rendered_markdown'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
