"""Accounts in the browser: a lab's members and their roles (/lab/members) and, for
coordinators, every user with deactivate and reactivate (/console/users). The same
services as the API (POST/PATCH/DELETE /api/v1/labs/{slug}/members, DELETE
/api/v1/users/{name}, POST /api/v1/users/{name}/reactivate), acting as the signed-in
principal, so the same rules hold: only a lab's admins (and coordinators) change its
members, the last lab_admin stays, only coordinators switch accounts off and on. A
refusal re-renders the page with its reason and what was typed."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

import anyio
import litestar
import pydantic
from litestar import Request, Response
from litestar.response import Redirect, Template
from sqlmodel import select

from app.auth import service as accounts
from app.auth.principal import Principal
from app.auth.tables import User
from app.db import session_scope
from app.errors import DomainError, Forbidden, Invalid
from app.http import get
from app.labs import service as labs
from app.labs.tables import LAB_ROLES, Lab, Membership
from app.norms import service as norms
from app.norms.gate import policies_for
from app.norms.schemas import ExemptionCreate
from app.plans.service import get_plan, stages_of
from app.web.pages import page
from app.web.problems import problem_of

# ?done= carries a code, never text (like app.web.forms.DONE): unknown codes show nothing.
MEMBER_DONE = {"member-added": "Member added.", "role-changed": "Role changed.",
               "role-unchanged": "That member already had that role; nothing changed.",
               "member-removed": "Member removed."}
USER_DONE = {"deactivated": "Account deactivated: its sessions and tokens have ended.",
             "reactivated": "Account reactivated: they can sign in again with their password "
                            "(old tokens stay revoked)."}
MAX_NAME = 64


def _text(form, key: str, limit: int = MAX_NAME) -> str:
    return str(form.get(key, "")).strip()[:limit]


def _refused(exc: DomainError) -> bool:
    """Refusals of who is asking are the app's own 401/403 pages, not a form error."""
    return exc.status in (401, 403)


# --- /lab/members ----------------------------------------------------------------------

def _members_context(principal: Principal, typed: dict | None = None,
                     error: dict | None = None, done: str | None = None) -> dict:
    """Each of the principal's labs, its members (name, role, active) and whether the
    principal may change them (lab_admin of that lab, or a coordinator)."""
    with session_scope(write=False) as session:
        rows = session.exec(select(Lab).where(Lab.id.in_(principal.lab_ids or [-1]))
                            .order_by(Lab.slug)).all()
        lab_list = []
        for lab in rows:
            members = session.exec(
                select(User.name, User.display_name, User.deactivated_at, Membership.role)
                .join(Membership, Membership.user_id == User.id)
                .where(Membership.lab_id == lab.id).order_by(User.name)).all()
            lab_list.append({
                "slug": lab.slug, "name": lab.name, "my_role": principal.roles.get(lab.id),
                "can_manage": principal.is_admin(lab.id) or principal.is_coordinator,
                "members": [{"name": n, "display_name": d, "active": deactivated is None,
                             "role": role, "is_me": n == principal.name}
                            for n, d, deactivated, role in members]})
    return {"me": principal, "labs": lab_list, "roles": LAB_ROLES, "typed": typed or {},
            "error": error, "done": MEMBER_DONE.get(done or "")}


def _require_lab_user(principal: Principal) -> None:
    if not (principal.roles or principal.is_coordinator):
        raise Forbidden("lab pages are for members of a lab")


@get("/members", name="lab_members")
def members_page(principal: Principal, done: str | None = None) -> Template:
    _require_lab_user(principal)
    return page("forms/members.html", **_members_context(principal, done=done))


async def _member_action(request: Request, principal: Principal, action) -> Response:
    """Runs one membership write (`action(form)` returns a MEMBER_DONE code); a refusal
    shows the members page again with the reason and the typed fields, at its status."""
    _require_lab_user(principal)
    form = await request.form()
    typed = {k: _text(form, k) for k in ("lab", "user", "role", "form")}
    try:
        code = await anyio.to_thread.run_sync(action, form)
    except DomainError as exc:
        if _refused(exc):
            raise
        error = problem_of(exc)
        context = await anyio.to_thread.run_sync(
            lambda: _members_context(principal, typed, error))
        return page("forms/members.html", status=error["status"], **context)
    return Redirect(f"/lab/members?{urlencode({'done': code})}", status_code=303)


def _role(form) -> str:
    role = _text(form, "role", 20)
    if role not in LAB_ROLES:
        raise Invalid(f"role must be one of {', '.join(LAB_ROLES)}", field="role")
    return role


@litestar.post("/members/add", status_code=303)
async def add_member_action(request: Request, principal: Principal) -> Response:
    """Add an existing user to a lab with a role (as POST /api/v1/labs/{slug}/members)."""
    def run(form) -> str:
        lab, user = _text(form, "lab"), _text(form, "user")
        with session_scope() as session:
            # The admin check comes first (in the service), before the name is looked up.
            if not user:
                principal.require_admin(accounts.find_lab(session, lab).id)
                raise Invalid("give the user's name", field="user")
            accounts.add_member(session, principal, lab, user, _role(form))
        return "member-added"
    return await _member_action(request, principal, run)


