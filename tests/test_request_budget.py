"""The request time budget (DESIGN.md convention 11, app/http.py request_budget_middleware):
an answer past STAGEGATE_REQUEST_BUDGET_S is a 503 problem with the request id, logged;
streams are outside it; the server keeps answering afterwards. Both databases."""

from __future__ import annotations

import dataclasses
import logging
import time

import pytest

from app.http import _long_by_design
from app.settings import configure, get_settings

PROBLEM = "application/problem+json"


@pytest.fixture
def tiny_budget(settings):
    configure(dataclasses.replace(settings, request_budget_s=0.2))
    yield
    configure(settings)


def _slow(*args, **kwargs):
    time.sleep(1.0)
    return []


def test_a_slow_answer_is_a_503_problem_with_the_request_id(client, world, tiny_budget,
                                                            monkeypatch, caplog):
    from app.labs import service

    monkeypatch.setattr(service, "list_labs", _slow, raising=False)
    monkeypatch.setattr(service, "list_page", _slow, raising=False)
    assert client.get("/healthz").status_code == 200
    caplog.set_level(logging.WARNING, logger="stagegate.http")
    started = time.perf_counter()
    r = client.get("/api/v1/labs", headers={"X-Request-ID": "budget-test-1"})
    assert time.perf_counter() - started < 0.9  # answered at the deadline, not after
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    assert r.headers["x-request-id"] == "budget-test-1"
    assert r.headers["x-content-type-options"] == "nosniff"  # hardened like any answer
    body = r.json()
    assert body["status"] == 503 and body["request_id"] == "budget-test-1"
    assert "budget-test-1" in body["detail"] and body["instance"] == "/api/v1/labs"
    assert any("budget" in rec.getMessage() and "budget-test-1" in rec.getMessage()
               for rec in caplog.records)
    # The server still answers, at once, while the abandoned thread sleeps on.
    assert client.get("/healthz").status_code == 200
    assert client.get("/api/v1/labs/lab-a").status_code == 200


def test_answers_within_the_budget_are_untouched(client, world, tiny_budget):
    r = client.get("/api/v1/labs")
    assert r.status_code == 200 and r.json()["items"]
    assert client.get("/models/lab-a/m", headers=world.coord.headers).status_code == 200


def test_the_budget_can_be_turned_off(client, world, settings, monkeypatch):
    from app.labs import service

    configure(dataclasses.replace(settings, request_budget_s=0))
    try:
        monkeypatch.setattr(service, "list_labs", lambda *a, **k: (time.sleep(0.3), [])[1],
                            raising=False)
        assert client.get("/api/v1/labs").status_code != 503
    finally:
        configure(settings)


def test_streams_and_uploads_are_outside_the_budget(app):
    by_path = {}
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            by_path.setdefault(route.path, []).append(handler)

    def long(path: str, method: str) -> bool:
        return any(_long_by_design(h) for h in by_path[path] if method in h.http_methods)

    assert long("/models/{lab:str}/{model:str}/progress", "GET")  # server-sent events
    assert long("/api/v1/incidents/export", "GET")  # a Stream
    assert long("/api/v1/checkpoints/{checkpoint_id:int}/files/{name:str}", "GET")
    assert long("/api/v1/checkpoints", "POST")  # the upload reads its own body
    assert not long("/models/{lab:str}/{model:str}", "GET")
    assert not long("/api/v1/labs", "GET")


def test_the_default_budget_is_set():
    assert get_settings().request_budget_s > 0


# --- `stagegate serve` shuts down even with a stuck handler thread -----------------------------

STUCK_SERVE = """
import sys, time
from app.labs import service
service.list_labs = lambda *a, **k: time.sleep(3600)
from app.cli import main
sys.argv = ["stagegate", "serve", "--port", sys.argv[1]]
main()
"""


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT"])
def test_serve_stops_despite_a_stuck_thread(backend, tmp_path, signame):
    """SIGTERM: uvicorn re-raises it after shutdown, so the process ends at once. SIGINT
    (Ctrl-C) ends in the interpreter's exit, which would join the stuck thread forever:
    the watchdog ends it after the grace period."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    from pathlib import Path

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = os.environ | {"STAGEGATE_DATA_DIR": str(tmp_path), "STAGEGATE_INPROCESS_WORKER": "0",
                        "STAGEGATE_REQUEST_BUDGET_S": "0.5", "STAGEGATE_SHUTDOWN_GRACE_S": "1"}
    env.pop("STAGEGATE_DATABASE_URL", None)
    proc = subprocess.Popen([sys.executable, "-c", STUCK_SERVE, str(port)],
                            cwd=Path(__file__).resolve().parents[1], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        for _ in range(150):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        r = httpx.get(f"http://127.0.0.1:{port}/api/v1/labs", timeout=10)
        assert r.status_code == 503 and r.json()["request_id"] == r.headers["x-request-id"]
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
        started = time.monotonic()
        proc.send_signal(getattr(signal, signame))
        out, _ = proc.communicate(timeout=20)
        assert time.monotonic() - started < 15
        if signame == "SIGINT":
            assert b"exiting anyway" in out, out.decode()[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_the_shutdown_watchdog_exits_while_a_thread_is_stuck():
    import threading

    release = threading.Event()
    stuck = threading.Thread(target=release.wait, name="stuck-handler")
    stuck.start()
    exits = []
    try:
        from app.cli import exit_if_threads_stuck

        exit_if_threads_stuck(0.05, _exit=exits.append).join(5)
        assert exits == [0]
    finally:
        release.set()
        stuck.join()
