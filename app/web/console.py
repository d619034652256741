"""The coordinator console and lab forms (pages behind a login)."""

from __future__ import annotations


def console_handlers() -> list:
    """Route handlers of the console and the lab forms, registered by app.web."""
    return []
