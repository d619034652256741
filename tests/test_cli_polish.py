"""The CLI as a person or a script meets it, against a real uvicorn server on both
databases: policy refusals with their messages, fixes and due dates (and the 409 body with
--json), what a stage move says, `whoami`, a closed stdout, operator commands where there is
no registry, and why a download is refused (never for a checkpoint the caller cannot see)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from app.checkpoints import service as checkpoint_service
from app.checkpoints.tables import Checkpoint
from app.db import session_scope
from app.labs.service import get_lab
from app.timeutil import utcnow
from tests.agreements.conftest import active, draft, people, propose  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
PLANS = "/api/v1/plans"
GATED = "pai-publication-norms/documented-risk-assessment"


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAGEGATE_")}
    return env | {"PYTHONPATH": str(ROOT)} | extra


def _gated_plan(client, world) -> int:
    """A filed plan whose one stage is ready but may not be released: the policy wants a
    risk assessment the stage does not have."""
    r = client.post(PLANS, headers=world.a_member.headers, json={
        "model": "lab-a/m", "title": "Gated", "file": True,
        "policies": ["pai-publication-norms"],
        "stages": [{"name": "api", "access_level": "api", "rationale": "Customers asked."}]})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _refusal(client, world, plan_id: int) -> dict:
    version = client.get(f"{PLANS}/{plan_id}", headers=world.a_member.headers).json()["version"]
    r = client.post(f"{PLANS}/{plan_id}/stages/1/transitions",
                    json={"to": "released", "version": version}, headers=world.a_member.headers)
    assert r.status_code == 409, r.text
    return r.json()


def test_a_stage_move_says_what_became_of_the_stage(client, world, stagegate):
    plan_id = _gated_plan(client, world)
    code, out, err = stagegate("plan", "transition", plan_id, "ready", "--stage", 1,
                               as_=world.a_member)
    assert code == 0, err
    assert out == f"plan {plan_id} stage 1 (api) ready (plan version 2)\n"
    code, out, err = stagegate("plan", "transition", plan_id, "deferred", "--stage", 1,
                               as_=world.a_member)
    assert code == 0 and out == f"plan {plan_id} stage 1 (api) deferred (plan version 3)\n"
    # A whole plan's move still names the plan's state.
    code, out, _ = stagegate("plan", "transition", plan_id, "withdrawn", as_=world.a_member)
    assert code == 0 and out == f"plan {plan_id} withdrawn (version 4)\n"
    code, out, err = stagegate("plan", "transition", plan_id, "ready", "--stage", 9,
                               as_=world.a_member)
    assert code == 2 and out == "" and err.startswith("error: 404")


def test_a_policy_refusal_shows_each_violation_s_message_fix_and_due_date(client, world,
                                                                          stagegate):
    plan_id = _gated_plan(client, world)
    assert stagegate("plan", "transition", plan_id, "ready", "--stage", 1,
                     as_=world.a_member)[0] == 0
    body = _refusal(client, world, plan_id)
    [violation] = body["violations"]
    assert violation["rule"] == "documented-risk-assessment" and violation["fix"]

    code, out, err = stagegate("plan", "transition", plan_id, "released", "--stage", 1,
                               as_=world.a_member)
    assert code == 2 and out == ""
    one = lambda text: " ".join(text.split())
    assert err.splitlines() == [
        f"error: 409 (to): {body['detail']}",
        f"  {GATED} (stage 1 api): {one(violation['message'])}",
        f"    fix: {one(violation['fix'])}",
    ] + ([f"    due: {violation['due']}"] if violation["due"] else [])
    assert "Traceback" not in err

    # --json: the 409 body itself on stdout for scripts, the one line on stderr.
    code, out, err = stagegate("plan", "transition", plan_id, "released", "--stage", 1,
                               "--json", as_=world.a_member)
    assert code == 2
    shown = json.loads(out)
    assert shown["status"] == 409 and shown["title"] == "Policy violation"
    assert [(v["rule"], v["message"], v["fix"], v["due"]) for v in shown["violations"]] == \
        [(v["rule"], v["message"], v["fix"], v["due"]) for v in body["violations"]]
    assert err == f"error: 409 (to): {body['detail']}\n"
    # Nothing moved.
    stage = client.get(f"{PLANS}/{plan_id}", headers=world.a_member.headers).json()["stages"][0]
    assert stage["status"] == "ready"

    # Other errors with --json stay one line on stderr and nothing on stdout.
    code, out, err = stagegate("plan", "show", 999999, "--json", as_=world.a_member)
    assert code == 2 and out == "" and err.startswith("error: 404") and err.count("\n") == 1


def test_whoami_reads_like_a_sentence_and_json_is_the_api_s(world, stagegate, live_server):
    code, out, err = stagegate("whoami", as_=world.a_admin)
    assert code == 0, err
    assert "name:        a_admin" in out.splitlines()
    assert f"registry:    {live_server}" in out.splitlines()
    assert "labs:        lab-a (lab_admin)" in out.splitlines()
    assert "{" not in out
    code, out, _ = stagegate("whoami", as_=world.coord)
    assert "coordinator: yes" in out.splitlines() and "labs:        none" in out.splitlines()
    code, out, _ = stagegate("whoami", "--json", as_=world.a_member)
    assert json.loads(out)["labs"] == {"lab-a": "lab_member"}


def _public_checkpoint(world) -> int:
    with session_scope() as s:
        lab = get_lab(s, "lab-a")
        row = Checkpoint(model_id=world.model_a, lab_id=lab.id, name="pub",
                         access_level="public", manifest=[
                             {"name": f"f{i}.bin", "sha256": "0" * 64, "size": i}
                             for i in range(50)],
                         manifest_digest="0" * 64, total_bytes=1, parameter_count=1)
        s.add(row)
        s.flush()
        return row.id


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_closed_stdout_ends_every_command_quietly(world, live_server, tmp_path):
    ckpt = _public_checkpoint(world)
    env = _env(STAGEGATE_URL=live_server, STAGEGATE_CONFIG_DIR=str(tmp_path / "config"),
               STAGEGATE_TOKEN=world.a_member.token)
    for args in (["checkpoint", "show", str(ckpt)], ["lab", "list"], ["policy", "list"],
                 ["--help"]):
        proc = subprocess.Popen([sys.executable, "-m", "app.cli", *args], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        proc.stdout.close()  # the reader is gone before the first line (`| head -0`)
        err = proc.stderr.read().decode()
        assert proc.wait(60) == 1, (args, err)
        assert err == "", (args, err)


def test_operator_commands_refuse_where_there_is_no_registry(tmp_path):
    here = tmp_path / "somewhere"
    here.mkdir()
    env = _env(STAGEGATE_CONFIG_DIR=str(tmp_path / "config"))

    def cli(*args):
        done = subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=here, env=env,
                              capture_output=True, text=True, timeout=120, check=False)
        return done.returncode, done.stdout, done.stderr

    missing = here / "data" / "stagegate.db"
    for args in (["token", "create", "--user", "x"], ["user", "list"], ["backup", "b.tar"],
                 ["policy", "refresh"]):
        code, out, err = cli(*args)
        assert code == 2 and out == "", (args, err)
        assert err == (f"error: no registry database at {missing}; `stagegate "
                       f"{' '.join(args[:2] if args[0] != 'backup' else args[:1])}` works on "
                       "the registry's own machine (set STAGEGATE_DATA_DIR or "
                       "STAGEGATE_DATABASE_URL to its database, or create one with "
                       "`stagegate db upgrade`)\n"), err
        assert not (here / "data").exists(), args
    assert cli("worker", "--help")[0] == 0 and not (here / "data").exists()
    # Commands that set a registry up create it, at the current schema.
    code, out, err = cli("lab", "create", "lab-x", "--name", "Lab X")
    assert code == 0 and out == "created lab lab-x\n", err
    assert err == f"created the registry database {missing}\n"
    code, out, err = cli("user", "list", "--json")
    assert code == 0 and json.loads(out) == [], err


# -- why a download is refused ------------------------------------------------------------

def _row(model_id: int, lab: str, level: str, *, uploaded=None, files=1) -> int:
    with session_scope() as s:
        row = Checkpoint(model_id=model_id, lab_id=get_lab(s, lab).id,
                         name=f"c{utcnow().timestamp()}", access_level=level,
                         manifest=[{"name": "model.safetensors", "sha256": "0" * 64,
                                    "size": 1}] * files, manifest_digest="0" * 64,
                         total_bytes=1, parameter_count=1,
                         created_at=uploaded or utcnow() - timedelta(days=1))
        s.add(row)
        s.flush()
        return row.id


def _end(agreement_id: int, ended_at) -> None:
    """Move an agreement's whole window into the past (signed, started and ended then)."""
    from app.agreements.tables import DisclosureAgreement

    with session_scope() as s:
        row = s.get(DisclosureAgreement, agreement_id)
        row.activated_at = row.starts_at = ended_at - timedelta(days=30)
        row.ends_at = ended_at
        s.add(row)


