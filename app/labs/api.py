"""/api/v1/labs"""

from __future__ import annotations

from litestar import Controller

from app.auth.principal import Principal
from app.auth.service import add_member
from app.db import session_scope
from app.http import PUBLIC, delete, get, patch, post
from app.labs import service
from app.labs.schemas import LabCreate, LabRead, MemberCreate, MemberRoleUpdate
from app.pagination import Page, PageRequest


class LabController(Controller):
    path = "/api/v1/labs"
    tags = ["labs"]

    @get("/", opt=PUBLIC)
    def list_labs(self, page: PageRequest) -> Page[LabRead]:
        with session_scope(write=False) as session:
            rows, cursor = service.list_labs(session, page)
            return Page(items=[LabRead.model_validate(r) for r in rows], next_cursor=cursor)

    @get("/{slug:str}", opt=PUBLIC)
    def get_lab(self, slug: str) -> LabRead:
        with session_scope(write=False) as session:
            return LabRead.model_validate(service.get_lab(session, slug))

    @post("/")
    def create_lab(self, data: LabCreate, principal: Principal) -> LabRead:
        with session_scope() as session:
            lab = service.create_lab(session, principal, data.slug, data.name, data.url)
            return LabRead.model_validate(lab)

    @post("/{slug:str}/members")
    def add_member(self, slug: str, data: MemberCreate, principal: Principal) -> dict:
        with session_scope() as session:
            add_member(session, principal, slug, data.user, data.role)
            return {"lab": slug, "user": data.user, "role": data.role}

    @patch("/{slug:str}/members/{user:str}")
    def change_member_role(self, slug: str, user: str, data: MemberRoleUpdate,
                           principal: Principal) -> dict:
        """Make a member lab_admin or lab_member (lab admins of this lab, coordinators);
        demoting the last lab_admin is 409."""
        with session_scope() as session:
            service.change_member_role(session, principal, slug, user, data.role)
            return {"lab": slug, "user": user, "role": data.role}

    @delete("/{slug:str}/members/{user:str}")
    def remove_member(self, slug: str, user: str, principal: Principal) -> dict:
        """Remove a member (lab admins of this lab, coordinators); removing the last
        lab_admin is 409."""
        with session_scope() as session:
            role = service.remove_member(session, principal, slug, user)
            return {"lab": slug, "user": user, "role": role, "removed": True}
