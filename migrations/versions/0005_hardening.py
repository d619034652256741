"""Hardening: 64-bit counts, event-log insert guard, shared rate limits, job attempts.

Revision ID: 0005_hardening
Revises: 0004_checkpoints_evals
Create Date: 2026-11-28 04:15:00
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

from app.events import guard

revision = '0005_hardening'
down_revision = '0004_checkpoints_evals'
branch_labels = None
depends_on = None

# Every id, reference to an id and count that can grow. PostgreSQL's INTEGER is 32-bit
# (a 7B-parameter stage failed); SQLite's INTEGER is already 64-bit, so only PostgreSQL
# changes. Kept 32-bit on purpose: versions, revision numbers, positions, years, seeds,
# suite versions and attempts (bounded or one per human edit).
WIDEN = {
    'lab': ['id'],
    'user': ['id'],
    'apitoken': ['id', 'user_id'],
    'membership': ['id', 'user_id', 'lab_id'],
    'ai_model': ['id', 'lab_id', 'parameter_count'],
    'event': ['id', 'actor_id', 'lab_id'],
    'release_plan': ['id', 'model_id', 'lab_id', 'created_by'],
    'plan_revision': ['id', 'plan_id', 'author_id'],
    'stage': ['id', 'plan_id', 'parameter_count'],
    'disclosure_agreement': ['id', 'lab_id', 'created_by'],
    'agreement_party': ['id', 'agreement_id', 'lab_id'],
    'agreement_signature': ['id', 'agreement_id', 'lab_id', 'signer_id'],
    'agreement_scope': ['id', 'agreement_id', 'model_id', 'stage_id', 'checkpoint_id'],
    'incident': ['id', 'reporter_id', 'duplicate_of'],
    'incident_report': ['id', 'submitted_by'],
    'incident_report_link': ['incident_id', 'report_id'],
    'incident_lab': ['incident_id', 'lab_id'],
    'incident_model': ['incident_id', 'model_id'],
    'incident_harm': ['incident_id'],
    'checkpoint': ['id', 'model_id', 'lab_id', 'uploaded_by'],
    'eval_run': ['id', 'checkpoint_id', 'model_id', 'requested_by', 'result_id'],
    'eval_result': ['id', 'model_id', 'checkpoint_id', 'run_id', 'tokens_processed',
                    'created_by'],
}


def _widen(type_: str) -> None:
    for table, columns in WIDEN.items():
        op.execute(f'ALTER TABLE "{table}" ' + ', '.join(
            f'ALTER COLUMN "{c}" TYPE {type_}' for c in columns))
        if 'id' in columns:
            # SERIAL made the sequence AS integer: it would stop at 2**31 - 1 too.
            op.execute(f"DO $$ DECLARE s text := pg_get_serial_sequence('\"{table}\"', 'id'); "
                       f"BEGIN IF s IS NOT NULL THEN EXECUTE 'ALTER SEQUENCE ' || s || "
                       f"' AS {type_}'; END IF; END $$")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == 'postgresql':
        _widen('bigint')
    guard.install_insert_guard(bind)

    # Shared rate-limit counters: one row per (bucket, fixed window), incremented with an
    # atomic upsert, so every server process counts against the same limit.
    op.create_table('rate_counter',
    sa.Column('bucket', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('window_start', sa.BigInteger(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('bucket', 'window_start')
    )
    with op.batch_alter_table('rate_counter', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rate_counter_window_start'), ['window_start'],
                              unique=False)

    # A deactivated user's tokens stop working (401) without deleting history rows.
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deactivated_at', sqlmodel.sql.sqltypes.UTCDateTime(),
                                      nullable=True))


def downgrade() -> None:
    bind = op.get_bind()
    # Native DROP COLUMN (SQLite >= 3.35): a batch rebuild would drop "user", which every
    # token, membership and event references.
    op.execute('ALTER TABLE "user" DROP COLUMN deactivated_at')
    with op.batch_alter_table('rate_counter', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rate_counter_window_start'))
    op.drop_table('rate_counter')
    guard.install_insert_guard(bind, drop=True)
    if bind.dialect.name == 'postgresql':
        _widen('integer')
