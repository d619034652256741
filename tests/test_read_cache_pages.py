"""The read cache serves public pages too (app/readcache.py): anonymous browsers (who
carry only the CSRF cookie) get cached pages, which writes, the day changing and the
request's address all change; forms and signed-in browsers are never cached."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from litestar.testing import TestClient

from app import create_app
from app.db import session_scope
from app.plans.schemas import PlanCreate
from app.plans.service import file_plan
from app.timeutil import freeze
from tests.factories import FOUR_STAGES
from tests.queries import count_queries


def pages(world, plan: int) -> list[str]:
    return ["/", "/models", "/models/lab-a/m", f"/plans/{plan}", "/incidents",
            "/labs/lab-a", "/feeds/releases.atom", "/feeds/incidents.atom"]


def test_anonymous_pages_are_served_from_the_cache_until_a_write(client, world):
    plan = world.plan(filed=True)
    first = {p: client.get(p) for p in pages(world, plan)}
    assert all(r.status_code == 200 for r in first.values()), \
        {p: r.status_code for p, r in first.items()}
    assert "sg_csrf" in client.cookies  # a browser's only cookie; it keeps it cacheable
    with count_queries() as seen:
        again = {p: client.get(p).text for p in first}
    assert seen == [] and again == {p: r.text for p, r in first.items()}
    # A write shows on the next read of every page that shows it.
    version = client.get(f"/api/v1/plans/{plan}").json()["version"]
    r = client.patch(f"/api/v1/plans/{plan}", headers=world.a_member.headers,
                     json={"title": "Revised staged release", "version": version})
    assert r.status_code == 200, r.text
    assert "Revised staged release" in client.get(f"/plans/{plan}").text
    assert "Revised staged release" in client.get("/models/lab-a/m").text


def test_a_page_with_a_form_is_each_browser_s_own(settings, world):
    """The report form carries the CSRF token of the browser that asked: two browsers
    get two tokens, each matching its own cookie, and both can submit."""
    app = create_app()
    with TestClient(app) as one, TestClient(app) as two:
        tokens = []
        for browser in (one, two):
            html = browser.get("/incidents/report").text
            tokens.append(re.search(r'name="_csrf_token" value="([^"]*)"', html).group(1))
            assert browser.cookies["sg_csrf"] == tokens[-1]
        assert tokens[0] != tokens[1]


def test_signed_in_browsers_never_share_the_anonymous_page(client, world):
    client.get("/")
    with count_queries() as seen:
        r = client.get("/", cookies={"sg_session": "someone"})
    assert r.status_code == 200 and seen  # computed for them, not replayed
    with count_queries() as seen:
        client.get("/", headers=world.a_member.headers)
    assert seen


def test_the_address_asked_is_part_of_the_key(client, world):
    world.plan(filed=True)
    a = client.get("/feeds/releases.atom", headers={"host": "a.example"}).text
    b = client.get("/feeds/releases.atom", headers={"host": "b.example"}).text
    assert "a.example" in a and "b.example" in b and "a.example" not in b


def test_the_day_changing_drops_pages_judged_on_today(client, world):
    """The plan page shows compliance 'as of' today: past midnight it is judged again."""
    with session_scope() as s:
        plan = file_plan(s, world.a_member.principal, PlanCreate(
            model="lab-a/m", title="Judged", stages=FOUR_STAGES, file=True,
            policies=["pai-publication-norms"])).id
    late = datetime(2030, 5, 4, 23, 59, 30, tzinfo=UTC)
    try:
        freeze(late)
        assert "2030-05-04" in client.get(f"/plans/{plan}").text
        freeze(late + timedelta(seconds=10))
        with count_queries() as seen:
            client.get(f"/plans/{plan}")
        assert seen == []  # same day: cached
        freeze(late + timedelta(minutes=1))
        page = client.get(f"/plans/{plan}").text
        assert "2030-05-05" in page and "2030-05-04" not in page
    finally:
        freeze(None)


def test_a_browser_gets_its_csrf_cookie_from_the_form_it_opens(client, world):
    """A cached page is served before the CSRF middleware: it sets no cookie (it has no
    form). The form page, never cached, gives the browser its own cookie and token."""
    client.get("/models")
    client.cookies.clear()
    with count_queries() as seen:
        r = client.get("/models")
    assert seen == [] and "set-cookie" not in r.headers
    form = client.get("/incidents/report")
    token = re.search(r'name="_csrf_token" value="([^"]*)"', form.text).group(1)
    assert client.cookies["sg_csrf"] == token


def test_no_cache_from_the_client_computes_the_answer_again(client, world):
    client.get("/api/v1/models")
    client.get("/models")
    for path in ("/api/v1/models", "/models"):
        with count_queries() as seen:
            assert client.get(path, headers={"Cache-Control": "no-cache"}).status_code == 200
        assert seen, path
        with count_queries() as seen:
            client.get(path)
        assert seen == [], path  # the fresh answer was kept
