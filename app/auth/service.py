"""Users, API tokens and resolving a bearer token to a principal."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from datetime import datetime

from sqlalchemy import delete as sa_delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from app.auth.principal import ANONYMOUS, Principal
from app.auth.tables import ApiToken, User, WebSession
from app.errors import Conflict, Invalid, NotFound, Unauthorized
from app.events.service import record
from app.labs.tables import LAB_ROLES, Lab, Membership
from app.settings import get_settings
from app.timeutil import utcnow

TOKEN_PREFIX = "sg_"
WORKER_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


def hash_token(secret: str) -> str:
    # Tokens are 256-bit random, so a fast keyed hash is enough: no dictionary to
    # guess from, and a copied database alone cannot check a token without the key.
    return hmac.new(get_settings().secret_key, secret.encode(), hashlib.sha256).hexdigest()


def create_user(session: Session, actor: Principal, name: str, *, lab_slug: str | None = None,
                role: str | None = None, coordinator: bool = False,
                display_name: str | None = None) -> User:
    # Permission first, existence second: a caller who may not create this user must not
    # learn from a 409 that the name is taken.
    if coordinator or not lab_slug:
        actor.require_coordinator()
    if lab_slug:
        actor.require_admin(find_lab(session, lab_slug).id)
    if session.exec(select(User).where(User.name == name)).first():
        raise Conflict(f"user {name!r} already exists", field="name")
    user = User(name=name, display_name=display_name, is_coordinator=coordinator)
    session.add(user)
    session.flush()
    if lab_slug:
        add_membership(session, actor, user, lab_slug, role or "lab_member")
    record(session, actor, "user", user.id, "created", {"name": name}, visibility="private")
    return user


def add_membership(session: Session, actor: Principal, user: User, lab_slug: str,
                   role: str) -> Membership:
    if role not in LAB_ROLES:
        raise Invalid(f"role must be one of {', '.join(LAB_ROLES)}", field="role")
    lab = find_lab(session, lab_slug)
    actor.require_admin(lab.id)
    existing = session.exec(select(Membership).where(Membership.user_id == user.id,
                                                     Membership.lab_id == lab.id)).first()
    if existing is not None:
        raise Conflict(f"{user.name!r} is already a {existing.role} of {lab_slug!r}",
                       field="user", role=existing.role)
    membership = Membership(user_id=user.id, lab_id=lab.id, role=role)
    session.add(membership)
    try:
        session.flush()
    except IntegrityError:  # a concurrent request added the same member first
        raise Conflict(f"{user.name!r} is already a member of {lab_slug!r}",
                       field="user") from None
    record(session, actor, "membership", membership.id, "created",
           {"user": user.name, "role": role}, lab_id=lab.id)
    return membership


def find_lab(session: Session, slug: str) -> Lab:
    """Labs are public, so an unknown lab may answer 404 before any permission check."""
    lab = session.exec(select(Lab).where(Lab.slug == slug)).first()
    if lab is None:
        raise NotFound(f"no lab {slug!r}", field="lab")
    return lab


def add_member(session: Session, actor: Principal, lab_slug: str, user_name: str,
               role: str) -> Membership:
    """The admin check comes before the user lookup, so the route cannot be used to
    find out which user names exist."""
    actor.require_admin(find_lab(session, lab_slug).id)
    return add_membership(session, actor, get_user(session, user_name), lab_slug, role)


def deactivate_user(session: Session, actor: Principal, name: str) -> User:
    """Coordinators switch an account off. At once: its tokens are revoked (and answer
    401), its web sessions are deleted, and password sign-in is refused; every request
    also re-checks deactivated_at, so nothing in flight outlives it. The row stays:
    events and revisions still name their author."""
    actor.require_coordinator()
    user = get_user(session, name)
    if user.deactivated_at is None:
        now = utcnow()
        user.deactivated_at = now
        session.add(user)
        for token in session.exec(select(ApiToken).where(ApiToken.user_id == user.id,
                                                         ApiToken.revoked_at.is_(None))):
            token.revoked_at = now
            session.add(token)
        end_web_sessions(session, user.id)
        record(session, actor, "user", user.id, "deactivated", {"name": name},
               visibility="private")
    return user


def end_web_sessions(session: Session, user_id: int) -> int:
    """Deletes every browser session signed in as this user (session data is small JSON
    holding the user id; ids are stored hashed, so the rows are found by their data)."""
    ended = 0
    for key_hash, data in session.exec(select(WebSession.key_hash, WebSession.data)).all():
        try:
            uid = json.loads(bytes(data)).get("uid")
        except (ValueError, AttributeError):
            continue
        if uid == user_id:
            session.execute(sa_delete(WebSession).where(WebSession.key_hash == key_hash))
            ended += 1
    return ended


def reactivate_user(session: Session, actor: Principal, name: str) -> User:
    """Coordinators switch an account back on. Its old tokens stay revoked and its old
    sessions stay ended: the user signs in again and makes new tokens."""
    actor.require_coordinator()
    user = get_user(session, name)
    if user.deactivated_at is not None:
        user.deactivated_at = None
        session.add(user)
        record(session, actor, "user", user.id, "reactivated", {"name": name},
               visibility="private")
    return user


def get_user(session: Session, name: str) -> User:
    user = session.exec(select(User).where(User.name == name)).first()
    if user is None:
        raise NotFound(f"no user {name!r}", field="user")
    return user


def create_token(session: Session, actor: Principal, user: User, *, label: str | None = None,
                 expires_at: datetime | None = None,
                 worker: str | None = None) -> tuple[ApiToken, str]:
    """Returns the row and the token itself, which is never stored and shown only now.

    `worker`: a worker token for the remote evaluation worker of that name (the label).
    Only coordinators mint one, and it belongs to a coordinator, who answers for it
    (deactivating them revokes it): a worker downloads whatever checkpoint its job names,
    internal ones included."""
    if actor.user_id != user.id or worker is not None:
        actor.require_coordinator()
    if worker is not None:
        if not WORKER_NAME.fullmatch(worker):
            raise Invalid("a worker name is 1-64 letters, digits, '.', '_' or '-'",
                          field="worker")
        if not user.is_coordinator:
            raise Invalid(f"{user.name!r} is not a coordinator: a worker token belongs to "
                          "one", field="user")
        label = worker
    if expires_at is not None and expires_at <= utcnow():
        raise Invalid("expiry must be in the future", field="expires_at")
    prefix = secrets.token_hex(4)
    secret = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    token = ApiToken(user_id=user.id, prefix=prefix, token_hash=hash_token(secret),
                     label=label, expires_at=expires_at,
                     scope="worker" if worker is not None else "full")
    session.add(token)
    session.flush()
    state = {"user": user.name} | ({"scope": "worker", "worker": worker} if worker else {})
    record(session, actor, "token", prefix, "created", state, visibility="private")
    return token, secret


def list_tokens(session: Session, actor: Principal) -> list[ApiToken]:
    actor.require_user()
    return list(session.exec(select(ApiToken).where(ApiToken.user_id == actor.user_id)
                             .order_by(ApiToken.id)))


def revoke_token(session: Session, actor: Principal, prefix: str) -> ApiToken:
    query = select(ApiToken).where(ApiToken.prefix == prefix)
    if not actor.is_coordinator:
        query = query.where(ApiToken.user_id == actor.user_id)
    token = session.exec(query).first()
    if token is None:
        raise NotFound(f"no token with prefix {prefix!r}", field="prefix")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        session.add(token)
        record(session, actor, "token", prefix, "revoked", {}, visibility="private")
    return token


def principal_for_user(session: Session, user: User) -> Principal:
    roles = {m.lab_id: m.role for m in session.exec(
        select(Membership).where(Membership.user_id == user.id))}
    return Principal(user_id=user.id, name=user.name, is_coordinator=user.is_coordinator,
                     roles=roles)


def authenticate(session: Session, authorization: str | None) -> Principal:
    """Bearer token -> principal; no header -> anonymous; a bad token -> 401."""
    if not authorization:
        return ANONYMOUS
    scheme, _, secret = authorization.partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret.startswith(TOKEN_PREFIX):
        raise Unauthorized("expected 'Authorization: Bearer sg_...'")
    prefix = secret[len(TOKEN_PREFIX):].split("_", 1)[0]
    # Outer join: a token whose user row is gone must answer 401, not fail on None.
    row = session.exec(select(ApiToken, User).join(User, User.id == ApiToken.user_id,
                                                   isouter=True)
                       .where(ApiToken.prefix == prefix)).first()
    token, user = row if row else (None, None)
    if token is None or not hmac.compare_digest(token.token_hash, hash_token(secret)):
        raise Unauthorized("unknown token")
    if user is None or user.deactivated_at is not None:
        raise Unauthorized("this token's user no longer exists or is deactivated")
    if token.revoked_at is not None:
        raise Unauthorized("token revoked")
    if token.expires_at is not None and token.expires_at <= utcnow():
        raise Unauthorized("token expired")
    if token.scope == "worker":
        # No user, labs or roles: the worker acts only through /api/v1/worker/.
        return Principal(name=f"worker:{token.label}", worker=f"{token.label}/{token.prefix}")
    if token.scope != "full":  # a scope this code does not know grants nothing
        raise Unauthorized("this token's scope is not known to this server")
    return principal_for_user(session, user)
