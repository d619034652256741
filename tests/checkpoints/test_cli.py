"""`stagegate checkpoint ...` over HTTP against a live server: the same checks as the API."""

from __future__ import annotations

import json
import shutil

from click.testing import CliRunner

from app.cli import main
from tests.checkpoints.tiny import tiny_gpt2


def test_cli_upload_list_download_round_trip(world, client, tmp_path, stagegate):
    src = tiny_gpt2(tmp_path)
    code, out, err = stagegate("checkpoint", "upload", src, "--model", "lab-a/m",
                               "--name", "cli-1", "--access-level", "public",
                               as_=world.a_member)
    assert code == 0, err
    assert "lab-a/m@cli-1 (public)" in out
    assert "uploading" in err  # the progress bar goes to stderr, not into the output
    listed = client.get("/api/v1/checkpoints").json()["items"]
    assert [c["name"] for c in listed] == ["cli-1"]
    assert len(client.get("/api/v1/evals/runs").json()["items"]) == 3
    code, out, _ = stagegate("checkpoint", "list", "--model", "lab-a/m")
    assert code == 0
    header, row = out.splitlines()
    assert header.split() == ["ID", "MODEL", "NAME", "ACCESS_LEVEL", "PARAMETER_COUNT",
                              "TOTAL_BYTES"]
    assert row.split()[:4] == [str(listed[0]["id"]), "lab-a/m", "cli-1", "public"]
    code, out, _ = stagegate("checkpoint", "list", "--json")
    assert [c["name"] for c in json.loads(out)] == ["cli-1"]
    # Round trip: every file comes back byte for byte.
    dest = tmp_path / "down"
    code, out, err = stagegate("checkpoint", "download", listed[0]["id"], "--to", dest)
    assert code == 0, err
    for original in src.iterdir():
        assert (dest / original.name).read_bytes() == original.read_bytes()
    assert not list(dest.glob("*.part"))


def test_cli_refusal_is_one_line_naming_the_file(world, tmp_path, stagegate):
    bad = tmp_path / "bad"
    shutil.copytree(tiny_gpt2(tmp_path), bad)
    cfg = json.loads((bad / "config.json").read_text()) | {"auto_map": {"AutoModel": "m.M"}}
    (bad / "config.json").write_text(json.dumps(cfg))
    code, out, err = stagegate("checkpoint", "upload", bad, "--model", "lab-a/m", "--name", "x",
                               "--no-progress", as_=world.a_member)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert "config.json" in err and "auto_map" in err


def test_bad_checkpoint_name_is_one_line_not_a_traceback(world, tmp_path, stagegate):
    code, _, err = stagegate("checkpoint", "upload", tiny_gpt2(tmp_path), "--model",
                               "lab-a/m", "--name", "step 1", "--no-progress",
                               as_=world.a_member)
    assert code == 2
    assert err.startswith("error: 422 (name):") and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_a_hugging_face_snapshot_uploads_as_it_is(world, client, tmp_path, stagegate):
    snap = tiny_gpt2(tmp_path)
    (snap / "README.md").write_text("---\nlicense: mit\n---\n# tiny\n")
    (snap / "chat_template.jinja").write_text("{% for m in messages %}{{ m.content }}{% endfor %}")
    (snap / "tokenizer.model").write_bytes(b"\x0a\x05hello" * 10)  # a SentencePiece proto
    code, _, err = stagegate("checkpoint", "upload", snap, "--model", "lab-a/m", "--name", "hf",
                             "--no-progress", as_=world.a_member)
    assert code == 0, err
    listed = client.get("/api/v1/checkpoints", headers=world.a_member.headers).json()["items"]
    names = {e["name"] for e in listed[0]["manifest"]}
    assert {"README.md", "chat_template.jinja", "tokenizer.model"} <= names
    # Still never pickles, whatever the name.
    (snap / "tokenizer.model").write_bytes(b"\x80\x04\x95" + b"x" * 20)
    code, _, err = stagegate("checkpoint", "upload", snap, "--model", "lab-a/m", "--name", "p",
                             "--no-progress", as_=world.a_member)
    assert code == 2 and "tokenizer.model" in err and "pickle" in err


