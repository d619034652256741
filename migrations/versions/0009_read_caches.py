"""Fast public reads: change counters for exact caches.

PostgreSQL: `read_cache_version` is bumped by a deferred trigger on every table in the
same transaction as any write (app.readcache.install_pg_triggers); a migration that adds
tables later must call install_pg_triggers again, or the read cache stays off.
SQLite keeps the table for schema parity and uses `PRAGMA data_version` instead.
Indexes on the clock columns make the cache's "next visibility flip" lookup cheap.

Revision ID: 0009_read_caches
Revises: 0008_web
Create Date: 2026-11-28 05:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0009_read_caches'
down_revision = '0008_web'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "read_cache_version",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.execute("INSERT INTO read_cache_version (id, version) VALUES (1, 0)")
    op.create_index("ix_event_visible_from", "event", ["visible_from"])
    op.create_index("ix_incident_embargo_until", "incident", ["embargo_until"])
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        from app.readcache import install_pg_triggers

        install_pg_triggers(bind)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        from app.readcache import TRIGGER

        tables = bind.execute(sa.text(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")).scalars()
        for table in list(tables):
            op.execute(f'DROP TRIGGER IF EXISTS {TRIGGER} ON "{table}"')
            op.execute(f'DROP TRIGGER IF EXISTS {TRIGGER}_truncate ON "{table}"')
        op.execute(f"DROP FUNCTION IF EXISTS {TRIGGER}()")
    op.drop_index("ix_incident_embargo_until", table_name="incident")
    op.drop_index("ix_event_visible_from", table_name="event")
    op.drop_table("read_cache_version")
