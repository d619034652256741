"""The evaluation worker on real tiny GPT-2 checkpoints: runs, leases, retries, idempotency."""

from __future__ import annotations

import threading
from dataclasses import replace

from sqlmodel import select

from app.db import session_scope
from app.evals import service
from app.evals.worker import run_worker
from app.events.tables import Event
from app.timeutil import utcnow
from tests.checkpoints.tiny import SMALL, checkpoint_files, corpus, tiny_gpt2, upload
from tests.evals.workers import doomed_worker, queue_one, result_count, runs, wait_for, work


def keep_only(client, world, checkpoint_id: int, *suites: str) -> None:
    """Cancel the other queued runs (through the API) so a test runs only what it needs."""
    items = client.get(f"/api/v1/evals/runs?checkpoint_id={checkpoint_id}").json()["items"]
    for run in items:
        if run["suite_id"] not in suites:
            resp = client.post(f"/api/v1/evals/runs/{run['id']}/cancel",
                               headers=world.a_member.headers)
            assert resp.status_code == 200 and resp.json()["status"] == "cancelled"


def test_worker_measures_every_suite_with_provenance(client, world, settings, files):
    ckpt = upload(client, world.a_member, files).json()
    assert work(settings) == 3
    done = client.get(f"/api/v1/evals/runs?checkpoint_id={ckpt['id']}").json()["items"]
    assert {(r["status"], r["progress"], r["attempts"]) for r in done} == {("succeeded", 1.0, 1)}
    results = client.get(f"/api/v1/evals/results?checkpoint_id={ckpt['id']}").json()["items"]
    assert sorted(r["suite_id"] for r in results) == ["bias_association", "detectability",
                                                     "perplexity"]
    for r in results:
        assert r["source"] == "measured" and r["manifest_digest"] == ckpt["manifest_digest"]
        assert r["dataset_name"] == "tiny" and len(r["dataset_digest"]) == 64
        assert r["seed"] == 0 and r["suite_version"] >= 1 and r["code_version"]
        assert {"torch", "transformers"} <= set(r["library_versions"])
        assert r["device"] == "cpu" and r["dtype"] == "float32"
        assert r["duration_s"] > 0 and r["tokens_processed"] > 0 and r["metrics"]
        assert r["config"]["max_tokens" if r["suite_id"] == "perplexity" else "batch_size"]
    ppl = next(r for r in results if r["suite_id"] == "perplexity")["metrics"]
    # An untrained 300-token model is close to uniform: perplexity near the vocabulary size.
    assert 100 < ppl["perplexity"] < 1000
    # The worker's state changes are events anyone may read for a public checkpoint.
    events = client.get("/api/v1/events?entity_type=eval_run&limit=200").json()["items"]
    assert {"queued", "started", "succeeded"} <= {e["action"] for e in events}


def test_rerun_reuses_the_result_row(client, world, settings, files):
    ckpt = upload(client, world.a_member, files).json()
    keep_only(client, world, ckpt["id"], "perplexity")
    work(settings)
    first = client.get("/api/v1/evals/results?suite=perplexity").json()["items"][0]
    resp = client.post("/api/v1/evals/runs", json={"checkpoint_id": ckpt["id"],
                                                   "suite": "perplexity"},
                       headers=world.a_member.headers)
    assert resp.status_code == 201 and resp.json()["status"] == "queued"
    again = client.post("/api/v1/evals/runs", json={"checkpoint_id": ckpt["id"],
                                                    "suite": "perplexity"},
                        headers=world.coord.headers)
    assert again.status_code == 409
    assert work(settings) == 1
    rerun = client.get(f"/api/v1/evals/runs/{resp.json()['id']}").json()
    assert rerun["status"] == "succeeded" and rerun["result_id"] == first["id"]
    assert result_count() == 1
    # A finished run cannot be cancelled.
    resp = client.post(f"/api/v1/evals/runs/{rerun['id']}/cancel",
                       headers=world.a_member.headers)
    assert resp.status_code == 409


def test_only_members_and_coordinators_request_runs(client, world, files):
    ckpt = upload(client, world.a_member, files).json()
    body = {"checkpoint_id": ckpt["id"], "suite": "perplexity"}
    assert client.post("/api/v1/evals/runs", json=body).status_code == 401
    assert client.post("/api/v1/evals/runs", json=body,
                       headers=world.b_member.headers).status_code == 403
    resp = client.post("/api/v1/evals/runs", json=body | {"suite": "nope"},
                       headers=world.a_member.headers)
    assert resp.status_code == 404 and resp.json()["errors"][0]["field"] == "suite"


