"""`stagegate policy exemption grant|list|revoke` over HTTP against a live server, on both
databases: coordinators grant and revoke, the gate then lets the stage out, every refusal
is one line with exit code 2."""

from __future__ import annotations

import json

PLANS = "/api/v1/plans"
RULE = "documented-risk-assessment"
REASON = "Assessment filed on paper with the coordinator; to be transcribed."


def _ready_gated_plan(client, world) -> int:
    r = client.post(PLANS, headers=world.a_member.headers, json={
        "model": "lab-a/m", "title": "Gated", "file": True,
        "policies": ["pai-publication-norms"],
        "stages": [{"name": "api", "access_level": "api", "rationale": "Customers asked."}]})
    assert r.status_code == 201, r.text
    plan = r.json()
    r = client.post(f"{PLANS}/{plan['id']}/stages/1/transitions",
                    json={"to": "ready", "version": plan["version"]},
                    headers=world.a_member.headers)
    assert r.status_code == 200, r.text
    return plan["id"]


def grant(stagegate, plan_id, actor, *extra, **over):
    args = {"--stage": 1, "--policy": "pai-publication-norms", "--rule": RULE,
            "--reason": REASON, "--expires-at": "2099-01-01"} | over
    flat = [str(x) for kv in args.items() for x in kv]
    return stagegate("policy", "exemption", "grant", plan_id, *flat, *extra, as_=actor)


def test_grant_release_list_and_revoke(client, world, stagegate):
    pid = _ready_gated_plan(client, world)
    code, _, err = stagegate("plan", "transition", pid, "released", "--stage", 1,
                             as_=world.a_member)
    assert code == 2 and err.startswith("error: 409 (to):") and RULE in err

    code, out, err = grant(stagegate, pid, world.coord)
    assert code == 0, err
    [made] = client.get(f"{PLANS}/{pid}/exemptions").json()
    assert made["granted_by"] == "coord" and made["reason"] == REASON
    assert made["expires_at"].startswith("2099-01-01T00:00:00")
    assert out == (f"exemption {made['id']} on plan {pid} stage 1: pai-publication-norms/"
                   f"{RULE} waived until {made['expires_at']}\n")

    # The gate now lets the stage out, and the CLI says so in the stage's words.
    code, out, err = stagegate("plan", "transition", pid, "released", "--stage", 1,
                               as_=world.a_member)
    assert code == 0, err
    plan = client.get(f"{PLANS}/{pid}").json()
    assert out == (f"plan {pid} stage 1 (api) released on {plan['stages'][0]['actual_date']} "
                   f"(plan version {plan['version']})\n")

    code, out, _ = stagegate("policy", "exemption", "list", pid)
    header, row = out.splitlines()
    assert header.split() == ["ID", "STAGE", "POLICY", "RULE", "EXPIRES_AT", "GRANTED_BY",
                              "REVOKED_AT", "REASON"]
    assert row.split()[:4] == [str(made["id"]), "1", "pai-publication-norms", RULE]
    assert row.split()[5:7] == ["coord", "-"]
    code, out, _ = stagegate("policy", "exemption", "list", pid, "--json")
    assert json.loads(out) == client.get(f"{PLANS}/{pid}/exemptions").json()

    code, out, err = stagegate("policy", "exemption", "revoke", pid, made["id"],
                               as_=world.coord)
    assert code == 0, err
    [after] = client.get(f"{PLANS}/{pid}/exemptions").json()
    assert after["revoked_at"] and out == (
        f"exemption {made['id']} on plan {pid} stage 1 (pai-publication-norms/{RULE}) "
        f"revoked at {after['revoked_at']}\n")
    code, out, _ = stagegate("policy", "exemption", "revoke", pid, made["id"], "--json",
                             as_=world.coord)
    assert code == 0 and json.loads(out) == after  # revoking twice changes nothing


def test_refusals_are_one_line_with_exit_code_2(client, world, stagegate):
    pid = _ready_gated_plan(client, world)
    for actor, over, start in [
            (world.a_admin, {}, "error: 403"),                        # coordinators only
            (world.coord, {"--rule": "nope"}, "error: 422 (rule):"),
            (world.coord, {"--policy": "gpt2-2019"}, "error: 422 (policy):"),
            (world.coord, {"--stage": 7}, "error: 404 (position):"),
            (world.coord, {"--expires-at": "2001-01-01"}, "error: 422 (expires_at):"),
            (world.coord, {"--reason": "short"}, "error: 422 (reason"),
            (None, {}, "error: 401")]:
        code, out, err = grant(stagegate, pid, actor, **over)
        assert code == 2 and out == "" and err.startswith(start), (over, err)
        assert len(err.splitlines()) == 1
    code, _, err = grant(stagegate, pid, world.coord, **{"--expires-at": "soon"})
    assert code == 2 and "--expires-at" in err  # bad input, refused before any request
    code, _, err = stagegate("policy", "exemption", "revoke", pid, 999, as_=world.coord)
    assert code == 2 and err.startswith("error: 404 (exemption_id):")
    code, _, err = stagegate("policy", "exemption", "list", 999999)
    assert code == 2 and err.startswith("error: 404")
    assert client.get(f"{PLANS}/{pid}/exemptions").json() == []


def test_an_expiry_with_a_time_and_an_offset_is_kept(client, world, stagegate):
    pid = _ready_gated_plan(client, world)
    code, _, err = grant(stagegate, pid, world.coord, **{"--expires-at": "2098-06-30T12:00:00"})
    assert code == 0, err
    code, _, err = grant(stagegate, pid, world.coord,
                         **{"--expires-at": "2098-06-30T12:00:00+0200"})
    assert code == 0, err
    shown = [e["expires_at"] for e in client.get(f"{PLANS}/{pid}/exemptions").json()]
    assert [s[:19] for s in shown] == ["2098-06-30T12:00:00", "2098-06-30T10:00:00"]
