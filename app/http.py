"""HTTP plumbing shared by every controller: auth guard, principal, paging, errors."""

from __future__ import annotations

from functools import partial

import anyio
import litestar
import pydantic
from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException, ValidationException
from litestar.handlers.base import BaseRouteHandler

from app.auth.principal import ANONYMOUS, Principal
from app.auth.service import authenticate
from app.db import session_scope
from app.errors import DomainError, Unauthorized, domain_problem, problem
from app.pagination import PageRequest

PROBLEM = "application/problem+json"

# Handlers are plain functions doing blocking database work, so they run in threads.
get = partial(litestar.get, sync_to_thread=True)
post = partial(litestar.post, sync_to_thread=True)
patch = partial(litestar.patch, sync_to_thread=True)
put = partial(litestar.put, sync_to_thread=True)
delete = partial(litestar.delete, sync_to_thread=True, status_code=200)
PUBLIC = {"public": True}


def _resolve(authorization: str | None) -> Principal:
    with session_scope(write=False) as session:
        return authenticate(session, authorization)


async def auth_guard(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """Deny by default: a route serves anonymous callers only if marked public."""
    header = connection.headers.get("authorization")
    principal = ANONYMOUS if not header else await anyio.to_thread.run_sync(_resolve, header)
    if not header and handler.opt.get("browser_session"):
        # Web pages sign in with a session cookie (their forms carry CSRF tokens); the
        # API never does, so a cookie can never act on /api/.
        from app.web.auth_sessions import session_principal

        principal = await session_principal(connection)
    connection.state.principal = principal
    # The OpenAPI routes are Litestar's own, so they cannot carry our marking.
    public = handler.opt.get("public") or connection.url.path.startswith("/schema")
    if principal.is_anonymous and not public:
        raise Unauthorized("this route needs 'Authorization: Bearer <token>'")


def provide_principal(request: Request) -> Principal:
    return request.state.principal


def provide_page(cursor: str | None = None, limit: int = 50) -> PageRequest:
    return PageRequest(cursor=cursor, limit=limit)


def expected_version(request: Request, body_version: int | None) -> int | None:
    """Optimistic locking: the body's `version`, else an If-Match header."""
    if body_version is not None:
        return body_version
    match = request.headers.get("if-match", "").strip().removeprefix("W/").strip('"')
    return int(match) if match.isdigit() else None


def with_etag(read, status: int = 200) -> Response:
    """A versioned entity's response: its version is the ETag clients send back in If-Match."""
    return Response(read, status_code=status, headers={"ETag": f'"{read.version}"'})


def domain_error_handler(request: Request, exc: DomainError) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return Response(domain_problem(exc, request.url.path), status_code=exc.status,
                    media_type=PROBLEM, headers=headers)


def validation_handler(request: Request, exc: ValidationException) -> Response:
    errors = []
    for item in exc.extra or []:
        if isinstance(item, dict):
            errors.append({"field": item.get("key") or item.get("source") or "body",
                           "reason": item.get("message", "invalid")})
    detail = "; ".join(f"{e['field']}: {e['reason']}" for e in errors) or str(exc.detail)
    body = problem(422, "Invalid input", detail, errors=errors, instance=request.url.path)
    return Response(body, status_code=422, media_type=PROBLEM)


def pydantic_error_handler(request: Request, exc: pydantic.ValidationError) -> Response:
    """Validation raised inside a service (e.g. a card patch) is still the client's error."""
    errors = [{"field": ".".join(str(p) for p in e["loc"]) or "body", "reason": e["msg"]}
              for e in exc.errors()]
    detail = "; ".join(f"{e['field']}: {e['reason']}" for e in errors)
    body = problem(422, "Invalid input", detail, errors=errors, instance=request.url.path)
    return Response(body, status_code=422, media_type=PROBLEM)


def http_error_handler(request: Request, exc: HTTPException) -> Response:
    body = problem(exc.status_code, exc.__class__.__name__, str(exc.detail),
                   instance=request.url.path)
    return Response(body, status_code=exc.status_code, media_type=PROBLEM,
                    headers=getattr(exc, "headers", None))
