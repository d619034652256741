"""Web: console passwords and sessions.

Revision ID: 0008_web
Revises: 0007_norms
Create Date: 2026-11-28 04:15:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0008_web'
down_revision = '0007_norms'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('password_hash',
                                      sqlmodel.sql.sqltypes.AutoString(length=200),
                                      nullable=True))
    op.create_table('web_session',
    sa.Column('key_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('key_hash')
    )
    with op.batch_alter_table('web_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_web_session_expires_at'), ['expires_at'],
                              unique=False)
    op.create_table('login_failure',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('login_failure', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_login_failure_key'), ['key'], unique=False)
        batch_op.create_index(batch_op.f('ix_login_failure_at'), ['at'], unique=False)


def downgrade() -> None:
    op.drop_table('login_failure')
    op.drop_table('web_session')
    # In place, as 0005 does: a batch copy of "user" would break the keys that point at it.
    op.execute('ALTER TABLE "user" DROP COLUMN password_hash')
