"""Issue 7 item 15b: every URL a client sends is an absolute http(s) URL, or a 422 naming
the field and nothing stored (incident reports, labs, reported-result sources)."""

from __future__ import annotations

import pytest

from app.auth.principal import SYSTEM
from app.db import session_scope
from app.errors import Invalid
from app.labs.service import create_lab
from app.urls import check_http_url

BAD = ["javascript:alert(1)", "JavaScript:alert(1)", " javascript:alert(1)",
       "java\tscript:alert(1)", "data:text/html,<script>alert(1)</script>",
       "vbscript:msgbox(1)", "//evil.example/x", "/relative/path", "http://", "https:///x",
       "file:///etc/passwd", "http://exa mple.org", "http://host:99999999/", "ftp://x.org/"]
GOOD = ["https://example.org/report?id=1#top", "http://192.0.2.1:8080/a", "HTTPS://Example.org"]


@pytest.mark.parametrize("url", BAD)
def test_bad_urls_are_refused(url):
    with pytest.raises(ValueError):
        check_http_url(url)


@pytest.mark.parametrize("url", GOOD)
def test_http_urls_pass_unchanged(url):
    assert check_http_url(url) == url


def _field(r) -> str:
    assert r.status_code == 422, r.text
    return r.json()["errors"][0]["field"]


def test_incident_report_urls(client, world, backend):
    incident = {"title": "Scam", "occurred": "2019-06-01", "harm_types": ["spam"],
                "severity": "low", "labs": ["lab-a"]}
    for url in ("javascript:alert(document.cookie)", "data:text/html,x", "/x"):
        r = client.post("/api/v1/incidents", headers=world.a_member.headers,
                        json={**incident, "reports": [{"text": "see", "url": url}]})
        assert _field(r) == "reports.0.url", r.text
    listed = client.get("/api/v1/incidents", headers=world.coord.headers).json()
    assert listed["total"] == 0  # nothing stored
    r = client.post("/api/v1/incidents", headers=world.a_member.headers,
                    json={**incident, "reports": [{"text": "see",
                                                   "url": "https://example.org/a"}]})
    assert r.status_code == 201, r.text
    iid = r.json()["id"]
    r = client.post(f"/api/v1/incidents/{iid}/reports", headers=world.a_member.headers,
                    json={"text": "more", "url": "javascript:alert(1)"})
    assert _field(r).endswith("url")
    reports = client.get(f"/api/v1/incidents/{iid}/reports",
                         headers=world.a_member.headers).json()
    assert [x["url"] for x in reports] == ["https://example.org/a"]


def test_lab_urls(client, world, backend):
    r = client.post("/api/v1/labs", headers=world.coord.headers,
                    json={"slug": "evil", "name": "Evil", "url": "javascript:alert(1)"})
    assert _field(r).endswith("url")
    assert client.get("/api/v1/labs/evil").status_code == 404
    # The CLI path calls the service directly: the same rule, the same field.
    with session_scope() as s, pytest.raises(Invalid) as caught:
        create_lab(s, SYSTEM, "evil", "Evil", "javascript:alert(1)")
    assert caught.value.field == "url"
    r = client.post("/api/v1/labs", headers=world.coord.headers,
                    json={"slug": "fine", "name": "Fine", "url": "https://fine.example"})
    assert r.status_code == 201, r.text
    assert client.get("/api/v1/labs/fine").json()["url"] == "https://fine.example"


def test_reported_result_source_url(client, world, backend):
    r = client.post(f"/api/v1/models/{world.model_a}/reported-results",
                    headers=world.a_member.headers,
                    json={"format": "lm-eval-harness", "content": {"results": {}},
                          "source_url": "javascript:alert(1)"})
    assert _field(r).endswith("source_url")


def test_a_stored_non_http_report_url_is_never_served(client, world, backend):
    """Rows written before the check (or by hand) answer url null, not a javascript: link."""
    from app.incidents.tables import IncidentReport, IncidentReportLink
    r = client.post("/api/v1/incidents", headers=world.a_member.headers, json={
        "title": "Old", "occurred": "2019-06-01", "harm_types": ["spam"], "severity": "low",
        "labs": ["lab-a"]})
    iid = r.json()["id"]
    with session_scope() as s:
        for url in ("javascript:alert(1)", "https://ok.example/"):
            report = IncidentReport(text="old", url=url)
            s.add(report)
            s.flush()
            s.add(IncidentReportLink(incident_id=iid, report_id=report.id))
    urls = [x["url"] for x in client.get(f"/api/v1/incidents/{iid}/reports",
                                         headers=world.a_member.headers).json()]
    assert urls == [None, "https://ok.example/"]
