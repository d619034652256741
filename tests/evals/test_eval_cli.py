"""`stagegate eval ...` against a live server: list, watch to the end, rerun."""

from __future__ import annotations

import json
import threading

import pytest

from app.evals.worker import run_worker
from tests.checkpoints.tiny import SMALL, checkpoint_files, corpus, tiny_gpt2, upload


@pytest.fixture
def queued(world, client, tmp_path):
    src = tiny_gpt2(tmp_path)
    up = upload(client, world.a_member, checkpoint_files(src), name="c1")
    assert up.status_code == 201, up.text
    return up.json()["id"]


def test_watch_follows_a_run_to_success_then_results_list(world, settings, queued, stagegate):
    code, out, _ = stagegate("eval", "runs", "--checkpoint", queued, "--json")
    runs = json.loads(out)
    assert len(runs) == 3 and {r["status"] for r in runs} == {"queued"}
    worker = threading.Thread(target=run_worker, args=(settings,), kwargs={
        "once": True, "corpus": corpus(), "config_overrides": SMALL, "enqueue_every_s": None})
    worker.start()
    try:
        code, out, err = stagegate("eval", "watch", runs[0]["id"], "--interval", "0.2",
                                   "--timeout", "300")
    finally:
        worker.join(300)
    assert code == 0, err
    assert out.strip() == f"run {runs[0]['id']} succeeded"
    assert f"run {runs[0]['id']}" in err  # the progress bar, on stderr
    code, out, _ = stagegate("eval", "results", "--checkpoint", queued)
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["ID", "SOURCE", "MODEL_ID"] and len(lines) == 4


def test_watch_a_cancelled_run_fails_and_rerun_queues_another(world, client, queued,
                                                              stagegate):
    runs = client.get("/api/v1/evals/runs", headers=world.a_member.headers).json()["items"]
    run_id = runs[0]["id"]
    assert client.post(f"/api/v1/evals/runs/{run_id}/cancel",
                       headers=world.a_member.headers).status_code in (200, 201)
    code, out, err = stagegate("eval", "watch", run_id, "--interval", "0.1")
    assert code == 2 and f"run {run_id} cancelled" in err
    code, out, err = stagegate("eval", "rerun", run_id, "--json", as_=world.a_member)
    assert code == 0, err
    new = json.loads(out)
    assert new["id"] != run_id and new["status"] == "queued"
    code, _, err = stagegate("eval", "rerun", run_id)  # anonymous
    assert code == 2 and err.startswith("error: 401")


def test_reported_import_from_a_results_file(world, client, stagegate, tmp_path):
    from tests.evals.test_results_api import LM_EVAL

    path = tmp_path / "results.json"
    path.write_text(json.dumps(LM_EVAL))
    code, out, err = stagegate("reported", "import", "lab-a/m", path, "--source-name", "paper",
                               "--source-url", "https://example.org/paper", "--json",
                               as_=world.a_member)
    assert code == 0, err
    rows = json.loads(out)
    api = client.get("/api/v1/evals/results?source=reported").json()["items"]
    assert sorted(r["id"] for r in rows) == sorted(r["id"] for r in api) and rows
    broken = tmp_path / "broken.json"
    broken.write_text("{nope")
    code, out, err = stagegate("reported", "import", "lab-a/m", broken, as_=world.a_member)
    assert code == 2 and err.startswith("error: ") and "not valid JSON" in err


def test_reported_delete_removes_the_result(world, client, stagegate):
    from tests.evals.test_results_api import LM_EVAL, report

    rows = report(client, world.a_member, world.model_a, "lm-eval-harness", LM_EVAL).json()
    gone, kept = rows[0]["id"], rows[1]["id"]
    # Another lab's member sees the public result but gets the server's reason, one line.
    code, out, err = stagegate("reported", "delete", gone, as_=world.b_member)
    assert (code, out, err) == (2, "", "error: 403: you are not a member of this lab\n")
    code, out, err = stagegate("reported", "delete", gone, as_=world.a_member)
    assert code == 0 and out == f"deleted reported result {gone}\n", err
    assert client.get(f"/api/v1/evals/results/{gone}").status_code == 404
    listed = client.get("/api/v1/evals/results?source=reported").json()["items"]
    assert [r["id"] for r in listed] == [kept]
    # Deleting it again, or an id that never existed: the same one-line 404.
    for result_id in (gone, 999999):
        code, out, err = stagegate("reported", "delete", result_id, as_=world.a_member)
        assert code == 2 and out == ""
        assert err == f"error: 404 (result_id): no evaluation result {result_id}\n"
