"""Verdicts follow evidence filed through other parts of the registry: agreements signed,
incidents submitted and triaged. Each change is recorded as it happens (both databases)."""

from __future__ import annotations

from datetime import timedelta

from app.timeutil import utcnow
from tests.agreements.conftest import active, people  # noqa: F401 - fixture
from tests.incidents.conftest import body as incident_body
from tests.norms.test_compliance import compliance, file, move, rule

API = "/api/v1/plans"


def changes(client, plan_id, rule_id, headers=None):
    rows = client.get(f"{API}/{plan_id}/compliance/history", headers=headers or {}).json()
    return [(h["from"], h["to"]) for h in rows if h.get("rule") == rule_id]


def test_signing_an_agreement_moves_partner_analysis_from_fail_to_pending(client, people):  # noqa: F811
    final = (utcnow() + timedelta(days=200)).date().isoformat()
    plan = file(client, people, ["gpt2-2019"], [
        {"name": "small", "access_level": "public_weights"},
        {"name": "large", "access_level": "public_weights", "planned_date": final}])
    pid = plan["id"]
    assert move(client, people, pid, 1, "ready").status_code == 200
    assert move(client, people, pid, 1, "released").status_code == 200
    assert rule(compliance(client, pid), 2, "partner-analysis-before-final")["verdict"] == "fail"
    agreement = active(client, people, ends_at=(utcnow() + timedelta(days=365)).isoformat())
    got = rule(compliance(client, pid), 2, "partner-analysis-before-final")
    assert got["verdict"] == "pending", got
    assert got["evidence"][0]["href"] == f"/api/v1/agreements/{agreement['id']}"
    assert sorted(got["evidence"][0]["partners"]) == ["lab-c", "lab-d"]
    assert changes(client, pid, "partner-analysis-before-final") == [
        (None, "fail"), ("fail", "pending")]
    # Releasing now would cut the partners' 60 days short: the gate holds it.
    assert move(client, people, pid, 2, "ready").status_code == 200
    r = move(client, people, pid, 2, "released")
    assert r.status_code == 409
    assert "partner-analysis-before-final" in {v["rule"] for v in r.json()["violations"]}


def test_an_incident_blocks_until_resolved_and_stays_unnamed_to_the_public(client, world):
    plan = file(client, world, ["capability-thresholds"],
                [{"name": "v1", "access_level": "partners"}])
    pid = plan["id"]
    assert rule(compliance(client, pid), 1, "no-critical-incident")["verdict"] == "pass"
    r = client.post("/api/v1/incidents", headers=world.b_member.headers,
                    json=incident_body(severity="critical", models=["lab-a/m"], labs=[]))
    assert r.status_code == 201, r.text
    incident = r.json()
    public = rule(compliance(client, pid), 1, "no-critical-incident")
    assert public["verdict"] == "fail" and public["evidence"] == []
    assert "not public yet" in public["detail"]
    coord = rule(compliance(client, pid, world.coord.headers), 1, "no-critical-incident")
    assert coord["evidence"][0]["href"] == f"/api/v1/incidents/{incident['id']}"
    r = client.post(f"/api/v1/incidents/{incident['id']}/transitions",
                    json={"to": "rejected", "version": incident["version"]},
                    headers=world.coord.headers)
    assert r.status_code == 200, r.text
    assert rule(compliance(client, pid), 1, "no-critical-incident")["verdict"] == "pass"
    assert changes(client, pid, "no-critical-incident") == [
        (None, "pass"), ("pass", "fail"), ("fail", "pass")]
