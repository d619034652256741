"""The console links a report of one incident to another and unlinks it, through the
same service as the API; a wrong report number is shown in the page with what was typed
(both databases)."""

from __future__ import annotations

import re

import pytest

from app.web.console import done_message
from tests.web.test_console_auth import HTML, log_in, people, token_of  # noqa: F401
from tests.web.test_console_triage import post_form, stored  # one report each by default


@pytest.fixture
def coord(client, people):  # noqa: F811
    assert log_in(client, "coord").status_code == 303
    return client


def reports_of(client, people, incident_id: int) -> list[int]:  # noqa: F811
    r = client.get(f"/api/v1/incidents/{incident_id}/reports", headers=people.coord.headers)
    assert r.status_code == 200, r.text
    return [report["id"] for report in r.json()]


def test_link_a_report_of_another_incident_then_unlink_it(coord, people):  # noqa: F811
    source = stored(title="Forum post about the detector")
    target = stored(title="Detector evasion, second case", reports=[
        {"text": "A second sighting of the paraphrase trick."}])
    (report,) = reports_of(coord, people, source)
    (own,) = reports_of(coord, people, target)
    page = coord.get(f"/console/incidents/{target}", headers=HTML)
    assert f'action="/console/incidents/{target}/link"' in page.text
    assert "Reports (1)" in page.text
    r = post_form(coord, f"/console/incidents/{target}", f"/console/incidents/{target}/link",
                  {"form": "link", "report_id": f"#{report}"}, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == f"/console/incidents/{target}?done=report-linked-{report}"
    after = coord.get(r.headers["location"], headers=HTML)
    assert f'<p class="notice" role="status">Report {report} linked.</p>' in after.text
    assert "Reports (2)" in after.text and f"Report {report} " in after.text
    # Linked, not moved: the source keeps it; search finds the target by its text too.
    assert reports_of(coord, people, target) == sorted([own, report])
    assert reports_of(coord, people, source) == [report]
    found = coord.get("/api/v1/incidents/search", params={"q": "forum"},
                      headers=people.coord.headers).json()
    assert target in {hit["incident"]["id"] for hit in found["items"]}
    # Each report has its own unlink button.
    assert re.search(rf'action="/console/incidents/{target}/unlink">.*?'
                     rf'name="report_id" value="{report}"', after.text, re.DOTALL)
    r = post_form(coord, f"/console/incidents/{target}", f"/console/incidents/{target}/unlink",
                  {"report_id": str(report)})
    assert r.status_code == 200 and f"Report {report} unlinked." in r.text
    assert "Reports (1)" in r.text
    assert reports_of(coord, people, target) == [own]
    assert reports_of(coord, people, source) == [report]


def test_a_wrong_report_number_is_shown_in_the_page(coord, people):  # noqa: F811
    incident_id = stored()
    before = reports_of(coord, people, incident_id)
    page = coord.get(f"/console/incidents/{incident_id}", headers=HTML)
    for typed, status, words in [("999999", 404, "no report 999999"),
                                 ("twelve", 422, "give a report number"),
                                 ("", 422, "give a report number")]:
        r = coord.post(f"/console/incidents/{incident_id}/link", headers=HTML, data={
            "form": "link", "report_id": typed, "_csrf_token": token_of(page.text)})
        assert r.status_code == status, (typed, r.text)
        assert 'role="alert"' in r.text and words in r.text
        assert "report_id" in r.text
        # The incident is shown as it is, with what was typed kept in the field.
        assert f'id="report_id" name="report_id" value="{typed}"' in r.text
        assert "Reports (1)" in r.text
    assert reports_of(coord, people, incident_id) == before


def test_a_missing_incident_is_still_a_404(coord, people):  # noqa: F811
    incident_id = stored()
    (report,) = reports_of(coord, people, incident_id)
    page = coord.get(f"/console/incidents/{incident_id}", headers=HTML)
    for action in ("link", "unlink"):
        r = coord.post(f"/console/incidents/999999/{action}", headers=HTML, data={
            "report_id": str(report), "_csrf_token": token_of(page.text)})
        assert r.status_code == 404


def test_only_coordinators_and_only_with_a_csrf_token(client, people):  # noqa: F811
    incident_id = stored(labs=["lab-a"])
    (report,) = reports_of(client, people, incident_id)
    other = stored(title="Another one", reports=[])
    assert log_in(client, "coord").status_code == 303
    # Without the form's token nothing changes.
    r = client.post(f"/console/incidents/{other}/link", headers=HTML,
                    data={"report_id": str(report)})
    assert r.status_code == 403
    assert reports_of(client, people, other) == []
    client.cookies.clear()
    assert log_in(client, "a_member").status_code == 303
    page = client.get("/lab/", headers=HTML)
    for action in ("link", "unlink"):
        r = client.post(f"/console/incidents/{incident_id}/{action}", headers=HTML, data={
            "report_id": str(report), "_csrf_token": token_of(page.text)})
        assert r.status_code == 403, action
    assert reports_of(client, people, incident_id) == [report]


def test_a_duplicate_offers_no_link_form(coord, people):  # noqa: F811
    target = stored(title="Original")
    dup = stored(title="Again")
    post_form(coord, f"/console/incidents/{dup}", f"/console/incidents/{dup}/transition",
              {"to": "duplicate", "duplicate_of": str(target), "version": "1"})
    page = coord.get(f"/console/incidents/{dup}", headers=HTML)
    assert page.status_code == 200
    assert "/link\"" not in page.text and "/unlink\"" not in page.text


def test_done_codes_carry_only_a_report_number():
    assert done_message("report-linked-12") == "Report 12 linked."
    assert done_message("report-unlinked-7") == "Report 7 unlinked."
    for code in ("report-linked-", "report-linked-0", "report-linked-12x",
                 "report-linked-<b>1</b>", "report-moved-3", "report-linked-1\n2",
                 "report-linked-" + "9" * 20):
        assert done_message(code) is None, code
