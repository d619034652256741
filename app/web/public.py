"""Public pages: home, models and cards, plans, incidents, agreements, policies, labs."""

from __future__ import annotations

from litestar.response import Template

from app.auth.principal import Principal
from app.http import PUBLIC, get
from app.web.pages import page


@get("/", opt=PUBLIC, name="home")
def home(principal: Principal) -> Template:
    return page("home.html")


def public_handlers() -> list:
    return [home]
