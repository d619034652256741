"""The embedded worker starts and stops with the web app when settings ask for it: by
default as a child process at lower priority that really claims jobs, and with
STAGEGATE_WORKER_YIELD=0 as a thread of the server."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import replace

from litestar.testing import TestClient
from sqlmodel import select

from app import create_app
from app.db import session_scope
from app.evals.tables import EvalRun
from tests.checkpoints.tiny import checkpoint_files, tiny_gpt2, upload


def _alive() -> bool:
    return any(t.name == "stagegate-worker" and t.is_alive() for t in threading.enumerate())


def _children() -> set[int]:
    mine = str(os.getpid())
    found = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            cmdline = open(f"/proc/{pid}/cmdline", "rb").read()
        except OSError:
            continue
        if fields[1] == mine and b"app.evals.embedded" in cmdline:
            found.add(int(pid))
    return found


def test_app_runs_the_worker_only_when_enabled(settings):
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200
        assert not _alive() and not _children()
    with TestClient(create_app(replace(settings, inprocess_worker=True,
                                       worker_yield=False))) as client:
        assert client.get("/api/v1/evals/runs").status_code == 200
        assert _alive() and not _children()  # full speed: a thread of this process
    assert not _alive()


def test_the_default_worker_is_a_lower_priority_child_that_claims_jobs(settings, world,
                                                                       tmp_path):
    files = checkpoint_files(tiny_gpt2(tmp_path / "tiny"))
    app = create_app(replace(settings, inprocess_worker=True))
    with TestClient(app) as client:
        deadline = time.monotonic() + 30
        while not _children() and time.monotonic() < deadline:
            time.sleep(0.1)
        (child,) = _children()

        def nice() -> int:
            return int(open(f"/proc/{child}/stat").read().rsplit(")", 1)[1].split()[16])

        while nice() != 10 and time.monotonic() < deadline:  # it lowers itself on start
            time.sleep(0.1)
        assert nice() == 10
        assert upload(client, world.a_member, files).status_code == 201
        # The child, not this process, leases the queued evaluations.
        deadline, owners = time.monotonic() + 60, set()
        while not owners and time.monotonic() < deadline:
            with session_scope(write=False) as s:
                owners = {r.lease_owner for r in s.exec(select(EvalRun))
                          if r.lease_owner}
            time.sleep(0.2)
        assert any(f":{child}:" in owner for owner in owners), owners
        assert client.get("/healthz").status_code == 200
    # Shut down with the app.
    deadline = time.monotonic() + 15
    while _children() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _children() and not _alive()
