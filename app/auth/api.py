"""/api/v1/users, /api/v1/me and /api/v1/tokens"""

from __future__ import annotations

from litestar import Controller

from app.auth import service
from app.auth.principal import Principal
from app.auth.schemas import Me, TokenCreate, TokenCreated, TokenRead, UserCreate, UserRead
from app.auth.tables import User
from app.db import session_scope
from app.http import delete, get, post
from app.labs.tables import Lab


class AccountController(Controller):
    path = "/api/v1"
    tags = ["accounts"]

    @post("/users")
    def create_user(self, data: UserCreate, principal: Principal) -> UserRead:
        with session_scope() as session:
            user = service.create_user(session, principal, data.name, lab_slug=data.lab,
                                       role=data.role, coordinator=data.coordinator,
                                       display_name=data.display_name)
            return UserRead.model_validate(user)

    @delete("/users/{name:str}")
    def deactivate_user(self, name: str, principal: Principal) -> UserRead:
        """Coordinators: at once, the account's tokens are revoked, its web sessions end
        and it can no longer sign in."""
        with session_scope() as session:
            return UserRead.model_validate(service.deactivate_user(session, principal, name))

    @post("/users/{name:str}/reactivate", status_code=200)
    def reactivate_user(self, name: str, principal: Principal) -> UserRead:
        """Coordinators: the account may sign in again; its old tokens stay revoked."""
        with session_scope() as session:
            return UserRead.model_validate(service.reactivate_user(session, principal, name))

    @get("/me")
    def me(self, principal: Principal) -> Me:
        with session_scope(write=False) as session:
            user = session.get(User, principal.user_id)
            labs = {session.get(Lab, lab_id).slug: role
                    for lab_id, role in principal.roles.items()}
            return Me(name=user.name, display_name=user.display_name,
                      is_coordinator=user.is_coordinator, labs=labs)

    @post("/tokens")
    def create_token(self, data: TokenCreate, principal: Principal) -> TokenCreated:
        with session_scope() as session:
            if data.user and data.user != principal.name:
                principal.require_coordinator()  # before the lookup: no user-name probing
            user = (service.get_user(session, data.user) if data.user
                    else session.get(User, principal.user_id))
            token, secret = service.create_token(session, principal, user, label=data.label,
                                                 expires_at=data.expires_at,
                                                 worker=data.worker)
            return TokenCreated(token=secret, **TokenRead.model_validate(token).model_dump())

    @get("/tokens")
    def list_tokens(self, principal: Principal) -> list[TokenRead]:
        with session_scope(write=False) as session:
            return [TokenRead.model_validate(t) for t in service.list_tokens(session, principal)]

    @delete("/tokens/{prefix:str}")
    def revoke_token(self, prefix: str, principal: Principal) -> TokenRead:
        with session_scope() as session:
            return TokenRead.model_validate(service.revoke_token(session, principal, prefix))
