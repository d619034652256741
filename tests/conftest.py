"""Fixtures: a migrated database per test on SQLite and (when reachable) PostgreSQL."""

from __future__ import annotations

import os
import queue
import shutil
import threading
import uuid
from pathlib import Path

import psycopg
import pytest
from litestar.testing import TestClient

from app import create_app
from app.db import engine_for, upgrade
from app.listeners import install_listeners
from app.plans import cache
from app.settings import Settings, configure
from app.timeutil import freeze

# The suite is this process's entry point: service tests write without create_app, and
# their writes must render Markdown and recompute verdicts as the app's do.
install_listeners()

PG_ADMIN = os.environ.get("STAGEGATE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
PG_BASE = PG_ADMIN.rsplit("/", 1)[0]
IN_CI = os.environ.get("CI") == "true"


def _pg_reachable() -> bool:
    try:
        psycopg.connect(PG_ADMIN, connect_timeout=2).close()
        return True
    except psycopg.OperationalError:
        return False


PG_UP = _pg_reachable()


def _pg(sql: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(sql)


def empty_database_url(backend: str, sqlite_file: Path, prefix: str = "sg_e") -> str:
    """A new, empty (un-migrated) database: the SQLite file, or a PostgreSQL database
    with a unique name."""
    if backend == "sqlite":
        return f"sqlite:///{sqlite_file}"
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    _pg(f"CREATE DATABASE {name}")
    return f"{PG_BASE}/{name}"


def drop_database_url(url: str) -> None:
    """Drops a PostgreSQL database made by empty_database_url (SQLite files go with
    tmp_path)."""
    if url.startswith("postgresql"):
        _pg(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")


class PgCopies:
    """Copies of a migrated PostgreSQL template, made ahead of need and dropped after
    use, in a thread: a CREATE DATABASE ... TEMPLATE takes ~0.4 s, mostly fsync waits,
    that would otherwise stand between every two PostgreSQL tests (a quarter of the
    suite's time)."""

    AHEAD = 2

    def __init__(self, template: str):
        self.template = template
        self.ready: queue.Queue = queue.Queue()
        self.used: queue.Queue = queue.Queue()
        self.room = threading.Semaphore(self.AHEAD)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="pg-copies", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                while not self.stopping.is_set():
                    self._drop_used(conn)
                    if self.room.acquire(timeout=0.02):
                        name = f"sg_t_{uuid.uuid4().hex[:12]}"
                        conn.execute(f"CREATE DATABASE {name} TEMPLATE {self.template}")
                        self.ready.put(name)
                self._drop_used(conn)
        except Exception as exc:  # handed to the test that waits for a copy
            self.ready.put(exc)

    def _drop_used(self, conn) -> None:
        while not self.used.empty():
            conn.execute(f"DROP DATABASE IF EXISTS {self.used.get()} WITH (FORCE)")

    def take(self) -> str:
        """A fresh copy's name; the caller hands it back with give_back."""
        name = self.ready.get(timeout=120)
        if isinstance(name, Exception):
            raise name
        self.room.release()
        return name

    def give_back(self, name: str) -> None:
        self.used.put(name)

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=120)
        while not self.ready.empty():
            name = self.ready.get()
            if isinstance(name, str):
                _pg(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def templates(tmp_path_factory, worker_id):
    """Migrate once per test process; each test then gets a cheap copy (PostgreSQL: from
    out["pg_copies"], made ahead in a thread)."""
    out = {}
    sqlite_path = tmp_path_factory.mktemp("tmpl") / "template.db"
    upgrade(f"sqlite:///{sqlite_path}")
    engine_for(f"sqlite:///{sqlite_path}").dispose()
    out["sqlite"] = sqlite_path
    if PG_UP:
        name = f"sg_tmpl_{worker_id}_{os.getpid()}"
        _pg(f"DROP DATABASE IF EXISTS {name}")
        _pg(f"CREATE DATABASE {name}")
        upgrade(f"{PG_BASE}/{name}")
        engine_for(f"{PG_BASE}/{name}").dispose()
        out["postgresql"] = name
        out["pg_copies"] = PgCopies(name)
    yield out
    if PG_UP:
        out["pg_copies"].close()
        _pg(f"DROP DATABASE IF EXISTS {out['postgresql']} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request):
    if request.param == "postgresql" and not PG_UP:
        if IN_CI:
            pytest.fail("PostgreSQL is not reachable at 127.0.0.1:5432 and CI=true")
        pytest.skip("PostgreSQL not reachable")
    return request.param


@pytest.fixture
def settings(backend, templates, tmp_path):
    if backend == "sqlite":
        db = tmp_path / "stagegate.db"
        shutil.copy(templates["sqlite"], db)
        url = f"sqlite:///{db}"
    else:
        name = templates["pg_copies"].take()
        url = f"{PG_BASE}/{name}"
    settings = configure(Settings(data_dir=tmp_path / "data", database_url=url,
                                  inprocess_worker=False))
    cache._cache = None
    # Tiles are kept per database URL, and PostgreSQL copies reuse their names.
    from app.transparency.api import TILES

    TILES.clear()
    yield settings
    engine_for(url).dispose()
    engine_for.cache_clear()
    freeze(None)
    if backend == "postgresql":
        templates["pg_copies"].give_back(name)


@pytest.fixture
def app(settings):
    return create_app(settings)


@pytest.fixture
def client(app):
    with TestClient(app) as client:
        yield client


@pytest.fixture
def world(settings):
    from tests.factories import World

    return World.build()


@pytest.fixture
def live_server(app):
    """The app served by a real uvicorn on a free 127.0.0.1 port, in a thread; stops
    itself when the test ends. Yields the base URL (for the remote CLI, httpx)."""
    import socket
    import threading
    import time

    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(15)
    sock.close()


@pytest.fixture
def stagegate(live_server, tmp_path, monkeypatch):
    """Run the `stagegate` CLI against the live server: stagegate(*args, as_=actor)
    returns (exit code, stdout, stderr). The config folder is the test's own."""
    from click.testing import CliRunner

    from app.cli import main

    monkeypatch.setenv("STAGEGATE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.delenv("STAGEGATE_TOKEN", raising=False)
    monkeypatch.setenv("STAGEGATE_URL", live_server)

    def run(*args, as_=None, input=None):
        env = {"STAGEGATE_TOKEN": as_.token} if as_ is not None else {}
        result = CliRunner().invoke(main, [str(a) for a in args], env=env, input=input,
                                    catch_exceptions=False)
        return result.exit_code, result.stdout, result.stderr
    return run
