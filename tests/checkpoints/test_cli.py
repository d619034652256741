"""`stagegate checkpoint upload` goes through the same checks as the API."""

from __future__ import annotations

import json
import shutil

from click.testing import CliRunner

from app.cli import main
from tests.checkpoints.tiny import tiny_gpt2


def test_cli_upload_then_list(world, settings, tmp_path, client):
    src = tiny_gpt2(tmp_path)
    out = CliRunner().invoke(main, ["checkpoint", "upload", str(src), "--model", "lab-a/m",
                                    "--name", "cli-1", "--access", "public",
                                    "--user", "a_member"])
    assert out.exit_code == 0, out.output
    assert "lab-a/m@cli-1 (public)" in out.output
    listed = client.get("/api/v1/checkpoints").json()["items"]
    assert [c["name"] for c in listed] == ["cli-1"]
    assert len(client.get("/api/v1/evals/runs").json()["items"]) == 3
    out = CliRunner().invoke(main, ["checkpoint", "list", "--model", "lab-a/m"])
    assert out.exit_code == 0 and "cli-1" in out.output


def test_cli_refusal_is_one_line_naming_the_file(world, settings, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(tiny_gpt2(tmp_path), bad)
    cfg = json.loads((bad / "config.json").read_text()) | {"auto_map": {"AutoModel": "m.M"}}
    (bad / "config.json").write_text(json.dumps(cfg))
    out = CliRunner().invoke(main, ["checkpoint", "upload", str(bad), "--model", "lab-a/m",
                                    "--name", "x"])
    assert out.exit_code == 2
    assert "config.json" in out.output and "auto_map" in out.output


def test_worker_command_is_registered():
    out = CliRunner().invoke(main, ["worker", "--help"])
    assert out.exit_code == 0 and "--once" in out.output
