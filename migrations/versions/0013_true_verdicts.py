"""True verdicts: checkpoints belong to stages, derived results name their checkpoints,
incidents record a lab's acknowledgement.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 13:30:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (no batch copy): SQLite would otherwise rebuild the tables under the
    # foreign keys that point at them. SQLite accepts REFERENCES on a nullable added column
    # but alembic will not emit it there, so the statement is written out.
    if op.get_bind().dialect.name == 'sqlite':
        op.execute('ALTER TABLE checkpoint ADD COLUMN stage_id INTEGER REFERENCES stage (id)')
        op.execute('ALTER TABLE incident ADD COLUMN acknowledged_by INTEGER REFERENCES "user" (id)')
    else:
        op.add_column('checkpoint', sa.Column('stage_id', sa.BigInteger(),
                                              sa.ForeignKey('stage.id'), nullable=True))
        op.add_column('incident', sa.Column('acknowledged_by', sa.BigInteger(),
                                            sa.ForeignKey('user.id'), nullable=True))
    op.create_index('ix_checkpoint_stage_id', 'checkpoint', ['stage_id'])
    op.add_column('incident', sa.Column('acknowledged_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    # Every checkpoint a result's numbers are about (a transfer matrix names several):
    # the result is visible only where all of them are.
    bigint = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')  # app.sqltypes.BIGINT
    op.create_table(
        'eval_result_checkpoint',
        sa.Column('result_id', bigint, sa.ForeignKey('eval_result.id'), primary_key=True),
        sa.Column('checkpoint_id', bigint, sa.ForeignKey('checkpoint.id'), primary_key=True),
    )
    op.create_index('ix_eval_result_checkpoint_checkpoint_id', 'eval_result_checkpoint',
                    ['checkpoint_id'])
    _name_checkpoints_of_existing_results(op.get_bind())
    if op.get_bind().dialect.name == 'postgresql':
        # A new table needs the read cache's change trigger (see 0009).
        from app.readcache import install_pg_triggers

        install_pg_triggers(op.get_bind())


def _name_checkpoints_of_existing_results(bind) -> None:
    """Results stored before this migration: each names its own checkpoint, and a
    transfer matrix also every checkpoint its details name (by model and name), so the
    withheld ones stop showing through it."""
    import json

    rows = bind.execute(sa.text(
        'SELECT id, model_id, checkpoint_id, details FROM eval_result '
        'WHERE checkpoint_id IS NOT NULL')).all()
    names = {(m, n): i for i, m, n in bind.execute(sa.text(
        'SELECT id, model_id, name FROM checkpoint')).all()}
    links = set()
    for result_id, model_id, checkpoint_id, details in rows:
        links.add((result_id, checkpoint_id))
        details = json.loads(details) if isinstance(details, str) else (details or {})
        named = details.get('checkpoints') if isinstance(details, dict) else None
        for name in (named or {}) if isinstance(named, dict) else ():
            if (model_id, name) in names:
                links.add((result_id, names[(model_id, name)]))
    if links:
        bind.execute(sa.text('INSERT INTO eval_result_checkpoint (result_id, checkpoint_id) '
                             'VALUES (:r, :c)'), [{'r': r, 'c': c} for r, c in sorted(links)])


def downgrade() -> None:
    op.drop_index('ix_eval_result_checkpoint_checkpoint_id', 'eval_result_checkpoint')
    op.drop_table('eval_result_checkpoint')
    op.drop_index('ix_checkpoint_stage_id', 'checkpoint')
    for table, column in (('incident', 'acknowledged_at'), ('incident', 'acknowledged_by'),
                          ('checkpoint', 'stage_id')):
        op.execute(f'ALTER TABLE {table} DROP COLUMN {column}')
