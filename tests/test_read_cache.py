"""The read cache (app/readcache.py): hits skip the database, and every write or clock flip
that changes an answer changes the next read, in this app, in a second app on the same
database and in a second server process (both databases)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from litestar.testing import TestClient

from app import create_app
from app.db import get_engine
from app.timeutil import freeze
from tests.evals.test_results_api import LM_EVAL
from tests.queries import count_queries

ROOT = Path(__file__).resolve().parent.parent
EMBARGO = datetime(2031, 3, 1, 12, 0, tzinfo=UTC)


def anon(client, path):
    r = client.get(path)
    return r.status_code, r.text


def test_a_repeated_anonymous_read_does_not_touch_the_database(client, world):
    plan = world.plan(filed=True)
    paths = ["/api/v1/models", f"/api/v1/models/{world.model_a}/card",
             f"/api/v1/models/{world.model_a}/card.md", f"/api/v1/plans/{plan}",
             "/api/v1/events", "/api/v1/evals/results", "/api/v1/incidents/search?q=x"]
    first = {p: anon(client, p) for p in paths}
    with count_queries() as seen:
        again = {p: anon(client, p) for p in paths}
    assert again == first and all(status == 200 for status, _ in first.values())
    assert seen == []
    # Per-request headers are not replayed from the cache.
    ids = {client.get("/api/v1/models").headers["x-request-id"] for _ in range(2)}
    assert len(ids) == 2
    # Signed-in callers are never served from it: their answer may differ.
    with count_queries() as seen:
        assert client.get("/api/v1/models", headers=world.a_member.headers).status_code == 200
    assert seen


def test_writes_change_the_next_read(client, world):
    plan = world.plan(filed=True)
    card = f"/api/v1/models/{world.model_a}/card"
    paths = [card, card + ".md", "/api/v1/evals/results", "/api/v1/models",
             f"/api/v1/models/{world.model_a}", f"/api/v1/plans/{plan}", "/api/v1/plans",
             "/api/v1/events"]
    before = {p: anon(client, p) for p in paths}
    # A new result shows on the card, card.md and the results page at once.
    r = client.post(f"/api/v1/models/{world.model_a}/reported-results",
                    json={"format": "lm-eval-harness", "content": LM_EVAL},
                    headers=world.a_member.headers)
    assert r.status_code == 201, r.text
    assert "hellaswag" in anon(client, card)[1] and "hellaswag" not in before[card][1]
    assert "hellaswag" in anon(client, card + ".md")[1]
    assert "hellaswag" in anon(client, "/api/v1/evals/results")[1]
    # A plan revision shows on the plan at once.
    version = client.get(f"/api/v1/plans/{plan}").json()["version"]
    r = client.patch(f"/api/v1/plans/{plan}", headers=world.a_member.headers,
                     json={"title": "Revised staged release", "version": version})
    assert r.status_code == 200, r.text
    assert "Revised staged release" in anon(client, f"/api/v1/plans/{plan}")[1]
    assert "Revised staged release" in anon(client, "/api/v1/plans")[1]
    # A model made private disappears everywhere at once, plan and card included.
    version = client.get(f"/api/v1/models/{world.model_a}").json()["version"]
    r = client.patch(f"/api/v1/models/{world.model_a}", headers=world.a_member.headers,
                     json={"public": False, "version": version})
    assert r.status_code == 200, r.text
    for path in (card, card + ".md", f"/api/v1/models/{world.model_a}", f"/api/v1/plans/{plan}"):
        assert anon(client, path)[0] == 404, path
    assert "Model A" not in anon(client, "/api/v1/models")[1]
    assert "hellaswag" not in anon(client, "/api/v1/evals/results")[1]
    assert anon(client, "/api/v1/plans")[1] == client.get("/api/v1/plans?limit=50").text


def _embargoed_incident(client, world) -> int:
    r = client.post("/api/v1/incidents", headers=world.a_member.headers, json={
        "title": "Quokka leak", "summary": "secret quokka details", "occurred": "2029-05-01",
        "harm_types": ["privacy"], "severity": "critical", "labs": ["lab-a"],
        "reports": [{"text": "the quokka dossier"}]})
    assert r.status_code == 201, r.text
    incident = r.json()
    url = f"/api/v1/incidents/{incident['id']}"
    r = client.post(f"{url}/embargo", headers=world.coord.headers,
                    json={"embargo_until": EMBARGO.isoformat(), "version": incident["version"]})
    assert r.status_code == 200, r.text
    version = r.json()["version"]
    for step in ("triaged", "confirmed"):
        r = client.post(f"{url}/transitions", json={"to": step, "version": version},
                        headers=world.coord.headers)
        assert r.status_code == 200, r.text
        version = r.json()["version"]
    return incident["id"]


def test_an_embargo_lifting_with_the_clock_changes_the_next_read(client, world):
    freeze(EMBARGO - timedelta(days=2))
    incident = _embargoed_incident(client, world)
    paths = [f"/api/v1/incidents/{incident}", "/api/v1/incidents/search?q=quokka",
             "/api/v1/incidents", "/api/v1/incidents/export"]
    freeze(EMBARGO - timedelta(seconds=1))
    hidden = {p: anon(client, p) for p in paths}
    assert hidden == {p: anon(client, p) for p in paths}  # cached, still hidden
    assert hidden[paths[0]][0] == 404 and all("quokka" not in t.lower()
                                             for _, t in hidden.values())
    freeze(EMBARGO)  # no write at all: only the clock moved
    shown = {p: anon(client, p) for p in paths}
    assert shown[paths[0]][0] == 200
    assert all("quokka" in t.lower() for _, t in shown.values())


def test_a_second_app_on_the_same_database_sees_the_first_ones_writes(settings, world):
    other = create_app(settings)
    with TestClient(create_app(settings)) as one, TestClient(other) as two:
        card = f"/api/v1/models/{world.model_a}/card"
        assert "hellaswag" not in anon(one, card)[1]
        assert anon(one, card) == anon(one, card)
        r = two.post(f"/api/v1/models/{world.model_a}/reported-results",
                     json={"format": "lm-eval-harness", "content": LM_EVAL},
                     headers=world.a_member.headers)
        assert r.status_code == 201, r.text
        assert "hellaswag" in anon(one, card)[1]
        version = two.get(f"/api/v1/models/{world.model_a}").json()["version"]
        two.patch(f"/api/v1/models/{world.model_a}", headers=world.a_member.headers,
                  json={"public": False, "version": version})
        assert anon(one, card)[0] == 404


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_second_server_process_sees_writes_at_once(client, settings, world):
    port = _free_port()
    env = os.environ | {"PYTHONPATH": str(ROOT), "STAGEGATE_DATABASE_URL": settings.database_url,
                        "STAGEGATE_DATA_DIR": str(settings.data_dir),
                        "STAGEGATE_INPROCESS_WORKER": "0"}
    server = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
                              env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                httpx.get(f"{base}/healthz")
                break
            except httpx.TransportError:
                time.sleep(0.1)
        card = f"{base}/api/v1/models/{world.model_a}/card"
        first = httpx.get(card).text
        assert httpx.get(card).text == first and "hellaswag" not in first
        r = client.post(f"/api/v1/models/{world.model_a}/reported-results",
                        json={"format": "lm-eval-harness", "content": LM_EVAL},
                        headers=world.a_member.headers)
        assert r.status_code == 201, r.text
        assert "hellaswag" in httpx.get(card).text
        version = client.get(f"/api/v1/models/{world.model_a}").json()["version"]
        client.patch(f"/api/v1/models/{world.model_a}", headers=world.a_member.headers,
                     json={"public": False, "version": version})
        assert httpx.get(card).status_code == 404
    finally:
        server.terminate()
        server.wait(10)


def test_every_table_moves_the_postgresql_change_counter(settings, backend):
    if backend != "postgresql":
        pytest.skip("SQLite uses PRAGMA data_version, which covers every table")
    from app.readcache import untracked_pg_tables

    with get_engine().connect() as conn:
        assert untracked_pg_tables(conn) == []


def test_gzip_variant_is_the_same_answer_and_changes_with_writes(client, world):
    """Clients that accept gzip get the cached answer compressed, byte-identical once
    decoded, with Vary and a weak ETag; a write changes the compressed read too."""
    import gzip as gz

    raw = {"Accept-Encoding": "identity"}
    zip_ = {"Accept-Encoding": "br;q=0.5, gzip"}
    model = f"/api/v1/models/{world.model_a}"
    r = client.post(f"{model}/reported-results",
                    json={"format": "lm-eval-harness", "content": LM_EVAL},
                    headers=world.a_member.headers)
    assert r.status_code == 201, r.text
    zipped = set()
    for path in ("/api/v1/models", f"{model}/card", f"{model}/card.md", model):
        plain = client.get(path, headers=raw)
        assert plain.status_code == 200 and "content-encoding" not in plain.headers
        assert "accept-encoding" in plain.headers["vary"].lower()  # even on the miss
        hit = client.get(path, headers=zip_)
        assert hit.content == plain.content  # httpx decodes gzip
        assert "accept-encoding" in hit.headers["vary"].lower()
        if len(plain.content) < 1024:
            assert "content-encoding" not in hit.headers
            continue
        zipped.add(path)
        assert hit.headers["content-encoding"] == "gzip", path
        assert int(hit.headers["content-length"]) < len(plain.content)
        if "etag" in plain.headers:
            assert hit.headers["etag"] == "W/" + plain.headers["etag"].removeprefix("W/")
            again = client.get(path, headers={"If-None-Match": hit.headers["etag"]})
            assert again.status_code == 304
        refused = client.get(path, headers={"Accept-Encoding": "gzip;q=0"})
        assert "content-encoding" not in refused.headers  # q=0 refuses gzip
    assert f"{model}/card" in zipped

    def wire(path):  # the bytes as sent, before httpx decodes them
        with client.stream("GET", path, headers=zip_) as r:
            return r.headers.get("content-encoding"), b"".join(r.iter_raw())

    encoding, packed = wire(f"{model}/card")
    assert encoding == "gzip"
    assert gz.decompress(packed) == client.get(f"{model}/card", headers=raw).content
    r = client.patch(model, json={"version": client.get(model).json()["version"],
                                  "name": "Renamed for the gzip test"},
                     headers=world.a_member.headers)
    assert r.status_code == 200, r.text
    first = client.get(f"{model}/card", headers=zip_)  # the miss is computed, sent as is
    assert b"Renamed for the gzip test" in first.content
    encoding, after = wire(f"{model}/card")
    assert encoding == "gzip" and b"Renamed for the gzip test" in gz.decompress(after)


def test_one_app_served_by_two_event_loops_never_waits_on_the_others_computation(
        client, world, live_server, monkeypatch):
    """A read waits for an identical read in flight only on its own event loop: an anyio
    Event does not wake another loop's waiter (a test client beside a live server hung)."""
    import threading

    import app.readcache as readcache

    compress = readcache.with_gzip

    def slow_gzip(answer):  # keeps the live server's computation in flight a while
        time.sleep(1.5)
        return compress(answer)

    monkeypatch.setattr(readcache, "with_gzip", slow_gzip)
    path = f"/api/v1/models/{world.model_a}/card.md"
    other = threading.Thread(target=lambda: httpx.get(live_server + path, timeout=30))
    other.start()
    time.sleep(0.5)  # the live server has answered and is compressing
    got = []
    mine = threading.Thread(target=lambda: got.append(client.get(path).status_code),
                            daemon=True)
    mine.start()
    mine.join(10)
    assert got == [200], "the read waited on the other event loop's computation"
    other.join(30)
