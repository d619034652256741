"""Re-rendering stored Markdown whose HTML came from an older renderer (at start-up).

Apart from app/markdown.py because it names the tables, and the tables import the
RenderedMarkdown mixin from there.
"""

from __future__ import annotations

from sqlmodel import Session, select

from app.agreements.tables import DisclosureAgreement
from app.db import session_scope
from app.incidents.tables import Incident, IncidentReport
from app.markdown import RENDERER_VERSION, render_row
from app.models.tables import AIModel
from app.plans.tables import ReleasePlan


def markdown_tables() -> list[type]:
    return [AIModel, ReleasePlan, DisclosureAgreement, Incident, IncidentReport]


def rerender_stale(session: Session, tables: list[type] | None = None,
                   batch: int = 200) -> int:
    """Re-render rows whose HTML came from an older renderer; returns how many."""
    count = 0
    for table in tables or markdown_tables():
        while True:
            rows = session.exec(select(table).where(
                table.markdown_version != RENDERER_VERSION).limit(batch)).all()
            if not rows:
                break
            for row in rows:
                render_row(row, table.__markdown__, lenient=True)
                session.add(row)
            session.commit()
            count += len(rows)
    return count


def rerender_on_startup() -> None:
    with session_scope() as session:
        rerender_stale(session)
