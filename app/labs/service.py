"""Creating and reading labs."""

from __future__ import annotations

import re

from sqlmodel import Session, select

from app.auth.principal import Principal
from app.errors import Conflict, Invalid, NotFound
from app.events.service import record
from app.labs.tables import Lab
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
