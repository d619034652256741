"""The evaluation worker: claims jobs under a lease, heartbeats, runs suites, stores results."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import threading
import time
import uuid
from datetime import timedelta

from sqlalchemy import and_, or_, update
from sqlmodel import select

from app.access import checkpoint_audience
from app.auth.principal import SYSTEM
from app.checkpoints.service import materialise
from app.checkpoints.tables import Checkpoint
from app.db import engine_for, session_scope
from app.evals import charts, service
from app.evals.tables import EvalResult, EvalRun
from app.events.service import record
from app.norms.service import refresh_due
from app.settings import Settings
from app.timeutil import digest, utcnow
from app.transparency.service import latest_checkpoint

log = logging.getLogger("stagegate.worker")
LEASE_S = 120.0
MAX_ATTEMPTS = 3
POLL_S = 2.0
ENQUEUE_EVERY_S = 60.0
# An upload staging file untouched this long belongs to a server that died mid-upload.
STAGING_MAX_AGE_S = 3600.0
# One suite at a time per process: transformers' from_pretrained is not thread-safe (it
# patches module globals while loading) and torch already uses every core for one model.
_RUN_LOCK = threading.Lock()
# Set by the embedded worker process (limit_torch_threads): torch threads to use (None:
# torch's default, every core).
_INPROCESS_THREADS: int | None = None


def _expired(now):
    return and_(EvalRun.status == "running", EvalRun.lease_expires_at < now)


def fail_abandoned(session) -> int:
    """Jobs whose lease ran out MAX_ATTEMPTS times fail instead of killing more workers."""
    now = utcnow()
    query = select(EvalRun).where(_expired(now), EvalRun.attempts >= MAX_ATTEMPTS)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = list(session.exec(query))
    for run in rows:
        run.status, run.finished_at, run.lease_owner = "failed", now, None
        run.error = f"the worker's lease expired {run.attempts} times (worker died?)"
        session.add(run)
        _record(session, run)
    return len(rows)


def claim(session, worker_id: str, lease_s: float = LEASE_S) -> tuple[int, int] | None:
    """Atomically take the oldest queued (or lease-expired running) job: (run id, attempt).

    PostgreSQL: the inner SELECT ... FOR UPDATE SKIP LOCKED lets workers pass each other.
    SQLite: the session holds BEGIN IMMEDIATE, so claims are serialised; the outer WHERE
    re-checks the state so a job is never taken twice.

    A job whose lease ran out MAX_ATTEMPTS times is never claimed again (a poison job that
    crashes its worker would otherwise kill one worker after another): it is failed here,
    on the claim itself, rather than waiting for the periodic sweep.
    """
    now = utcnow()
    fail_abandoned(session)
    claimable = or_(EvalRun.status == "queued",
                    and_(_expired(now), EvalRun.attempts < MAX_ATTEMPTS))
    pick = select(EvalRun.id).where(claimable).order_by(EvalRun.id).limit(1)
    if session.get_bind().dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    stmt = (update(EvalRun).where(EvalRun.id == pick.scalar_subquery(), claimable)
            .values(status="running", lease_owner=worker_id, heartbeat_at=now,
                    lease_expires_at=now + timedelta(seconds=lease_s), started_at=now,
                    attempts=EvalRun.attempts + 1, progress=0.0, error=None)
            .returning(EvalRun.id, EvalRun.attempts)
            .execution_options(synchronize_session=False))
    row = session.execute(stmt).first()
    if row is None:
        return None
    run = session.get(EvalRun, row[0])
    session.refresh(run)
    _record(session, run, "started")
    return row[0], row[1]


def _record(session, run: EvalRun, action: str | None = None) -> None:
    ckpt = session.get(Checkpoint, run.checkpoint_id)
    record(session, SYSTEM, "eval_run", run.id, action or run.status, service.run_state(run),
           lab_id=ckpt.lab_id, visibility=checkpoint_audience(session, ckpt))


def _mine(run_id: int, worker_id: str, attempt: int):
    # The attempt number fences the lease: a worker that lost its lease cannot write.
    return and_(EvalRun.id == run_id, EvalRun.lease_owner == worker_id,
                EvalRun.attempts == attempt, EvalRun.status == "running")


class Lease(threading.Thread):
    """Extends the lease and writes progress every `interval` seconds while a suite runs."""

    def __init__(self, engine, run_id: int, worker_id: str, attempt: int, lease_s: float):
        super().__init__(daemon=True, name=f"lease-{run_id}")
        self.engine, self.run_id, self.worker_id, self.attempt = engine, run_id, worker_id, attempt
        # Often enough that the card shows live progress, well inside the lease.
        self.lease_s, self.interval = lease_s, max(0.2, min(5.0, lease_s / 4))
        self.progress = 0.0
        self.lost = threading.Event()
        self._stop_event = threading.Event()

    def set_progress(self, fraction: float) -> None:
        self.progress = min(1.0, max(0.0, float(fraction)))

    def beat(self) -> bool:
        now = utcnow()
        with session_scope(self.engine) as s:
            res = s.execute(update(EvalRun).where(_mine(self.run_id, self.worker_id,
                                                        self.attempt))
                            .values(heartbeat_at=now, progress=self.progress,
                                    lease_expires_at=now + timedelta(seconds=self.lease_s))
                            .execution_options(synchronize_session=False))
            return res.rowcount == 1

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            try:
                if not self.beat():
                    self.lost.set()
                    return
            except Exception:  # a database hiccup must not kill the job; retry next beat
                log.exception("heartbeat for run %s failed", self.run_id)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)


def measured_result(run: EvalRun, ckpt: Checkpoint, res,
                    manifest_digest: str | None = None) -> EvalResult:
    config_digest = digest(res.config)
    manifest_digest = manifest_digest or ckpt.manifest_digest
    return EvalResult(
        result_key=service.measured_key(manifest_digest, res.suite_id, res.suite_version,
                                        res.corpus_digest, res.seed, config_digest),
        source="measured", model_id=ckpt.model_id, checkpoint_id=ckpt.id, run_id=run.id,
        manifest_digest=manifest_digest, suite_id=res.suite_id,
        suite_version=res.suite_version, config=res.config, config_digest=config_digest,
        dataset_name=res.corpus_name, dataset_digest=res.corpus_digest, seed=res.seed,
        code_version=service.code_version(), library_versions=res.library_versions,
        device=res.device, dtype=res.dtype, duration_s=res.duration_s,
        tokens_processed=res.tokens_processed, metrics=res.metrics, details=res.details,
        origin={"by": "stagegate", "worker": run.lease_owner})


def execute(settings: Settings, engine, run_id: int, attempt: int, worker_id: str, *,
            corpus, config_overrides: dict | None, lease_s: float, device: str | None) -> str:
    """Run one claimed job to the end; returns the status it finished with."""
    with session_scope(engine, write=False) as s:
        run = s.get(EvalRun, run_id)
        ckpt = s.get(Checkpoint, run.checkpoint_id)
        family = (service.transfer_family(s, ckpt) if run.suite_id == service.TRANSFER_SUITE
                  else None)
    lease = Lease(engine, run_id, worker_id, attempt, lease_s)
    lease.start()
    workdir = settings.data_dir / "work" / f"run-{run_id}-{attempt}-{uuid.uuid4().hex[:8]}"
    res, error, family_digest = None, None, None
    try:
        res, family_digest = _measure(settings, run, ckpt, family, workdir, corpus, device,
                                      config_overrides, lease)
    except Exception as exc:
        log.exception("run %s (%s) failed", run_id, run.suite_id)
        error = f"{type(exc).__name__}: {exc}"[:4000]
    finally:
        lease.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    with session_scope(engine) as s:
        run = s.get(EvalRun, run_id)
        named = [c.id for c in family] if family else None
        result = (service.store_result(s, measured_result(run, ckpt, res, family_digest),
                                       named) if res is not None else None)
        status = "succeeded" if result is not None else "failed"
        done = s.execute(update(EvalRun).where(_mine(run_id, worker_id, attempt))
                         .values(status=status, progress=1.0 if result else run.progress,
                                 finished_at=utcnow(), lease_expires_at=None, error=error,
                                 result_id=result.id if result else None)
                         .execution_options(synchronize_session=False))
        if done.rowcount != 1:
            # Lost the lease: another worker owns the job now; the result (if any) is
            # already stored under its key, so that worker will find the same row.
            log.warning("run %s: lease lost before finishing", run_id)
            return "lost"
        s.refresh(run)
        _record(s, run)
    return status


def _measure(settings: Settings, run: EvalRun, ckpt: Checkpoint, family, workdir, corpus,
             device: str | None, config_overrides: dict | None, lease: Lease):
    """(SuiteResult, manifest digest override) for one job."""
    from app.evals import suites  # torch is imported only here, when a job runs

    if _INPROCESS_THREADS is not None:
        import torch

        torch.set_num_threads(_INPROCESS_THREADS)
    with _RUN_LOCK:
        if family is not None:
            return run_transfer(settings, family, workdir, corpus, run.seed, device,
                                config_overrides, lease)
        materialise(ckpt, workdir, settings)
        res = suites.run_suite(run.suite_id, workdir, corpus, seed=run.seed, device=device,
                               progress=lease.set_progress,
                               config_overrides=(config_overrides or {}).get(run.suite_id))
        return res, None


def run_transfer(settings: Settings, family: list[Checkpoint], workdir, corpus, seed: int,
                 device: str | None, config_overrides: dict | None, lease: Lease):
    """One matrix-shaped result for a model's checkpoints: detector trained on row, tested
    on column. Returns (SuiteResult, digest naming the exact set of checkpoints)."""
    from app.evals import suites

    dirs = {c.name: materialise(c, workdir / c.name, settings) for c in family}
    res = suites.transfer_result(service.TRANSFER_SUITE, dirs,
                                 {c.name: c.manifest_digest for c in family}, corpus,
                                 seed=seed, device=device,
                                 config_overrides=(config_overrides or {}).get("detectability"))
    lease.set_progress(1.0)
    return res, family_digest(family)


def family_digest(family: list[Checkpoint]) -> str:
    """The digest naming the exact set of checkpoints a transfer matrix compares."""
    return digest(sorted(c.manifest_digest for c in family))


def _workdir_owner(path) -> tuple[int, int] | None:
    """run-{run id}-{attempt}-{random} -> (run id, attempt)."""
    parts = path.name.split("-")
    if len(parts) == 4 and parts[0] == "run" and parts[1].isdigit() and parts[2].isdigit():
        return int(parts[1]), int(parts[2])
    return None


def remove_stale_workdirs(settings: Settings, engine) -> int:
    """Delete work folders (materialised checkpoints: gigabytes) left by killed workers.

    A folder is kept only while its run is still `running` at that attempt under a live
    lease: that is a worker at work, here or in another process sharing the data folder.
    Anything else (finished, re-claimed, lease expired) is debris."""
    root = settings.data_dir / "work"
    if not root.is_dir():
        return 0
    folders = {p: _workdir_owner(p) for p in root.iterdir() if p.is_dir()}
    folders = {p: owner for p, owner in folders.items() if owner is not None}
    if not folders:
        return 0
    now = utcnow()
    with session_scope(engine, write=False) as s:
        live = {(run_id, attempt) for run_id, attempt in s.execute(
            select(EvalRun.id, EvalRun.attempts).where(
                EvalRun.id.in_({run_id for run_id, _ in folders.values()}),
                EvalRun.status == "running", EvalRun.lease_expires_at >= now))}
    removed = 0
    for path, owner in folders.items():
        if owner not in live:
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    if removed:
        log.info("removed %d work folders left by stopped workers", removed)
    return removed


def remove_stale_uploads(settings: Settings, max_age_s: float = STAGING_MAX_AGE_S) -> int:
    """Delete upload staging files (`<blobs>/tmp/upload-*`) a killed server left behind.
    An upload in progress writes its file continuously, so only untouched ones go."""
    cutoff = time.time() - max_age_s
    removed = 0
    for path in (settings.blob_dir / "tmp").glob("upload-*"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:  # another process cleaned it or committed it first
            pass
    return removed


def run_worker(settings: Settings, *, once: bool = False, stop_event: threading.Event | None = None,
               worker_id: str | None = None, corpus=None, config_overrides: dict | None = None,
               lease_s: float = LEASE_S, poll_s: float = POLL_S, device: str | None = None,
               enqueue_every_s: float | None = ENQUEUE_EVERY_S) -> int:
    """Claim and run jobs until stopped (or, with once=True, until the queue is empty).

    enqueue_every_s=None skips enqueue_missing (tests that queue exactly one job).
    Returns the number of jobs this worker finished."""
    engine = engine_for(settings.database_url)
    worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    stop_event = stop_event or threading.Event()
    done, last_enqueue = 0, None
    remove_stale_workdirs(settings, engine)
    remove_stale_uploads(settings)
    while not stop_event.is_set():
        now = utcnow()
        if enqueue_every_s is not None and (
                last_enqueue is None or (now - last_enqueue).total_seconds() >= enqueue_every_s):
            with session_scope(engine) as s:
                service.enqueue_missing(s)
                fail_abandoned(s)
                refresh_due(s)  # verdicts a passing date turns (app/norms)
                # Charts of models stored before they were kept (results landing keep
                # them from then on, through the listener in app/evals/charts.py).
                charts.store_missing(s)
            with session_scope(engine, write=False) as s:
                # The transparency log signs a checkpoint while there are new leaves,
                # whether or not anyone reads one (the history witnesses compare).
                latest_checkpoint(s)
            last_enqueue = now
        with session_scope(engine) as s:
            claimed = claim(s, worker_id, lease_s)
        if claimed is not None:
            remove_stale_workdirs(settings, engine)
            remove_stale_uploads(settings)
        if claimed is None:
            if once:
                break
            stop_event.wait(poll_s)
            continue
        if corpus is None:
            from app.evals.corpus import demo_corpus

            corpus = demo_corpus()
        status = execute(settings, engine, *claimed, worker_id, corpus=corpus,
                         config_overrides=config_overrides, lease_s=lease_s, device=device)
        log.info("run %s: %s", claimed[0], status)
        done += 1
    return done


def limit_torch_threads() -> None:
    """Leave the web server a core: torch gets one thread fewer than there are cores."""
    global _INPROCESS_THREADS
    _INPROCESS_THREADS = max(1, (os.cpu_count() or 2) - 1)