@litestar.post("/members/role", status_code=303)
async def change_role_action(request: Request, principal: Principal) -> Response:
    """Make a member lab_admin or lab_member (as PATCH .../members/{user})."""
    def run(form) -> str:
        with session_scope() as session:
            lab = _text(form, "lab")
            before = _current_role(session, principal, lab, _text(form, "user"))
            role = _role(form)
            labs.change_member_role(session, principal, lab, _text(form, "user"), role)
        return "role-unchanged" if before == role else "role-changed"
    return await _member_action(request, principal, run)


def _current_role(session, principal: Principal, lab_slug: str, user: str) -> str | None:
    """The member's role now, for the notice only (read after the service's own checks
    would be; an unknown lab or user leaves the service to refuse)."""
    lab = session.exec(select(Lab).where(Lab.slug == lab_slug)).first()
    if lab is None or not (principal.is_admin(lab.id) or principal.is_coordinator):
        return None
    return session.exec(select(Membership.role).join(User, User.id == Membership.user_id)
                        .where(Membership.lab_id == lab.id, User.name == user)).first()


@litestar.post("/members/remove", status_code=303)
async def remove_member_action(request: Request, principal: Principal) -> Response:
    """Remove a member (as DELETE .../members/{user}); the last lab_admin stays (409)."""
    def run(form) -> str:
        with session_scope() as session:
            labs.remove_member(session, principal, _text(form, "lab"), _text(form, "user"))
        return "member-removed"
    return await _member_action(request, principal, run)


def lab_people_handlers() -> list:
    """Registered under /lab (app.web)."""
    return [members_page, add_member_action, change_role_action, remove_member_action]


# --- /console/users --------------------------------------------------------------------

def _users_context(principal: Principal, typed: dict | None = None,
                   error: dict | None = None, done: str | None = None) -> dict:
    with session_scope(write=False) as session:
        users = session.exec(select(User).order_by(User.name)).all()
        memberships: dict[int, list[dict]] = {}
        for user_id, slug, role in session.exec(
                select(Membership.user_id, Lab.slug, Membership.role)
                .join(Lab, Lab.id == Membership.lab_id).order_by(Lab.slug)):
            memberships.setdefault(user_id, []).append({"lab": slug, "role": role})
        rows = [{"name": u.name, "display_name": u.display_name,
                 "is_coordinator": u.is_coordinator, "labs": memberships.get(u.id, []),
                 "deactivated_at": u.deactivated_at, "can_sign_in": bool(u.password_hash),
                 "is_me": u.id == principal.user_id} for u in users]
    return {"me": principal, "users": rows, "typed": typed or {}, "error": error,
            "done": USER_DONE.get(done or "")}


@get("/users", name="console_users")
def users_page(principal: Principal, done: str | None = None) -> Template:
    """Every account: its labs and roles, active or deactivated (coordinators)."""
    principal.require_coordinator()
    return page("console/users.html", **_users_context(principal, done=done))


async def _user_action(request: Request, principal: Principal, action) -> Response:
    principal.require_coordinator()
    form = await request.form()
    typed = {k: _text(form, k) for k in ("name", "confirm")}
    try:
        code = await anyio.to_thread.run_sync(action, typed["name"], typed["confirm"])
    except DomainError as exc:
        if _refused(exc):
            raise
        error = problem_of(exc)
        context = await anyio.to_thread.run_sync(
            lambda: _users_context(principal, typed, error))
        return page("console/users.html", status=error["status"], **context)
    # Deactivating oneself ends this very session: the next page asks to sign in.
    return Redirect(f"/console/users?{urlencode({'done': code})}", status_code=303)


@litestar.post("/users/deactivate", status_code=303)
async def deactivate_action(request: Request, principal: Principal) -> Response:
    """Switch an account off (as DELETE /api/v1/users/{name}): its tokens are revoked and
    its web sessions end at once. The form asks for the name typed again."""
    def run(name: str, confirm: str) -> str:
        if not name:
            raise Invalid("choose an account", field="name")
        if confirm != name:
            raise Invalid(f"type the account's name ({name}) to confirm", field="confirm")
        with session_scope() as session:
            accounts.deactivate_user(session, principal, name)
        return "deactivated"
    return await _user_action(request, principal, run)


@litestar.post("/users/reactivate", status_code=303)
async def reactivate_action(request: Request, principal: Principal) -> Response:
    """Switch an account back on (as POST /api/v1/users/{name}/reactivate)."""
    def run(name: str, _confirm: str) -> str:
        if not name:
            raise Invalid("choose an account", field="name")
        with session_scope() as session:
            accounts.reactivate_user(session, principal, name)
        return "reactivated"
    return await _user_action(request, principal, run)


# --- /console/plans/{id}/exemptions ----------------------------------------------------

