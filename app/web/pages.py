"""Page plumbing: the Jinja2 environment, security headers, HTML error pages."""

from __future__ import annotations

import logging
from datetime import date, datetime
from pathlib import Path

import pydantic
from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import Request, Response
from litestar.contrib.jinja import JinjaTemplateEngine
from litestar.exceptions import HTTPException
from litestar.response import Template
from litestar.template.config import TemplateConfig

from app.errors import DomainError
from app.http import CONTENT_SECURITY_POLICY, SECURITY_HEADERS

log = logging.getLogger("stagegate.web")
TEMPLATES = Path(__file__).parent / "templates"

# Every response carries the hardening headers (app.http.harden_response); pages are built
# against that one Content-Security-Policy: nothing inline, nothing from elsewhere.
CSP = CONTENT_SECURITY_POLICY


def _date(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _params(value) -> str:
    """124000000 -> 124M: parameter counts as people say them."""
    if not value:
        return ""
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if value >= size:
            return f"{value / size:.3g}{suffix}"
    return str(value)


def _num(value, digits: int = 4) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return f"{value:.{digits}g}"


def _safe_url(value) -> str | None:
    """Only http(s) URLs become links; anything else (javascript:, data:) stays text."""
    if isinstance(value, str) and value.strip().lower().startswith(("https://", "http://")):
        return value.strip()
    return None


def _atomdate(value) -> str:
    """RFC 3339 for Atom; naive datetimes in this app are UTC."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"
    if isinstance(value, date):
        return f"{value.isoformat()}T00:00:00Z"
    return str(value)


def make_environment() -> Environment:
    # Autoescape everything: user text reaches HTML only escaped, or as Markdown already
    # rendered and sanitised by app.markdown (marked safe where it is used).
    env = Environment(loader=FileSystemLoader(TEMPLATES),
                      autoescape=select_autoescape(["html", "xml", "atom", "svg"],
                                                   default=True),
                      trim_blocks=True, lstrip_blocks=True, auto_reload=False)
    env.filters.update(date=_date, params=_params, num=_num, safe_url=_safe_url,
                       atomdate=_atomdate)
    from app.web import norms_words as words  # policies in plain words

    env.filters.update(rule_sentence=words.rule_sentence, applies=words.applies_sentence,
                       action_words=words.action_words, evidence_href=words.evidence_href,
                       evidence_label=words.evidence_label, shown=words.shown)
    return env


ENV = make_environment()


def template_config() -> TemplateConfig:
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(ENV))


def page(name: str, status: int = 200, **context) -> Template:
    return Template(template_name=name, context=context, status_code=status,
                    headers=SECURITY_HEADERS)


def _is_page(request: Request) -> bool:
    """A browser asking for a page gets the site's error page; API clients (and anything
    that does not ask for HTML) keep problem details, whatever the path."""
    path = request.url.path
    return (not path.startswith(("/api/", "/schema", "/static/", "/healthz"))
            and "text/html" in request.headers.get("accept", ""))


TITLES = {400: "Bad request", 401: "Please log in", 403: "Not allowed", 404: "Not found",
          405: "Not allowed here", 409: "Conflict", 422: "Invalid input",
          429: "Too many requests", 500: "Something went wrong"}


def error_page(request: Request, status: int, detail: str) -> Response:
    html = ENV.get_template("error.html").render(
        status=status, title=TITLES.get(status, "Error"), detail=detail, request=request)
    return Response(html, status_code=status, media_type="text/html",
                    headers=SECURITY_HEADERS)


def wrap_error_handler(handler):
    def handle(request: Request, exc: Exception) -> Response:
        if not _is_page(request):
            return handler(request, exc)
        if isinstance(exc, DomainError):
            return error_page(request, exc.status, str(exc))
        if isinstance(exc, HTTPException):
            detail = "There is no page at this address." if exc.status_code == 404 \
                else str(exc.detail)
            return error_page(request, exc.status_code, detail)
        if isinstance(exc, pydantic.ValidationError):
            return error_page(request, 422, "The address holds a value this page cannot use.")
        # Anything else is a failure of ours: the API handler logs it with a request id.
        answer = handler(request, exc).content
        rid = answer.get("request_id", "") if isinstance(answer, dict) else ""
        return error_page(request, 500, "The registry could not build this page. The error "
                                        f"has been logged under request id {rid}.")
    return handle
