"""Helpers for the worker tests: run a worker in this process, read the queue, and start
a real worker subprocess that holds its job until the test kills it with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager

from sqlmodel import func, select

from app.auth.principal import SYSTEM
from app.checkpoints.schemas import CheckpointCreate
from app.db import ROOT, session_scope
from app.evals import service
from app.evals.tables import EvalResult, EvalRun
from app.evals.worker import run_worker
from app.flows import upload_checkpoint
from tests.checkpoints.tiny import SMALL, corpus


def work(settings, **kw) -> int:
    kw.setdefault("enqueue_every_s", None)
    return run_worker(settings, once=True, corpus=corpus(), config_overrides=SMALL,
                      lease_s=5.0, **kw)


def runs() -> list[EvalRun]:
    with session_scope(write=False) as s:
        return list(s.exec(select(EvalRun).order_by(EvalRun.id)))


def result_count() -> int:
    with session_scope(write=False) as s:
        return s.exec(select(func.count()).select_from(EvalResult)).one()


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def queue_one(files: dict[str, bytes], tmp_path) -> None:
    """One checkpoint of lab-a/m with one queued perplexity run (nothing else queued)."""
    model_dir = tmp_path / "ckpt"
    model_dir.mkdir()
    for name, content in files.items():
        (model_dir / name).write_bytes(content)
    with session_scope() as s:
        ckpt = upload_checkpoint(s, SYSTEM, CheckpointCreate(model="lab-a/m", name="k"),
                                 [(p.name, p.open("rb")) for p in model_dir.iterdir()],
                                 enqueue=False)
        service.enqueue_run(s, SYSTEM, ckpt, "perplexity", reason="upload")


# A worker process ("doomed") whose suite sleeps, so its job stays `running` with a live
# heartbeat and a 2 s lease until the test kills the process.
DOOMED = """
import sys, time
from pathlib import Path
from app.settings import Settings, configure
settings = configure(Settings(data_dir=Path(sys.argv[1]), database_url=sys.argv[2],
                              inprocess_worker=False))
import app.evals.suites as suites
real = suites.run_suite
def slow(*args, **kwargs):
    time.sleep(300)  # hold the job in 'running' until the test kills this process
    return real(*args, **kwargs)
suites.run_suite = slow
from app.evals.worker import run_worker
from tests.checkpoints.tiny import corpus
run_worker(settings, once=True, worker_id="doomed", corpus=corpus(), lease_s=2.0,
           enqueue_every_s=None)
"""


@contextmanager
def doomed_worker(settings):
    """Start the doomed worker; SIGKILL it (no clean-up of any kind) when the block ends."""
    child = subprocess.Popen([sys.executable, "-c", DOOMED, str(settings.data_dir),
                              settings.database_url], cwd=ROOT,
                             env=os.environ | {"PYTHONPATH": str(ROOT)})
    try:
        yield child
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)
