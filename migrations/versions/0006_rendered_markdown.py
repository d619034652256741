"""Rendered Markdown stored on write.

Revision ID: 0006_rendered_markdown
Revises: 0005_hardening
Create Date: 2026-11-28 04:15:00

Each table with Markdown fields gets `markdown_html` (JSON: field -> sanitised HTML)
and `markdown_version` (the renderer that produced it). Existing rows are rendered
here with today's renderer; a later renderer re-renders them at start-up.
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0006_rendered_markdown'
down_revision = '0005_hardening'
branch_labels = None
depends_on = None

# table -> its Markdown columns (as in the tables' `__markdown__`)
TABLES = {
    "ai_model": ("model_details", "intended_use", "factors", "metrics", "evaluation_data",
                 "training_data", "quantitative_analyses", "ethical_considerations",
                 "caveats_and_recommendations"),
    "release_plan": ("summary",),
    "disclosure_agreement": ("terms",),
    "incident": ("summary",),
    "incident_report": ("text",),
}


def upgrade() -> None:
    from app.markdown import RENDERER_VERSION, render_leniently

    # Plain ALTER TABLE (no batch copy): a copied incident table would lose its
    # search triggers on SQLite.
    for table in TABLES:
        op.add_column(table, sa.Column("markdown_html", sa.JSON(), nullable=False,
                                       server_default="{}"))
        op.add_column(table, sa.Column("markdown_version", sa.Integer(), nullable=False,
                                       server_default="0"))
    conn = op.get_bind()
    for table, fields in TABLES.items():
        t = sa.table(table, sa.column("id", sa.Integer), sa.column("markdown_html", sa.JSON),
                     sa.column("markdown_version", sa.Integer),
                     *[sa.column(f, sa.Text) for f in fields])
        rows = conn.execute(sa.select(t.c.id, *[t.c[f] for f in fields])).all()
        for row in rows:
            html = {f: render_leniently(getattr(row, f)) for f in fields}
            conn.execute(t.update().where(t.c.id == row.id)
                         .values(markdown_html=html, markdown_version=RENDERER_VERSION))


def downgrade() -> None:
    for table in TABLES:
        op.drop_column(table, "markdown_version")
        op.drop_column(table, "markdown_html")
