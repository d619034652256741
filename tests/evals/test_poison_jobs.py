"""A job that kills its worker fails after MAX_ATTEMPTS, never loops; killed workers'
work folders are cleaned up. Real worker subprocesses, killed with SIGKILL."""

from __future__ import annotations

import os
import time

from sqlmodel import select

from app.db import engine_for, session_scope
from app.evals.worker import MAX_ATTEMPTS, remove_stale_workdirs
from app.events.tables import Event
from app.timeutil import utcnow
from tests.evals.workers import doomed_worker, queue_one, runs, wait_for, work


def _folders(settings) -> list[str]:
    root = settings.data_dir / "work"
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


def _kill_a_worker_mid_job(settings, attempt: int) -> None:
    with doomed_worker(settings):
        wait_for(lambda: (r := runs()[0]).status == "running" and r.attempts == attempt
                 and r.heartbeat_at is not None and r.heartbeat_at > r.started_at
                 and any(f.startswith(f"run-{r.id}-{attempt}-") for f in _folders(settings)),
                 120, f"worker {attempt} to claim the job and materialise it")
        # While that worker lives, its folder is kept by a cleanup from elsewhere.
        remove_stale_workdirs(settings, engine_for(settings.database_url))
        live = [f for f in _folders(settings) if f.startswith(f"run-{runs()[0].id}-{attempt}-")]
        assert len(live) == 1
        # An earlier killed worker's folder was removed when this one started.
        assert _folders(settings) == live
    wait_for(lambda: runs()[0].lease_expires_at < utcnow(), 10, "the lease to expire")


def test_a_job_that_kills_its_workers_fails_after_max_attempts(world, settings, files,
                                                               tmp_path):
    assert MAX_ATTEMPTS == 3
    queue_one(files, tmp_path)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        _kill_a_worker_mid_job(settings, attempt)
        assert (runs()[0].status, runs()[0].attempts) == ("running", attempt)
    assert len(_folders(settings)) == 1  # the third worker's debris, for now
    # A fourth worker does not take it: the claim fails it instead (no 60 s sweep needed).
    assert work(settings, worker_id="fourth") == 0
    run = runs()[0]
    assert (run.status, run.attempts, run.lease_owner) == ("failed", MAX_ATTEMPTS, None)
    assert "lease expired 3 times" in run.error
    assert _folders(settings) == []  # and the debris is gone
    assert work(settings, worker_id="fifth") == 0
    assert (runs()[0].status, runs()[0].attempts) == ("failed", MAX_ATTEMPTS)
    with session_scope(write=False) as s:
        actions = list(s.exec(select(Event.action).where(Event.entity_type == "eval_run")
                              .order_by(Event.id)))
    assert actions == ["queued", "started", "started", "started", "failed"]


def test_only_folders_of_runs_nobody_holds_are_removed(world, settings, files, tmp_path):
    queue_one(files, tmp_path)
    root = settings.data_dir / "work"
    run_id = runs()[0].id
    for name in (f"run-{run_id}-1-aaaaaaaa", f"run-{run_id + 99}-1-bbbbbbbb", "not-a-run"):
        (root / name).mkdir(parents=True)
        (root / name / "model.safetensors").write_bytes(b"x" * 1000)
    removed = remove_stale_workdirs(settings, engine_for(settings.database_url))
    # The queued run holds no folder yet, the unknown run none at all; foreign names stay.
    assert removed == 2 and _folders(settings) == ["not-a-run"]


def test_upload_staging_left_by_a_killed_server_is_removed(settings):
    tmp = settings.blob_dir / "tmp"
    tmp.mkdir(parents=True)
    old, fresh = tmp / "upload-old", tmp / "upload-fresh"
    for path in (old, fresh):
        path.write_bytes(b"x" * 1000)
    hour_ago = time.time() - 2 * 3600
    os.utime(old, (hour_ago, hour_ago))
    assert work(settings, worker_id="janitor") == 0  # a worker start cleans up
    assert sorted(p.name for p in tmp.iterdir()) == ["upload-fresh"]
