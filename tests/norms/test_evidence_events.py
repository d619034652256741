"""Verdicts follow evidence filed through other parts of the registry: agreements signed,
incidents submitted and triaged. Each change is recorded as it happens (both databases)."""

from __future__ import annotations

from datetime import timedelta

from app.db import session_scope
from app.norms.service import refresh_due
from app.timeutil import freeze, utcnow
from tests.agreements.conftest import active, people  # noqa: F401 - fixture
from tests.incidents.conftest import body as incident_body
from tests.norms.test_compliance import compliance, file, move, rule

API = "/api/v1/plans"


def changes(client, plan_id, rule_id, headers=None):
    rows = client.get(f"{API}/{plan_id}/compliance/history", headers=headers or {}).json()
    return [(h["from"], h["to"]) for h in rows if h.get("rule") == rule_id]


def test_an_agreement_counts_for_its_labs_at_once_and_for_the_public_when_disclosed(
        client, people):  # noqa: F811
    final = (utcnow() + timedelta(days=200)).date().isoformat()
    plan = file(client, people, ["gpt2-2019"], [
        {"name": "small", "access_level": "public_weights"},
        {"name": "large", "access_level": "public_weights", "planned_date": final}])
    pid, name = plan["id"], "partner-analysis-before-final"
    assert move(client, people, pid, 1, "ready").status_code == 200
    assert move(client, people, pid, 1, "released").status_code == 200
    assert rule(compliance(client, pid), 2, name)["verdict"] == "fail"
    disclosed = utcnow() + timedelta(days=3)
    agreement = active(client, people, ends_at=(utcnow() + timedelta(days=365)).isoformat(),
                       confidential_until=disclosed.isoformat())
    got = rule(compliance(client, pid, people.a_member.headers), 2, name)
    assert got["verdict"] == "pending", got
    assert got["evidence"][0]["href"] == f"/api/v1/agreements/{agreement['id']}"
    assert sorted(got["evidence"][0]["partners"]) == ["lab-c", "lab-d"]
    # The public does not know of the agreement yet: neither the verdict nor the history
    # (announced from public evidence only) moves.
    public = compliance(client, pid)
    assert rule(public, 2, name)["verdict"] == "fail"
    assert rule(public, 2, name)["evidence"] == []
    assert changes(client, pid, name) == [(None, "fail")]
    # Releasing now would cut the partners' 60 days short: the gate holds it.
    assert move(client, people, pid, 2, "ready").status_code == 200
    r = move(client, people, pid, 2, "released")
    assert r.status_code == 409
    assert name in {v["rule"] for v in r.json()["violations"]}
    # Confidentiality ends by the clock alone: the public verdict follows on the next
    # read, and the periodic sweep announces the change.
    try:
        freeze(disclosed + timedelta(seconds=1))
        assert rule(compliance(client, pid), 2, name)["verdict"] == "pending"
        with session_scope() as s:
            assert refresh_due(s) >= 1
        assert changes(client, pid, name) == [(None, "fail"), ("fail", "pending")]
    finally:
        freeze(None)


def test_an_incident_the_public_cannot_see_blocks_the_gate_but_shows_nowhere_public(
        client, world):
    plan = file(client, world, ["capability-thresholds"],
                [{"name": "v1", "access_level": "partners"}])
    pid, name = plan["id"], "no-critical-incident"
    assert rule(compliance(client, pid), 1, name)["verdict"] == "pass"
    public_before = (compliance(client, pid)["stages"], client.get("/api/v1/events").json())
    r = client.post("/api/v1/incidents", headers=world.b_member.headers,
                    json=incident_body(severity="critical", models=["lab-a/m"], labs=[]))
    assert r.status_code == 201, r.text
    incident = r.json()
    # Submitted, not yet confirmed: the public's verdict, its evidence, the plan's history
    # and the public event stream are exactly as before.
    public = compliance(client, pid)
    assert public["stages"] == public_before[0]
    assert client.get("/api/v1/events").json() == public_before[1]
    assert changes(client, pid, name) == [(None, "pass")]
    coord = rule(compliance(client, pid, world.coord.headers), 1, name)
    assert coord["verdict"] == "fail"
    assert coord["evidence"][0]["href"] == f"/api/v1/incidents/{incident['id']}"
    # The gate judges on everything.
    assert move(client, world, pid, 1, "ready").status_code == 200
    blocked = move(client, world, pid, 1, "released")
    assert blocked.status_code == 409 and name in {v["rule"] for v in blocked.json()["violations"]}
    # Confirmed, it is public: now the public verdict fails, naming it, and is announced.
    for to in ("triaged", "confirmed"):
        incident = client.post(f"/api/v1/incidents/{incident['id']}/transitions",
                               json={"to": to, "version": incident["version"]},
                               headers=world.coord.headers).json()
    assert incident["status"] == "confirmed", incident
    public = rule(compliance(client, pid), 1, name)
    assert public["verdict"] == "fail"
    assert public["evidence"][0]["href"] == f"/api/v1/incidents/{incident['id']}"
    assert changes(client, pid, name) == [(None, "pass"), ("pass", "fail")]
