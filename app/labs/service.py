"""Creating and reading labs; removing members and changing their roles."""

from __future__ import annotations

import re

from sqlmodel import Session, func, select

from app.auth.principal import Principal
from app.auth.service import find_lab, get_user
from app.auth.tables import User
from app.errors import Conflict, Invalid, NotFound
from app.events.service import record
from app.labs.tables import LAB_ROLES, Lab, Membership
from app.pagination import PageRequest, paginate
from app.urls import require_http_url

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def check_slug(slug: str, field: str = "slug") -> str:
    if not SLUG.match(slug):
        raise Invalid("use 1-63 lowercase letters, digits and hyphens", field=field)
    return slug


def lab_state(lab: Lab) -> dict:
    return {"slug": lab.slug, "name": lab.name, "url": lab.url}


def create_lab(session: Session, actor: Principal, slug: str, name: str,
               url: str | None = None) -> Lab:
    actor.require_coordinator()
    check_slug(slug)
    require_http_url(url, "url")
    if session.exec(select(Lab).where(Lab.slug == slug)).first():
        raise Conflict(f"lab {slug!r} already exists", field="slug")
    lab = Lab(slug=slug, name=name, url=url)
    session.add(lab)
    session.flush()
    record(session, actor, "lab", lab.slug, "created", lab_state(lab), lab_id=lab.id,
           visibility="public")
    return lab


def get_lab(session: Session, slug: str) -> Lab:
    lab = session.exec(select(Lab).where(Lab.slug == slug)).first()
    if lab is None:
        raise NotFound(f"no lab {slug!r}", field="lab")
    return lab


def list_labs(session: Session, page: PageRequest):
    return paginate(session, select(Lab), Lab.id, page, descending=False)


def _membership_for_change(session: Session, actor: Principal, lab_slug: str,
                           user_name: str) -> tuple[Lab, User, Membership]:
    """The admin check comes before the user lookup (like `add_member`), so these routes
    cannot be used to find out which user names exist. The lab row is locked (PostgreSQL;
    SQLite writes are serialised anyway) so two admins demoting each other at once cannot
    leave the lab without one."""
    lab = find_lab(session, lab_slug)
    actor.require_admin(lab.id)
    session.exec(select(Lab.id).where(Lab.id == lab.id).with_for_update()).first()
    user = get_user(session, user_name)
    membership = session.exec(select(Membership).where(Membership.user_id == user.id,
                                                       Membership.lab_id == lab.id)).first()
    if membership is None:
        raise NotFound(f"{user_name!r} is not a member of {lab_slug!r}", field="user")
    return lab, user, membership


def _require_another_admin(session: Session, lab: Lab, membership: Membership,
                           doing: str, field: str) -> None:
    """A lab keeps at least one active lab_admin (a deactivated one cannot act)."""
    if membership.role != "lab_admin":
        return
    others = session.exec(select(func.count()).select_from(Membership).join(
        User, User.id == Membership.user_id).where(
        Membership.lab_id == lab.id, Membership.role == "lab_admin",
        Membership.id != membership.id, User.deactivated_at.is_(None))).one()
    if not others:
        raise Conflict(f"cannot {doing} the last lab_admin of {lab.slug!r}; make another "
                       "member lab_admin first", field=field)


def remove_member(session: Session, actor: Principal, lab_slug: str, user_name: str) -> str:
    """Removes a membership (lab admins of the lab, coordinators); returns its old role."""
    lab, user, membership = _membership_for_change(session, actor, lab_slug, user_name)
    _require_another_admin(session, lab, membership, "remove", "user")
    role, membership_id = membership.role, membership.id
    session.delete(membership)
    session.flush()
    record(session, actor, "membership", membership_id, "removed",
           {"user": user.name, "role": role}, lab_id=lab.id)
    return role


def change_member_role(session: Session, actor: Principal, lab_slug: str, user_name: str,
                       role: str) -> Membership:
    """Makes a member lab_admin or lab_member (lab admins of the lab, coordinators).
    Setting the role a member already has changes nothing and records nothing."""
    lab, user, membership = _membership_for_change(session, actor, lab_slug, user_name)
    if role not in LAB_ROLES:
        raise Invalid(f"role must be one of {', '.join(LAB_ROLES)}", field="role")
    if membership.role == role:
        return membership
    if role != "lab_admin":
        _require_another_admin(session, lab, membership, "demote", "role")
    membership.role = role
    session.add(membership)
    session.flush()
    record(session, actor, "membership", membership.id, "role_changed",
           {"user": user.name, "role": role}, lab_id=lab.id)
    return membership
