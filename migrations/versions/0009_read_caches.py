"""Fast public reads: change counters for exact caches.

Revision ID: 0009_read_caches
Revises: 0008_web
Create Date: 2026-11-28 05:00:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0009_read_caches'
down_revision = '0008_web'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
