"""The whole demo, evaluated, crawled as a visitor would: every page reachable from `/`
answers 200 within 2 s, and the server still answers /healthz at once afterwards (issue 18:
the demo's own model card never answered once its near-constant series were measured)."""

from __future__ import annotations

import re
import time
from collections import deque

import pytest

from app.checkpoints.demo import load_demo_family
from app.demo import load_demo
from app.evals.demo_family import build_demo_family
from tests.evals.test_demo_family import TINY
from tests.evals.workers import work

HTML = {"Accept": "text/html"}
# Not pages: files, live streams, exports and the policy examples' raw YAML.
SKIP = re.compile(r"^/(static/|api/|schema|log/)|/files/|/progress|/export|\.(ya?ml|md|atom|xml)$")


@pytest.fixture(scope="module")
def family(tmp_path_factory):
    """Trained once for both databases (it is the slow part)."""
    return build_demo_family(tmp_path_factory.mktemp("family"), progress=False,
                             recipe_overrides=TINY)


@pytest.fixture
def evaluated_demo(settings, family):
    for _ in load_demo(with_models=False):
        pass
    dirs = family
    for _ in load_demo_family(dirs):
        pass
    work(settings)  # every queued suite, the transfer matrix included
    return settings


def test_every_page_reachable_from_home_answers_within_2_s(client, evaluated_demo):
    seen, queue, slow = {"/"}, deque(["/"]), []
    while queue and len(seen) < 400:
        path = queue.popleft()
        t0 = time.perf_counter()
        r = client.get(path, headers=HTML)
        took = time.perf_counter() - t0
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
        if took > 2:
            slow.append((path, round(took, 2)))
        if "html" not in r.headers.get("content-type", ""):
            continue
        for href in re.findall(r'href="([^"#]+)', r.text):
            href = href.replace("&amp;", "&")
            if href.startswith("/") and not href.startswith("//") and not SKIP.search(href) \
                    and href not in seen:
                seen.add(href)
                queue.append(href)
    assert not slow, slow
    assert "/models/tinyscale/tiny-gpt2" in seen and len(seen) > 20
    t0 = time.perf_counter()
    assert client.get("/healthz").status_code == 200
    assert time.perf_counter() - t0 < 0.5
    assert_log_verifies(client)


def assert_log_verifies(client) -> None:
    """The evaluated demo's transparency log passes the monitor, as a visitor (openings
    of public events) and as a coordinator would run it (every opening)."""
    from app.client import Client
    from app.transparency.monitor import State, verify

    monitor = Client("http://testserver.local")
    monitor.http.close()
    monitor.http = client  # the same HTTP calls, through the test client
    verdict, state = verify(monitor, State())
    assert verdict.size > 100 and verdict.opened > 0 and verdict.sealed > 0, verdict.line()
    assert len(state.hashes) == verdict.size

    from app.auth.principal import SYSTEM
    from app.auth.service import create_token, create_user
    from app.db import session_scope

    with session_scope() as s:
        _, secret = create_token(s, SYSTEM, create_user(s, SYSTEM, "log-monitor",
                                                        coordinator=True))
    client.headers["Authorization"] = f"Bearer {secret}"
    try:
        again, _ = verify(monitor, state)
    finally:
        del client.headers["Authorization"]
    assert again.sealed == 0 and again.opened >= verdict.size, again.line()
