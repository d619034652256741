"""Who is acting: a user with lab roles, a coordinator, or anonymous."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.errors import Forbidden, Unauthorized


@dataclass(frozen=True)
class Principal:
    user_id: int | None = None
    name: str = "anonymous"
    is_coordinator: bool = False
    # lab_id -> role ("lab_admin" | "lab_member")
    roles: dict[int, str] = field(default_factory=dict)
    # A worker token's "NAME/PREFIX": the stem of the leases it holds. Such a principal
    # has no user, labs or roles (so any rule treats it as anonymous), and app/http.py
    # lets it reach only the routes marked opt={"worker": True}.
    worker: str | None = None

    @property
    def is_worker(self) -> bool:
        return self.worker is not None

    @property
    def is_anonymous(self) -> bool:
        return self.user_id is None and not self.is_coordinator

    @property
    def lab_ids(self) -> list[int]:
        return list(self.roles)

    def is_member(self, lab_id: int | None) -> bool:
        return lab_id in self.roles

    def is_admin(self, lab_id: int | None) -> bool:
        return self.roles.get(lab_id) == "lab_admin"

    def sees_lab(self, lab_id: int | None) -> bool:
        """May read a lab's non-public objects."""
        return self.is_coordinator or self.is_member(lab_id)

    def require_user(self) -> None:
        if self.is_anonymous:
            raise Unauthorized("this action needs a bearer token")

    def require_member(self, lab_id: int) -> None:
        self.require_user()
        if not (self.is_member(lab_id) or self.is_coordinator):
            raise Forbidden("you are not a member of this lab")

    def require_admin(self, lab_id: int) -> None:
        self.require_user()
        if not (self.is_admin(lab_id) or self.is_coordinator):
            raise Forbidden("this action needs the lab_admin role for this lab")

    def require_worker(self) -> None:
        if not self.is_worker:
            self.require_user()
            raise Forbidden("this route is for evaluation workers: it needs a worker token "
                            "(`stagegate token create --worker NAME`)")

    def require_coordinator(self) -> None:
        self.require_user()
        if not self.is_coordinator:
            raise Forbidden("this action needs the coordinator role")


ANONYMOUS = Principal()
# The operator at the console (`stagegate` CLI commands run on the server itself).
SYSTEM = Principal(name="system", is_coordinator=True)
