"""The anonymous submission limit: shared by server processes, keyed by the real client."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import pytest

from app import ratelimit
from app.db import ROOT
from app.incidents.api import ANON_PER_HOUR
from app.ratelimit import client_address
from app.settings import Settings
from tests.incidents.conftest import body


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def servers(settings, n: int, **env_extra):
    """n `stagegate serve` processes on one database, each on its own free port."""
    env = os.environ | {"STAGEGATE_DATA_DIR": str(settings.data_dir),
                        "STAGEGATE_DATABASE_URL": settings.database_url,
                        "STAGEGATE_INPROCESS_WORKER": "0", "PYTHONPATH": str(ROOT),
                        **env_extra}
    procs, urls = [], []
    try:
        for _ in range(n):
            port = _free_port()
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "app.cli", "serve", "--port", str(port)], cwd=ROOT,
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            urls.append(f"http://127.0.0.1:{port}")
        for url in urls:
            for _ in range(300):
                try:
                    if httpx.get(f"{url}/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)


def submit(url: str, headers: dict | None = None) -> httpx.Response:
    return httpx.post(f"{url}/api/v1/incidents", json=body(), headers=headers or {})


def test_two_server_processes_share_one_limit_and_ignore_forwarded_for(world, settings):
    with servers(settings, 2) as (one, two):
        codes = [submit(url).status_code for url in (one, two, one, two, one)]
        assert codes == [201] * ANON_PER_HOUR
        for url in (one, two):
            r = submit(url)
            assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
            assert r.headers["content-type"].startswith("application/problem+json")
        # No proxy is configured: a forged X-Forwarded-For is the same client still.
        for forged in ("203.0.113.50", "198.51.100.1, 203.0.113.51", "::1"):
            assert submit(one, {"X-Forwarded-For": forged}).status_code == 429
        # Signed-in callers are not limited by the anonymous quota.
        assert submit(two, world.a_member.headers).status_code == 201


def test_forwarded_for_is_believed_from_a_trusted_proxy_only(world, settings):
    with servers(settings, 1, STAGEGATE_TRUSTED_PROXIES="127.0.0.1/32") as (url,):
        victim, attacker = "203.0.113.8", "203.0.113.9"
        # The attacker behind the proxy names the victim; the proxy appends what it saw.
        for _ in range(ANON_PER_HOUR):
            assert submit(url, {"X-Forwarded-For": f"{victim}, {attacker}"}).status_code == 201
        assert submit(url, {"X-Forwarded-For": f"{victim}, {attacker}"}).status_code == 429
        assert submit(url, {"X-Forwarded-For": f"10.0.0.1, {attacker}"}).status_code == 429
        # The victim's own quota is untouched.
        assert submit(url, {"X-Forwarded-For": victim}).status_code == 201


@pytest.mark.parametrize("peer, header, trusted, expected", [
    ("198.51.100.7", "203.0.113.1", "", "198.51.100.7"),              # no proxy configured
    ("198.51.100.7", "203.0.113.1", "10.0.0.0/8", "198.51.100.7"),    # peer is no proxy
    ("10.0.0.2", "203.0.113.1", "10.0.0.0/8", "203.0.113.1"),
    ("10.0.0.2", "1.1.1.1, 203.0.113.1", "10.0.0.0/8", "203.0.113.1"),  # client's claim ignored
    ("10.0.0.2", "203.0.113.1, 10.0.0.3", "10.0.0.0/8", "203.0.113.1"),  # two proxies
    ("10.0.0.2", "garbage, 203.0.113.1", "10.0.0.0/8", "203.0.113.1"),
    ("10.0.0.2", "10.0.0.3", "10.0.0.0/8", "10.0.0.3"),
    ("10.0.0.2", "not-an-ip", "10.0.0.0/8", "10.0.0.2"),
    ("2001:db8:1:2:aaaa::1", None, "", "2001:db8:1:2::/64"),          # IPv6: the /64
    ("::ffff:198.51.100.7", None, "", "198.51.100.7"),
])
def test_client_address(peer, header, trusted, expected):
    networks = Settings(database_url="sqlite://", trusted_proxies=trusted).trusted_networks
    assert client_address(peer, header, networks) == expected


def test_a_bad_trusted_proxies_setting_fails_at_start():
    with pytest.raises(ValueError, match="STAGEGATE_TRUSTED_PROXIES"):
        Settings(database_url="sqlite://", trusted_proxies="10.0.0.0/8, nonsense")


def test_concurrent_takes_admit_exactly_the_limit(settings):
    with ThreadPoolExecutor(8) as pool:
        waits = list(pool.map(lambda _: ratelimit.take("k", 5, 3600), range(24)))
    assert sum(1 for w in waits if w == 0) == 5


def test_the_window_slides(settings):
    t = 1_000_000 * 3600.0
    assert [ratelimit.take("k", 5, 3600, now=t + i) for i in range(5)] == [0.0] * 5
    assert ratelimit.take("k", 5, 3600, now=t + 10) > 0
    # Half an hour into the next window the last hour still holds ~half of those hits.
    assert ratelimit.take("k", 5, 3600, now=t + 5400) == 0.0
    assert ratelimit.take("k", 5, 3600, now=t + 5401) == 0.0
    assert ratelimit.take("k", 5, 3600, now=t + 5402) > 0
    # Two windows on, it has all gone.
    assert ratelimit.take("k", 5, 3600, now=t + 3 * 3600) == 0.0
