"""The web: public pages, feeds and the console, wired into the app by create_app()."""

from __future__ import annotations

from litestar import Router


def web_route_handlers() -> list:
    """Every HTML page and feed, under one router that adds the security headers."""
    from app.web.auth import signed_in_router
    from app.web.console import console_handlers
    from app.web.forms import form_handlers
    from app.web.lab_agreements import agreement_form_handlers
    from app.web.pages import SECURITY_HEADERS
    from app.web.people import lab_people_handlers
    from app.web.public import public_handlers

    return [Router(path="/", route_handlers=[*public_handlers(), *console_handlers(),
                                             signed_in_router("/lab", [
                                                 *form_handlers(),
                                                 *agreement_form_handlers(),
                                                 *lab_people_handlers()])],
                   response_headers=SECURITY_HEADERS, include_in_schema=False)]


def template_config():
    from app.web.pages import template_config as config

    return config()


def html_error_handlers(handlers: dict) -> dict:
    """Wrap the API's problem-detail handlers: browsers asking for a page get the site's
    404/500 page instead; /api/ and /schema keep problem details."""
    from app.web.pages import wrap_error_handler

    return {exc: wrap_error_handler(handler) for exc, handler in handlers.items()}
