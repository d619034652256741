"""Search speed: the incident list pages by (occurred, id); a BRIN index on ids for search.

Revision ID: 0011
Revises: 0010_ecosystem
Create Date: 2026-11-28 08:00:00

The list orders by (occurred DESC, id DESC) and pages with a keyset on both. SQLite's
index on occurred already ends in the rowid (= id); PostgreSQL's does not, so it sorted
every row of a date. One index on (occurred, id) replaces the one on occurred on both
databases (the same schema everywhere; created and dropped in place, no table copy).

PostgreSQL only: a BRIN index on incident.id. Search combines the GIN index with a range
of the newest ids (app.incidents.search, id windows); a B-tree bitmap of 100k ids costs
about 7 ms, BRIN's about 2 ms (ids grow with the table, so ranges of pages hold ranges of
ids; BRIN stays correct when rows move, only less selective). Like the GIN index it is a
search structure the models do not declare (its name carries the search-index prefix
that the schema comparison in tests/test_db.py leaves to migrations).
"""
from alembic import op


revision = '0011'
down_revision = '0010_ecosystem'
branch_labels = None
depends_on = None


BRIN = "ix_incident_search_vector_id_brin"


def upgrade() -> None:
    op.create_index('ix_incident_occurred_id', 'incident', ['occurred', 'id'])
    op.drop_index('ix_incident_occurred', table_name='incident')
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE INDEX {BRIN} ON incident USING brin (id) "
                   "WITH (pages_per_range = 16)")


def downgrade() -> None:
    op.execute(f"DROP INDEX IF EXISTS {BRIN}")
    op.create_index('ix_incident_occurred', 'incident', ['occurred'])
    op.drop_index('ix_incident_occurred_id', table_name='incident')
