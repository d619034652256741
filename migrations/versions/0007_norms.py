"""Policies: plans declare policies; exemptions and compliance verdicts.

Revision ID: 0007_norms
Revises: 0006_rendered_markdown
Create Date: 2026-11-28 04:15:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0007_norms'
down_revision = '0006_rendered_markdown'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing plans follow no policy until revised. In place, not a batch copy: copying
    # release_plan on SQLite would break the foreign keys that point at it.
    op.add_column('release_plan', sa.Column('policies', sa.JSON(), nullable=False,
                                            server_default=sa.text("'[]'")))

    op.create_table('policy_exemption',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('plan_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('policy_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('rule_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('granted_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('granted_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('granted_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('revoked_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['granted_by_id'], ['user.id'], ),
    sa.ForeignKeyConstraint(['plan_id'], ['release_plan.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('policy_exemption', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_policy_exemption_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_policy_exemption_plan_id'), ['plan_id'], unique=False)

    op.create_table('compliance_verdict',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('plan_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('policy_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('rule_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('verdict', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('due', sa.Date(), nullable=True),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['plan_id'], ['release_plan.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('plan_id', 'position', 'policy_id', 'rule_id')
    )
    with op.batch_alter_table('compliance_verdict', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_compliance_verdict_due'), ['due'], unique=False)
        batch_op.create_index(batch_op.f('ix_compliance_verdict_plan_id'), ['plan_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('compliance_verdict', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_compliance_verdict_plan_id'))
        batch_op.drop_index(batch_op.f('ix_compliance_verdict_due'))
    op.drop_table('compliance_verdict')
    with op.batch_alter_table('policy_exemption', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_policy_exemption_plan_id'))
        batch_op.drop_index(batch_op.f('ix_policy_exemption_expires_at'))
    op.drop_table('policy_exemption')
    # In place (SQLite >= 3.35 and PostgreSQL): a batch copy of release_plan would break
    # the foreign keys that point at it.
    op.execute('ALTER TABLE release_plan DROP COLUMN policies')
