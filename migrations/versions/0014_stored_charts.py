"""Stored charts: a model card's metric charts are drawn when results land and kept per
audience (model_chart), so a view reads them instead of drawing.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-14 10:00:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One row per model and audience ("public", "lab": app.access.results_audience's
    # keys) holding the card's charts as drawn for that audience (app/evals/charts.py).
    # Nothing is drawn here: results stored before this migration get their charts from
    # the worker's periodic sweep (charts.store_missing), and until then a card draws
    # them on view as it did before.
    bigint = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')  # app.sqltypes.BIGINT
    op.create_table(
        'model_chart',
        sa.Column('model_id', bigint, sa.ForeignKey('ai_model.id'), nullable=False),
        sa.Column('audience', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('digest', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('charts', sa.JSON(), nullable=False),
        sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('model_id', 'audience'),
    )
    if op.get_bind().dialect.name == 'postgresql':
        # The model card reads this table for anonymous answers: a write to it must move
        # the read cache's counter like any other (see 0009).
        from app.readcache import install_pg_triggers

        install_pg_triggers(op.get_bind())


def downgrade() -> None:
    op.drop_table('model_chart')  # its read-cache triggers go with it
