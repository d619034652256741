"""The embedded worker starts and stops with the web app when settings ask for it."""

from __future__ import annotations

import threading
from dataclasses import replace

from litestar.testing import TestClient

from app import create_app


def _alive() -> bool:
    return any(t.name == "stagegate-worker" and t.is_alive() for t in threading.enumerate())


def test_app_runs_the_worker_only_when_enabled(settings):
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200
        assert not _alive()
    with TestClient(create_app(replace(settings, inprocess_worker=True))) as client:
        assert client.get("/api/v1/evals/runs").status_code == 200
        assert _alive()
    assert not _alive()