def test_two_workers_share_the_queue_without_doing_a_job_twice(client, world, settings, files):
    ckpt = upload(client, world.a_member, files).json()
    keep_only(client, world, ckpt["id"], "perplexity", "bias_association")
    counts: list[int] = []
    threads = [threading.Thread(target=lambda n=n: counts.append(work(settings,
                                                                      worker_id=f"w{n}")))
               for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sum(counts) == 2
    assert [(r.status, r.attempts) for r in runs() if r.status != "cancelled"] == [
        ("succeeded", 1)] * 2
    assert result_count() == 2


def test_transfer_matrix_is_one_matrix_shaped_result(client, world, settings, files,
                                                      tmp_path):
    first = upload(client, world.a_member, files, name="small").json()
    other = checkpoint_files(tiny_gpt2(tmp_path, seed=1))
    second = upload(client, world.a_member, other, name="large").json()
    keep_only(client, world, first["id"])
    keep_only(client, world, second["id"], "detectability_transfer")
    assert work(settings) == 1
    (res,) = client.get("/api/v1/evals/results?suite=detectability_transfer").json()["items"]
    assert res["checkpoint_id"] == second["id"]
    assert res["details"]["labels"] == ["small", "large"]
    matrix = res["details"]["matrix"]
    assert len(matrix) == 2 and all(len(row) == 2 for row in matrix)
    assert all(0.0 <= x <= 1.0 for row in matrix for x in row)
    assert set(res["metrics"]) == {"mean_self_accuracy", "mean_transfer_accuracy"}
    assert res["details"]["checkpoints"] == {"small": first["manifest_digest"],
                                             "large": second["manifest_digest"]}
    card = client.get(f"/api/v1/models/{world.model_a}/card").json()
    anchor = next(c for c in card["checkpoints"] if c["name"] == "large")
    assert [m["suite_id"] for m in anchor["measured"]] == ["detectability_transfer"]


def test_a_failing_suite_marks_the_run_failed(client, world, settings, files):
    ckpt = upload(client, world.a_member, files).json()
    keep_only(client, world, ckpt["id"], "perplexity")
    run_worker(settings, once=True, corpus=corpus(), enqueue_every_s=None,
               config_overrides=SMALL | {"perplexity": {"no_such_key": 1}})
    failed = [r for r in runs() if r.status == "failed"]
    assert [r.suite_id for r in failed] == ["perplexity"]
    assert "no_such_key" in failed[0].error


def test_bumping_a_suite_version_requeues_every_checkpoint(client, world, settings, files,
                                                           monkeypatch):
    from app.evals import suites

    upload(client, world.a_member, files, name="one")
    upload(client, world.a_member, files, name="two")
    with session_scope() as s:
        assert service.enqueue_missing(s) == []
    bumped = replace(suites.SUITES["perplexity"],
                     version=suites.SUITES["perplexity"].version + 1)
    monkeypatch.setitem(suites.SUITES, "perplexity", bumped)
    with session_scope() as s:
        queued = service.enqueue_missing(s)
        assert sorted((r.suite_id, r.suite_version) for r in queued) == [
            ("perplexity", bumped.version)] * 2
    with session_scope() as s:
        assert service.enqueue_missing(s) == []


def test_a_killed_worker_leaves_a_job_another_worker_completes(world, settings, files,
                                                               tmp_path):
    queue_one(files, tmp_path)
    with doomed_worker(settings):
        wait_for(lambda: runs()[0].status == "running" and runs()[0].heartbeat_at is not None
                 and runs()[0].heartbeat_at > runs()[0].started_at, 120,
                 "the doomed worker to claim the job and heartbeat")
    run = runs()[0]
    assert (run.status, run.lease_owner, run.attempts) == ("running", "doomed", 1)
    wait_for(lambda: runs()[0].lease_expires_at < utcnow(), 10, "the lease to expire")
    assert work(settings, worker_id="rescuer") == 1
    run = runs()[0]
    assert (run.status, run.lease_owner, run.attempts) == ("succeeded", "rescuer", 2)
    assert result_count() == 1
    with session_scope(write=False) as s:
        actions = list(s.exec(select(Event.action).where(Event.entity_type == "eval_run")
                              .order_by(Event.id)))
    assert actions == ["queued", "started", "started", "succeeded"]