def _other_model(slug: str = "other") -> int:
    from app.auth.principal import SYSTEM
    from app.models.schemas import ModelCreate
    from app.models.service import create_model

    with session_scope() as s:
        return create_model(s, SYSTEM, ModelCreate(lab="lab-a", slug=slug, name=slug)).id


def _hidden_world(client, people) -> dict[str, int]:  # noqa: F811
    """Checkpoints lab-c's member may not see, each for another reason."""
    now = utcnow()
    m = people.model_a
    out = {"internal": _row(m, "lab-a", "internal"),
           "another lab's": _row(people.model_b, "lab-b", "internal"),
           "no agreement": _row(_other_model("lonely"), "lab-a", "partners")}
    _end(active(client, people, parties=["lab-c"])["id"], now - timedelta(days=2))
    out["ended"] = _row(m, "lab-a", "partners", uploaded=now - timedelta(days=5))
    out["uploaded after the end"] = _row(m, "lab-a", "partners", uploaded=now)
    _other_model()
    active(client, people, parties=["lab-c"], scope={"models": ["lab-a/other"]})
    out["not covered"] = _row(m, "lab-a", "partners")
    out["not yet"] = _row(m, "lab-a", "partners")
    active(client, people, parties=["lab-c"], scope={"checkpoints": [out["not yet"]]},
           starts_at=(now + timedelta(days=3)).isoformat())
    propose(client, people, draft(client, people, parties=["lab-c"],
                                  scope={"checkpoints": [out["internal"]]}))
    return out


