"""Web: console passwords and sessions.

Revision ID: 0008_web
Revises: 0007_norms
Create Date: 2026-11-28 04:15:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0008_web'
down_revision = '0007_norms'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
