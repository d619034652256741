"""The lab-facing CLI against a real uvicorn server (both databases): login, tables and
--json, one-line errors with exit code 2, and `stagegate --help` without the web stack."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
ENV = os.environ | {"PYTHONPATH": str(ROOT)}


def test_login_keeps_the_token_readable_only_by_the_user(world, stagegate, live_server,
                                                         tmp_path, monkeypatch):
    monkeypatch.delenv("STAGEGATE_URL")
    code, out, err = stagegate("--url", live_server, "login", "--token", world.a_member.token)
    assert code == 0, err
    assert out.startswith(f"logged in to {live_server} as a_member")
    saved = tmp_path / "config" / "credentials.json"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert json.loads(saved.read_text()) == {"url": live_server, "token": world.a_member.token}
    # Later commands need neither --url nor STAGEGATE_TOKEN.
    code, out, _ = stagegate("whoami", "--json")
    assert code == 0 and json.loads(out)["name"] == "a_member"
    # The token is never sent to another registry than the one it was saved for.
    code, _, err = stagegate("--url", "http://127.0.0.1:9", "whoami")
    assert code == 2 and err.startswith("error: cannot reach http://127.0.0.1:9")
    assert stagegate("logout")[1].strip() == "logged out" and not saved.exists()
    code, _, err = stagegate("--url", live_server, "whoami")
    assert code == 2 and err.startswith("error: 401")


def test_login_with_a_wrong_token_keeps_nothing(world, stagegate, tmp_path):
    code, out, err = stagegate("login", "--token", "sg_nope_nope")
    assert code == 2 and err.startswith("error: 401") and out == ""
    assert not (tmp_path / "config" / "credentials.json").exists()


def test_models_plans_and_tables(world, client, stagegate, tmp_path):
    code, out, err = stagegate("model", "create", "lab-a/new", "--name", "New one",
                               "--license", "apache-2.0", as_=world.a_member)
    assert code == 0, err
    assert out.startswith("model ") and "lab-a/new: New one" in out
    code, out, _ = stagegate("model", "list", "--lab", "lab-a")
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "LAB", "SLUG", "NAME", "PUBLIC", "LICENCE", "VERSION"]
    assert {line.split()[2] for line in lines[1:]} == {"m", "new"}
    code, out, _ = stagegate("model", "show", "lab-a/new", "--json")
    assert json.loads(out)["licence"] == "apache-2.0"
    plan = tmp_path / "plan.yaml"
    plan.write_text("model: lab-a/new\ntitle: Staged\nstages:\n"
                    "  - name: small\n    access_level: api\n")
    code, out, _ = stagegate("plan", "file", plan, "--draft", "--json", as_=world.a_member)
    plan_id = json.loads(out)["id"]
    code, out, err = stagegate("plan", "transition", plan_id, "filed", as_=world.a_member)
    assert code == 0 and out.strip() == f"plan {plan_id} filed (version 2)", err
    code, out, _ = stagegate("plan", "list", "--json")
    assert [(p["id"], p["status"]) for p in json.loads(out)] == [(plan_id, "filed")]
    code, out, _ = stagegate("plan", "show", plan_id)
    assert "Staged" in out and out.splitlines()[-1].split()[:3] == ["0", "small", "api"] \
        or out.splitlines()[-1].split()[:3] == ["1", "small", "api"]
    code, _, err = stagegate("plan", "transition", plan_id, "bogus", as_=world.a_member)
    assert code == 2 and err.startswith("error: ") and len(err.splitlines()) == 1
    code, _, err = stagegate("model", "create", "lab-b/x", "--name", "X", as_=world.a_member)
    assert code == 2 and err.startswith("error: 403")


def test_lists_for_people_and_scripts(world, stagegate):
    code, out, _ = stagegate("lab", "list")
    assert out.splitlines()[0].split() == ["SLUG", "NAME", "URL"]
    assert {line.split()[0] for line in out.splitlines()[1:]} == {"lab-a", "lab-b"}
    code, out, _ = stagegate("token", "list", "--json", as_=world.a_admin)
    assert code == 0 and [t["prefix"] for t in json.loads(out)] == \
        [world.a_admin.token.split("_")[1]]
    code, out, _ = stagegate("user", "list", "--json")  # operator: local database
    assert {u["name"]: u["labs"] for u in json.loads(out)}["a_admin"] == "lab-a:lab_admin"
    code, out, _ = stagegate("eval", "runs", "--json")
    assert code == 0 and json.loads(out) == []
    code, out, _ = stagegate("agreement", "list")
    assert code == 0 and out.split() == ["ID", "DISCLOSER", "STATUS", "VERSION", "TITLE"]
    code, out, err = stagegate("incident", "submit", "--title", "Spam wave", "--occurred",
                               "2026-01-02", "--harm-type", "spam", "--severity", "low",
                               "--lab", "lab-a", as_=world.a_member)
    assert code == 0 and "submitted: Spam wave" in out, err
    code, out, err = stagegate("incident", "submit", "--title", "x", "--occurred", "soon",
                               "--harm-type", "spam", "--severity", "low")
    assert code == 2 and "(occurred)" in err and len(err.splitlines()) == 1


def test_card_export_is_the_api_s_card(world, client, stagegate, tmp_path):
    code, out, err = stagegate("card", "export", "lab-a/m")
    assert code == 0, err
    assert out == client.get(f"/api/v1/models/{world.model_a}/card.md").text
    target = tmp_path / "README.md"
    assert stagegate("card", "export", str(world.model_a), "-o", target)[0] == 0
    assert target.read_text() == out
    code, _, err = stagegate("card", "export", "lab-a/nope")
    assert code == 2 and "no model 'lab-a/nope'" in err



def test_card_export_of_one_checkpoint_is_a_hub_readme(world, client, stagegate, tmp_path):
    from huggingface_hub import ModelCard

    from tests.checkpoints.tiny import checkpoint_files, tiny_gpt2, upload
    from tests.evals.test_results_api import LM_EVAL, report

    files = checkpoint_files(tiny_gpt2(tmp_path))
    pub = upload(client, world.a_member, files, name="pub").json()["id"]
    hidden = upload(client, world.a_member, files, name="int", access="internal").json()["id"]
    assert report(client, world.a_member, world.model_a, "lm-eval-harness", LM_EVAL,
                  checkpoint_id=pub).status_code == 201
    target = tmp_path / "README.md"
    code, out, err = stagegate("card", "export", "lab-a/m", "--checkpoint", pub, "-o", target)
    assert code == 0 and out == "" and err.strip() == f"wrote {target}"
    card = ModelCard(target.read_text())  # what `huggingface_hub` would upload
    entry = card.data.to_dict()["model-index"][0]
    assert entry["name"] == "lab-a/m@pub"
    hellaswag = next(r for r in entry["results"] if r["dataset"]["type"] == "hellaswag")
    assert {m["type"]: m["value"] for m in hellaswag["metrics"]} == \
        {"acc": 0.2891, "acc_norm": 0.3114}
    assert stagegate("card", "export", str(world.model_a), "--checkpoint", pub)[1] == \
        target.read_text()
    # Unknown, hidden from this user, or a checkpoint of another model: one line, exit 2.
    for ref, ckpt, actor, message in [
            ("lab-a/m", 999999, world.a_member, "error: 404 (checkpoint_id): no checkpoint"),
            ("lab-a/m", hidden, world.b_member, "error: 404 (checkpoint_id): no checkpoint"),
            ("lab-b/m", pub, world.b_member, f"error: checkpoint {pub} belongs to lab-a/m")]:
        code, out, err = stagegate("card", "export", ref, "--checkpoint", ckpt, as_=actor)
        assert code == 2 and out == "" and err.startswith(message), err
        assert len(err.splitlines()) == 1
    # A member of lab-a gets the internal checkpoint's card (no results yet: a title only).
    code, out, _ = stagegate("card", "export", "lab-a/m", "--checkpoint", hidden,
                             as_=world.a_member)
    assert code == 0 and ModelCard(out).text.strip() == "# Model A (int)"

def test_every_command_has_help_text():
    from app.cli import main

    def walk(group, path):
        for name, cmd in group.commands.items():
            assert cmd.help or cmd.short_help, f"{' '.join(path + [name])} has no help"
            if hasattr(cmd, "commands"):
                walk(cmd, path + [name])
    walk(main, ["stagegate"])


def test_help_and_version_do_not_import_the_web_stack():
    code = ("import sys; from click.testing import CliRunner; from app.cli import main; "
            "r = CliRunner().invoke(main, ['--help']); assert r.exit_code == 0; "
            "r2 = CliRunner().invoke(main, ['--version']); "
            "print(r2.output.strip()); "
            "print(sorted(m for m in ('litestar', 'sqlalchemy', 'sqlmodel', 'pydantic', "
            "'httpx', 'torch', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], env=ENV, cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.splitlines()
    assert out[0].startswith("stagegate, version ")
    assert out[1] == "[]"


def test_unreachable_registry_is_one_line(stagegate):
    code, out, err = stagegate("--url", "http://127.0.0.1:9", "model", "list")
    assert code == 2 and out == ""
    assert err.startswith("error: cannot reach http://127.0.0.1:9") and err.count("\n") == 1


def test_conditional_get_answers_304_while_unchanged(world, live_server):
    with httpx.Client(base_url=live_server, headers=world.a_admin.headers) as http:
        first = http.get(f"/api/v1/models/{world.model_a}")
        etag = first.headers["etag"]
        assert etag == f'"{first.json()["version"]}"'
        again = http.get(f"/api/v1/models/{world.model_a}", headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""
        assert again.headers["etag"] == etag and "content-type" not in again.headers
        http.patch(f"/api/v1/models/{world.model_a}", json={"name": "Renamed"},
                   headers={"If-Match": etag})
        changed = http.get(f"/api/v1/models/{world.model_a}", headers={"If-None-Match": etag})
        assert changed.status_code == 200 and changed.json()["name"] == "Renamed"
        plan = http.post("/api/v1/plans", json={
            "model": "lab-a/m", "title": "T", "file": True,
            "stages": [{"name": "s", "access_level": "api"}]}).json()
        tag = http.get(f"/api/v1/plans/{plan['id']}").headers["etag"]
        assert http.get(f"/api/v1/plans/{plan['id']}",
                        headers={"If-None-Match": f"W/{tag}, \"x\""}).status_code == 304
