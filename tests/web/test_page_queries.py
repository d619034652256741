"""What a computed page costs and how its lists page (issue: public pages fast uncached):
a page's queries do not grow with the rows it lists, /models pages with a "next" link,
and the lab page and card show the same incidents the search would (visible ones only,
newest first). SQLite and PostgreSQL, through Litestar's test client."""

from __future__ import annotations

import re
from datetime import date

import pytest

from app.auth.principal import SYSTEM
from app.db import session_scope
from app.incidents.schemas import IncidentCreate
from app.incidents.service import submit_incident, transition_incident
from app.models.schemas import ModelCreate
from app.models.service import create_model
from app.web import public
from tests.queries import count_queries


def _queries(client, path: str, headers: dict | None = None) -> int:
    client.get(path, headers=headers or {})  # the read cache notes the write (once)
    with count_queries() as seen:  # computed, not served from the read cache
        r = client.get(path, headers={"Cache-Control": "no-cache", **(headers or {})})
        assert r.status_code == 200, (path, r.text[:500])
    return len(seen)


def _incident(world, title: str, occurred: str, *, public: bool, model: bool = True) -> int:
    with session_scope() as s:
        incident = submit_incident(s, world.a_member.principal, IncidentCreate(
            title=title, occurred=date.fromisoformat(occurred), harm_types=["phishing"],
            severity="high", labs=["lab-a"], models=["lab-a/m"] if model else [],
            reports=[{"text": f"Seen *{title}*."}]))
        if public:
            for to in ("triaged", "confirmed"):
                incident = transition_incident(s, world.coord.principal, incident.id, to,
                                               incident.version)
        return incident.id


def _more(world, n: int, start: int = 0) -> None:
    """n more models of lab-a, public incidents of lab-a/m, and filed plans of lab-b/m
    (a card computes each of its plans' compliance: a few queries per plan, by design)."""
    with session_scope() as s:
        for i in range(start, start + n):
            create_model(s, SYSTEM, ModelCreate(lab="lab-a", slug=f"more-{i}", name=f"More {i}"))
    for i in range(start, start + n):
        world.plan(filed=True, lab="lab-b", title=f"Plan {i}")
        _incident(world, f"Incident {i}", f"2026-01-{i + 1:02d}", public=True)


PAGES_TO_COUNT = ["/", "/models", "/labs/lab-a", "/labs/lab-b", "/models/lab-a/m",
                  "/feeds/releases.atom", "/feeds/incidents.atom", "/incidents"]


@pytest.mark.parametrize("reader", ["anonymous", "a_member"])
def test_a_page_costs_the_same_queries_whatever_it_lists(client, world, reader):
    headers = {} if reader == "anonymous" else getattr(world, reader).headers
    _more(world, 1)
    before = {path: _queries(client, path, headers) for path in PAGES_TO_COUNT}
    _more(world, 6, start=1)  # six more models, plans and incidents on every list
    after = {path: _queries(client, path, headers) for path in PAGES_TO_COUNT}
    assert after == before
    page = client.get("/labs/lab-a", headers=headers).text
    assert "More 6" in page and "Incident 6" in page
    assert client.get("/labs/lab-b", headers=headers).text.count('href="/plans/') == 7
    assert "Incident 6" in client.get("/models/lab-a/m", headers=headers).text


def test_the_plan_page_checks_the_plan_once(client, world):
    plan_id = world.plan(filed=True)
    with count_queries() as seen:
        r = client.get(f"/plans/{plan_id}")
    assert r.status_code == 200 and "Staged release" in r.text
    plan_reads = [s for s, _ in seen if s.lstrip().upper().startswith("SELECT")
                  and "FROM release_plan" in s and "release_plan.id =" in s]
    assert len(plan_reads) == 1, plan_reads


def _names(html: str) -> list[str]:
    return re.findall(r'<td><a href="/models/[^"]+">([^<]+)</a></td>', html)


def _next(html: str) -> str | None:
    match = re.search(r'<a href="([^"]+)" rel="next">', html)
    return match.group(1).replace("&amp;", "&") if match else None


def test_the_models_page_pages_with_a_next_link(client, world, monkeypatch):
    monkeypatch.setattr(public, "MODELS_PAGE", 3)
    with session_scope() as s:
        for i in range(6):
            create_model(s, SYSTEM, ModelCreate(lab="lab-a", slug=f"bulk-{i}", name=f"Bulk {i}"))
        create_model(s, SYSTEM, ModelCreate(lab="lab-a", slug="bulk-hidden", name="Bulk hidden",
                                            public=False))
    seen, url, pages = [], "/models", 0
    while url:
        html = client.get(url).text
        seen += _names(html)
        url, pages = _next(html), pages + 1
        assert pages < 10
    # Every public model once, newest first, over three pages; the private one never.
    assert seen == [f"Bulk {i}" for i in reversed(range(6))] + ["Model B", "Model A"]
    assert pages == 3

    first = client.get("/models?q=BULK").text  # the filter is in the query, pages keep it
    assert _names(first) == ["Bulk 5", "Bulk 4", "Bulk 3"] and "3 models on this page" in first
    second = client.get(_next(first)).text
    assert _next(first).startswith("/models?q=BULK&") and 'href="/models?q=BULK">First' in second
    assert _names(second) == ["Bulk 2", "Bulk 1", "Bulk 0"] and _next(second) is None
    assert _names(client.get("/models?q=hidden").text) == []
    mine = client.get("/models?q=hidden", headers=world.a_member.headers).text
    assert _names(mine) == ["Bulk hidden"]  # its lab sees it
    assert _names(client.get("/models?q=bulk&lab=lab-b").text) == []


def test_lab_page_and_card_show_the_visible_incidents_newest_first(client, world):
    _incident(world, "Older public", "2026-01-01", public=True)
    _incident(world, "Newer public", "2026-03-01", public=True)
    _incident(world, "Lab only, no model", "2026-02-01", public=True, model=False)
    _incident(world, "Still in moderation", "2026-04-01", public=False)
    lab = client.get("/labs/lab-a").text
    assert lab.index("Newer public") < lab.index("Lab only, no model") < lab.index("Older public")
    assert "Still in moderation" not in lab
    card = client.get("/models/lab-a/m").text
    assert card.index("Newer public") < card.index("Older public")
    assert "Lab only, no model" not in card and "Still in moderation" not in card
    # The lab's own member sees its incident still in moderation, as the search shows it.
    assert "Still in moderation" in client.get("/labs/lab-a", headers=world.a_member.headers).text
    search = client.get("/incidents?lab=lab-a", headers=world.a_member.headers).text
    assert "Still in moderation" in search


def test_an_incident_page_shows_its_reports_as_rendered_on_write(client, world):
    incident_id = _incident(world, "Rendered", "2026-01-05", public=True)
    page = client.get(f"/incidents/{incident_id}").text
    assert "Seen <em>Rendered</em>." in page


def test_a_chosen_facet_can_be_cleared(client, world):
    _incident(world, "Faceted", "2026-01-05", public=True)
    page = client.get("/incidents?severity=high").text
    assert '<a href="/incidents">Clear severity</a>' in page
    assert "built-in method" not in page
