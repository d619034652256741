"""HTTP plumbing shared by every controller: auth guard, principal, paging, errors."""

from __future__ import annotations

import logging
import re
import uuid
from functools import partial
from http import HTTPStatus
from typing import Annotated

import anyio
import litestar
import pydantic
from annotated_types import Interval
from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.datastructures import MutableScopeHeaders
from litestar.exceptions import (
    ClientException,
    HTTPException,
    SerializationException,
    ValidationException,
)
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Message, Scope

from app.auth.principal import ANONYMOUS, Principal
from app.auth.service import authenticate
from app.db import session_scope
from app.errors import (
    DomainError,
    Forbidden,
    Invalid,
    NotFound,
    Unauthorized,
    domain_problem,
    field_path,
    problem,
)
from app.ids import MAX_ID
from app.pagination import MAX_LIMIT, PageRequest

PROBLEM = "application/problem+json"
log = logging.getLogger("stagegate.http")

# Handlers are plain functions doing blocking database work, so they run in threads.
get = partial(litestar.get, sync_to_thread=True)
post = partial(litestar.post, sync_to_thread=True)
patch = partial(litestar.patch, sync_to_thread=True)
put = partial(litestar.put, sync_to_thread=True)
delete = partial(litestar.delete, sync_to_thread=True, status_code=200)
PUBLIC = {"public": True}
# A public read that sends its version as ETag (and so answers If-None-Match with 304).
PUBLIC_ETAG = {"public": True, "etag": True}


def _resolve(authorization: str | None) -> Principal:
    with session_scope(write=False) as session:
        return authenticate(session, authorization)


