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
    # Hugging Face card metadata on models; JSON lists default to [] for existing rows.
    # Plain ADD COLUMN (no batch copy): SQLite would otherwise rebuild ai_model under the
    # foreign keys that point at it.
    op.add_column('ai_model', sa.Column('library_name', sa.String(length=64), nullable=True))
    op.add_column('ai_model', sa.Column('pipeline_tag', sa.String(length=64), nullable=True))
    op.add_column('ai_model', sa.Column('base_model', sa.JSON(), nullable=False,
                                        server_default=sa.text("'[]'")))
    op.add_column('ai_model', sa.Column('datasets', sa.JSON(), nullable=False,
                                        server_default=sa.text("'[]'")))


def downgrade() -> None:
    for name in ('datasets', 'base_model', 'pipeline_tag', 'library_name'):
        # SQLite >= 3.35 and PostgreSQL both drop a column in place.
        op.execute(f'ALTER TABLE ai_model DROP COLUMN {name}')
