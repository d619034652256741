"""Installs every SQLAlchemy session listener of the registry, once per process.

Called by the entry points (create_app, the `stagegate` command through
app.installers, the worker's child process, the tests), never by an import: a listener
that an import installs runs in whichever process happens to import the module.
"""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.orm import Session

from app import markdown
from app.evals import charts
from app.norms import recompute
from app.plans import cache
from app.transparency import log


def install_listeners() -> None:
    """Markdown rendered on write, verdicts recomputed, model-card charts redrawn and
    events appended to the transparency log before commit, plan cache entries dropped
    after commit. Idempotent."""
    markdown.install()
    recompute.install()
    charts.install()
    # Last: the events the listeners above record before commit are logged too.
    log.install()
    if not event.contains(Session, "after_commit", cache.drop_changed_on_commit):
        event.listen(Session, "after_commit", cache.drop_changed_on_commit)
