"""Browser sign-in plumbing: the database session store, session and CSRF settings."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

import anyio
from litestar.config.csrf import CSRFConfig
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie, MutableScopeHeaders
from litestar.middleware.session.server_side import (
    ServerSideSessionBackend,
    ServerSideSessionConfig,
)
from litestar.stores.base import Store
from litestar.types import Empty
from sqlalchemy import delete
from sqlmodel import select

from app.auth.principal import ANONYMOUS, Principal
from app.auth.service import principal_for_user
from app.auth.tables import User, WebSession
from app.db import session_scope
from app.settings import Settings, get_settings
from app.timeutil import utcnow

# Cookies and the session middleware never touch the API (bearer tokens, no cookies, so no
# CSRF either), static files or health checks.
NOT_BROWSER_PAGES = ["^/api/", "^/schema", "^/static/", "^/healthz"]
SESSION_HOURS = 12
USER_KEY, PASSWORD_KEY = "uid", "pw"


def _key(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class DatabaseSessionStore(Store):
    """Sessions live in the registry's database, not in a process or a local file: every
    `stagegate serve` process, on any machine behind the proxy, sees the same sessions,
    and logout on one is logout everywhere. Ids are stored hashed."""

    def _get(self, key: str) -> bytes | None:
        with session_scope(write=False) as session:
            row = session.get(WebSession, _key(key))
            if row is None or (row.expires_at and row.expires_at <= utcnow()):
                return None
            return row.data

    def _set(self, key: str, value: bytes, expires_in: int | timedelta | None) -> None:
        if isinstance(expires_in, int):
            expires_in = timedelta(seconds=expires_in)
        with session_scope() as session:
            row = session.get(WebSession, _key(key)) or WebSession(key_hash=_key(key), data=b"")
            row.data = value
            row.expires_at = utcnow() + expires_in if expires_in else None
            session.add(row)
            # Expired sessions are swept on writes (sign-ins), never on reads.
            session.execute(delete(WebSession).where(WebSession.expires_at <= utcnow()))

    def _delete(self, key: str) -> None:
        with session_scope() as session:
            session.execute(delete(WebSession).where(WebSession.key_hash == _key(key)))

    async def set(self, key, value, expires_in=None) -> None:
        data = value.encode() if isinstance(value, str) else value
        await anyio.to_thread.run_sync(self._set, key, data, expires_in)

    async def get(self, key, renew_for=None) -> bytes | None:
        return await anyio.to_thread.run_sync(self._get, key)

    async def delete(self, key) -> None:
        await anyio.to_thread.run_sync(self._delete, key)

    async def delete_all(self) -> None:
        def run() -> None:
            with session_scope() as session:
                session.execute(delete(WebSession))
        await anyio.to_thread.run_sync(run)

    async def exists(self, key) -> bool:
        return await self.get(key) is not None

    async def expires_in(self, key) -> int | None:
        def run() -> int | None:
            with session_scope(write=False) as session:
                row = session.get(WebSession, _key(key))
                if row is None or row.expires_at is None:
                    return None
                return int((row.expires_at - utcnow()).total_seconds())
        return await anyio.to_thread.run_sync(run)


class SessionBackend(ServerSideSessionBackend):
    """Litestar's server-side sessions, with two changes: anonymous visitors get no session
    (no row, no cookie: public pages stay write-free), and the id is replaced whenever the
    signed-in user changes, so a session id planted before sign-in is worthless after."""

    async def load_from_connection(self, connection: ASGIConnection) -> dict:
        data = await super().load_from_connection(connection)
        connection.scope.setdefault("state", {})["loaded_uid"] = data.get(USER_KEY)
        connection.scope["state"]["loaded_session"] = dict(data)
        return data

    async def store_in_message(self, scope_session, message, connection) -> None:
        state = connection.scope.get("state", {})
        had_cookie = bool(connection.cookies.get(self.config.key))
        if scope_session is Empty or not scope_session:
            if had_cookie:
                # Signed out: end the session in the store (the only write), and in any
                # case delete the cookie in the browser (Max-Age=0), so a stale or garbage
                # cookie costs one response header, never a database write per request.
                if state.get("loaded_session"):
                    store = self.config.get_store_from_app(connection.scope["app"])
                    await self.delete(connection.cookies.get(self.config.key), store=store)
                MutableScopeHeaders.from_message(message).add(
                    "Set-Cookie", Cookie(value="", key=self.config.key, max_age=0, expires=0,
                                         **self._cookie_params(max_age=False))
                    .to_header(header=""))
            return
        if had_cookie and scope_session == state.get("loaded_session"):
            return  # unchanged: no write per page view
        store = self.config.get_store_from_app(connection.scope["app"])
        old = connection.cookies.get(self.config.key)
        session_id = connection.get_session_id()
        if not had_cookie or scope_session.get(USER_KEY) != state.get("loaded_uid"):
            if old:
                await self.delete(old, store=store)
            session_id = secrets.token_hex(self.config.session_id_bytes)
        await self.set(session_id=session_id, data=self.serialize_data(scope_session),
                       store=store)
        MutableScopeHeaders.from_message(message).add(
            "Set-Cookie", Cookie(value=session_id, key=self.config.key,
                                 **self._cookie_params()).to_header(header=""))

    def _cookie_params(self, max_age: bool = True) -> dict:
        names = ("path", "domain", "secure", "httponly", "samesite") + (
            ("max_age",) if max_age else ())
        return {k: getattr(self.config, k) for k in names if getattr(self.config, k) is not None}


class SessionConfig(ServerSideSessionConfig):
    _backend_class = SessionBackend


def session_config(settings: Settings) -> SessionConfig:
    return SessionConfig(key="sg_session", max_age=SESSION_HOURS * 3600,
                         secure=settings.secure_cookies, httponly=True, samesite="lax",
                         exclude=NOT_BROWSER_PAGES, store="sessions")


LAZY_SECRET = "derived from the data folder's secret key on first use"


def csrf_config(settings: Settings) -> CSRFConfig:
    # Double-submit token: the cookie (HttpOnly; pages embed the token in each form) must
    # match the form's _csrf_token. The secret is derived from the data folder's key on the
    # first request (csrf_secret), so every process agrees and building an app writes nothing.
    return CSRFConfig(secret=LAZY_SECRET, cookie_name="sg_csrf", cookie_httponly=True,
                      cookie_secure=settings.secure_cookies, cookie_samesite="lax",
                      exclude=NOT_BROWSER_PAGES)


def csrf_secret() -> str:
    return hashlib.sha256(b"csrf:" + get_settings().secret_key).hexdigest()[:32]


def password_mark(user: User) -> str:
    """A short fingerprint of the password hash: setting a new password ends every
    session signed in with the old one."""
    return hashlib.sha256((user.password_hash or "").encode()).hexdigest()[:16]


def _resolve(uid: int, mark: str) -> Principal:
    with session_scope(write=False) as session:
        user = session.exec(select(User).where(User.id == uid)).first()
        # Checked on every request, so a deactivated account's sessions end at once.
        if (user is None or user.deactivated_at is not None or not user.password_hash
                or password_mark(user) != mark):
            return ANONYMOUS
        return principal_for_user(session, user)


async def session_principal(connection: ASGIConnection) -> Principal:
    """The signed-in user of a browser page, or anonymous."""
    data = connection.scope.get("session") or {}
    uid, mark = data.get(USER_KEY), data.get(PASSWORD_KEY)
    if not isinstance(uid, int) or not isinstance(mark, str):
        return ANONYMOUS
    return await anyio.to_thread.run_sync(_resolve, uid, mark)
