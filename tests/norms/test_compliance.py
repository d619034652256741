"""Compliance in the registry, on SQLite and PostgreSQL: verdicts, the release gate,
exemptions, recomputation on new evidence and on the clock, dry runs, the demo plans."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import func, select

from app.auth.principal import SYSTEM
from app.checkpoints.tables import Checkpoint
from app.db import session_scope
from app.evals.service import enqueue_run, required_suites, store_result
from app.evals.tables import EvalResult, EvalRun
from app.events.tables import Event
from app.models.tables import AIModel
from app.norms.service import plan_compliance, refresh_due
from app.plans.tables import PlanRevision
from app.timeutil import freeze

API = "/api/v1/plans"
RISK = ("Main risks are scaled spam and impersonation; access is limited to vetted "
        "customers and misuse reports are reviewed weekly.")


def file(client, world, policies, stages, actor="a_member"):
    body = {"model": "lab-a/m", "title": "Gated release", "stages": stages,
            "policies": policies, "file": True}
    r = client.post(API, json=body, headers=getattr(world, actor).headers)
    assert r.status_code == 201, r.text
    return r.json()


def move(client, world, plan_id, position, to, **extra):
    version = client.get(f"{API}/{plan_id}", headers=world.a_member.headers).json()["version"]
    return client.post(f"{API}/{plan_id}/stages/{position}/transitions",
                       json={"to": to, "version": version, **extra},
                       headers=world.a_member.headers)


def compliance(client, plan_id, headers=None):
    r = client.get(f"{API}/{plan_id}/compliance", headers=headers or {})
    assert r.status_code == 200, r.text
    return r.json()


def rule(body, position, rule_id):
    stage = next(s for s in body["stages"] if s["position"] == position)
    return next(v for v in stage["rules"] if v["rule"] == rule_id)


def add_checkpoint(model_id: int, name: str) -> int:
    with session_scope() as s:
        model = s.get(AIModel, model_id)
        ckpt = Checkpoint(model_id=model.id, lab_id=model.lab_id, name=name,
                          access_level="public", manifest=[], manifest_digest="0" * 64,
                          total_bytes=1, parameter_count=1000)
        s.add(ckpt)
        s.flush()
        return ckpt.id


def measured(model_id, ckpt_id, suite, **metrics) -> EvalResult:
    return EvalResult(result_key=f"{ckpt_id}-{suite}", source="measured", model_id=model_id,
                      checkpoint_id=ckpt_id, suite_id=suite, suite_version=1,
                      config_digest="c" * 64, metrics=metrics)


def test_policies_are_listed_and_read(client, world):
    listed = client.get("/api/v1/policies").json()
    assert {p["id"] for p in listed} >= {"gpt2-2019", "pai-publication-norms",
                                         "capability-thresholds"}
    one = client.get("/api/v1/policies/gpt2-2019").json()
    assert one["rules"][0] == {
        "id": "months-between-stages", "check": "min_days_between_releases",
        "params": {"min_days": 60}, "action": "deny", "message": one["rules"][0]["message"],
        "applies_to": {}}
    assert "allowed-2019-release.yaml" in one["examples"]
    assert any("1908.09203" in s["url"] for s in one["sources"])
    missing = client.get("/api/v1/policies/nope")
    assert missing.status_code == 404 and missing.json()["errors"][0]["field"] == "policy_id"


def test_a_plan_declares_known_policies_only(client, world):
    body = {"model": "lab-a/m", "title": "T", "stages": [{"name": "a", "access_level": "api"}],
            "policies": ["pai-publication-norms", "made-up"]}
    r = client.post(API, json=body, headers=world.a_member.headers)
    assert r.status_code == 422
    assert r.json()["errors"] == [{"field": "policies[1]", "reason": r.json()["detail"]}]
    assert client.get(API, headers=world.a_member.headers).json()["items"] == []
    plan = file(client, world, ["pai-publication-norms"],
                [{"name": "a", "access_level": "api"}])
    assert plan["policies"] == ["pai-publication-norms"]
    r = client.patch(f"{API}/{plan['id']}", json={"version": plan["version"], "policies": []},
                     headers=world.a_member.headers)
    assert r.status_code == 200 and r.json()["policies"] == []
    assert compliance(client, plan["id"])["stages"][0]["rules"] == []


def test_release_denied_with_409_changes_nothing_until_an_exemption(client, world):
    plan = file(client, world, ["pai-publication-norms"],
                [{"name": "api", "access_level": "api", "rationale": "Customers asked."}])
    pid = plan["id"]
    assert move(client, world, pid, 1, "ready").status_code == 200
    before = client.get(f"{API}/{pid}", headers=world.a_member.headers).json()
    with session_scope() as s:
        events = s.exec(select(func.count()).select_from(Event)).one()
        revisions = s.exec(select(func.count()).select_from(PlanRevision)).one()

    r = move(client, world, pid, 1, "released")
    assert r.status_code == 409
    problem = r.json()
    assert problem["title"] == "Policy violation" and problem["errors"][0]["field"] == "to"
    [violation] = problem["violations"]
    assert violation["rule"] == "documented-risk-assessment" and violation["verdict"] == "fail"
    assert "risk assessment" in violation["message"] and violation["fix"]
    after = client.get(f"{API}/{pid}", headers=world.a_member.headers).json()
    assert after == before and after["stages"][0]["status"] == "ready"
    with session_scope() as s:
        assert s.exec(select(func.count()).select_from(Event)).one() == events
        assert s.exec(select(func.count()).select_from(PlanRevision)).one() == revisions

    grant = {"position": 1, "policy": "pai-publication-norms",
             "rule": "documented-risk-assessment",
             "reason": "Assessment filed on paper with the coordinator; to be transcribed.",
             "expires_at": "2099-01-01T00:00:00Z"}
    r = client.post(f"{API}/{pid}/exemptions", json=grant, headers=world.a_admin.headers)
    assert r.status_code == 403
    r = client.post(f"{API}/{pid}/exemptions", json={**grant, "rule": "nope"},
                    headers=world.coord.headers)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "rule"
    r = client.post(f"{API}/{pid}/exemptions",
                    json={**grant, "expires_at": "2001-01-01T00:00:00Z"},
                    headers=world.coord.headers)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "expires_at"
    r = client.post(f"{API}/{pid}/exemptions", json=grant, headers=world.coord.headers)
    assert r.status_code == 201, r.text
    exemption = r.json()
    assert exemption["granted_by"] == "coord" and exemption["reason"] == grant["reason"]

    shown = rule(compliance(client, pid), 1, "documented-risk-assessment")
    assert shown["verdict"] == "exempt" and shown["exemption"]["would_be"] == "fail"
    assert shown["exemption"]["reason"] == grant["reason"]
    assert move(client, world, pid, 1, "released").status_code == 200
    history = client.get(f"{API}/{pid}/compliance/history").json()
    assert ("exemption_granted", "coord") in {(h["action"], h["actor"]) for h in history}
    assert [e["id"] for e in client.get(f"{API}/{pid}/exemptions").json()] == [exemption["id"]]

    # Revoked (or expired), the exemption no longer covers the rule.
    r = client.post(f"{API}/{pid}/exemptions/{exemption['id']}/revoke",
                    headers=world.coord.headers)
    assert r.status_code == 200 and r.json()["revoked_at"]
    assert rule(compliance(client, pid), 1, "documented-risk-assessment")["verdict"] == "fail"


def test_exemption_expiry_turns_the_verdict_back_by_the_clock(client, world):
    plan = file(client, world, ["pai-publication-norms"], [{"name": "api", "access_level": "api"}])
    expiry = datetime.now(UTC) + timedelta(days=10)
    r = client.post(f"{API}/{plan['id']}/exemptions", headers=world.coord.headers, json={
        "position": 1, "policy": "pai-publication-norms", "rule": "documented-risk-assessment",
        "reason": "Transcription of the paper assessment pending.",
        "expires_at": expiry.isoformat()})
    assert r.status_code == 201
    assert rule(compliance(client, plan["id"]), 1, "documented-risk-assessment")["due"] \
        == expiry.date().isoformat()
    freeze(expiry + timedelta(days=1))
    assert rule(compliance(client, plan["id"]), 1, "documented-risk-assessment")["verdict"] \
        == "fail"
    with session_scope() as s:
        assert refresh_due(s) >= 1
    changes = [h for h in client.get(f"{API}/{plan['id']}/compliance/history").json()
               if h["action"] == "verdict_changed" and h["rule"] == "documented-risk-assessment"]
    assert [(c["from"], c["to"]) for c in changes] == [
        (None, "fail"), ("fail", "exempt"), ("exempt", "fail")]


def test_a_result_arriving_flips_pending_to_pass_and_is_an_event(client, world):
    ckpt = add_checkpoint(world.model_a, "v1")
    plan = file(client, world, ["capability-thresholds"],
                [{"name": "v1", "checkpoint_ref": "v1", "access_level": "partners"}])
    pid = plan["id"]
    first = rule(compliance(client, pid), 1, "measured-before-release")
    assert first["verdict"] == "fail" and "no measured perplexity" in first["detail"]
    suites = ["perplexity", "detectability", "bias_association"]
    with session_scope() as s:
        c = s.get(Checkpoint, ckpt)
        runs = [enqueue_run(s, SYSTEM, c, suite, reason="upload").id for suite in suites]
    pending = rule(compliance(client, pid), 1, "measured-before-release")
    assert pending["verdict"] == "pending"
    assert {e["id"] for e in pending["evidence"]} == set(runs)
    for n, suite in enumerate(suites):
        with session_scope() as s:
            stored = store_result(s, measured(world.model_a, ckpt, suite, bits_per_byte=2.2))
            run = s.get(EvalRun, runs[n])
            run.status, run.result_id = "succeeded", stored.id
            s.add(run)
    body = compliance(client, pid)
    done = rule(body, 1, "measured-before-release")
    assert done["verdict"] == "pass" and body["verdict"] == "pass"
    assert {e["href"] for e in done["evidence"]} == {
        f"/api/v1/evals/results/{i}" for i in _result_ids(ckpt)}
    history = [(h["from"], h["to"]) for h in client.get(f"{API}/{pid}/compliance/history")
               .json() if h.get("rule") == "measured-before-release"]
    assert history == [(None, "fail"), ("fail", "pending"), ("pending", "pass")]
    events = client.get("/api/v1/events", params={"entity_type": "plan",
                                                  "entity_id": str(pid)}).json()["items"]
    assert "verdict_changed" in {e["action"] for e in events}


def _result_ids(ckpt_id):
    with session_scope() as s:
        return s.exec(select(EvalResult.id).where(EvalResult.checkpoint_id == ckpt_id)).all()


def test_the_clock_passing_a_date_flips_pending_to_pass(client, world):
    day0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
    freeze(day0)
    plan = file(client, world, ["gpt2-2019"], [
        {"name": "small", "access_level": "public_weights", "planned_date": "2026-03-01"},
        {"name": "large", "access_level": "public_weights", "planned_date": "2026-07-01"}])
    pid = plan["id"]
    assert move(client, world, pid, 1, "ready").status_code == 200
    assert move(client, world, pid, 1, "released").status_code == 200
    spacing = rule(compliance(client, pid), 2, "months-between-stages")
    # Planned far enough out, but released today it would come too soon: waiting is enough.
    assert spacing["verdict"] == "pending" and spacing["due"] == "2026-04-30"
    freeze(datetime(2026, 4, 30, 9, tzinfo=UTC))
    assert rule(compliance(client, pid), 2, "months-between-stages")["verdict"] == "pass"
    with session_scope() as s:
        assert refresh_due(s) >= 1
    history = [(h["from"], h["to"]) for h in client.get(f"{API}/{pid}/compliance/history")
               .json() if h.get("rule") == "months-between-stages" and h["stage"] == 2]
    assert history[-1] == ("pending", "pass")


def test_required_suites_follow_the_policies_of_the_models_plans(client, world):
    with session_scope() as s:
        model = s.get(AIModel, world.model_a)
        assert required_suites(s, model) == ["bias_association", "detectability", "perplexity"]
    file(client, world, ["pai-publication-norms"], [{"name": "a", "access_level": "api"}])
    with session_scope() as s:  # no policy names a registry suite: every suite, as before
        assert len(required_suites(s, s.get(AIModel, world.model_a))) == 3
    from app.evals.service import suites_for_model

    with session_scope() as s:
        assert suites_for_model(s, world.model_a) is None
    file(client, world, ["capability-thresholds"], [{"name": "a", "access_level": "api"}])
    with session_scope() as s:
        assert suites_for_model(s, world.model_a) == [
            "bias_association", "detectability", "perplexity"]


def test_simulate_is_for_coordinators_and_changes_nothing(client, world):
    file(client, world, [], [{"name": "a", "access_level": "api"}])
    with session_scope() as s:
        events = s.exec(select(func.count()).select_from(Event)).one()
    body = {"policy": "pai-publication-norms"}
    r = client.post("/api/v1/policies/simulate", json=body, headers=world.a_admin.headers)
    assert r.status_code == 403
    r = client.post("/api/v1/policies/simulate", json=body, headers=world.coord.headers)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["plans"] == 1 and out["would_fail"] == 1
    assert out["results"][0]["failing"][0]["rule"] == "documented-risk-assessment"
    draft = "id: x\ntitle: t\nversion: 1\nsummary: s\nsources: []\nrules: []\n"
    r = client.post("/api/v1/policies/simulate", json={"policy_yaml": draft},
                    headers=world.coord.headers)
    # Each error names the API field and a line, never a path on the server.
    lines = r.json()["detail"].splitlines()
    assert r.status_code == 422 and "policy_yaml:5: sources: [] should be non-empty" in lines
    assert all(line.startswith("policy_yaml:") for line in lines)
    with session_scope() as s:
        assert s.exec(select(func.count()).select_from(Event)).one() == events
    from click.testing import CliRunner

    from app.cli import main
    from app.norms.loader import POLICY_DIR

    res = CliRunner().invoke(main, ["policy", "simulate", str(POLICY_DIR / "pai-publication-norms")])
    assert res.exit_code == 0 and "1 plans judged, 1 would fail" in res.output


def test_gpt2_demo_plan_under_gpt2_2019_is_true_about_what_is_not_hosted(client, settings):
    """The 2019 weights are not hosted here, so the registry cannot check that partners
    could download 1.5B: that rule fails saying so (never a pass on the lab's word); every
    other rule of the policy passes on the imported record."""
    from app.demo import PLAN_TITLE, load_demo

    list(load_demo(with_models=False))
    plans = client.get(API).json()["items"]
    plan = next(p for p in plans if p["title"] == PLAN_TITLE)
    assert plan["policies"] == ["gpt2-2019"] and plan["status"] == "completed"
    body = compliance(client, plan["id"])
    failing = [(s["position"], v["rule"]) for s in body["stages"] for v in s["rules"]
               if v["verdict"] != "pass"]
    assert failing == [(4, "partner-analysis-before-final")]
    partner = rule(body, 4, "partner-analysis-before-final")
    assert "no checkpoint of stage 4 (1.5B) is hosted here" in partner["detail"]
    assert partner["evidence"][0]["kind"] == "agreement"   # public since 2019-11-05


def test_tiny_demo_plan_follows_capability_thresholds_live(client, world, settings):
    from app.checkpoints.demo import _ensure_model, _ensure_plan

    with session_scope() as s:
        _ensure_model(s)
        _ensure_plan(s, ["tiny-124m", "tiny-355m"])
    plan = next(p for p in client.get(API).json()["items"] if p["model"] ==
                "tinyscale/tiny-gpt2")
    assert plan["policies"] == ["capability-thresholds"]
    body = compliance(client, plan["id"])
    # Nothing hosted yet: a lab sees exactly what is missing.
    assert "not hosted" in rule(body, 1, "measured-before-release")["detail"]


def test_plan_compliance_service_hides_drafts_like_plans(client, world):
    draft = client.post(API, headers=world.a_member.headers, json={
        "model": "lab-a/m", "title": "Draft", "policies": ["gpt2-2019"],
        "stages": [{"name": "a", "access_level": "public_weights"}]}).json()
    assert client.get(f"{API}/{draft['id']}/compliance").status_code == 404
    assert client.get(f"{API}/{draft['id']}/compliance",
                      headers=world.b_member.headers).status_code == 404
    with session_scope() as s:
        body = plan_compliance(s, world.a_member.principal, draft["id"])
    assert body.stages[0].rules[0].rule == "months-between-stages"


def test_mandatory_policies_apply_to_every_plan(client, world, settings):
    from dataclasses import replace

    from app.settings import configure

    plan = file(client, world, [], [{"name": "a", "access_level": "api"}])
    assert compliance(client, plan["id"])["policies"] == []
    configure(replace(settings, mandatory_policies=("pai-publication-norms",)))
    try:
        body = compliance(client, plan["id"])
        assert body["policies"] == ["pai-publication-norms"] and body["verdict"] == "fail"
        listed = {p["id"]: p["mandatory"] for p in client.get("/api/v1/policies").json()}
        assert listed["pai-publication-norms"] is True and listed["gpt2-2019"] is False
        assert move(client, world, plan["id"], 1, "ready").status_code == 200
        assert move(client, world, plan["id"], 1, "released").status_code == 409
    finally:
        configure(settings)
