"""Worker tokens: a token's scope, "full" (acts as its user) or "worker" (a remote
evaluation worker named by the token's label; app/evals/remote_api.py).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-20 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every existing token keeps acting as its user. Plain ADD COLUMN (no batch copy):
    # SQLite would otherwise rebuild the table, and PostgreSQL keeps the read cache's
    # triggers on apitoken (0009) as they are, so nothing needs installing again.
    op.add_column('apitoken', sa.Column('scope', sa.String(length=16), nullable=False,
                                        server_default='full'))


def downgrade() -> None:
    # SQLite >= 3.35 and PostgreSQL both drop a column in place.
    op.execute('ALTER TABLE apitoken DROP COLUMN scope')
