"""Domain errors, and their one mapping to RFC 9457 problem details."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status = 400
    title = "Bad request"

    def __init__(self, detail: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.extra = extra


class Invalid(DomainError):
    status, title = 422, "Invalid input"


class BadQuery(DomainError):
    # One rule for bad input: a query or filter the server cannot use is 422, like a body.
    status, title = 422, "Invalid query"


class Unauthorized(DomainError):
    status, title = 401, "Authentication required"


class Forbidden(DomainError):
    status, title = 403, "Forbidden"


class NotFound(DomainError):
    status, title = 404, "Not found"


class Conflict(DomainError):
    status, title = 409, "Conflict"


class InvalidTransition(Conflict):
    title = "Invalid transition"


class PolicyViolation(Conflict):
    title = "Policy violation"


class TooLarge(DomainError):
    status, title = 413, "Payload too large"


class RateLimited(DomainError):
    status, title = 429, "Too many requests"


def field_path(loc) -> str:
    """One spelling of a field in every error: `stages[0].access_level`. Takes a pydantic
    `loc` tuple, or a dotted key as Litestar writes it (`stages.0.access_level`)."""
    if isinstance(loc, str):
        # ASCII digits only: "²".isdigit() is true, and int("²") raises (a 500 on an
        # unknown body key "²" once did).
        loc = [int(part) if part.isascii() and part.isdigit() else part
               for part in loc.split(".")]
    out = ""
    for key in loc:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else str(key))
    return out


def problem(status: int, title: str, detail: str, *, errors: list[dict] | None = None,
            instance: str | None = None, **extra: Any) -> dict:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status,
                            "detail": detail}
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = errors
    body.update(extra)
    return body


def domain_problem(exc: DomainError, instance: str | None = None) -> dict:
    errors = [{"field": exc.field, "reason": exc.detail}] if exc.field else None
    return problem(exc.status, exc.title, exc.detail, errors=errors, instance=instance,
                   **exc.extra)
