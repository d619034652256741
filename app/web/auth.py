"""Signing in and out of the web (console and lab forms), and what guards their pages."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import quote

import anyio
import litestar
from litestar import Request, Response, Router
from litestar.connection import ASGIConnection
from litestar.middleware import DefineMiddleware
from litestar.middleware.csrf import CSRFMiddleware
from litestar.response import Redirect, Template

from app.auth.passwords import check_login
from app.auth.principal import Principal
from app.auth.service import principal_for_user
from app.db import session_scope
from app.errors import Unauthorized
from app.incidents.api import client_address
from app.http import PUBLIC, domain_error_handler, get, post
from app.web.auth_sessions import (
    LAZY_SECRET,
    PASSWORD_KEY,
    USER_KEY,
    csrf_config,
    csrf_secret,
    password_mark,
    session_config,
)
from app.web.pages import page

SESSION_COOKIE = "sg_session"
# Pages behind a sign-in read the principal from the session cookie (app.http.auth_guard).
SIGNED_IN = {"browser_session": True}


class BrowserCSRFMiddleware(CSRFMiddleware):
    """Litestar's CSRF check (CSRFConfig), skipped only where it protects nothing: a write
    to a page that needs a sign-in, sent without a session cookie, acts as nobody and is
    refused with 401 by the guard. Public forms (sign-in) are always checked."""

    async def __call__(self, scope, receive, send) -> None:
        if self.config.secret == LAZY_SECRET:
            self.config = replace(self.config, secret=csrf_secret())
        handler = scope.get("route_handler")
        if (scope["type"] == "http" and scope.get("method") not in self.config.safe_methods
                and handler is not None and not handler.opt.get("public")
                and SESSION_COOKIE not in ASGIConnection(scope).cookies):
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def safe_next(value: str | None, default: str) -> str:
    """Only a path on this site: never `//host` or a scheme (no open redirect)."""
    if value and value.startswith("/") and not value.startswith(("//", "/\\")):
        return value
    return default


def landing(principal: Principal) -> str:
    return "/console/" if principal.is_coordinator else "/lab/"


def unauthorized(request: Request, exc: Unauthorized) -> Response:
    """A browser is sent to sign in and comes back; other clients get the problem detail."""
    if "text/html" in request.headers.get("accept", ""):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method != "GET":
            target = request.headers.get("referer", "") or "/console/"
            target = "/console/" if "://" in target else target
        return Redirect(f"/console/login?next={quote(target, safe='/')}", status_code=303)
    return domain_error_handler(request, exc)


@get("/console/login", opt=PUBLIC, name="login")
def login_form(principal: Principal, request: Request, next: str | None = None) -> Template:
    return page("console/login.html", next=safe_next(next, ""), user=_session_user(request))


def _session_user(request: Request) -> str | None:
    return (request.scope.get("session") or {}).get("name")


@litestar.post("/console/login", opt=PUBLIC, status_code=303)
async def log_in(request: Request) -> Response:
    form = await request.form()
    name = str(form.get("username", "")).strip()[:64]
    password = str(form.get("password", ""))
    target = str(form.get("next", ""))
    client = client_address(request)

    def check():
        with session_scope() as session:
            result = check_login(session, name, password, client)
            user = result.user
            if user is None:
                return result, None, None
            return result, principal_for_user(session, user), password_mark(user)

    result, principal, mark = await anyio.to_thread.run_sync(check)
    if result.retry_after:
        minutes = -(-result.retry_after // 60)
        template = page("console/login.html", status=429, next=safe_next(target, ""),
                        username=name, user=None,
                        error=f"Too many failed sign-ins. Try again in about {minutes} "
                              f"minute{'s' if minutes != 1 else ''}.")
        template.headers = {**template.headers, "Retry-After": str(result.retry_after)}
        return template
    if principal is None:
        return page("console/login.html", status=400, next=safe_next(target, ""),
                    username=name, user=None, error="Wrong username or password.")
    request.set_session({USER_KEY: principal.user_id, PASSWORD_KEY: mark,
                         "name": principal.name})
    return Redirect(safe_next(target, landing(principal)), status_code=303)


@post("/console/logout", opt=SIGNED_IN, status_code=303)
def log_out(request: Request, principal: Principal) -> Response:
    request.clear_session()
    return Redirect("/console/login?signed_out=1", status_code=303)


def signed_in_router(path: str, handlers: list) -> Router:
    """Pages behind a sign-in: principal from the session, browsers sent to sign in."""
    return Router(path=path, route_handlers=handlers, opt=SIGNED_IN,
                  exception_handlers={Unauthorized: unauthorized})


def browser_middleware(settings) -> list:
    """Server-side sessions, then CSRF checks: for pages only (never /api/, /static/)."""
    return [session_config(settings).middleware,
            DefineMiddleware(BrowserCSRFMiddleware, config=csrf_config(settings))]


def auth_handlers() -> list:
    return [login_form, log_in, Router(path="/", route_handlers=[log_out],
                                       exception_handlers={Unauthorized: unauthorized})]
