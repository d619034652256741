"""Remote evaluation workers (`stagegate worker --url`): real worker processes with no
database, talking HTTP to a real server with a worker token; killed with SIGKILL, their
jobs are leased again and finished by another worker, and a stale worker's report is
refused (409). The worker token reaches nothing but its own routes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import httpx
import pytest
from sqlmodel import select

from app.auth.principal import SYSTEM
from app.auth.service import create_token, get_user
from app.db import ROOT, session_scope
from app.evals import service
from app.evals.remote import run_remote_worker
from app.evals.tables import EvalResult, EvalRun
from app.evals.worker import MAX_ATTEMPTS
from app.timeutil import digest, utcnow
from tests.checkpoints.tiny import SMALL, TEXTS, corpus
from tests.evals.workers import queue_one, result_count, runs, wait_for, work


def worker_token(name: str = "gpu-1") -> tuple[str, str]:
    """(token, prefix) of a worker token owned by the coordinator."""
    with session_scope() as s:
        row, secret = create_token(s, SYSTEM, get_user(s, "coord"), worker=name)
        return secret, row.prefix


def no_database_env(tmp_path, token: str) -> dict:
    """The remote worker's environment: its own HOME and config, and a database URL that
    cannot work, so any attempt to open a database would fail the run."""
    home = tmp_path / "worker-home"
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAGEGATE_")}
    # One torch thread: a tiny model gains nothing from more, and the suite runs in parallel.
    return env | {"HOME": str(home), "PYTHONPATH": str(ROOT), "STAGEGATE_TOKEN": token,
                  "OMP_NUM_THREADS": "1",
                  "STAGEGATE_CONFIG_DIR": str(home / "config"),
                  "STAGEGATE_DATA_DIR": str(home / "data"),
                  "STAGEGATE_DATABASE_URL": f"sqlite:///{home}/no/such/folder/x.db"}


def corpus_file(tmp_path):
    path = tmp_path / "tiny.jsonl"  # named and hashed as tests.checkpoints.tiny.corpus()
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS))
    small = tmp_path / "small.json"
    small.write_text(json.dumps(SMALL))
    return path, small


def api(url: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"},
                        timeout=30)


# One database suffices for the slowest test (a worker process loads torch); the claim,
# lease and report paths run on both in the tests below.
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_remote_worker_records_the_result_a_local_worker_would(world, settings, files,
                                                                  tmp_path, live_server):
    queue_one(files, tmp_path)  # an internal checkpoint of lab-a/m, one perplexity run
    token, prefix = worker_token()
    corpus_path, small = corpus_file(tmp_path)
    env = no_database_env(tmp_path, token)
    token_file = tmp_path / "token"
    token_file.write_text(token)
    env.pop("STAGEGATE_TOKEN")
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "worker", "--url", live_server, "--once",
         "--token-file", str(token_file), "--corpus", str(corpus_path), "--suite-config",
         str(small), "--lease-s", "5", "--work-dir", str(tmp_path / "work")],
        check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert "worker finished 1 job(s)" in done.stdout
    home = tmp_path / "worker-home"
    assert not (home / "no").exists() and not (home / "data").exists()  # no database
    assert list((tmp_path / "work").iterdir()) == []  # the download is gone
    run = runs()[0]
    assert (run.status, run.attempts, run.progress) == ("succeeded", 1, 1.0)
    assert run.lease_owner.startswith(f"gpu-1/{prefix}/")
    with session_scope(write=False) as s:
        result = s.get(EvalResult, run.result_id)
        ckpt_digest = result.manifest_digest
    assert result.origin == {"by": "stagegate", "worker": run.lease_owner}
    assert (result.device, result.dtype, result.dataset_name) == ("cpu", "float32", "tiny")
    assert result.dataset_digest == corpus().digest
    assert set(result.library_versions) >= {"torch", "transformers", "python"}
    assert result.config_digest == digest(result.config)
    assert result.config["max_tokens"] == SMALL["perplexity"]["max_tokens"]
    assert result.code_version and result.metrics["perplexity"] > 1
    assert result.result_key == service.measured_key(
        ckpt_digest, "perplexity", result.suite_version, corpus().digest, 0,
        result.config_digest)
    # The worker with database access measures the same job to the same key: one row.
    with session_scope() as s:
        from app.checkpoints.tables import Checkpoint

        ckpt = s.exec(select(Checkpoint)).one()
        service.enqueue_run(s, SYSTEM, ckpt, "perplexity", reason="rerun")
    assert work(settings, worker_id="local") == 1
    assert runs()[1].status == "succeeded" and runs()[1].result_id == run.result_id
    assert result_count() == 1


KILLABLE = """
import sys, time
import app.evals.suites as suites
def slow(*args, **kwargs):
    time.sleep(300)  # hold the job, heartbeating, until the test kills this process