EXEMPTION_DONE = {"granted": "Exemption granted.", "revoked": "Exemption revoked."}
EXEMPTION_FIELDS = ("position", "policy", "rule", "reason", "expires_at")


def _exemptions_context(principal: Principal, plan_id: int, typed: dict | None = None,
                        error: dict | None = None, done: str | None = None) -> dict:
    """The plan (as a coordinator sees it), its exemptions, and the choices for a new one:
    its stages, its policies and their rules (as GET /api/v1/plans/{id}/exemptions)."""
    with session_scope(write=False) as session:
        plan = get_plan(session, principal, plan_id)
        rows = norms.exemptions_of_plan(session, plan)
        stages = [{"position": st.position, "name": st.name}
                  for st in stages_of(session, plan.id)]
        policies = [{"id": p.id, "title": p.title, "rules": [r.id for r in p.rules]}
                    for p in policies_for(plan.policies)]
        now = datetime.now(UTC)
        exemptions = [{"id": e.id, "position": e.position, "policy": e.policy_id,
                       "rule": e.rule_id, "reason": e.reason, "expires_at": e.expires_at,
                       "granted_by": e.granted_by, "granted_at": e.granted_at,
                       "revoked_at": e.revoked_at,
                       "state": "revoked" if e.revoked_at else
                       ("expired" if _aware(e.expires_at) <= now else "in force")}
                      for e in rows]
        summary = {"id": plan.id, "title": plan.title, "status": plan.status}
    return {"me": principal, "plan": summary, "exemptions": exemptions, "stages": stages,
            "policies": policies, "typed": typed or {}, "error": error,
            "done": EXEMPTION_DONE.get(done or "")}


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@get("/plans/{plan_id:int}/exemptions", name="console_exemptions")
def exemptions_page(principal: Principal, plan_id: int, done: str | None = None) -> Template:
    principal.require_coordinator()
    return page("console/exemptions.html",
                **_exemptions_context(principal, plan_id, done=done))


def _expires(raw: str) -> datetime:
    try:
        value = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise Invalid("give a date and time, e.g. 2027-01-01T00:00 (UTC)",
                      field="expires_at") from None
    return _aware(value)


async def _exemption_action(request: Request, principal: Principal, plan_id: int,
                            action) -> Response:
    principal.require_coordinator()
    form = await request.form()
    typed = {k: str(form.get(k, "")).strip()[:5000 if k == "reason" else 64]
             for k in EXEMPTION_FIELDS}
    try:
        code = await anyio.to_thread.run_sync(action, form, typed)
    except (DomainError, pydantic.ValidationError) as exc:
        if isinstance(exc, DomainError) and (_refused(exc) or (
                exc.status == 404 and exc.field not in ("position", "exemption_id"))):
            raise
        error = problem_of(exc) if isinstance(exc, DomainError) else {
            "status": 422, "title": "Invalid input", "violations": [], "allowed": None,
            "detail": "the exemption was not granted; fix the fields below",
            "errors": [{"field": ".".join(str(p) for p in e["loc"]) or "form",
                        "reason": e["msg"]} for e in exc.errors()]}
        context = await anyio.to_thread.run_sync(
            lambda: _exemptions_context(principal, plan_id, typed, error))
        return page("console/exemptions.html", status=error["status"], **context)
    return Redirect(f"/console/plans/{plan_id}/exemptions?{urlencode({'done': code})}",
                    status_code=303)


@litestar.post("/plans/{plan_id:int}/exemptions", status_code=303)
async def grant_exemption_action(request: Request, principal: Principal,
                                 plan_id: int) -> Response:
    """Waive one rule on one stage until a date (as POST /api/v1/plans/{id}/exemptions)."""
    def run(_form, typed: dict) -> str:
        if not typed["position"].isdigit():
            raise Invalid("choose a stage", field="position")
        data = ExemptionCreate(position=int(typed["position"]), policy=typed["policy"],
                               rule=typed["rule"], reason=typed["reason"],
                               expires_at=_expires(typed["expires_at"]))
        with session_scope() as session:
            norms.grant_exemption(session, principal, plan_id, data)
        return "granted"
    return await _exemption_action(request, principal, plan_id, run)


@litestar.post("/plans/{plan_id:int}/exemptions/revoke", status_code=303)
async def revoke_exemption_action(request: Request, principal: Principal,
                                  plan_id: int) -> Response:
    """Revoke one (as POST .../exemptions/{exemption_id}/revoke)."""
    def run(form, _typed: dict) -> str:
        raw = str(form.get("exemption_id", "")).strip()
        if not (raw.isascii() and raw.isdigit() and len(raw) < 19):
            raise Invalid("choose an exemption", field="exemption_id")
        with session_scope() as session:
            norms.revoke_exemption(session, principal, plan_id, int(raw))
        return "revoked"
    return await _exemption_action(request, principal, plan_id, run)


def console_people_handlers() -> list:
    """Registered under /console (app.web.console)."""
    return [users_page, deactivate_action, reactivate_action, exemptions_page,
            grant_exemption_action, revoke_exemption_action]
