"""agreements: disclosure agreements, parties, signatures, scope

Revision ID: 0002_agreements
Revises: 0001_core
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0002_agreements'
down_revision = '0001_core'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('disclosure_agreement',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lab_id', sa.Integer(), nullable=False),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('terms', sa.Text(), nullable=False),
    sa.Column('non_commercial', sa.Boolean(), nullable=False),
    sa.Column('terms_private', sa.Boolean(), nullable=False),
    sa.Column('starts_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('ends_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('confidential_until', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('template', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('proposed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('activated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('terminated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('termination_reason', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
    sa.CheckConstraint('ends_at > starts_at', name='agreement_period'),
    sa.ForeignKeyConstraint(['created_by'], ['user.id'], ),
    sa.ForeignKeyConstraint(['lab_id'], ['lab.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_disclosure_agreement_ends_at'), 'disclosure_agreement', ['ends_at'], unique=False)
    op.create_index(op.f('ix_disclosure_agreement_kind'), 'disclosure_agreement', ['kind'], unique=False)
    op.create_index(op.f('ix_disclosure_agreement_lab_id'), 'disclosure_agreement', ['lab_id'], unique=False)
    op.create_index(op.f('ix_disclosure_agreement_status'), 'disclosure_agreement', ['status'], unique=False)
    op.create_table('agreement_party',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('agreement_id', sa.Integer(), nullable=False),
    sa.Column('lab_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['agreement_id'], ['disclosure_agreement.id'], ),
    sa.ForeignKeyConstraint(['lab_id'], ['lab.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('agreement_id', 'lab_id')
    )
    op.create_index(op.f('ix_agreement_party_agreement_id'), 'agreement_party', ['agreement_id'], unique=False)
    op.create_index(op.f('ix_agreement_party_lab_id'), 'agreement_party', ['lab_id'], unique=False)
    op.create_table('agreement_signature',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('agreement_id', sa.Integer(), nullable=False),
    sa.Column('lab_id', sa.Integer(), nullable=False),
    sa.Column('signer_id', sa.Integer(), nullable=True),
    sa.Column('signer', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('signed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['agreement_id'], ['disclosure_agreement.id'], ),
    sa.ForeignKeyConstraint(['lab_id'], ['lab.id'], ),
    sa.ForeignKeyConstraint(['signer_id'], ['user.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('agreement_id', 'lab_id')
    )
    op.create_index(op.f('ix_agreement_signature_agreement_id'), 'agreement_signature', ['agreement_id'], unique=False)
    op.create_table('agreement_scope',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('agreement_id', sa.Integer(), nullable=False),
    sa.Column('model_id', sa.Integer(), nullable=True),
    sa.Column('stage_id', sa.Integer(), nullable=True),
    sa.Column('checkpoint_id', sa.Integer(), nullable=True),
    sa.CheckConstraint('(CASE WHEN model_id IS NULL THEN 0 ELSE 1 END) + (CASE WHEN stage_id IS NULL THEN 0 ELSE 1 END) + (CASE WHEN checkpoint_id IS NULL THEN 0 ELSE 1 END) = 1', name='agreement_scope_one_ref'),
    sa.ForeignKeyConstraint(['agreement_id'], ['disclosure_agreement.id'], ),
    sa.ForeignKeyConstraint(['model_id'], ['ai_model.id'], ),
    sa.ForeignKeyConstraint(['stage_id'], ['stage.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_agreement_scope_agreement_id'), 'agreement_scope', ['agreement_id'], unique=False)
    op.create_index(op.f('ix_agreement_scope_checkpoint_id'), 'agreement_scope', ['checkpoint_id'], unique=False)
    op.create_index(op.f('ix_agreement_scope_model_id'), 'agreement_scope', ['model_id'], unique=False)
    op.create_index(op.f('ix_agreement_scope_stage_id'), 'agreement_scope', ['stage_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_agreement_scope_stage_id'), table_name='agreement_scope')
    op.drop_index(op.f('ix_agreement_scope_model_id'), table_name='agreement_scope')
    op.drop_index(op.f('ix_agreement_scope_checkpoint_id'), table_name='agreement_scope')
    op.drop_index(op.f('ix_agreement_scope_agreement_id'), table_name='agreement_scope')
    op.drop_table('agreement_scope')
    op.drop_index(op.f('ix_agreement_signature_agreement_id'), table_name='agreement_signature')
    op.drop_table('agreement_signature')
    op.drop_index(op.f('ix_agreement_party_lab_id'), table_name='agreement_party')
    op.drop_index(op.f('ix_agreement_party_agreement_id'), table_name='agreement_party')
    op.drop_table('agreement_party')
    op.drop_index(op.f('ix_disclosure_agreement_status'), table_name='disclosure_agreement')
    op.drop_index(op.f('ix_disclosure_agreement_lab_id'), table_name='disclosure_agreement')
    op.drop_index(op.f('ix_disclosure_agreement_kind'), table_name='disclosure_agreement')
    op.drop_index(op.f('ix_disclosure_agreement_ends_at'), table_name='disclosure_agreement')
    op.drop_table('disclosure_agreement')