def test_a_checkpoint_the_caller_cannot_see_is_the_404_of_one_that_never_was(
        client, people, stagegate, monkeypatch):  # noqa: F811
    hidden = _hidden_world(client, people)
    never = 987654

    def answer(ckpt_id: int) -> tuple[int, dict]:
        r = client.get(f"/api/v1/checkpoints/{ckpt_id}/files/model.safetensors",
                       headers=people.c_member.headers)
        return r.status_code, json.loads(re.sub(rf"\b{ckpt_id}\b", "ID", r.text))

    baseline = answer(never)
    assert baseline[0] == 404 and baseline[1]["detail"] == "no checkpoint ID"
    # The one exception: lab-c held a grant on this very checkpoint until its agreement
    # ended, so saying so tells them nothing new (a checkpoint uploaded after the end,
    # which they never held, stays a plain 404 below).
    held = hidden.pop("ended")
    status, body = answer(held)
    assert status == 403 and body["detail"].startswith(
        "your lab's access to checkpoint ID under agreement ") and " ended on " in body["detail"]
    code, out, err = stagegate("checkpoint", "download", held, as_=people.c_member)
    assert code == 2 and err.startswith(f"error: 403 (checkpoint_id): your lab's access to "
                                        f"checkpoint {held} under agreement "), err
    for why, ckpt_id in hidden.items():
        assert answer(ckpt_id) == baseline, why
        code, out, err = stagegate("checkpoint", "download", ckpt_id, as_=people.c_member)
        assert (code, out) == (2, ""), why
        assert err == f"error: 404 (checkpoint_id): no checkpoint {ckpt_id}\n", why
    # Even were seeing and downloading ever to part (a narrower download rule), a
    # checkpoint the caller cannot see gives no reason: the 404 comes first.
    monkeypatch.setattr(checkpoint_service, "may_download", lambda *a: False)
    for why, ckpt_id in hidden.items():
        assert answer(ckpt_id) == baseline, why


def test_a_visible_checkpoint_that_may_not_be_downloaded_is_a_403_that_says_why(
        client, people, stagegate, monkeypatch, tmp_path):  # noqa: F811
    """Today what a caller may see they may download (one clause in app.access); the 403
    is for a registry whose download rule is narrower. Simulated here by refusing every
    download: the reasons come from the real agreements."""
    monkeypatch.setattr(checkpoint_service, "may_download", lambda *a: False)
    mine = _row(people.model_a, "lab-a", "internal")
    code, out, err = stagegate("checkpoint", "download", mine, "--to", tmp_path / "down",
                               as_=people.coord)
    assert code == 2 and out == ""
    assert err == (f"error: 403 (checkpoint_id): checkpoint {mine} is internal: only members "
                   "of lab-a may download it\n")
    assert not (tmp_path / "down").exists()
    r = client.get(f"/api/v1/checkpoints/{mine}/files/model.safetensors",
                   headers=people.coord.headers)
    assert r.status_code == 403 and r.json()["errors"] == [
        {"field": "checkpoint_id", "reason": r.json()["detail"]}]
    doc = client.get("/schema/openapi.json").json()
    responses = doc["paths"]["/api/v1/checkpoints/{checkpoint_id}/files/{name}"]["get"][
        "responses"]
    assert "403" in responses and "404" in responses


