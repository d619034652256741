"""URLs clients send: absolute http(s) only, so none becomes a `javascript:` or `data:`
link in a page, a card or an export."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator

from app.errors import Invalid

REASON = "must be an absolute http:// or https:// URL"


def check_http_url(value: str) -> str:
    """The URL unchanged if it is http(s) with a host and no whitespace or control
    characters (browsers strip those, which is how `java\\tscript:` gets through)."""
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError(REASON)
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (raises on a malformed port)
    except ValueError:
        raise ValueError(REASON) from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError(REASON)
    return value


def require_http_url(value: str | None, field: str) -> str | None:
    """For services called without a schema (the CLI): 422 naming the field."""
    if value is None:
        return None
    try:
        return check_http_url(value)
    except ValueError:
        raise Invalid(REASON, field=field) from None


# For schemas: `url: HttpURL | None = Field(default=None, max_length=...)`.
HttpURL = Annotated[str, AfterValidator(check_http_url)]
