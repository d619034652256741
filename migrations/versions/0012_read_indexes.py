"""Read indexes: an entity's own history in the event log.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-28 08:00:00
"""
from alembic import op


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # `GET /api/v1/events?entity_type=T&entity_id=I` (an entity's history). With only
    # the one-column indexes SQLite walks every event of the type (a third of the log
    # for models) instead of the entity's few. An index, not a table copy: the event
    # table is append-only and keeps its guard triggers.
    op.create_index('ix_event_entity', 'event', ['entity_type', 'entity_id'])


def downgrade() -> None:
    op.drop_index('ix_event_entity', 'event')
