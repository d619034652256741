"""Start-up leaves its long-lived objects out of the cyclic collector's full scans (the
pause that set the slowest 1 % of searches), once per process and without freezing
garbage."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import gc, time
from litestar.testing import TestClient
from app import create_app
from app.db import upgrade
upgrade()
assert gc.get_freeze_count() == 0
with TestClient(create_app()) as client:
    assert client.get("/healthz").status_code == 200
    frozen = gc.get_freeze_count()
    started = time.perf_counter()
    gc.collect()
    full = time.perf_counter() - started
with TestClient(create_app()) as client:
    client.get("/healthz")
print(frozen, gc.get_freeze_count(), full)
"""


def test_start_up_freezes_its_heap_once(tmp_path):
    env = {"STAGEGATE_DATABASE_URL": f"sqlite:///{tmp_path}/h.db",
           "STAGEGATE_DATA_DIR": str(tmp_path), "STAGEGATE_INPROCESS_WORKER": "0",
           "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                         text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    frozen, again, full = out.stdout.split()
    assert int(frozen) > 50_000          # modules, routes, templates: out of the scans
    assert int(again) <= int(frozen)     # a second app in the process freezes nothing more
    assert float(full) < 0.05            # a full collection no longer walks them
