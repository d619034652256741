import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from app.cli import main
from app.settings import Settings, configure

ROOT = Path(__file__).resolve().parent.parent


def run(*args):
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_accounts_and_token_from_the_console_work_over_http(client, world):
    assert run("lab", "create", "lab-z", "--name", "Lab Z")[0] == 0
    assert run("user", "create", "zoe", "--lab", "lab-z", "--role", "lab_admin")[0] == 0
    code, out = run("token", "create", "--user", "zoe")
    token = out.strip().splitlines()[-1]
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert me["labs"] == {"lab-z": "lab_admin"}
    assert run("token", "revoke", token.split("_")[1])[0] == 0
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_errors_are_one_clear_line(world):
    code, out = run("lab", "create", "lab-a", "--name", "again")
    assert code == 2 and out.strip() == "error (slug): lab 'lab-a' already exists"
    code, out = run("user", "create", "x", "--lab", "nowhere")
    assert code == 2 and "no lab 'nowhere'" in out


def test_plan_file_yaml_and_json(client, world, tmp_path, stagegate):
    plan = tmp_path / "plan.yaml"
    plan.write_text("model: lab-a/m\ntitle: From a file\nstages:\n"
                    "  - name: small\n    access_level: public_weights\n")
    code, out, err = stagegate("plan", "file", plan, as_=world.a_member)
    assert code == 0 and "filed: From a file" in out, err
    listed = client.get("/api/v1/plans").json()["items"]
    assert [p["title"] for p in listed] == ["From a file"]
    as_json = tmp_path / "plan.json"
    as_json.write_text(json.dumps({"model": "lab-a/m", "title": "J",
                                   "stages": [{"name": "s", "access_level": "api"}]}))
    code, out, _ = stagegate("plan", "file", as_json, "--draft", as_=world.a_member)
    assert code == 0 and "draft: J" in out


def test_plan_file_draft_wins_over_file_true(client, world, tmp_path, stagegate):
    plan = tmp_path / "plan.yaml"
    plan.write_text("model: lab-a/m\ntitle: Not yet\nfile: true\nstages:\n"
                    "  - name: small\n    access_level: api\n")
    code, out, err = stagegate("plan", "file", plan, "--draft", "--json", as_=world.a_member)
    assert code == 0, err
    assert json.loads(out)["status"] == "draft"
    assert client.get("/api/v1/plans").json()["items"] == []  # drafts are not public


def test_plan_file_errors_point_at_line_and_field(world, tmp_path, stagegate):
    plan = tmp_path / "plan.yaml"
    plan.write_text("model: lab-a/m\ntitle: Bad\nstages:\n  - name: small\n"
                    "    access_level: everyone\n")
    code, out, err = stagegate("plan", "file", plan, as_=world.a_member)
    assert code == 2
    assert f"{plan}:5: stages[0].access_level:" in err
    broken = tmp_path / "broken.yaml"
    broken.write_text("model: [unclosed\n")
    code, out, err = stagegate("plan", "file", broken, as_=world.a_member)
    assert code == 2 and "not valid YAML/JSON" in err


def test_demo_is_idempotent(client, settings):
    for _ in range(2):
        code, out = run("demo", "--no-models")
        assert code == 0, out
    plans = client.get("/api/v1/plans").json()["items"]
    assert [p["title"] for p in plans] == ["GPT-2 staged release (2019)"]
    stages = plans[0]["stages"]
    assert [(s["name"], s["actual_date"]) for s in stages] == [
        ("124M", "2019-02-14"), ("355M", "2019-05-03"), ("774M", "2019-08-20"),
        ("1.5B", "2019-11-05")]
    labs = {lab["slug"] for lab in client.get("/api/v1/labs").json()["items"]}
    assert {"openai", "cornell", "ctec-middlebury", "uoregon", "ut-austin"} <= labs
    card = client.get(f"/api/v1/models/{plans[0]['id']}/card").json()
    baseline = {r["dataset_name"]: r["metrics"] for r in card["reported"]
                if r["suite_id"] == "gpt2-detection-tfidf-baseline"}
    assert len(baseline) == 4 and card["checkpoints"] == []
    assert baseline["GPT-2 output dataset (1542M samples) vs WebText"] == {
        "accuracy,temperature-1": 74.31, "accuracy,top-k-40": 92.69}
    assert all(r["provenance"]["source"] == "reported" for r in card["reported"])
    agreements = client.get("/api/v1/agreements").json()["items"]
    assert [a["title"] for a in agreements] and len(agreements) == 1


def test_serve_refuses_an_unmigrated_database_when_told(tmp_path):
    configure(Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path}/fresh.db"))
    code, out = run("serve", "--no-migrate")
    assert code == 2 and "stagegate db upgrade" in out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_serve_migrates_a_fresh_data_folder_and_answers(backend, tmp_path):
    port = _free_port()
    env = os.environ | {"STAGEGATE_DATA_DIR": str(tmp_path), "STAGEGATE_INPROCESS_WORKER": "0"}
    env.pop("STAGEGATE_DATABASE_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/plans").json()["items"] == []
        assert (tmp_path / "stagegate.db").exists()
    finally:
        proc.terminate()
        proc.wait(10)


def test_plan_diff_shows_what_changed_between_revisions(client, world, stagegate):
    from tests.factories import FOUR_STAGES

    pid = world.plan(filed=True)
    stages = [dict(s) for s in FOUR_STAGES]
    stages[3]["planned_date"] = "2019-12-01"
    assert client.patch(f"/api/v1/plans/{pid}", json={"version": 1, "stages": stages},
                        headers=world.a_member.headers).status_code == 200
    code, out, err = stagegate("plan", "diff", pid, "--from", "1", "--to", "2")
    assert code == 0, err
    assert out.splitlines()[0].split() == ["FROM", "PATH", "TO"]
    assert out.splitlines()[1].split() == ["2019-11-05", "stages[3].planned_date",
                                           "2019-12-01"]
    code, out, _ = stagegate("plan", "diff", pid, "--from", "1", "--to", "2", "--json")
    assert {"path": "stages[3].planned_date", "from": "2019-11-05", "to": "2019-12-01"} \
        in json.loads(out)["changes"]
    code, out, err = stagegate("plan", "diff", pid, "--from", "1", "--to", "9")
    assert code == 2 and out == "" and err.startswith("error: 404")


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_db_upgrade_migrates_a_fresh_database_once(backend, tmp_path):
    from app.db import get_engine, needs_migration

    configure(Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path}/fresh.db"))
    assert needs_migration(get_engine())
    for _ in range(2):  # the second run finds nothing to do
        code, out = run("db", "upgrade")
        assert code == 0 and out.strip().splitlines()[-1] == "database is at the current schema"
    assert not needs_migration(get_engine())