def test_the_reasons_follow_the_agreements(client, people):  # noqa: F811
    """download_refusal over real agreements, for a principal shown the checkpoint."""
    now = utcnow()
    c = people.c_member.principal

    def why(ckpt_id: int) -> str:
        with session_scope(write=False) as s:
            return checkpoint_service.download_refusal(s, c, s.get(Checkpoint, ckpt_id))

    def day(t) -> str:
        return f"{t:%Y-%m-%d %H:%M} UTC"

    partners = _row(people.model_a, "lab-a", "partners")
    assert why(partners) == (f"no agreement in force between lab-a and your lab covers "
                             f"checkpoint {partners}")
    assert why(_row(people.model_a, "lab-a", "internal")).endswith(
        "is internal: only members of lab-a may download it")
    proposed = propose(client, people, draft(client, people, parties=["lab-c"]))
    assert why(partners) == (f"your lab's agreement {proposed['id']} is not in force: not "
                             "every party has signed")
    start = now + timedelta(days=3)
    later = active(client, people, parties=["lab-c"], starts_at=start.isoformat())
    assert why(partners) == (f"your lab's agreement {later['id']} grants checkpoint "
                             f"{partners} from {day(start)}, not yet")
    ended = now - timedelta(hours=1)
    _end(later["id"], ended)
    assert why(partners) == (f"your lab's agreement {later['id']} granted checkpoint "
                             f"{partners} until {day(ended)}; it has ended")
    fresh = _row(people.model_a, "lab-a", "partners", uploaded=now)
    assert why(fresh) == (f"checkpoint {fresh} was uploaded after your lab's agreement "
                          f"{later['id']} ended ({day(ended)})")
    other = _row(_other_model(), "lab-a", "partners")
    current = active(client, people, parties=["lab-c"])
    assert why(other) == (f"your lab's agreement {current['id']} with lab-a does not cover "
                          f"checkpoint {other}: its scope names neither its model, its stage "
                          "nor the checkpoint")
    # Anonymous callers are told to sign in; an agreement of another lab is never named.
    from app.auth.principal import ANONYMOUS

    with session_scope(write=False) as s:
        said = checkpoint_service.download_refusal(s, ANONYMOUS, s.get(Checkpoint, other))
        assert said.startswith(f"checkpoint {other} is open to partners of lab-a only")
        said = checkpoint_service.download_refusal(s, people.b_member.principal,
                                                   s.get(Checkpoint, partners))
        assert said == (f"no agreement in force between lab-a and your lab covers "
                        f"checkpoint {partners}")


def test_the_download_itself_still_works(client, people, live_server):  # noqa: F811
    """The grant check added to the download route lets through what it always did."""
    ckpt = _row(people.model_a, "lab-a", "partners")
    active(client, people, parties=["lab-c"])
    with httpx.Client(base_url=live_server, headers=people.c_member.headers) as http:
        r = http.get(f"/api/v1/checkpoints/{ckpt}/files/nope.bin")
        assert r.status_code == 404 and r.json()["errors"][0]["field"] == "name"


def test_policy_check_shows_a_pending_rule_s_due_date(tmp_path):
    from click.testing import CliRunner

    from app.cli import main

    plan = tmp_path / "plan.yaml"
    plan.write_text("model: examplelab/lm\ntitle: Waiting\npolicies: [gpt2-2019]\nstages:\n"
                    "  - {name: small, planned_date: 2026-03-01, access_level: public_weights}\n"
                    "  - {name: medium, planned_date: 2026-06-01, access_level: public_weights}\n"
                    "evidence:\n  as_of: 2026-03-10\n  released: {1: 2026-03-01}\n")
    result = CliRunner().invoke(main, ["policy", "check", str(plan)])
    lines = result.output.splitlines()
    at = lines.index("  PEND deny  stage 2 (medium) gpt2-2019/months-between-stages: the 60 "
                     "days run until 2026-04-30")
    assert lines[at + 2:at + 4] == ["        to pass: wait until 2026-04-30",
                                    "        due: 2026-04-30"]
