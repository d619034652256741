"""GET /api/v1/plans/{id} (anonymous, a filed four-stage plan) against a trivial endpoint.

Both run on one server process in the same run; wrk generates the load on loopback.
Usage: .venv/bin/python bench/api.py [--seconds 10] [--connections 32]
Needs `wrk` (Debian package). Prints requests/s, p50/p99 and the ratio plan/trivial.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wrk(url: str, seconds: int, connections: int) -> dict:
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)

    def pct(p: str) -> float:
        value, unit = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return {"rps": rps, "p50": pct("50"), "p99": pct("99"),
            "errors": int(non2xx.group(1)) if non2xx else 0}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--database-url", default="", help="default: a fresh SQLite file")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk not found: apt-get install -y wrk")
    data = Path(tempfile.mkdtemp(prefix="sg-bench-"))
    env = os.environ | {"STAGEGATE_DATA_DIR": str(data), "STAGEGATE_INPROCESS_WORKER": "0"}
    if args.database_url:
        env["STAGEGATE_DATABASE_URL"] = args.database_url
    cli = [sys.executable, "-m", "app.cli"]
    subprocess.run([*cli, "demo", "--no-models"], env=env, cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    port = free_port()
    server = subprocess.Popen([*cli, "serve", "--port", str(port)], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(f"{base}/healthz")
                break
            except httpx.TransportError:
                time.sleep(0.1)
        plan = httpx.get(f"{base}/api/v1/plans").json()["items"][0]
        assert len(plan["stages"]) == 4 and plan["status"] != "draft"
        url = f"{base}/api/v1/plans/{plan['id']}"
        wrk(url, 2, args.connections)  # warm-up
        trivial = wrk(f"{base}/healthz", args.seconds, args.connections)
        planned = wrk(url, args.seconds, args.connections)
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(data, ignore_errors=True)
    print(f"{'endpoint':<28}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'non-2xx':>9}")
    for name, r in (("GET /healthz (trivial)", trivial), ("GET /api/v1/plans/{id}", planned)):
        print(f"{name:<28}{r['rps']:>10.0f}{r['p50']:>10.2f}{r['p99']:>10.2f}{r['errors']:>9}")
    print(f"ratio plan/trivial: {planned['rps'] / trivial['rps']:.1%} (goal >= 50%)")


if __name__ == "__main__":
    main()
