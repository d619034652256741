"""Web sign-in: argon2id password hashes and login throttling kept in the database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func
from sqlmodel import Session, select

from app.auth.principal import Principal
from app.auth.tables import LoginFailure, User
from app.db import session_scope
from app.errors import Invalid
from app.events.service import record
from app.timeutil import utcnow

# argon2-cffi's defaults are argon2id with RFC 9106's low-memory profile (64 MiB, t=3).
HASHER = PasswordHasher()
MIN_LENGTH = 12
MAX_LENGTH = 1024  # argon2 takes any length; a megabyte "password" is only a cost to us

# Throttling slows guessing without handing anyone a lock-out: failures are counted per
# (account, client address) pair and per client address, in a sliding window. After
# PER_ACCOUNT failures from one address for one account, that address waits (429 with
# Retry-After) for that account only; the right password from any other address still
# signs in, so nobody can lock a colleague out. PER_CLIENT stops one address spraying
# many accounts. Rows live in the database, so restarts and every server process agree.
WINDOW = timedelta(minutes=15)
PER_ACCOUNT = 5
PER_CLIENT = 20
# Verified against when the user does not exist, so both paths cost one argon2 verify.
_DUMMY = HASHER.hash("not a real password, only here to spend the same time")


def set_password(session: Session, actor: Principal, user: User, password: str) -> None:
    if actor.user_id != user.id:
        actor.require_coordinator()
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise Invalid(f"a password has {MIN_LENGTH} to {MAX_LENGTH} characters",
                      field="password")
    user.password_hash = HASHER.hash(password)
    session.add(user)
    session.flush()
    record(session, actor, "user", user.id, "password_set", {"name": user.name},
           visibility="private")


@dataclass(frozen=True)
class LoginResult:
    user: User | None = None
    # Seconds until another try is allowed, when throttled (nothing was checked then).
    retry_after: int = 0


def _keys(name: str, client: str) -> tuple[str, str]:
    return f"user:{name.lower()[:64]}|client:{client[:64]}", f"client:{client[:64]}"


def _retry_after(session: Session, key: str, limit: int) -> int:
    since = utcnow() - WINDOW
    count, oldest = session.exec(select(func.count(), func.min(LoginFailure.at))
                                 .where(LoginFailure.key == key,
                                        LoginFailure.at > since)).one()
    if count < limit:
        return 0
    return max(1, int((oldest + WINDOW - utcnow()).total_seconds()) + 1)


def _verify(encoded: str, password: str) -> bool:
    try:
        return HASHER.verify(encoded, password[:MAX_LENGTH])
    except (VerificationError, InvalidHashError):
        return False


def check_login(name: str, password: str, client: str) -> LoginResult:
    """The user if the password matches; a throttled attempt checks nothing.

    Three short steps, none holding a write transaction while argon2 runs (on SQLite a
    write transaction blocks every other writer): a read (throttle, the user's hash), the
    verify outside any transaction, then a short write of the bookkeeping. A deactivated
    account never signs in."""
    pair, address = _keys(name, client)
    with session_scope(write=False) as session:
        wait = max(_retry_after(session, pair, PER_ACCOUNT),
                   _retry_after(session, address, PER_CLIENT))
        if wait:
            return LoginResult(retry_after=wait)
        user = session.exec(select(User).where(User.name == name)).first()
        encoded = user.password_hash if user and user.password_hash else None
        active = user is not None and user.deactivated_at is None
        user_id = user.id if user else None
    ok = _verify(encoded or _DUMMY, password) and encoded is not None and active
    rehashed = HASHER.hash(password[:MAX_LENGTH]) if ok and HASHER.check_needs_rehash(
        encoded) else None
    with session_scope() as session:
        user = session.get(User, user_id) if ok else None
        # Re-read: the password may have changed, or the account been switched off, while
        # the hash was being checked.
        if user is None or user.password_hash != encoded or user.deactivated_at is not None:
            session.add_all([LoginFailure(key=pair), LoginFailure(key=address)])
            # Old rows only cost space; sweep them while we are writing anyway.
            session.execute(delete(LoginFailure).where(LoginFailure.at <= utcnow() - WINDOW))
            session.flush()
            return LoginResult()
        session.execute(delete(LoginFailure).where(LoginFailure.key == pair))
        if rehashed:
            user.password_hash = rehashed
            session.add(user)
        session.flush()
        return LoginResult(user=user)
