"""Public pages over HTTP (Litestar's test client), on SQLite and PostgreSQL: what each page
shows, the security headers, error pages, the report form's moderation and rate limit,
revision diffs, facets and feeds."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from app.demo import load_demo
from app.incidents.demo import PREFIX as ILLUSTRATIVE  # the demo's own incidents
from app.web.charts import stylesheet
from app.web.pages import CSP

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def demo(settings, world):
    for _ in load_demo(with_models=False):
        pass
    yield world


def _csrf(client, url: str) -> str:
    match = re.search(r'name="_csrf_token" value="([^"]*)"', client.get(url).text)
    return match.group(1) if match else ""


def _report(client, **fields) -> object:
    form = {"title": "Voice clone scam", "occurred": "2026-02-01", "severity": "high",
            "harm_types": ["impersonation", "phishing"], "summary": "It *happened*.",
            "labs": "openai", "models": "openai/gpt-2", "report_text": "", "report_url": "",
            "reporter_contact": "me@example.org", **fields}
    form["_csrf_token"] = _csrf(client, "/incidents/report")
    return client.post("/incidents/report", data=form, follow_redirects=False)


def test_pages_show_the_demo_with_security_headers(client, demo):
    for url in ["/", "/models", "/models/openai/gpt-2", "/plans/1", "/incidents",
                "/incidents/report", "/agreements/1", "/policies", "/labs/openai"]:
        r = client.get(url)
        assert r.status_code == 200, url
        assert r.headers["content-type"].startswith("text/html")
        assert r.headers["content-security-policy"] == CSP
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        assert "referrer-policy" in r.headers
        assert 'href="/console/"' in r.text
    card = client.get("/models/openai/gpt-2").text
    assert "Model card" in card and "WebText" in card  # the card's Markdown, rendered
    assert card.count('class="mark-reported"') >= 4  # the 2019 detection numbers, reported
    assert "1.5B" in card and "released 2019-11-05" in card  # the plan's timeline
    assert "GPT-2 2019" not in client.get("/models?q=tiny").text


def test_not_found_is_a_page_for_browsers_and_a_problem_for_the_api(client, demo):
    page = client.get("/models/openai/no-such-model", headers={"Accept": "text/html"})
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "Not found" in page.text and page.headers["content-security-policy"] == CSP
    assert client.get("/no/such/page").status_code == 404
    # A client that does not ask for HTML gets problem details on any path.
    assert client.get("/no/such/page").headers["content-type"] == "application/problem+json"
    api = client.get("/api/v1/models/999999")
    assert api.status_code == 404
    assert api.headers["content-type"] == "application/problem+json"
    assert client.get("/plans/1?a=1&b=99").status_code == 422


def test_a_draft_plan_is_not_shown_to_the_public(client, demo):
    r = client.post("/api/v1/plans", headers=demo.a_member.headers, json={
        "model": "lab-a/m", "title": "Secret draft plan",
        "stages": [{"name": "s1", "access_level": "internal"}]})
    assert r.status_code == 201, r.text
    assert client.get(f"/plans/{r.json()['id']}").status_code == 404
    assert "Secret draft plan" not in client.get("/").text


def test_plan_page_diffs_any_two_revisions_side_by_side(client, demo):
    plan = client.get("/api/v1/plans/1").json()
    first = client.get("/plans/1?a=1&b=2").text
    assert "Revision 1 → revision 2" in first
    last = client.get("/plans/1").text
    assert f"revision {len(client.get('/api/v1/plans/1/revisions').json())}" in last
    assert plan["title"] in last
    assert "<td class=\"del\">planned</td>" in client.get("/plans/1?a=1&b=3").text


def test_incident_search_page_uses_the_api_filters_and_facets(client, demo):
    for title, harm in (("Fake news wave", "disinformation"), ("Spam run", "spam")):
        r = client.post("/api/v1/incidents", headers=demo.coord.headers, json={
            "title": title, "summary": "generated text", "occurred": "2026-01-05",
            "harm_types": [harm], "severity": "medium", "labs": ["lab-a"]})
        incident = r.json()
        for to in ("triaged", "confirmed"):
            incident = client.post(f"/api/v1/incidents/{incident['id']}/transitions",
                                   headers=demo.coord.headers,
                                   json={"to": to, "version": incident["version"]}).json()
    listing = client.get("/incidents").text
    assert "Fake news wave" in listing and "Spam run" in listing
    assert 'href="/incidents?harm_type=spam"' in listing  # a facet link
    filtered = client.get("/incidents?harm_type=spam").text
    assert "Spam run" in filtered and "Fake news wave" not in filtered
    assert "Clear harm type" in filtered
    hits = client.get("/incidents?q=wave").text
    assert "<mark>" in hits and "Spam run" not in hits


def test_report_form_is_moderated_and_keeps_input_on_errors(client, demo):
    bad = _report(client, severity="", title="Typed title stays")
    assert bad.status_code == 422
    assert 'value="Typed title stays"' in bad.text and "severity" in bad.text
    assert 'aria-invalid="true"' in bad.text
    r = _report(client)
    assert r.status_code == 303 and r.headers["location"] == "/incidents/report?submitted=1"
    queue = client.get("/api/v1/incidents?status=submitted",
                       headers=demo.coord.headers).json()["items"]
    assert [h["incident"]["title"] for h in queue
            if not h["incident"]["title"].startswith(ILLUSTRATIVE)] == ["Voice clone scam"]
    # Moderated: not public until a coordinator confirms it.
    assert "Voice clone scam" not in client.get("/incidents").text


def test_report_form_is_rate_limited_like_the_api(client, demo):
    for _ in range(5):
        assert _report(client).status_code == 303
    limited = _report(client, title="One too many")
    assert limited.status_code == 429
    assert "per hour" in limited.text and 'value="One too many"' in limited.text
    queue = client.get("/api/v1/incidents?status=submitted",
                       headers=demo.coord.headers).json()["items"]
    assert len([h for h in queue
                if not h["incident"]["title"].startswith(ILLUSTRATIVE)]) == 5


def test_feeds_are_atom_with_escaped_public_entries(client, demo):
    r = client.post("/api/v1/incidents", headers=demo.coord.headers, json={
        "title": "<b>bold</b> & co", "occurred": "2026-01-05", "harm_types": ["spam"],
        "severity": "low"})
    incident = r.json()
    for to in ("triaged", "confirmed"):
        incident = client.post(f"/api/v1/incidents/{incident['id']}/transitions",
                               headers=demo.coord.headers,
                               json={"to": to, "version": incident["version"]}).json()
    ns = {"a": "http://www.w3.org/2005/Atom"}
    feed = client.get("/feeds/incidents.atom")
    assert feed.headers["content-type"].startswith("application/atom+xml")
    root = ET.fromstring(feed.content)
    assert [e.text for e in root.findall("a:entry/a:title", ns)
            if not e.text.startswith(ILLUSTRATIVE)] == ["<b>bold</b> & co"]
    releases = ET.fromstring(client.get("/feeds/releases.atom").content)
    titles = [e.text for e in releases.findall("a:entry/a:title", ns)]
    assert len(titles) == 5  # the 2019 plan: filed, then four stages released
    assert any("released" in t for t in titles)
    link = releases.find("a:entry/a:link", ns).get("href")
    assert link.startswith("http") and "/plans/1" in link


def test_chart_stylesheet_matches_what_pygal_would_inline():
    assert (ROOT / "static" / "charts.css").read_text() == stylesheet()


def test_cached_card_shows_a_change_at_once(client, demo):
    assert "Model A" in client.get("/models/lab-a/m").text
    assert "Model A" in client.get("/models/lab-a/m").text  # now served from the cache
    model = client.get(f"/api/v1/models/{demo.model_a}").json()
    r = client.patch(f"/api/v1/models/{demo.model_a}", headers=demo.a_member.headers,
                     json={"version": model["version"], "name": "Model A, renamed",
                           "card": {"intended_use": "Only *testing*."}})
    assert r.status_code == 200, r.text
    page = client.get("/models/lab-a/m").text
    assert "Model A, renamed" in page and "<em>testing</em>" in page
    home = client.get("/").text
    assert "Model A, renamed" in home