def test_access_change_from_the_cli(world, client, tmp_path, stagegate):
    stagegate("checkpoint", "upload", tiny_gpt2(tmp_path), "--model", "lab-a/m", "--name", "c",
              "--no-progress", as_=world.a_member)
    cid = client.get("/api/v1/checkpoints", headers=world.a_member.headers).json()["items"][0]["id"]
    assert client.get(f"/api/v1/checkpoints/{cid}").status_code == 404  # internal
    code, out, err = stagegate("checkpoint", "access", cid, "public", as_=world.a_member)
    assert code == 0 and out.strip() == f"checkpoint {cid} is now public", err
    assert client.get(f"/api/v1/checkpoints/{cid}").status_code == 200
    code, _, err = stagegate("checkpoint", "access", cid, "internal", as_=world.b_member)
    assert code == 2 and err.startswith("error: 403")  # it is public now: seen, not theirs


def test_worker_command_is_registered():
    out = CliRunner().invoke(main, ["worker", "--help"])
    assert out.exit_code == 0 and "--once" in out.output


def test_show_lists_the_files_and_hides_internal_ones(world, client, tmp_path, stagegate):
    src = tiny_gpt2(tmp_path)
    stagegate("checkpoint", "upload", src, "--model", "lab-a/m", "--name", "s1",
              "--access-level", "public", "--no-progress", as_=world.a_member)
    stagegate("checkpoint", "upload", src, "--model", "lab-a/m", "--name", "s2",
              "--no-progress", as_=world.a_member)
    ids = {c["name"]: c["id"] for c in client.get(
        "/api/v1/checkpoints", headers=world.a_member.headers).json()["items"]}
    code, out, err = stagegate("checkpoint", "show", ids["s1"])
    assert code == 0, err
    head, files = out.split("\n\n")
    assert "lab-a/m" in head and "s1" in head and "public" in head
    rows = files.splitlines()
    assert rows[0].split() == ["NAME", "SIZE", "SHA256"]
    assert {r.split()[0] for r in rows[1:]} == {p.name for p in src.iterdir()}
    code, out, _ = stagegate("checkpoint", "show", ids["s2"], "--json", as_=world.a_member)
    assert code == 0 and json.loads(out)["access_level"] == "internal"
    code, out, err = stagegate("checkpoint", "show", ids["s2"], as_=world.b_member)
    assert code == 2 and out == "" and err.startswith("error: 404")


def test_cli_attaches_a_checkpoint_to_a_stage_at_upload_and_after(world, client, tmp_path,
                                                                  stagegate):
    plan = world.plan(filed=True)
    src = tiny_gpt2(tmp_path)
    code, out, err = stagegate("checkpoint", "upload", src, "--model", "lab-a/m", "--name",
                               "s3", "--stage", f"{plan}:3", "--no-progress",
                               as_=world.a_member)
    assert code == 0, err
    assert "stage 3 (" in out and f"of plan {plan}" in out
    ckpt = client.get("/api/v1/checkpoints", headers=world.a_member.headers).json()["items"][0]
    assert ckpt["stage"]["plan"] == plan and ckpt["stage"]["stage"] == 3
    code, out, err = stagegate("checkpoint", "attach", ckpt["id"], f"{plan}:4",
                               as_=world.a_member)
    assert code == 0 and "attached, stage 4" in out, err
    code, out, err = stagegate("checkpoint", "detach", ckpt["id"], as_=world.a_member)
    assert code == 0 and "attached to no stage" in out, err
    code, _, err = stagegate("checkpoint", "attach", ckpt["id"], "three", as_=world.a_member)
    assert code == 2 and "PLAN:N" in err
    code, _, err = stagegate("checkpoint", "attach", ckpt["id"], f"{plan}:9",
                             as_=world.a_member)
    assert code != 0 and "(stage)" in err and "Traceback" not in err
