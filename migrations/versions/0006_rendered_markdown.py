"""Rendered Markdown stored on write.

Revision ID: 0006_rendered_markdown
Revises: 0005_hardening
Create Date: 2026-11-28 04:15:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0006_rendered_markdown'
down_revision = '0005_hardening'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
