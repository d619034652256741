"""Public pages under load next to /healthz, same server, same run: the model card (the demo
shape: four hosted checkpoints, three suites each, a transfer matrix), home, and an incident
search page.

The server is tests/web/server.py (seeded demo-like data, no worker). With `wrk` installed
(apt-get install -y wrk) it generates the load; otherwise a Python loop of keep-alive
clients does. Usage: .venv/bin/python bench/pages.py [--seconds 5] [--connections 4]
Prints requests/s and p50/p99 per page and each page's p50 as a multiple of /healthz's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PAGES = {"healthz": "/healthz", "card": "/models/tinyscale/tiny-gpt2", "home": "/",
         "incident search": "/incidents?q=detector"}


def python_load(url: str, seconds: float, connections: int) -> dict:
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def client() -> None:
        mine = []
        with httpx.Client(timeout=30) as http:
            while time.perf_counter() < stop:
                t = time.perf_counter()
                r = http.get(url)
                mine.append((time.perf_counter() - t) * 1000)
                if r.status_code != 200:
                    errors[0] += 1
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    latencies.sort()
    return {"rps": len(latencies) / seconds, "p50": statistics.median(latencies),
            "p99": latencies[int(len(latencies) * 0.99) - 1], "errors": errors[0]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="sg-bench-pages-"))
    env = os.environ | {"PYTHONPATH": str(ROOT), "STAGEGATE_TEST_WORKER": "0",
                        "TQDM_DISABLE": "1"}
    server = subprocess.Popen([sys.executable, "-m", "tests.web.server", str(data)], cwd=ROOT,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True)
    try:
        base = f"http://127.0.0.1:{json.loads(server.stdout.readline())['port']}"
        for _ in range(600):  # the port is bound before uvicorn starts listening
            try:
                httpx.get(base + "/healthz", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        for path in PAGES.values():  # warm up: imports, template compilation, chart cache
            for _ in range(3):
                assert httpx.get(base + path, timeout=30).status_code == 200, path
        use_wrk = shutil.which("wrk") is not None
        if use_wrk:
            from bench.api import wrk
        results = {}
        for name, path in PAGES.items():
            results[name] = (wrk(base + path, int(args.seconds), args.connections) if use_wrk
                             else python_load(base + path, args.seconds, args.connections))
        base_p50 = results["healthz"]["p50"]
        print(f"load: {'wrk' if use_wrk else 'python loop'}, {args.connections} connections, "
              f"{args.seconds:g} s per page, one server process")
        print(f"{'page':<16} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'p50 / healthz':>14}")
        for name, r in results.items():
            print(f"{name:<16} {r['rps']:>8.0f} {r['p50']:>8.2f} {r['p99']:>8.2f} "
                  f"{r['p50'] / base_p50:>13.1f}x" + (f"  errors {r['errors']}"
                                                        if r["errors"] else ""))
    finally:
        server.terminate()
        server.wait(10)
    try:
        render_times(data)
    finally:
        shutil.rmtree(data, ignore_errors=True)


def render_times(data: Path, n: int = 30) -> None:
    """Server-side cost of the card without the page cache (what a signed-in reader pays):
    the services and the template, in this process, on the same database."""
    from app.auth.principal import ANONYMOUS
    from app.db import session_scope
    from app.settings import Settings, configure
    from app.web.pages import ENV
    from app.web.public import card_context

    configure(Settings(data_dir=data, inprocess_worker=False))

    def once() -> None:
        with session_scope(write=False) as session:
            ctx = card_context(session, ANONYMOUS, "tinyscale", "tiny-gpt2")
        ENV.get_template("card.html").render(**ctx)

    for _ in range(3):
        once()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        once()
        times.append((time.perf_counter() - t) * 1000)
    print(f"card rendered without the page cache (server side, in process): "
          f"p50 {statistics.median(times):.1f} ms, max {max(times):.1f} ms over {n}")


if __name__ == "__main__":
    main()
