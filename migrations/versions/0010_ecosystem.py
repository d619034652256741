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
    with op.batch_alter_table('ai_model') as batch:
        batch.add_column(sa.Column('library_name', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('pipeline_tag', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('base_model', sa.JSON(), nullable=False,
                                   server_default=sa.text("'[]'")))
        batch.add_column(sa.Column('datasets', sa.JSON(), nullable=False,
                                   server_default=sa.text("'[]'")))


def downgrade() -> None:
    with op.batch_alter_table('ai_model') as batch:
        for name in ('datasets', 'base_model', 'pipeline_tag', 'library_name'):
            batch.drop_column(name)
