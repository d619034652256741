"""Fixtures: a migrated database per test on SQLite and (when reachable) PostgreSQL."""

from __future__ import annotations

import os
import shutil
import uuid

import psycopg
import pytest
from litestar.testing import TestClient

from app import create_app
from app.db import engine_for, upgrade
from app.plans import cache
from app.settings import Settings, configure
from app.timeutil import freeze

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


@pytest.fixture(scope="session")
def templates(tmp_path_factory, worker_id):
    """Migrate once per test process; each test then gets a cheap copy."""
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
    yield out
    if PG_UP:
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
        name = f"sg_t_{uuid.uuid4().hex[:12]}"
        _pg(f"CREATE DATABASE {name} TEMPLATE {templates['postgresql']}")
        url = f"{PG_BASE}/{name}"
    settings = configure(Settings(data_dir=tmp_path / "data", database_url=url,
                                  inprocess_worker=False))
    cache._cache = None
    yield settings
    engine_for(url).dispose()
    engine_for.cache_clear()
    freeze(None)
    if backend == "postgresql":
        _pg(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


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
