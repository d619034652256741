"""`stagegate agreement ...` played as labs and a coordinator, through the CLI against a
real uvicorn server (both databases): draft from a template or a file, revise, propose,
sign, show, terminate, withdraw; one-line errors naming the field, exit code 2; --json is
the API's body; nothing opens a local database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from app.timeutil import utcnow
from tests.agreements.conftest import API

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = "non_commercial_access_2019"


def days(n: int) -> str:
    return (utcnow() + timedelta(days=n)).date().isoformat()


def one_line_error(result, prefix: str) -> None:
    code, out, err = result
    assert code == 2 and out == "", (code, out, err)
    assert err.startswith(prefix) and len(err.splitlines()) == 1, err


def test_a_lab_runs_an_agreement_from_the_cli(people, client, stagegate, live_server,
                                              tmp_path):
    plan = people.plan(filed=True)              # lab-a's plan; stage 3 is 774M (partners)
    # A fresh machine: no saved login, an empty working folder. The command goes over
    # HTTP with the caller's token and never opens (or creates) ./data/stagegate.db.
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("STAGEGATE_", "XDG_"))}
    env |= {"HOME": str(home), "PYTHONPATH": str(ROOT),
            "STAGEGATE_TOKEN": people.a_admin.token}
    run = subprocess.run(
        [sys.executable, "-m", "app.cli", "--url", live_server, "agreement", "from-template",
         TEMPLATE, "--discloser", "lab-a", "--party", "lab-c", "--party", "lab-d",
         "--model", "lab-a/m", "--stage", f"{plan}:3", "--starts", days(-1),
         "--ends", days(60)],
        check=False, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert list(cwd.iterdir()) == []            # no data/ folder, no database
    first, *rest = run.stdout.splitlines()
    assert first.startswith("agreement ") and " draft (version 1): " in first
    agreement_id = int(first.split()[1])
    assert first.endswith("Non-commercial research access to Lab A models")
    assert [line.split(None, 1) for line in rest] == [
        ["discloser", "lab-a"], ["parties", "lab-c, lab-d (signed 0 of 2)"],
        ["window", f"{days(-1)} to {days(60)} UTC"]]
    api = client.get(f"{API}/{agreement_id}", headers=people.a_admin.headers).json()
    assert api["template"] == TEMPLATE and api["status"] == "draft"
    assert [s["name"] for s in api["scope"]["stages"]] == ["774M"]

    # --json is the API's body, for scripts.
    code, out, err = stagegate("agreement", "show", agreement_id, "--json", as_=people.a_admin)
    assert code == 0 and json.loads(out) == api, err
    # A member of another lab cannot propose it: to lab-b a draft does not exist.
    one_line_error(stagegate("agreement", "propose", agreement_id, as_=people.b_member),
                   "error: 404 (agreement_id): no agreement")

    code, out, err = stagegate("agreement", "propose", agreement_id, as_=people.a_admin)
    assert code == 0 and out == f"agreement {agreement_id} proposed (version 2)\n", err
    code, out, err = stagegate("agreement", "sign", agreement_id, "--lab", "lab-c",
                               as_=people.c_admin)
    assert code == 0 and out == f"agreement {agreement_id} proposed (signed for lab-c)\n", err
    code, out, err = stagegate("agreement", "sign", agreement_id, "--lab", "lab-d", "--json",
                               as_=people.d_admin)
    assert code == 0 and json.loads(out)["status"] == "active", err

    code, out, err = stagegate("agreement", "show", agreement_id, as_=people.c_admin)
    assert code == 0, err
    lines = out.splitlines()
    fields = {line.split(None, 1)[0]: line.split(None, 1)[1]
              for line in lines[1:lines.index("")] if len(line.split(None, 1)) == 2}
    assert lines[0] == f"agreement {agreement_id}: Non-commercial research access to " \
                       "Lab A models"
    assert fields["status"] == "active" and fields["in_force"] == "yes"
    assert fields["window"] == f"{days(-1)} to {days(60)} UTC"
    assert fields["discloser"] == "lab-a" and fields["template"] == TEMPLATE
    parties = lines[lines.index("parties:") + 1:lines.index("parties:") + 4]
    assert parties[0].split() == ["LAB", "SIGNED", "SIGNER", "SIGNED_AT"]
    assert [p.split()[:3] for p in parties[1:]] == [["lab-c", "yes", "c_admin"],
                                                   ["lab-d", "yes", "d_admin"]]
    assert "models       lab-a/m" in lines
    assert f"stages       plan {plan} stage 3 (774M)" in lines
    assert "## Non-commercial software access agreement" in lines[lines.index("terms:") + 1:]

    # Ending it early needs a reason; the party may not end it; the discloser may.
    one_line_error(stagegate("agreement", "terminate", agreement_id, as_=people.a_admin),
                   "error: 422 (reason): say why")
    one_line_error(stagegate("agreement", "terminate", agreement_id, "--reason", "x",
                             as_=people.c_admin), "error: 403")
    version = api["version"] + 3                # proposed, signed, signed
    one_line_error(stagegate("agreement", "terminate", agreement_id, "--reason", "x",
                             "--version", version - 1, as_=people.a_admin),
                   f"error: 409 (version): version {version - 1} is stale")
    code, out, err = stagegate("agreement", "terminate", agreement_id, "--reason",
                               "model withdrawn", as_=people.a_admin)
    assert code == 0 and out == f"agreement {agreement_id} terminated " \
                                f"(version {version + 1})\n", err
    code, out, _ = stagegate("agreement", "show", agreement_id, as_=people.d_admin)
    assert "status              terminated" in out.splitlines()
    assert "termination_reason  model withdrawn" in out.splitlines()
    assert "in_force            no" in out.splitlines()
    code, out, _ = stagegate("agreement", "list", "--status", "terminated", "--json",
                             as_=people.a_admin)
    assert [a["id"] for a in json.loads(out)] == [agreement_id]
    # A final status moves no more.
    one_line_error(stagegate("agreement", "transition", agreement_id, "proposed",
                             as_=people.a_admin), "error: 409 (to): a terminated agreement")


AGREEMENT_YAML = """\
discloser: lab-a
title: Evaluation access
kind: pre_release_evaluation
parties: [lab-c]
scope:
  models: [lab-a/m]
