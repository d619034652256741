"""Search speed: the incident list pages by (occurred, id).

Revision ID: 0011
Revises: 0010_ecosystem
Create Date: 2026-11-28 08:00:00

The list orders by (occurred DESC, id DESC) and pages with a keyset on both. SQLite's
index on occurred already ends in the rowid (= id); PostgreSQL's does not, so it sorted
every row of a date. One index on (occurred, id) replaces the one on occurred on both
databases (the same schema everywhere; created and dropped in place, no table copy).
"""
from alembic import op


revision = '0011'
down_revision = '0010_ecosystem'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_incident_occurred_id', 'incident', ['occurred', 'id'])
    op.drop_index('ix_incident_occurred', table_name='incident')


def downgrade() -> None:
    op.create_index('ix_incident_occurred', 'incident', ['occurred'])
    op.drop_index('ix_incident_occurred_id', table_name='incident')