suites.run_suite = slow
from app.evals.remote import run_remote_worker
run_remote_worker(sys.argv[1], sys.argv[2], once=True, worker_id="doomed", lease_s=2.0,
                  work_dir=sys.argv[3])
"""


def test_a_killed_remote_worker_loses_nothing_and_its_late_report_is_refused(
        world, settings, files, tmp_path, live_server):
    queue_one(files, tmp_path)
    token, prefix = worker_token()
    child = subprocess.Popen([sys.executable, "-c", KILLABLE, live_server, token,
                              str(tmp_path / "work")], cwd=ROOT,
                             env=no_database_env(tmp_path, token))
    try:
        first = wait_for(lambda: (r := runs()[0]).status == "running"
                         and r.heartbeat_at is not None and r.heartbeat_at > r.started_at
                         and r.progress == 0 and r, 60, "the remote worker to heartbeat")
        assert first.lease_owner.startswith(f"gpu-1/{prefix}/doomed")
        assert any((tmp_path / "work").iterdir())  # it downloaded the checkpoint
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    wait_for(lambda: runs()[0].lease_expires_at < utcnow(), 10, "the lease to expire")
    stale = {"lease": first.lease_owner, "attempt": 1}
    body = stale | {"suite_id": "perplexity", "suite_version": first.suite_version,
                    "seed": 0, "config": {}, "metrics": {"perplexity": 1.0}, "details": {},
                    "corpus_name": "tiny", "corpus_digest": corpus().digest,
                    "library_versions": {}, "device": "cpu", "dtype": "float32",
                    "duration_s": 1.0, "tokens_processed": 1}
    with api(live_server, token) as http:
        # Expired, not yet taken by anyone: already too late to report.
        assert http.post(f"/api/v1/worker/jobs/{first.id}/results", json=body).status_code \
            == 409
        # Another worker (same token, another process) takes the job and finishes it.
        assert run_remote_worker(live_server, token, once=True, worker_id="second",
                                 corpus=corpus(), config_overrides=SMALL, lease_s=5.0,
                                 work_dir=tmp_path / "work") == 1
        run = runs()[0]
        assert (run.status, run.attempts) == ("succeeded", 2)
        assert run.lease_owner.startswith(f"gpu-1/{prefix}/second")
        # The killed worker's report, heartbeat and failure all come too late: 409.
        for path, payload in (("results", body), ("heartbeat", stale),
                              ("failure", stale | {"error": "late"})):
            answer = http.post(f"/api/v1/worker/jobs/{first.id}/{path}", json=payload)
            assert answer.status_code == 409, (path, answer.text)
            assert answer.json()["errors"][0]["field"] == "lease"
    assert result_count() == 1 and runs()[0].status == "succeeded"
    # The second worker's start removed the killed one's download folder.
    assert list((tmp_path / "work").iterdir()) == []


def test_leases_that_run_out_three_times_fail_the_job(world, settings, files, tmp_path,
                                                      live_server):
    queue_one(files, tmp_path)
    token, _ = worker_token()
    with api(live_server, token) as http:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            claim = http.post("/api/v1/worker/claims", json={"lease_s": 1})
            assert claim.status_code == 201, claim.text
            assert claim.json()["attempt"] == attempt
            wait_for(lambda: runs()[0].lease_expires_at < utcnow(), 5, "expiry")
        assert http.post("/api/v1/worker/claims", json={}).status_code == 204
    run = runs()[0]
    assert (run.status, run.attempts) == ("failed", MAX_ATTEMPTS)
    assert "lease expired 3 times" in run.error


@pytest.fixture
def claimed(world, settings, files, tmp_path, client):
    """A job claimed by worker gpu-1 over the test client: (claim, gpu-1's headers)."""
    queue_one(files, tmp_path)
    token, _ = worker_token("gpu-1")
    headers = {"Authorization": f"Bearer {token}"}
    answer = client.post("/api/v1/worker/claims", json={"worker": "a:1"}, headers=headers)
    assert answer.status_code == 201, answer.text
    return answer.json(), headers


def test_a_claim_lists_the_files_and_only_their_holder_downloads_them(claimed, client,
                                                                       world):
    claim, headers = claimed
    (ckpt,) = claim["checkpoints"]
    files = {f["name"]: f for f in ckpt["files"]}
    assert {"config.json", "model.safetensors"} <= set(files)
    got = client.get(files["config.json"]["url"], headers=headers)
    assert got.status_code == 200
    import hashlib

    assert hashlib.sha256(got.content).hexdigest() == files["config.json"]["sha256"]
    # Another worker token, the checkpoint's own lab member, anonymous: refused.
    other, _ = worker_token("gpu-2")
    other_headers = {"Authorization": f"Bearer {other}"}
    url = files["config.json"]["url"]
    assert client.get(url, headers=other_headers).status_code == 403
    assert client.get(url, headers=world.a_member.headers).status_code == 403
    assert client.get(url).status_code == 401
    lease = {"lease": claim["lease"], "attempt": claim["attempt"]}
    beat = f"/api/v1/worker/jobs/{claim['run_id']}/heartbeat"
    assert client.post(beat, json=lease, headers=other_headers).status_code == 403
    assert client.post(beat, json=lease | {"progress": 0.5}, headers=headers).json()[
        "progress"] == 0.5
    # The worker's token only reaches the job's own checkpoints through the job.
    direct = f"/api/v1/checkpoints/{ckpt['id']}/files/config.json"
    assert client.get(direct, headers=headers).status_code == 403
    wrong = url.replace(f"/files/{ckpt['id']}/", f"/files/{ckpt['id'] + 1}/")
    assert client.get(wrong, headers=headers).status_code == 403
    # Once the job is over, its files are out of reach too.
    failed = client.post(f"/api/v1/worker/jobs/{claim['run_id']}/failure",
                         json=lease | {"error": "CUDA out of memory", "log": "trace"},
                         headers=headers)
    assert failed.status_code == 200 and failed.json()["status"] == "failed"
    assert "worker log" in runs()[0].error
    assert client.get(url, headers=headers).status_code == 403


def test_a_worker_token_reaches_nothing_else(claimed, client, world):
    _, headers = claimed
    plan_id = world.plan(filed=False)  # a draft: lab-a's eyes only
    refused = [("POST", "/api/v1/plans", {"model": "lab-a/m", "title": "x", "stages": []}),
               ("GET", f"/api/v1/plans/{plan_id}", None), ("GET", "/api/v1/plans", None),
               ("GET", "/api/v1/me", None), ("POST", "/api/v1/tokens", {}),
               ("GET", "/api/v1/labs", None), ("GET", "/api/v1/evals/runs", None),
               ("POST", "/api/v1/evals/runs", {"checkpoint_id": 1, "suite": "perplexity"}),
               ("GET", "/", None)]
    for method, path, body in refused:
        answer = client.request(method, path, json=body, headers=headers)
        assert answer.status_code == 403, (method, path, answer.status_code)
    # And no other token reaches the worker's routes.
    for actor in (world.a_member, world.coord):
        assert client.post("/api/v1/worker/claims", json={},
                           headers=actor.headers).status_code == 403
    assert client.post("/api/v1/worker/claims", json={}).status_code == 401


def stagegate(*args) -> tuple[int, str, str]:
    """The operator's `stagegate` on the registry's machine (this test's database)."""
    from click.testing import CliRunner

    from app.cli import main

    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_only_coordinators_mint_worker_tokens(world, settings, client):
    answer = client.post("/api/v1/tokens", json={"worker": "gpu-9"},
                         headers=world.a_member.headers)
    assert answer.status_code == 403
    answer = client.post("/api/v1/tokens", json={"worker": "gpu-9"},
                         headers=world.coord.headers)
    assert answer.status_code == 201 and answer.json()["scope"] == "worker"
    assert answer.json()["label"] == "gpu-9"
    token = answer.json()["token"]
    assert client.post("/api/v1/worker/claims", json={},
                       headers={"Authorization": f"Bearer {token}"}).status_code == 204
    # On the registry's machine: for a coordinator only.
    code, _, err = stagegate("token", "create", "--user", "a_member", "--worker", "gpu-3")
    assert code == 2 and "not a coordinator" in err
    code, out, _ = stagegate("token", "create", "--user", "coord", "--worker", "gpu-3")
    assert code == 0 and out.startswith("worker token for gpu-3")
    secret = out.strip().splitlines()[-1]
    assert client.post("/api/v1/worker/claims", json={},
                       headers={"Authorization": f"Bearer {secret}"}).status_code == 204
    # Revoked with the coordinator's other tokens when the coordinator is switched off.
    prefix = secret.split("_")[1]
    assert client.delete(f"/api/v1/tokens/{prefix}",
                         headers=world.coord.headers).status_code == 200
    assert client.post("/api/v1/worker/claims", json={},
                       headers={"Authorization": f"Bearer {secret}"}).status_code == 401


def test_a_remote_transfer_matrix_names_the_checkpoints_it_compares(world, settings, files,
                                                                    tmp_path, live_server):
    from app.evals.tables import EvalResultCheckpoint
    from app.evals.worker import family_digest
    from tests.checkpoints.tiny import checkpoint_files, tiny_gpt2, upload

    with httpx.Client(base_url=live_server, timeout=60) as http:
        first = upload(http, world.a_member, files, name="small").json()
        second = upload(http, world.a_member, checkpoint_files(tiny_gpt2(tmp_path, seed=1)),
                        name="large").json()
        with session_scope() as s:  # only the transfer matrix stays queued
            for r in s.exec(select(EvalRun).where(EvalRun.suite_id != "detectability_transfer")):
                r.status = "cancelled"
                s.add(r)
    token, _ = worker_token()
    assert run_remote_worker(live_server, token, once=True, corpus=corpus(),
                             config_overrides=SMALL, lease_s=5.0,
                             work_dir=tmp_path / "work") == 1
    (run,) = [r for r in runs() if r.status != "cancelled"]
    assert (run.suite_id, run.status) == ("detectability_transfer", "succeeded")
    with session_scope(write=False) as s:
        from app.checkpoints.tables import Checkpoint

        result = s.get(EvalResult, run.result_id)
        named = set(s.exec(select(EvalResultCheckpoint.checkpoint_id).where(
            EvalResultCheckpoint.result_id == result.id)))
        family = list(s.exec(select(Checkpoint).order_by(Checkpoint.id)))
    assert named == {first["id"], second["id"]} and result.checkpoint_id == second["id"]
    assert result.details["labels"] == ["small", "large"]
    assert result.details["checkpoints"] == {"small": first["manifest_digest"],
                                             "large": second["manifest_digest"]}
    # The local worker's key: the family's digest, not the anchor's manifest digest.
    assert result.manifest_digest == family_digest(family)
    assert result.result_key == service.measured_key(
        family_digest(family), "detectability_transfer", result.suite_version,
        corpus().digest, 0, result.config_digest)