async def auth_guard(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """Deny by default: a route serves anonymous callers only if marked public."""
    if connection.scope.get("method") == "OPTIONS":
        return  # Litestar's own answer (204 + Allow) reveals nothing a route table does not
    header = connection.headers.get("authorization")
    principal = ANONYMOUS if not header else await anyio.to_thread.run_sync(_resolve, header)
    if not header and handler.opt.get("browser_session"):
        # Web pages sign in with a session cookie (their forms carry CSRF tokens); the
        # API never does, so a cookie can never act on /api/.
        from app.web.auth_sessions import session_principal

        principal = await session_principal(connection)
    connection.state.principal = principal
    if principal.is_worker:  # a worker token reaches its own routes only (app/evals)
        if handler.opt.get("worker"):
            return
        raise Forbidden("a worker token may only claim, renew, download and report "
                        "evaluation jobs (/api/v1/worker/)")
    # The OpenAPI routes are Litestar's own, so they cannot carry our marking.
    public = handler.opt.get("public") or connection.url.path.startswith("/schema")
    if principal.is_anonymous and not public:
        raise Unauthorized("this route needs 'Authorization: Bearer <token>'")


def provide_principal(request: Request) -> Principal:
    return request.state.principal


def provide_page(cursor: str | None = None,
                 limit: Annotated[int, Interval(ge=1, le=MAX_LIMIT)] = 50) -> PageRequest:
    return PageRequest(cursor=cursor, limit=limit)


def expected_version(request: Request, body_version: int | None) -> int | None:
    """Optimistic locking: the body's `version`, else an If-Match header."""
    if body_version is not None:
        return body_version
    match = request.headers.get("if-match", "").strip().removeprefix("W/").strip('"')
    if match in ("", "*"):
        return None
    # Not str.isdigit alone: it takes "²", and a 30-digit version would overflow the driver.
    if match.isascii() and match.isdigit() and 1 <= int(match) <= MAX_ID:
        return int(match)
    raise Invalid('If-Match must be a version this server issued, like "3"', field="If-Match")


def with_etag(read, status: int = 200) -> Response:
    """A versioned entity's response: its version is the ETag clients send back in If-Match."""
    return Response(read, status_code=status, headers={"ETag": f'"{read.version}"'})


def domain_error_handler(request: Request, exc: DomainError) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    body = domain_problem(exc, request.url.path)
    if isinstance(exc, NotFound) and exc.field and exc.field in request.query_params:
        # A filter naming a lab or model that does not exist (or is hidden) is bad input
        # of the query, 422 on every list, not a missing resource: the list itself exists.
        body.update(status=422, title="Invalid input")
    return Response(body, status_code=body["status"], media_type=PROBLEM, headers=headers)


def validation_handler(request: Request, exc: ValidationException) -> Response:
    errors = []
    for item in exc.extra or []:
        if isinstance(item, dict):
            field = field_path(str(item.get("key") or "")) or item.get("source") or "body"
            reason = item.get("message", "invalid")
            if field == "data":  # Litestar's name for the body parameter, not the client's
                field = "body"
                if reason in ("'data'", "Object missing required field `data`"):
                    reason = "a request body is required"
            errors.append({"field": field, "reason": reason})
    detail = "; ".join(f"{e['field']}: {e['reason']}" for e in errors) or str(exc.detail)
    body = problem(422, "Invalid input", detail, errors=errors, instance=request.url.path)
    return Response(body, status_code=422, media_type=PROBLEM)


def pydantic_error_handler(request: Request, exc: pydantic.ValidationError) -> Response:
    """Validation raised inside a service (e.g. a card patch) is still the client's error."""
    errors = [{"field": field_path(e["loc"]) or "body", "reason": e["msg"]}
              for e in exc.errors()]
    detail = "; ".join(f"{e['field']}: {e['reason']}" for e in errors)
    body = problem(422, "Invalid input", detail, errors=errors, instance=request.url.path)
    return Response(body, status_code=422, media_type=PROBLEM)


class BadBody(ClientException):
    """A body that could not be decoded at all (not UTF-8, not JSON, nested too deep)."""


def _nul_at(value, path: str = "") -> str | None:
    """The path of the first string holding a NUL character, if any. PostgreSQL cannot store
    or even compare one (a DataError, so a 500), and no field of ours has a use for it."""
    if isinstance(value, str):
        return (path or "body") if "\x00" in value else None
    items = (value.items() if isinstance(value, dict) else
             enumerate(value) if isinstance(value, list) else ())
    for key, item in items:
        if isinstance(key, str) and "\x00" in key:
            return f"{path}.{key!r}" if path else repr(key)
        found = _nul_at(item, f"{path}[{key}]" if isinstance(key, int) else
                        f"{path}.{key}" if path else str(key))
        if found:
            return found
    return None


def _refuse_nul(field: str) -> None:
    raise ValidationException(detail=f"{field}: contains a NUL character",
                              extra=[{"key": field, "message": "contains a NUL character"}])


class StrictRequest(Request):
    """Decoding failures become a 400 naming the body; msgspec's RecursionError on deeply
    nested JSON would otherwise escape as a 500. Text with NUL characters is refused."""

    async def json(self):
        try:
            value = await super().json()
        except RecursionError:
            raise BadBody("JSON is nested too deeply") from None
        except UnicodeDecodeError:
            raise BadBody("the body is not UTF-8") from None
        except SerializationException as exc:
            raise BadBody(str(exc.detail or exc)) from None
        except ClientException as exc:
            raise BadBody(str(exc.detail)) from None
        if (field := _nul_at(value)) is not None:
            _refuse_nul(field)
        return value

    async def form(self):
        form = await super().form()
        for key, value in form.multi_items():
            if "\x00" in key or (isinstance(value, str) and "\x00" in value):
                _refuse_nul(key)
        return form


async def input_guard(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """Path and query text with NUL characters is refused before any handler sees it, and
    so is a path id past 64 bits, on every route (a handler that forgets `Id` included)."""
    for source in (connection.path_params, connection.query_params):
        for key, value in source.items():
            if isinstance(value, str) and "\x00" in value:
                _refuse_nul(key)
    for key, value in connection.path_params.items():
        if isinstance(value, int) and not 0 <= value <= MAX_ID:
            raise Invalid(f"must be an id from 1 to {MAX_ID}", field=key)


def repair_options(app: litestar.Litestar) -> None:
    """OPTIONS answers Allow with all of the route's methods. Litestar builds its automatic
    OPTIONS handler for the first handler on a path and keeps it when handlers on the same
    path (GET here, PATCH there) are merged into one route, so Allow lists only the first
    handler's methods; point each such handler at the merged route instead."""
    from litestar.routes import HTTPRoute

    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            fn = handler.fn
            if (handler.http_methods == {"OPTIONS"} and fn.__name__ == "options_handler"
                    and fn.__code__.co_freevars == ("self",)):
                fn.__closure__[0].cell_contents = route


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def http_error_handler(request: Request, exc: HTTPException) -> Response:
    """Litestar's own errors (no route, wrong method, body too large, bad body) as problem
    details with a human title instead of the exception's class name."""
    status = exc.status_code
    detail = str(exc.detail)
    errors = None
    if status == 404 and detail == "Not Found":
        detail = f"no route matches {request.url.path}"
    elif status == 405:
        detail = f"{request.method} is not allowed here"
    if isinstance(exc, BadBody) or status == 413:
        errors = [{"field": "body", "reason": detail}]
    body = problem(status, _phrase(status), detail, errors=errors, instance=request.url.path)
    return Response(body, status_code=status, media_type=PROBLEM,
                    headers=getattr(exc, "headers", None))


# --- Request ids, unhandled errors and browser hardening -----------------------------------

# An incoming X-Request-ID is kept (a proxy's id ties the logs together) only if it is short
# and plain, so it cannot forge log lines or headers.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id(scope: Scope) -> str:
    """This request's id: the client's sane X-Request-ID, else a fresh one; stable per scope."""
    state = scope.setdefault("state", {})
    rid = state.get("request_id")
    if rid is None:
        incoming = next((v.decode("latin-1") for k, v in scope.get("headers", ())
                         if k == b"x-request-id"), "")
        rid = incoming if _SANE_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        state["request_id"] = rid
    return rid


def internal_error_handler(request: Request, exc: Exception) -> Response:
    """Anything unhandled: logged with its traceback and request id, answered as a 500
    problem detail carrying the same id, never the exception's text."""
    rid = request_id(request.scope)
    log.error("unhandled %s on %s %s [request_id=%s]", type(exc).__name__, request.method,
              request.url.path, rid, exc_info=exc)
    body = problem(500, "Internal server error",
                   f"the server failed on this request; quote request id {rid} when "
                   "reporting it", instance=request.url.path, request_id=rid)
    return Response(body, status_code=500, media_type=PROBLEM)


# --- Request time budget ------------------------------------------------------------------
#
# Every page and API answer has a deadline (STAGEGATE_REQUEST_BUDGET_S, 10 s by default):
# past it, before the response has started, the client gets a 503 problem carrying the
# request id and the overrun is logged. Handlers run in threads, and Python cannot kill a
# thread: the await on the thread is cancelled and its late answer is dropped, but the
# thread runs on to its end. What bounds the work itself is that renderers are bounded by
# construction (app/web/charts.py) and the database's own statement timeouts.
# Long by design, so outside the budget: responses that stream (server-sent events such as
# /models/{lab}/{model}/progress, incident exports, checkpoint file downloads: Stream,
# File and ServerSentEvent return types), handlers that read their own unbounded body
# (checkpoint uploads: request_max_body_size=None), and any handler marked
# opt={"request_budget": False}. Once a response has started the deadline is lifted.

_LONG_RETURNS: tuple[type, ...] | None = None


def _long_by_design(handler) -> bool:
    global _LONG_RETURNS
    if handler is None:
        return False
    if _LONG_RETURNS is None:
        from litestar.response import File, ServerSentEvent, Stream

        _LONG_RETURNS = (File, ServerSentEvent, Stream)
    opt = getattr(handler, "opt", None) or {}
    if opt.get("request_budget") is False:
        return True
    if getattr(handler, "request_max_body_size", 0) is None:
        return True
    try:
        field = handler.parsed_fn_signature.return_type
        kind = field.origin or field.annotation
    except Exception:  # noqa: BLE001 (not an HTTP handler: no return type to read)
        return False
    return isinstance(kind, type) and issubclass(kind, _LONG_RETURNS)


async def _over_budget(scope: Scope, send, budget: float) -> None:
    import json

    rid = request_id(scope)
    path = scope.get("path", "")
    log.warning("request over its %.3g s budget: %s %s [request_id=%s]", budget,
                scope.get("method"), path, rid)
    body = json.dumps(problem(
        503, "Service unavailable",
        f"the request took longer than its time budget of {budget:.3g} s; try again, or "
        f"quote request id {rid} when reporting it", instance=path,
        request_id=rid)).encode()
    await send({"type": "http.response.start", "status": 503,
                "headers": [(b"content-type", PROBLEM.encode()),
                            (b"content-length", str(len(body)).encode()),
                            (b"retry-after", b"5")]})
    await send({"type": "http.response.body", "body": body})


def request_budget_middleware(app):
    """ASGI middleware: the handler's answer within the budget, else a 503 problem."""
    import math

    async def middleware(scope: Scope, receive, send) -> None:
        from app.settings import get_settings

        budget = get_settings().request_budget_s
        if (scope["type"] != "http" or not budget or budget <= 0
                or _long_by_design(scope.get("route_handler"))):
            await app(scope, receive, send)
            return
        started = False

        async def send_started(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                deadline.deadline = math.inf  # never cut a response that has begun
            await send(message)

        with anyio.move_on_after(budget) as deadline:
            await app(scope, receive, send_started)
        if deadline.cancelled_caught and not started:
            await _over_budget(scope, send, budget)

    return middleware


# The web pages are built against exactly this policy: no inline script or style, no CDN.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'")
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
}


async def harden_response(message: Message, scope: Scope) -> None:
    """before_send hook: every response (API, errors, static files, OpenAPI) gets the
    hardening headers and its request id; a header a handler set itself is kept."""
    if message["type"] != "http.response.start":
        return
    headers = MutableScopeHeaders.from_message(message)
    for name, value in SECURITY_HEADERS.items():
        if name not in headers:
            headers[name] = value
    if "x-request-id" not in headers:
        headers["X-Request-ID"] = request_id(scope)
    # Litestar appends "; charset=utf-8" to text types even when the handler named one.
    content_type = headers.get("content-type", "")
    if content_type.count("charset=") > 1:
        media, *params = [part.strip() for part in content_type.split(";")]
        seen: list[str] = []
        for param in params:
            if param.lower() not in (p.lower() for p in seen):
                seen.append(param)
        headers["Content-Type"] = "; ".join([media, *seen])