terms: |
  Evaluate only; report findings to Lab A first.
starts_at: {starts}
ends_at: {ends}
"""


def test_draft_revise_and_withdraw_from_files(people, client, stagegate, tmp_path):
    path = tmp_path / "agreement.yaml"
    path.write_text(AGREEMENT_YAML.format(starts=days(-1), ends=days(30)))  # YAML dates: UTC
    code, out, err = stagegate("agreement", "create", path, "--json", as_=people.a_member)
    assert code == 0, err
    created = json.loads(out)
    agreement_id = created["id"]
    assert created == client.get(f"{API}/{agreement_id}",
                                 headers=people.a_member.headers).json()
    assert created["starts_at"].startswith(days(-1) + "T00:00:00")
    assert [p["lab"] for p in created["parties"]] == ["lab-c"]

    # Revise with the same file, edited: a new title and a second party.
    path.write_text(AGREEMENT_YAML.format(starts=days(-1), ends=days(30))
                    .replace("Evaluation access", "Evaluation access, v2")
                    .replace("[lab-c]", "[lab-c, lab-d]"))
    code, out, err = stagegate("agreement", "revise", agreement_id, path, as_=people.a_member)
    assert code == 0, err
    assert out.splitlines() == [
        f"agreement {agreement_id} draft (version 2): Evaluation access, v2",
        "discloser  lab-a", "parties    lab-c, lab-d (signed 0 of 2)",
        f"window     {days(-1)} to {days(30)} UTC"]
    one_line_error(stagegate("agreement", "revise", agreement_id, path, "--version", 1,
                             as_=people.a_member), "error: 409 (version): version 1 is stale")
    partial = tmp_path / "partial.json"
    partial.write_text('{"discloser": "lab-b", "title": "Taken"}')
    one_line_error(stagegate("agreement", "revise", agreement_id, partial,
                             as_=people.a_member),
                   f"error: {partial} (discloser): the disclosing lab of agreement")
    partial.write_text('{"title": "Only the title", "confidential_until": "2030-01-01"}')
    code, out, err = stagegate("agreement", "revise", agreement_id, partial, "--json",
                               as_=people.a_member)
    assert code == 0, err
    revised = json.loads(out)
    assert revised["title"] == "Only the title" and revised["version"] == 3
    assert revised["confidential_until"].startswith("2030-01-01T00:00:00")
    assert [p["lab"] for p in revised["parties"]] == ["lab-c", "lab-d"]

    # Withdraw applies to proposals only; a coordinator may move any lab's agreement.
    one_line_error(stagegate("agreement", "withdraw", agreement_id, "--reason", "x",
                             as_=people.a_member), "error: ID (status): agreement")
    code, out, err = stagegate("agreement", "transition", agreement_id, "proposed",
                               "--version", 3, as_=people.a_member)
    assert code == 0 and out == f"agreement {agreement_id} proposed (version 4)\n", err
    one_line_error(stagegate("agreement", "revise", agreement_id, partial,
                             as_=people.a_member), "error: 409 (status): a proposed agreement")
    code, out, err = stagegate("agreement", "withdraw", agreement_id, "--reason",
                               "scope changed", as_=people.coord)
    assert code == 0 and out == f"agreement {agreement_id} withdrawn, now terminated " \
                                "(version 5)\n", err
    code, out, _ = stagegate("agreement", "show", agreement_id, "--json", as_=people.coord)
    assert json.loads(out)["termination_reason"] == "scope changed"


def test_file_errors_name_the_line_and_field(people, stagegate, tmp_path):
    path = tmp_path / "bad.yaml"
    good = AGREEMENT_YAML.format(starts=days(-1), ends=days(30))
    cases = [
        (good.replace("pre_release_evaluation", "friendship"),
         f"error: {path}:3 (kind): Input should be"),
        (good.replace("  models: [lab-a/m]", "  models: [lab-a/m]\n  labs: [x]"),
         f"error: {path}:7 (scope.labs): Extra inputs are not permitted"),
        (good.replace(f"ends_at: {days(30)}", "ends_at: soon"),
         f"error: {path}:10 (ends_at): Input should be"),
        (good.replace("title: Evaluation access", "title: [unclosed"),
         f"error: {path}:3 (file): not valid YAML/JSON"),
        ("a: &x [1]\nb: *x\n", f"error: {path}:1 (file): YAML anchors"),
        ("- just\n- a list\n", f"error: {path} (file): an agreement file holds a mapping"),
    ]
    for text, prefix in cases:
        path.write_text(text)
        one_line_error(stagegate("agreement", "create", path, as_=people.a_member), prefix)
    # Checked here first, then by the registry: its errors name the field too.
    path.write_text(good.replace("[lab-c]", "[lab-zz]"))
    one_line_error(stagegate("agreement", "create", path, as_=people.a_member),
                   "error: 404 (parties): no lab 'lab-zz'")
    path.write_text(good)
    one_line_error(stagegate("agreement", "create", path, as_=people.b_member), "error: 403")


def test_bad_input_is_one_line_naming_the_field(people, stagegate, tmp_path):
    def draft(*extra, template=TEMPLATE, actor=people.a_member):
        return stagegate("agreement", "from-template", template, "--discloser", "lab-a",
                         "--party", "lab-c", "--model", "lab-a/m", *extra, as_=actor)

    mine = tmp_path / "mine.yaml"
    mine.write_text("title: t\nkind: research_access\nterms: x\n")
    for result, prefix in [
            (draft("--starts", days(0), template="nope"),
             f"error: 404 (template): no template 'nope'; available: {TEMPLATE}"),
            (draft("--starts", days(0), template=str(mine)),
             f"error: NAME (template): '{mine}' is a file path"),
            (draft("--starts", "soon"), "error: --starts (starts_at): 'soon' is not a date"),
            (draft("--starts", days(0), "--ends", "2026-02-30"),
             "error: --ends (ends_at): '2026-02-30' is not a date"),
            (draft("--starts", days(0), "--ends", days(-3)),
             "error: 422 (ends_at): ends_at must be after starts_at"),
            (draft("--starts", days(0), "--stage", "3"),
             "error: --stage (scope.stages[0]): '3': give PLAN:N"),
            (draft("--starts", days(0), "--stage", "999:1"),
             "error: 404 (scope.stages): plan 999 has no stage 1"),
            (draft("--starts", days(0), "--checkpoint", "x"),
             "error: --checkpoint (scope.checkpoints[0]): 'x' is not a checkpoint id"),
            (draft("--starts", days(0), actor=people.b_member), "error: 403"),
            (stagegate("agreement", "show", 999999), "error: 404 (agreement_id): no agreement"),
            (stagegate("agreement", "show", "abc"), "error: ID (agreement_id): 'abc' is not"),
            (stagegate("agreement", "propose", 999999, as_=people.a_member),
             "error: 404 (agreement_id): no agreement"),
            (stagegate("agreement", "propose", 1, "--version", "v2", as_=people.a_member),
             "error: --version (version): 'v2' is not an id"),
            (stagegate("agreement", "transition", 999999, "proposed", "--version", 1,
                       as_=people.a_member), "error: 404 (agreement_id): no agreement"),
    ]:
        one_line_error(result, prefix)
    # Nothing above drafted anything.
    code, out, _ = stagegate("agreement", "list", "--json", as_=people.a_member)
    assert code == 0 and json.loads(out) == []
