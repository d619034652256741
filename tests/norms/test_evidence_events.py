"""Verdicts follow evidence filed through other parts of the registry: agreements signed,
incidents submitted and triaged. Each change is recorded as it happens (both databases)."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from app.checkpoints.tables import Checkpoint
from app.db import session_scope
from app.plans.tables import ReleasePlan, Stage
from app.timeutil import freeze, utcnow
from tests.agreements.conftest import active, people  # noqa: F401 - fixture
from tests.incidents.conftest import body as incident_body
from tests.norms.test_compliance import compliance, file, move, rule

API = "/api/v1/plans"


def changes(client, plan_id, rule_id, headers=None):
    rows = client.get(f"{API}/{plan_id}/compliance/history", headers=headers or {}).json()
    return [(h["from"], h["to"]) for h in rows if h.get("rule") == rule_id]


def partners_checkpoint(plan_id: int, position: int, name: str) -> int:
    """A partners-level checkpoint attached to the stage, uploaded a while ago."""
    with session_scope() as s:
        stage = s.exec(select(Stage).where(Stage.plan_id == plan_id,
                                           Stage.position == position)).one()
        plan = s.get(ReleasePlan, plan_id)
        ckpt = Checkpoint(model_id=plan.model_id, lab_id=plan.lab_id, name=name,
                          access_level="partners", stage_id=stage.id, manifest=[],
                          manifest_digest="0" * 64, total_bytes=1, parameter_count=1000,
                          created_at=utcnow() - timedelta(days=30))
        s.add(ckpt)
        s.flush()
        return ckpt.id


def test_a_confidential_agreement_counts_for_everyone_and_is_named_to_its_labs_only(
        client, people):  # noqa: F811
    final = (utcnow() + timedelta(days=200)).date().isoformat()
    plan = file(client, people, ["gpt2-2019"], [
        {"name": "small", "access_level": "public_weights"},
        {"name": "large", "access_level": "public_weights", "planned_date": final}])
    pid, name = plan["id"], "partner-analysis-before-final"
    assert move(client, people, pid, 1, "ready").status_code == 200
    assert move(client, people, pid, 1, "released").status_code == 200
    # Nothing of stage 2 hosted: the registry cannot tell, so never a pass.
    got = rule(compliance(client, pid), 2, name)
    assert got["verdict"] == "fail" and "no checkpoint of stage 2" in got["detail"]
    partners_checkpoint(pid, 2, "large")
    got = rule(compliance(client, pid), 2, name)
    assert got["verdict"] == "fail" and "no agreement covers stage 2" in got["detail"]
    disclosed = utcnow() + timedelta(days=3)
    agreement = active(client, people, ends_at=(utcnow() + timedelta(days=365)).isoformat(),
                       confidential_until=disclosed.isoformat(),
                       scope={"stages": [{"plan": pid, "position": 2}]})
    got = rule(compliance(client, pid, people.a_member.headers), 2, name)
    assert got["verdict"] == "pending", got
    assert got["evidence"][0]["href"] == f"/api/v1/agreements/{agreement['id']}"
    assert sorted(got["evidence"][0]["partners"]) == ["lab-c", "lab-d"]
    # The public gets the same (true) verdict and a count, never the agreement's id, link
    # or partners: no false "no agreement covers stage 2" because it is confidential.
    for headers in ({}, people.b_member.headers):
        public = rule(compliance(client, pid, headers), 2, name)
        assert public["verdict"] == "pending", public
        assert public["evidence"] == [{"kind": "agreement", "id": None, "href": None,
                                       "confidential": 1}]
        assert f"agreement {agreement['id']}" not in public["detail"] + (public["fix"] or "")
        assert "a confidential agreement" in public["detail"]
    assert changes(client, pid, name) == [(None, "fail"), ("fail", "pending")]
    # Releasing now would cut the partners' 60 days short: the gate holds it.
    assert move(client, people, pid, 2, "ready").status_code == 200
    r = move(client, people, pid, 2, "released")
    assert r.status_code == 409
    assert name in {v["rule"] for v in r.json()["violations"]}
    # Confidentiality ends by the clock alone: the public then reads the agreement.
    try:
        freeze(disclosed + timedelta(seconds=1))
        public = rule(compliance(client, pid), 2, name)
        assert public["evidence"][0]["href"] == f"/api/v1/agreements/{agreement['id']}"
    finally:
        freeze(None)


def test_an_unreviewed_claim_does_not_decide_and_a_hidden_confirmed_one_is_counted(
        client, world):
    plan = file(client, world, ["capability-thresholds"],
                [{"name": "v1", "access_level": "partners"}])
    pid, name = plan["id"], "no-critical-incident"
    assert rule(compliance(client, pid), 1, name)["verdict"] == "pass"
    # Anyone, anonymous included, can file a critical claim naming the model.
    r = client.post("/api/v1/incidents",
                    json=incident_body(severity="critical", models=["lab-a/m"], labs=[]))
    assert r.status_code == 201, r.text
    incident = r.json()
    coord = rule(compliance(client, pid, world.coord.headers), 1, name)
    assert coord["verdict"] == "pass" and "1 under review (not counted)" in coord["detail"]
    assert coord["evidence"][0]["under_review"] is True
    public = rule(compliance(client, pid), 1, name)
    assert public["verdict"] == "pass"
    assert public["evidence"] == [{"kind": "incident", "id": None, "href": None,
                                   "confidential": 1}]
    assert changes(client, pid, name) == [(None, "pass")]
    # Confirmed under embargo: counted for everyone, named to nobody who may not see it.
    embargo = (utcnow() + timedelta(days=30)).isoformat()
    for path, payload in ((f"/api/v1/incidents/{incident['id']}/embargo",
                           {"embargo_until": embargo}),
                          (f"/api/v1/incidents/{incident['id']}/transitions", {"to": "triaged"}),
                          (f"/api/v1/incidents/{incident['id']}/transitions",
                           {"to": "confirmed"})):
        r = client.post(path, json={**payload, "version": incident["version"]},
                        headers=world.coord.headers)
        assert r.status_code in (200, 201), r.text
        incident = r.json()
    assert incident["status"] == "confirmed"
    public = rule(compliance(client, pid), 1, name)
    assert public["verdict"] == "fail" and public["measured"] == 1
    assert public["evidence"] == [{"kind": "incident", "id": None, "href": None,
                                   "confidential": 1}]
    assert changes(client, pid, name) == [(None, "pass"), ("pass", "fail")]
    assert move(client, world, pid, 1, "ready").status_code == 200
    blocked = move(client, world, pid, 1, "released")
    assert blocked.status_code == 409 and name in {v["rule"] for v in blocked.json()["violations"]}
