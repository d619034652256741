"""The coordinator console over plain HTTP: moderation queue, search with facets and
snippets, one incident's triage actions, and refusals shown in the page (both databases)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from app.auth.principal import SYSTEM
from app.db import session_scope
from app.incidents.schemas import IncidentCreate
from app.incidents.service import submit_incident
from tests.web.test_console_auth import HTML, PASSWORD, log_in, people, token_of  # noqa: F401

INCIDENT = {"title": "Detector evasion with paraphrase", "occurred": "2026-02-01",
            "harm_types": ["disinformation"], "severity": "medium",
            "summary": "Paraphrased samples passed the **detector**.",
            "reports": [{"text": "Seen on a forum: paraphrasing defeats the detector.",
                         "url": "https://example.org/\"><b>evil</b>"}]}


@pytest.fixture
def coord(client, people):  # noqa: F811
    assert log_in(client, "coord").status_code == 303
    return client


def stored(**changes) -> int:
    """Many incidents at once, through the same service (the API allows 5 an hour)."""
    with session_scope() as s:
        return submit_incident(s, SYSTEM, IncidentCreate(**{**INCIDENT, **changes})).id


def submit(client, **changes) -> int:
    # Anonymous, through the public API: it lands in the moderation queue.
    r = client.post("/api/v1/incidents", json={**INCIDENT, **changes},
                    headers={"Authorization": ""})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def api_incident(client, people, incident_id: int) -> dict:  # noqa: F811
    return client.get(f"/api/v1/incidents/{incident_id}", headers=people.coord.headers).json()


def post_form(client, page_path: str, action: str, data: dict, **kw):
    page = client.get(page_path, headers=HTML)
    return client.post(action, data={**data, "_csrf_token": token_of(page.text)},
                       headers=HTML, **kw)


def test_submission_waits_in_the_moderation_queue_and_is_accepted(coord, people):  # noqa: F811
    incident_id = submit(coord)
    queue = coord.get("/console/moderation", headers=HTML)
    assert queue.status_code == 200
    assert f"#{incident_id} Detector evasion with paraphrase" in queue.text
    assert "anonymous" in queue.text
    r = post_form(coord, "/console/moderation", f"/console/incidents/{incident_id}/transition",
                  {"to": "triaged", "version": "1", "back": "moderation", "reason": "credible"},
                  follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/console/moderation?")
    after = coord.get(r.headers["location"], headers=HTML)
    assert "Moved to triaged." in after.text and f"#{incident_id} " not in after.text
    assert api_incident(coord, people, incident_id)["status"] == "triaged"


def test_rejecting_from_the_queue(coord, people):  # noqa: F811
    incident_id = submit(coord, title="Spam about nothing")
    post_form(coord, "/console/moderation", f"/console/incidents/{incident_id}/transition",
              {"to": "rejected", "version": "1", "back": "moderation"})
    assert api_incident(coord, people, incident_id)["status"] == "rejected"


def test_search_with_snippets_facets_and_paging(coord, people):  # noqa: F811
    ids = [stored(title=f"Paraphrase attack {n}", severity="high" if n % 2 else "low",
                  occurred=f"2026-03-{n + 1:02d}") for n in range(23)]
    other = stored(title="Unrelated privacy leak", harm_types=["privacy"],
                   summary="Nothing about detectors.", reports=[])
    page = coord.get("/console/?q=paraphrase", headers=HTML)
    assert page.status_code == 200
    assert "23 incidents" in page.text
    assert f"#{other} " not in page.text
    assert re.search(r"<mark>paraphras", page.text, re.IGNORECASE)
    # Facet links narrow the search and say how many each holds.
    match = re.search(r'<a href="([^"]+)" class="facet"[^>]*>high</a> <span class="muted">'
                      r'\((\d+)\)', page.text)
    assert match and int(match.group(2)) == 11
    narrowed = coord.get("/console/" + match.group(1).replace("&amp;", "&"), headers=HTML)
    assert "11 incidents" in narrowed.text
    assert "Remove filter Severity: high" in narrowed.text
    shown = re.findall(r'href="/console/incidents/(\d+)"', narrowed.text)
    assert shown and all(int(i) in ids[1::2] for i in shown)
    # Twenty a page, then the next page has the rest.
    first = coord.get("/console/?q=paraphrase&sort=date", headers=HTML)
    nxt = re.search(r'<a href="([^"]+)" rel="next">', first.text)
    assert nxt
    second = coord.get("/console/" + nxt.group(1).replace("&amp;", "&"), headers=HTML)
    on_first = set(re.findall(r'href="/console/incidents/(\d+)"', first.text))
    on_second = set(re.findall(r'href="/console/incidents/(\d+)"', second.text))
    assert len(on_first) == 20 and len(on_second) == 3 and not on_first & on_second


def test_bad_query_is_explained_in_the_page(coord):
    page = coord.get("/console/?q=paraphrase&year=twenty", headers=HTML)
    assert page.status_code == 422 and "year is a number" in page.text


def test_coordinator_sees_embargoed_incidents_the_public_does_not(coord, people):  # noqa: F811
    incident_id = submit(coord, title="Embargoed jailbreak")
    for to in ("triaged", "confirmed"):
        version = api_incident(coord, people, incident_id)["version"]
        post_form(coord, f"/console/incidents/{incident_id}",
                  f"/console/incidents/{incident_id}/transition",
                  {"to": to, "version": str(version)})
    until = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M")
    version = api_incident(coord, people, incident_id)["version"]
    r = post_form(coord, f"/console/incidents/{incident_id}",
                  f"/console/incidents/{incident_id}/embargo",
                  {"embargo_until": until, "version": str(version), "set": "1"})
    assert r.status_code == 200 and "Embargoed until" in r.text
    assert coord.get(f"/api/v1/incidents/{incident_id}",
                     headers={"Authorization": ""}).status_code == 404
    assert "Embargoed jailbreak" in coord.get("/console/?q=jailbreak", headers=HTML).text
    version = api_incident(coord, people, incident_id)["version"]
    r = post_form(coord, f"/console/incidents/{incident_id}",
                  f"/console/incidents/{incident_id}/embargo",
                  {"version": str(version), "lift": "1"})
    assert "Embargo lifted." in r.text
    assert coord.get(f"/api/v1/incidents/{incident_id}",
                     headers={"Authorization": ""}).status_code == 200


def test_duplicate_merges_reports_into_the_target(coord, people):  # noqa: F811
    target = submit(coord, title="Original report")
    dup = submit(coord, title="Same thing again")
    r = post_form(coord, f"/console/incidents/{dup}", f"/console/incidents/{dup}/transition",
                  {"to": "duplicate", "duplicate_of": f"#{target}", "version": "1"})
    assert r.status_code == 200 and f"Marked as duplicate of #{target}" in r.text
    merged = coord.get(f"/console/incidents/{target}", headers=HTML).text
    assert "Reports (2)" in merged


def test_refused_triage_shows_why_and_keeps_what_was_typed(coord, people):  # noqa: F811
    incident_id = submit(coord)
    page = coord.get(f"/console/incidents/{incident_id}", headers=HTML)
    # A source URL that tries to break out of its attribute stays escaped.
    assert "<b>evil</b>" not in page.text and "&lt;b&gt;evil&lt;/b&gt;" in page.text
    # Someone else moved it meanwhile: our version is stale.
    post_form(coord, f"/console/incidents/{incident_id}",
              f"/console/incidents/{incident_id}/transition", {"to": "triaged", "version": "1"})
    r = coord.post(f"/console/incidents/{incident_id}/transition", headers=HTML, data={
        "to": "rejected", "version": "1", "reason": "looks like spam to me",
        "_csrf_token": token_of(page.text)})
    assert r.status_code == 409
    assert 'role="alert"' in r.text and 'value="looks like spam to me"' in r.text
    # Duplicate of nothing: the field is named.
    r = coord.post(f"/console/incidents/{incident_id}/transition", headers=HTML, data={
        "to": "duplicate", "duplicate_of": "", "version": "2", "_csrf_token": token_of(page.text)})
    assert r.status_code == 422 and "duplicate_of" in r.text
    assert api_incident(coord, people, incident_id)["status"] == "triaged"


def test_console_pages_for_missing_incidents_are_404(coord):
    assert coord.get("/console/incidents/999999", headers=HTML).status_code == 404


def test_queue_shows_the_newest_arrival_first_whatever_its_date(coord, people):  # noqa: F811
    # A report of an old incident arrives after a page's worth of recent ones: a queue
    # ordered by occurrence would put it beyond the first page, where no one looks.
    for n in range(21):
        stored(title=f"Recent case {n}", occurred=f"2026-05-{n + 1:02d}")
    old = submit(coord, title="A 2019 misuse, reported late", occurred="2019-03-01")
    queue = coord.get("/console/moderation", headers=HTML).text
    titles = re.findall(r'<h2><a href="/console/incidents/\d+">#(\d+) ', queue)
    assert titles[0] == str(old) and len(titles) == 20
    nxt = re.search(r'href="(\?cursor=[^"]+)" rel="next"', queue).group(1)
    rest = re.findall(r'<h2><a href="/console/incidents/\d+">#(\d+) ',
                      coord.get("/console/moderation" + nxt, headers=HTML).text)
    assert rest and not set(rest) & set(titles)
    assert [int(i) for i in titles + rest] == sorted(map(int, titles + rest), reverse=True)


def test_api_sorts_by_arrival_and_pages_with_the_cursor(coord, people):  # noqa: F811
    ids = [stored(title=f"Arrival {n}", occurred=f"20{10 + n}-01-01") for n in range(5)]
    ids.reverse()
    h = people.coord.headers
    first = coord.get("/api/v1/incidents/search?q=arrival&sort=received&limit=3",
                      headers=h).json()
    assert [i["incident"]["id"] for i in first["items"]] == ids[:3]
    rest = coord.get("/api/v1/incidents/search", headers=h, params={
        "q": "arrival", "sort": "received", "limit": 3, "cursor": first["next_cursor"]}).json()
    assert [i["incident"]["id"] for i in rest["items"]] == ids[3:]
    forged = coord.get("/api/v1/incidents/search", headers=h, params={
        "q": "arrival", "sort": "received", "cursor": first["next_cursor"][:-2] + "zz"})
    assert forged.status_code == 400 or forged.status_code == 422
