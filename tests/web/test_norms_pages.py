"""Policies and compliance on the pages, over HTTP on SQLite and PostgreSQL: rules in plain
words, a plan's compliance with evidence, exemptions and history, the card's compact view,
a real policy 409 in the lab form, and the page cache showing a verdict change at once."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from app.demo import load_demo
from tests.web.test_console_auth import HTML, log_in, people, token_of  # noqa: F401


@pytest.fixture
def demo(settings, world):
    for _ in load_demo(with_models=False):
        pass
    yield world


def test_policy_pages_say_each_rule_in_plain_words(client, demo):
    listing = client.get("/policies", headers=HTML)
    assert listing.status_code == 200
    for pid in ("gpt2-2019", "pai-publication-norms", "capability-thresholds"):
        assert f'href="/policies/{pid}"' in listing.text
    page = client.get("/policies/gpt2-2019", headers=HTML).text
    assert "Staged release in the manner of GPT-2 (2019)" in page
    assert "At least 60 days between two releases." in page
    assert ("At least 2 partner labs able to download the stage&#39;s hosted checkpoint "
            "under a signed agreement for at least 60 days before its release.") in page
    assert ("No unresolved incident of high severity or worse on the model that a "
            "coordinator confirmed or the lab acknowledged") in page
    assert "deny: the stage cannot be released while this fails" in page
    assert "warn: shown, never blocks" in page
    assert "Leave at least 60 days between open-weight releases" in page  # its message
    assert "applies to the final stage" in page and "stages with public weights access" in page
    assert '<a href="https://openai.com/index/better-language-models/"' in page
    example = re.search(r'href="(/policies/gpt2-2019/examples/denied-[^"]+)"', page).group(1)
    r = client.get(example)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert "gpt2-2019" in r.text and r.headers["x-content-type-options"] == "nosniff"
    assert client.get("/policies/gpt2-2019/examples/..%2Fpolicy.yaml").status_code == 404
    assert client.get("/policies/gpt2-2019/examples/policy.yaml").status_code == 404
    missing = client.get("/policies/no-such-policy", headers=HTML)
    assert missing.status_code == 404 and "no policy" in missing.text


def test_demo_plan_shows_compliance_with_evidence_links(client, demo):
    page = client.get("/plans/1", headers=HTML).text
    assert 'id="h-compliance"' in page and 'href="/policies/gpt2-2019"' in page
    assert 'data-rule="gpt2-2019/months-between-stages"' in page
    assert 'data-rule="gpt2-2019/partner-analysis-before-final"' in page
    assert re.search(r'href="/agreements/\d+">agreement \d+', page)  # evidence, as a page
    api = client.get("/api/v1/plans/1/compliance").json()
    assert 'Judged against <a href="/policies/gpt2-2019">gpt2-2019</a>' in page
    assert api["verdict"] in page and len(api["stages"]) == page.count('id="compliance-stage-')
    card = client.get("/models/openai/gpt-2", headers=HTML).text
    assert 'id="compliance-1"' in card and 'href="/plans/1#compliance"' in card


def _file_gated_plan(client, people):  # noqa: F811
    """Two open-weight sizes under gpt2-2019, the first released today: the second, judged
    as if released now, fails months-between-stages (and releasing it is refused)."""
    today = datetime.now(UTC).date()
    r = client.post("/api/v1/plans", headers=people.a_member.headers, json={
        "model": "lab-a/m", "title": "Too fast", "file": True, "policies": ["gpt2-2019"],
        "stages": [{"name": "small", "access_level": "public_weights",
                    "planned_date": today.isoformat()},
                   {"name": "large", "access_level": "public_weights",
                    "planned_date": (today + timedelta(days=10)).isoformat()}]})
    assert r.status_code == 201, r.text
    plan = r.json()
    for pos, to, extra in ((1, "ready", {}), (1, "released", {"actual_date": today.isoformat()}),
                           (2, "ready", {})):
        r = client.post(f"/api/v1/plans/{plan['id']}/stages/{pos}/transitions",
                        headers=people.a_member.headers,
                        json={"to": to, "version": plan["version"], **extra})
        assert r.status_code in (200, 201), r.text
        plan = client.get(f"/api/v1/plans/{plan['id']}", headers=people.a_member.headers).json()
    return plan


def test_policy_409_in_the_stage_form_lists_violations_and_keeps_input(client, people):  # noqa: F811
    plan = _file_gated_plan(client, people)
    assert plan["stages"][1]["status"] == "ready"
    assert log_in(client, "a_member").status_code == 303
    location = f"/lab/plans/{plan['id']}"
    page = client.get(location, headers=HTML)
    r = client.post(f"{location}/stages/2/move", headers=HTML, data={
        "to": "released", "version": str(plan["version"]), "form": "stage-2",
        # Today, the day stage 1 went out (a future date would be a 422 of its own).
        "actual_date": plan["stages"][0]["actual_date"], "reason": "everyone is waiting",
        "_csrf_token": token_of(page.text)})
    assert r.status_code == 409, r.text
    assert "Policy violation" in r.text
    assert "gpt2-2019/months-between-stages (fail)" in r.text
    assert "Leave at least 60 days between open-weight releases" in r.text
    assert "gpt2-2019/partner-analysis-before-final" in r.text
    assert 'value="everyone is waiting"' in r.text
    assert f'value="{plan["stages"][0]["actual_date"]}"' in r.text
    after = client.get(f"/api/v1/plans/{plan['id']}", headers=people.a_member.headers).json()
    assert after["stages"][1]["status"] == "ready" and after["version"] == plan["version"]


def test_exemption_shows_on_the_next_anonymous_read(client, people):  # noqa: F811
    plan = _file_gated_plan(client, people)
    card_url, plan_url = "/models/lab-a/m", f"/plans/{plan['id']}"
    card = client.get(card_url, headers=HTML).text
    assert "gpt2-2019/months-between-stages: fail" in card
    assert client.get(card_url, headers=HTML).text == card  # served from the page cache
    page = client.get(plan_url, headers=HTML).text
    row = re.search(r'id="compliance-stage-2".*?data-rule="gpt2-2019/months-between-stages">'
                    r'(.*?)</tr>', page, re.DOTALL)
    assert 'badge bad">fail' in row.group(1) and "Leave at least 60 days" in row.group(1)
    assert "Fix:" in row.group(1)
    until = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    r = client.post(f"/api/v1/plans/{plan['id']}/exemptions", headers=people.coord.headers,
                    json={"position": 2, "policy": "gpt2-2019", "rule": "months-between-stages",
                          "reason": "a security fix that cannot wait", "expires_at": until})
    assert r.status_code == 201, r.text
    card = client.get(card_url, headers=HTML).text
    assert "gpt2-2019/months-between-stages: fail" not in card
    page = client.get(plan_url, headers=HTML).text
    row = re.search(r'id="compliance-stage-2".*?data-rule="gpt2-2019/months-between-stages">'
                    r'(.*?)</tr>', page, re.DOTALL)
    assert "exempt" in row.group(1) and "a security fix that cannot wait" in row.group(1)
    assert 'id="exemptions"' in page and "granted by coord" in page
    assert "exemption granted: a security fix that cannot wait" in page  # the history


def test_draft_plan_compliance_is_as_private_as_the_api(client, people):  # noqa: F811
    r = client.post("/api/v1/plans", headers=people.a_member.headers, json={
        "model": "lab-a/m", "title": "Secret draft", "policies": ["gpt2-2019"],
        "stages": [{"name": "only", "access_level": "public_weights"}]})
    assert r.status_code == 201, r.text
    plan_id = r.json()["id"]
    assert client.get(f"/api/v1/plans/{plan_id}/compliance").status_code == 404
    assert client.get(f"/plans/{plan_id}", headers=HTML).status_code == 404
    assert "Secret draft" not in client.get("/models/lab-a/m", headers=HTML).text


def test_lab_form_files_and_revises_the_policies_a_plan_follows(client, people):  # noqa: F811
    from tests.web.test_forms import file_plan

    assert log_in(client, "a_member").status_code == 303
    form = client.get("/lab/plans/new", headers=HTML).text
    assert 'name="policies" value="gpt2-2019"' in form and 'href="/policies/gpt2-2019"' in form
    r = file_plan(client, policies=["gpt2-2019", "pai-publication-norms"], policies_sent="1")
    assert r.status_code == 303, r.text
    location = r.headers["location"].split("?")[0]
    plan_id = int(location.rsplit("/", 1)[1])
    api = client.get(f"/api/v1/plans/{plan_id}", headers=people.a_member.headers).json()
    assert api["policies"] == ["gpt2-2019", "pai-publication-norms"]
    page = client.get(location, headers=HTML).text
    assert re.search(r'value="gpt2-2019"\s+checked', page)
    # An unknown id is refused in the form, and what was typed stays.
    r = file_plan(client, policies=["no-such-policy"], title="Keep me")
    assert r.status_code == 422 and "no-such-policy" in r.text and 'value="Keep me"' in r.text
    # Revising with one box unticked drops that policy.
    data = {"rows": "2", "version": str(api["version"]), "form": "revise", "title": "T",
            "summary": "", "policies_sent": "1", "policies": ["gpt2-2019"],
            "stage-0-name": "124M", "stage-0-access_level": "public_weights",
            "stage-1-name": "355M", "stage-1-access_level": "partners",
            "_csrf_token": token_of(page)}
    r = client.post(location, data=data, headers=HTML, follow_redirects=False)
    assert r.status_code == 303, r.text
    api = client.get(f"/api/v1/plans/{plan_id}", headers=people.a_member.headers).json()
    assert api["policies"] == ["gpt2-2019"]


def test_an_outsider_reads_a_true_verdict_counting_a_confidential_agreement(client, people):  # noqa: F811
    """The plan page judges on all evidence: an outsider sees the verdict the lab sees,
    with '1 agreement you may not see' where the lab sees the agreement's link."""
    from app.agreements.service import sign_agreement
    from app.auth.principal import SYSTEM
    from app.db import session_scope
    from app.labs.service import create_lab
    from tests.agreements.conftest import draft, propose
    from tests.norms.test_evidence_events import partners_checkpoint

    with session_scope() as s:
        create_lab(s, SYSTEM, "lab-c", "Lab C")
    today = datetime.now(UTC).date()
    r = client.post("/api/v1/plans", headers=people.a_member.headers, json={
        "model": "lab-a/m", "title": "Partnered", "file": True, "policies": ["gpt2-2019"],
        "stages": [{"name": "only", "access_level": "public_weights",
                    "planned_date": (today + timedelta(days=120)).isoformat()}]})
    plan = r.json()
    partners_checkpoint(plan["id"], 1, "only")
    agreement = propose(client, people, draft(
        client, people, parties=["lab-c"],
        scope={"stages": [{"plan": plan["id"], "position": 1}]},
        ends_at=(datetime.now(UTC) + timedelta(days=365)).isoformat()))
    with session_scope() as s:  # lab-c's admin signs on paper; the operator records it
        sign_agreement(s, SYSTEM, agreement["id"], "lab-c")
    lab = client.get(f"/plans/{plan['id']}", headers=people.a_member.headers | HTML).text
    assert f'href="/agreements/{agreement["id"]}"' in lab
    outsider = client.get(f"/plans/{plan['id']}", headers=HTML).text
    assert "1 agreement you may not see" in outsider
    assert f'/agreements/{agreement["id"]}' not in outsider and "lab-c" not in outsider
    verdict = re.compile(r'class="verdict-(\w+)" data-rule="gpt2-2019/partner-analysis-before')
    assert verdict.search(lab).group(1) == verdict.search(outsider).group(1) == "fail"
