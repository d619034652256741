"""The transparency log: leaves (one commitment per event), the Merkle tree's nodes, the
head row appends lock, and the signed checkpoints (app/transparency/).

Events recorded before this migration are logged here, in id order, with fresh salts:
the log starts from the history as it stands at upgrade time.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 19:30:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    bigint = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')  # app.sqltypes.BIGINT
    op.create_table(
        'log_leaf',
        sa.Column('idx', bigint, primary_key=True, autoincrement=False),
        sa.Column('event_id', bigint, nullable=False, unique=True),
        sa.Column('salt', sa.LargeBinary(), nullable=False),
        sa.Column('leaf', sa.Text(), nullable=False),
    )
    op.create_table(
        'log_node',
        sa.Column('level', sa.SmallInteger(), primary_key=True, autoincrement=False),
        sa.Column('idx', bigint, primary_key=True, autoincrement=False),
        sa.Column('hash', sa.LargeBinary(), nullable=False),
    )
    head = op.create_table(
        'log_head',
        sa.Column('id', bigint, primary_key=True, autoincrement=False),
        sa.Column('size', bigint, nullable=False),
    )
    op.create_table(
        'log_checkpoint',
        sa.Column('size', bigint, primary_key=True, autoincrement=False),
        sa.Column('root', sa.LargeBinary(), nullable=False),
        sa.Column('note', sa.Text(), nullable=False),
        sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    )
    op.bulk_insert(head, [{'id': 1, 'size': 0}])
    from sqlalchemy.orm import Session

    from app.events.tables import Event
    from app.transparency.log import append_events

    session = Session(bind=op.get_bind())
    last = 0
    while True:  # in batches, so a large history does not sit in memory at once
        batch = list(session.scalars(sa.select(Event).where(Event.id > last)
                                     .order_by(Event.id).limit(5000)))
        if not batch:
            break
        append_events(session, batch)
        last = batch[-1].id
        session.expunge_all()
    session.flush()


def downgrade() -> None:
    for table in ('log_checkpoint', 'log_head', 'log_node', 'log_leaf'):
        op.drop_table(table)
