"""Hosted checkpoints, evaluation runs and results.

Revision ID: 0004_checkpoints_evals
Revises: 0003_incidents
Create Date: 2026-11-27 19:53:50.244430
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0004_checkpoints_evals'
down_revision = '0003_incidents'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('checkpoint',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model_id', sa.Integer(), nullable=False),
    sa.Column('lab_id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('access_level', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('manifest', sa.JSON(), nullable=False),
    sa.Column('manifest_digest', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('total_bytes', sa.BigInteger(), nullable=False),
    sa.Column('parameter_count', sa.BigInteger(), nullable=False),
    sa.Column('architecture', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('model_type', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('uploaded_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['lab_id'], ['lab.id'], ),
    sa.ForeignKeyConstraint(['model_id'], ['ai_model.id'], ),
    sa.ForeignKeyConstraint(['uploaded_by'], ['user.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('model_id', 'name')
    )
    with op.batch_alter_table('checkpoint', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_checkpoint_lab_id'), ['lab_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_checkpoint_manifest_digest'), ['manifest_digest'], unique=False)
        batch_op.create_index(batch_op.f('ix_checkpoint_model_id'), ['model_id'], unique=False)

    op.create_table('eval_result',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('result_key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('model_id', sa.Integer(), nullable=False),
    sa.Column('checkpoint_id', sa.Integer(), nullable=True),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('manifest_digest', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('suite_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('suite_version', sa.Integer(), nullable=False),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('config_digest', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('dataset_name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('dataset_digest', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('seed', sa.Integer(), nullable=True),
    sa.Column('code_version', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('library_versions', sa.JSON(), nullable=False),
    sa.Column('device', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('dtype', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('duration_s', sa.Float(), nullable=True),
    sa.Column('tokens_processed', sa.Integer(), nullable=True),
    sa.Column('metrics', sa.JSON(), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('origin', sa.JSON(), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['checkpoint_id'], ['checkpoint.id'], ),
    sa.ForeignKeyConstraint(['created_by'], ['user.id'], ),
    sa.ForeignKeyConstraint(['model_id'], ['ai_model.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('result_key')
    )
    with op.batch_alter_table('eval_result', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_eval_result_checkpoint_id'), ['checkpoint_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_eval_result_model_id'), ['model_id'], unique=False)

    op.create_table('eval_run',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('checkpoint_id', sa.Integer(), nullable=False),
    sa.Column('model_id', sa.Integer(), nullable=False),
    sa.Column('suite_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('suite_version', sa.Integer(), nullable=False),
    sa.Column('seed', sa.Integer(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('progress', sa.Float(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('requested_by', sa.Integer(), nullable=True),
    sa.Column('lease_owner', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('lease_expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('heartbeat_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('result_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('started_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('finished_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['checkpoint_id'], ['checkpoint.id'], ),
    sa.ForeignKeyConstraint(['model_id'], ['ai_model.id'], ),
    sa.ForeignKeyConstraint(['requested_by'], ['user.id'], ),
    sa.ForeignKeyConstraint(['result_id'], ['eval_result.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('eval_run', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_eval_run_checkpoint_id'), ['checkpoint_id'], unique=False)
        batch_op.create_index('ix_eval_run_claim', ['status', 'lease_expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_eval_run_model_id'), ['model_id'], unique=False)
        batch_op.create_index('uq_eval_run_active', ['checkpoint_id', 'suite_id', 'suite_version', 'seed'], unique=True, sqlite_where=sa.text("status IN ('queued', 'running')"), postgresql_where=sa.text("status IN ('queued', 'running')"))



def downgrade() -> None:
    with op.batch_alter_table('eval_run', schema=None) as batch_op:
        batch_op.drop_index('uq_eval_run_active', sqlite_where=sa.text("status IN ('queued', 'running')"), postgresql_where=sa.text("status IN ('queued', 'running')"))
        batch_op.drop_index(batch_op.f('ix_eval_run_model_id'))
        batch_op.drop_index('ix_eval_run_claim')
        batch_op.drop_index(batch_op.f('ix_eval_run_checkpoint_id'))

    op.drop_table('eval_run')
    with op.batch_alter_table('eval_result', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_eval_result_model_id'))
        batch_op.drop_index(batch_op.f('ix_eval_result_checkpoint_id'))

    op.drop_table('eval_result')
    with op.batch_alter_table('checkpoint', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_checkpoint_model_id'))
        batch_op.drop_index(batch_op.f('ix_checkpoint_manifest_digest'))
        batch_op.drop_index(batch_op.f('ix_checkpoint_lab_id'))

    op.drop_table('checkpoint')
