"""Signing in and out of the web (console and lab forms), and what guards their pages."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace
from secrets import compare_digest
from urllib.parse import quote, urlsplit

import anyio
import litestar
from litestar import Request, Response, Router
from litestar.connection import ASGIConnection
from litestar.datastructures import CacheControlHeader, Headers
from litestar.enums import RequestEncodingType
from litestar.exceptions import PermissionDeniedException
from litestar.middleware import DefineMiddleware
from litestar.middleware._utils import should_bypass_middleware
from litestar.middleware.csrf import (
    CSRF_SECRET_LENGTH,
    CSRFMiddleware,
    generate_csrf_hash,
    generate_csrf_token,
)
from litestar.response import Redirect, Template
from litestar.utils.scope.state import ScopeState

from app.auth.passwords import check_login
from app.auth.principal import Principal
from app.auth.service import principal_for_user
from app.db import session_scope
from app.errors import Unauthorized
from app.http import PUBLIC, domain_error_handler, get, post
from app.incidents.api import client_address
from app.settings import get_settings
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
    """Litestar's double-submit CSRF check (CSRFConfig), with three changes:

    - the token is bound to the signed-in session: it is signed with a key derived from
      the session id, so a token from one session (or from before sign-in) never
      validates for another; a page of a new session gets a new token;
    - a cross-site write is refused (403) before anything else: an `Origin` that is
      present and not this site, or `Sec-Fetch-Site: cross-site`;
    - the check is skipped only where it protects nothing: a write to a page that needs a
      sign-in, sent without a session cookie, acts as nobody and is refused with 401 by
      the guard. Public forms (sign-in) are always checked."""

    async def __call__(self, scope, receive, send) -> None:
        if self.config.secret == LAZY_SECRET:
            self.config = replace(self.config, secret=csrf_secret())
        if scope["type"] != "http" or should_bypass_middleware(
                scope=scope, scopes=self.scopes,
                exclude_opt_key=self.config.exclude_from_csrf_key,
                exclude_path_pattern=self.exclude):
            await self.app(scope, receive, send)
            return
        unsafe = scope.get("method") not in self.config.safe_methods
        if unsafe and cross_site(scope):
            raise PermissionDeniedException("cross-site form submissions are refused")
        handler = scope.get("route_handler")
        cookies = ASGIConnection(scope).cookies
        if (unsafe and handler is not None and not handler.opt.get("public")
                and SESSION_COOKIE not in cookies):
            await self.app(scope, receive, send)
            return
        secret = self.bound_secret(scope, cookies.get(SESSION_COOKIE))
        cookie = cookies.get(self.config.cookie_name)
        state = ScopeState.from_scope(scope)
        if not unsafe:
            valid = bool(cookie) and self.decode_token(cookie, secret) is not None
            token = cookie if valid else generate_csrf_token(secret=secret)
            state.csrf_token = token
            await self.app(scope, receive, self.create_send_wrapper(
                send=send, token=token, csrf_cookie=cookie if valid else None))
            return
        request = scope["litestar_app"].request_class(scope=scope, receive=receive)
        submitted = request.headers.get(self.config.header_name)
        if not submitted and request.content_type[0] in {RequestEncodingType.URL_ENCODED,
                                                         RequestEncodingType.MULTI_PART}:
            submitted = (await request.form()).get("_csrf_token")
        if isinstance(submitted, str) and cookie:
            mine = self.decode_token(submitted, secret)
            theirs = self.decode_token(cookie, secret)
            if mine is not None and theirs is not None and compare_digest(mine, theirs):
                state.csrf_token = submitted
                await self.app(scope, receive, send)
                return
        raise PermissionDeniedException("CSRF token verification failed")

    def bound_secret(self, scope, session_id: str | None) -> str:
        # Bound only to a session that loaded (a signed-in browser): a stale or garbage
        # cookie is deleted by the session backend, and the sign-in form must still work.
        loaded = (scope.get("state") or {}).get("loaded_session")
        binding = session_id if (loaded and session_id) else ""
        return hmac.new(self.config.secret.encode(), b"session:" + binding.encode(),
                        hashlib.sha256).hexdigest()

    @staticmethod
    def decode_token(token: str, secret: str) -> str | None:
        if len(token) < CSRF_SECRET_LENGTH + 1:
            return None
        head, mac = token[:CSRF_SECRET_LENGTH], token[CSRF_SECRET_LENGTH:]
        return head if compare_digest(mac, generate_csrf_hash(head, secret)) else None


def cross_site(scope) -> bool:
    """A write sent from another site: `Sec-Fetch-Site: cross-site`, or an `Origin` that
    is present and names neither this request's host nor STAGEGATE_PUBLIC_URL's."""
    headers = Headers.from_scope(scope)
    if headers.get("sec-fetch-site", "").lower() == "cross-site":
        return True
    origin = headers.get("origin")
    if origin is None:
        return False
    ours = {headers.get("host", "").lower()}
    public = get_settings().public_url
    if public:
        ours.add(urlsplit(public).netloc.lower())
    try:
        netloc = urlsplit(origin.strip()).netloc.lower()
    except ValueError:
        return True
    return not netloc or netloc not in ours


def safe_next(value: str | None, default: str) -> str:
    """Only a path on this site: never `//host`, a scheme, a backslash or a control
    character (browsers drop tabs and newlines, so `/<TAB>/evil.example` is `//evil...`)."""
    if (value and value.startswith("/") and not value.startswith("//") and "\\" not in value
            and not any(ord(c) < 32 or ord(c) == 127 for c in value)):
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
        result = check_login(name, password, client)  # argon2 outside any transaction
        user = result.user
        if user is None:
            return result, None, None
        with session_scope(write=False) as session:
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
    # no-store: a signed-in page must not stay in a shared or back-button cache.
    return Router(path=path, route_handlers=handlers, opt=SIGNED_IN,
                  cache_control=CacheControlHeader(no_store=True),
                  exception_handlers={Unauthorized: unauthorized})


def browser_middleware(settings) -> list:
    """Server-side sessions, then CSRF checks: for pages only (never /api/, /static/)."""
    return [session_config(settings).middleware,
            DefineMiddleware(BrowserCSRFMiddleware, config=csrf_config(settings))]


def auth_handlers() -> list:
    return [login_form, log_in, Router(path="/", route_handlers=[log_out],
                                       exception_handlers={Unauthorized: unauthorized})]
