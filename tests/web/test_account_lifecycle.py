"""Accounts that do not end, and the web sign-in's other edges: deactivation ends every
session and token at once, sign-in hashes outside any write transaction, throttling slows
one address instead of locking the account, CSRF tokens are bound to their session,
sign-out deletes the cookie, cross-site writes are refused (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
import time

import pytest
from litestar.testing import TestClient
from sqlalchemy import event
from sqlmodel import select

from app.auth import passwords
from app.auth.passwords import PER_ACCOUNT, set_password
from app.auth.principal import SYSTEM
from app.auth.service import create_user, get_user
from app.auth.tables import WebSession
from app.db import get_engine, session_scope
from app.incidents.schemas import IncidentCreate
from app.incidents.service import submit_incident
from app.incidents.tables import Incident
from app.plans.tables import ReleasePlan
from app.web.auth import safe_next
from tests.web.test_console_auth import (  # noqa: F401
    HTML,
    PASSWORD,
    log_in,
    people,
    set_cookies,
    token_of,
)


def _sessions() -> int:
    with session_scope(write=False) as s:
        return len(s.exec(select(WebSession)).all())


def test_deactivation_ends_web_sessions_tokens_and_sign_in(app, client, people):  # noqa: F811
    world = people
    with session_scope() as s:
        create_user(s, SYSTEM, "coord2", coordinator=True)
        set_password(s, SYSTEM, get_user(s, "coord2"), f"{PASSWORD} coord2")
        incident = submit_incident(s, SYSTEM, IncidentCreate(
            title="Leaked weights", occurred="2026-01-01", harm_types=["disinformation"],
            severity="low"))
    with session_scope(write=False) as s:
        plans_before = len(s.exec(select(ReleasePlan)).all())
    assert log_in(client, "a_member").status_code == 303
    new_plan = client.get("/lab/plans/new", headers=HTML)
    with TestClient(app) as console:
        assert log_in(console, "coord2").status_code == 303
        page = console.get(f"/console/incidents/{incident.id}", headers=HTML)
        assert page.status_code == 200
        assert _sessions() == 2
        for name in ("a_member", "coord2"):
            r = client.delete(f"/api/v1/users/{name}", headers=world.coord.headers)
            assert r.status_code == 200
        # Every session row of theirs is gone at once, and the cookies act as nobody.
        assert _sessions() == 0
        r = console.post(f"/console/incidents/{incident.id}/transition",
                         data={"to": "rejected", "version": "1", "reason": "spam",
                               "_csrf_token": token_of(page.text)},
                         headers=HTML, follow_redirects=False)
        assert r.status_code in (303, 401, 403)
        assert r.headers.get("location", "/console/login").startswith("/console/login")
        assert log_in(console, "coord2").status_code == 400
    r = client.post("/lab/plans/new", data={"model": "lab-a/m", "title": "T", "rows": "1",
                                            "file": "1", "_csrf_token": token_of(new_plan.text)},
                    headers=HTML, follow_redirects=False)
    assert r.status_code in (303, 401, 403)
    assert r.headers.get("location", "/console/login").startswith("/console/login")
    assert client.get("/lab/", headers=HTML, follow_redirects=False).status_code == 303
    assert log_in(client, "a_member").status_code == 400
    assert client.get("/api/v1/me", headers=world.a_member.headers).status_code == 401
    with session_scope(write=False) as s:
        assert s.get(Incident, incident.id).status == "submitted"
        assert len(s.exec(select(ReleasePlan)).all()) == plans_before
    # A deactivated session that was still loaded (a race) also acts as nobody.
    assert client.get("/console/", headers=HTML, follow_redirects=False).status_code == 303


def test_reactivation_needs_a_fresh_sign_in_and_fresh_tokens(client, people):  # noqa: F811
    world = people
    assert client.delete("/api/v1/users/b_member", headers=world.coord.headers).status_code == 200
    r = client.post("/api/v1/users/b_member/reactivate", headers=world.a_admin.headers)
    assert r.status_code == 403
    r = client.post("/api/v1/users/b_member/reactivate", headers=world.coord.headers)
    assert r.status_code == 200 and r.json()["name"] == "b_member"
    # Old tokens stay revoked; the password signs in again.
    assert client.get("/api/v1/me", headers=world.b_member.headers).status_code == 401
    assert log_in(client, "b_member").status_code == 303


def test_sign_in_hashes_outside_the_write_transaction(app, client, people, monkeypatch):  # noqa: F811
    real = passwords._verify
    verifying = threading.Event()

    def slow(encoded, password):
        verifying.set()
        time.sleep(3.0)
        return real(encoded, password)

    monkeypatch.setattr(passwords, "_verify", slow)
    results = {}

    def sign_in():
        with TestClient(app) as other:
            results["login"] = log_in(other, "coord").status_code

    thread = threading.Thread(target=sign_in)
    thread.start()
    assert verifying.wait(30)
    started = time.monotonic()
    r = client.post("/api/v1/tokens", json={"label": "during sign-in"},
                    headers=people.coord.headers)
    took = time.monotonic() - started
    thread.join(30)
    assert r.status_code == 201, r.text
    # Inside the transaction the write would wait the whole 3 s; 1.5 s leaves room for a
    # loaded 2-core CI machine (a write once took 1.47 s there with a 1 s hash).
    assert took < 1.5, f"an API write waited {took:.2f} s behind a sign-in"
    assert results["login"] == 303


def test_failures_slow_one_address_and_never_lock_the_account(client, people, monkeypatch):  # noqa: F811
    monkeypatch.setattr("app.web.auth.client_address",
                        lambda request: request.headers.get("x-test-peer", "192.0.2.1"))
    for _ in range(PER_ACCOUNT):
        assert log_in(client, "coord", "wrong guess, wrong guess").status_code == 400
    r = log_in(client, "coord")  # this address now waits, even with the right password
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    with TestClient(client.app) as colleague:
        colleague.headers["x-test-peer"] = "198.51.100.7"
        assert log_in(colleague, "coord").status_code == 303
    # And the slowed address may still sign in to other accounts.
    assert log_in(client, "a_member").status_code == 303


def test_csrf_token_is_bound_to_its_session(app, client, people):  # noqa: F811
    assert log_in(client, "coord").status_code == 303
    page = client.get("/console/", headers=HTML)
    token, csrf_cookie = token_of(page.text), client.cookies.get("sg_csrf")
    with TestClient(app) as other:
        assert log_in(other, "coord").status_code == 303
        other.get("/console/", headers=HTML)
        # The other session's cookie, with this session's token and CSRF cookie: refused.
        other.cookies.set("sg_csrf", csrf_cookie, domain="testserver.local")
        r = other.post("/console/logout", data={"_csrf_token": token}, headers=HTML,
                       follow_redirects=False)
        assert r.status_code == 403
    # The token still works in its own session.
    r = client.post("/console/logout", data={"_csrf_token": token}, headers=HTML,
                    follow_redirects=False)
    assert r.status_code == 303


def test_sign_out_deletes_the_cookie_and_stale_cookies_write_nothing(client, people):  # noqa: F811
    assert log_in(client, "coord").status_code == 303
    page = client.get("/console/", headers=HTML)
    out = client.post("/console/logout", data={"_csrf_token": token_of(page.text)},
                      headers=HTML, follow_redirects=False)
    cookie = set_cookies(out)["sg_session"]
    assert "max-age=0" in cookie.lower() and "null" not in cookie
    writes = []

    def count(conn, cursor, statement, *args):
        if statement.lstrip().split(" ", 1)[0].upper() in ("INSERT", "UPDATE", "DELETE"):
            writes.append(statement)

    engine = get_engine()
    event.listen(engine, "before_cursor_execute", count)
    try:
        for stale in ("null", "garbage" * 10, "a" * 64):
            for path in ("/console/login", "/console/", "/incidents"):
                r = client.get(path, headers=HTML, cookies={"sg_session": stale},
                               follow_redirects=False)
                assert r.status_code in (200, 303), path
                assert "max-age=0" in set_cookies(r)["sg_session"].lower()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert writes == []


def test_signed_in_pages_are_not_stored(client, people):  # noqa: F811
    log_in(client, "coord")
    assert "no-store" in client.get("/console/", headers=HTML).headers["cache-control"]
    log_in(client, "a_member")
    assert "no-store" in client.get("/lab/", headers=HTML).headers["cache-control"]


def test_cross_site_form_posts_are_refused(client, people):  # noqa: F811
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"},
                    {"Origin": "null"}):
        form = client.get("/console/login", headers=HTML)
        r = client.post("/console/login", data={
            "username": "coord", "password": f"{PASSWORD} coord", "next": "",
            "_csrf_token": token_of(form.text)}, headers={**HTML, **headers},
            follow_redirects=False)
        assert r.status_code == 403, headers
        assert "sg_session" not in set_cookies(r)
    form = client.get("/console/login", headers=HTML)
    r = client.post("/console/login", data={
        "username": "coord", "password": f"{PASSWORD} coord", "next": "",
        "_csrf_token": token_of(form.text)},
        headers={**HTML, "Origin": "http://testserver.local", "Sec-Fetch-Site": "same-origin"},
        follow_redirects=False)
    assert r.status_code == 303


@pytest.mark.parametrize("value", ["//evil.example", "/\t/evil.example", "/\n/evil.example",
                                   "/\\evil.example", "/x\\y", "https://evil.example",
                                   "/ok\x00", "/\x7f/evil.example", "", None])
def test_safe_next_refuses_anything_but_a_plain_path(value):
    assert safe_next(value, "/console/") == "/console/"


def test_safe_next_keeps_plain_paths():
    assert safe_next("/console/moderation?cursor=a%2Fb", "/") == "/console/moderation?cursor=a%2Fb"


def test_done_shows_only_known_message_codes(client, people):  # noqa: F811
    with session_scope() as s:
        incident = submit_incident(s, SYSTEM, IncidentCreate(
            title="Leaked weights", occurred="2026-01-01", harm_types=["disinformation"],
            severity="low"))
    log_in(client, "coord")
    page = client.get(f"/console/incidents/{incident.id}", headers=HTML)
    r = client.post(f"/console/incidents/{incident.id}/transition",
                    data={"to": "triaged", "version": "1", "_csrf_token": token_of(page.text)},
                    headers=HTML, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("?done=moved-triaged")
    assert "Moved to triaged." in client.get(r.headers["location"], headers=HTML).text
    forged = "Your account is locked, call +1 555 0100"
    for path in (f"/console/incidents/{incident.id}", "/console/moderation"):
        text = client.get(path, params={"done": forged}, headers=HTML).text
        assert "555 0100" not in text and 'class="notice"' not in text


def test_report_form_429_says_when_to_come_back(client, people, monkeypatch):  # noqa: F811
    monkeypatch.setattr("app.web.public_incidents.anonymous_wait", lambda request: 125.0)
    form = client.get("/incidents/report", headers=HTML)
    r = client.post("/incidents/report", data={
        "title": "Chatbot wrote phishing mails", "summary": "Seen.", "occurred": "2026-02-01",
        "severity": "high", "harm_types": "phishing", "_csrf_token": token_of(form.text)},
        headers=HTML, follow_redirects=False)
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 125


def test_deactivation_ends_a_live_progress_stream(live_server, world):
    """A signed-in stream checks the account at every poll: deactivated, it ends."""
    import time

    import httpx

    with httpx.Client(base_url=live_server, timeout=10) as http, \
            http.stream("GET", "/models/lab-a/m/progress",
                        headers=world.a_member.headers) as stream:
        lines = stream.iter_lines()
        assert next(line for line in lines if line.startswith("data:"))
        r = httpx.delete(f"{live_server}/api/v1/users/a_member",
                         headers=world.coord.headers, timeout=10)
        assert r.status_code in (200, 204), r.text
        t0 = time.monotonic()
        for _ in lines:  # drains until the server closes the stream
            assert time.monotonic() - t0 < 5
    assert time.monotonic() - t0 < 5
