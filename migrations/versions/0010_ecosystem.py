"""Ecosystem: reported-result edits and card metadata.

Revision ID: 0010_ecosystem
Revises: 0009_read_caches
Create Date: 2026-11-28 05:00:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0010_ecosystem'
down_revision = '0009_read_caches'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
