"""Signing in to the console over plain HTTP: passwords, sessions, cookies, CSRF,
throttling, logout, and who may open what (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from litestar.testing import TestClient
from sqlmodel import select

from app import create_app
from app.auth.passwords import PER_ACCOUNT, PER_CLIENT, set_password
from app.auth.principal import SYSTEM
from app.auth.service import get_user
from app.auth.tables import WebSession
from app.db import session_scope
from app.incidents.schemas import IncidentCreate
from app.incidents.service import submit_incident
from app.settings import Settings, configure
from app.timeutil import freeze, utcnow

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery staple"
HTML = {"Accept": "text/html"}


@pytest.fixture
def people(world):
    with session_scope() as s:
        for name in ("coord", "a_member", "b_member"):
            set_password(s, SYSTEM, get_user(s, name), f"{PASSWORD} {name}")
    return world


def token_of(html: str) -> str:
    match = re.search(r'name="_csrf_token" value="([^"]+)"', html)
    assert match, "the page has no CSRF field"
    return match.group(1)


def log_in(client, name: str, password: str | None = None, next_: str = ""):
    form = client.get("/console/login", headers=HTML)
    assert form.status_code == 200
    return client.post("/console/login", data={
        "username": name, "password": password or f"{PASSWORD} {name}", "next": next_,
        "_csrf_token": token_of(form.text)}, headers=HTML, follow_redirects=False)


def set_cookies(response) -> dict[str, str]:
    return {h.split("=", 1)[0]: h for h in response.headers.get_list("set-cookie")}


def test_coordinator_signs_in_with_safe_cookies_and_signs_out(client, people):
    r = log_in(client, "coord")
    assert r.status_code == 303 and r.headers["location"] == "/console/"
    cookie = set_cookies(r)["sg_session"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie
    csrf_cookie = set_cookies(client.get("/console/login", headers=HTML,
                                         cookies={"sg_csrf": ""}))
    assert all("HttpOnly" in c for c in csrf_cookie.values())
    stolen = client.cookies.get("sg_session")

    page = client.get("/console/", headers=HTML)
    assert page.status_code == 200 and "Signed in as <strong>coord</strong>" in page.text

    out = client.post("/console/logout", data={"_csrf_token": token_of(page.text)},
                      headers=HTML, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"].startswith("/console/login")
    after = client.get("/console/", headers=HTML, follow_redirects=False)
    assert after.status_code == 303 and after.headers["location"].startswith("/console/login")
    # The old session id is dead everywhere, not only forgotten by this browser.
    replay = client.get("/console/", headers=HTML, cookies={"sg_session": stolen},
                        follow_redirects=False)
    assert replay.status_code == 303
    with session_scope(write=False) as s:
        assert s.exec(select(WebSession)).all() == []


def test_cookies_are_secure_behind_tls(settings, people):
    configure(Settings(data_dir=settings.data_dir, database_url=settings.database_url,
                       inprocess_worker=False, secure_cookies=True))
    with TestClient(create_app(), base_url="https://testserver.local") as client:
        r = log_in(client, "coord")
        assert r.status_code == 303
        assert "Secure" in set_cookies(r)["sg_session"]
        fresh = client.get("/console/login", cookies={"sg_csrf": ""})
        assert all("Secure" in c for c in set_cookies(fresh).values())


def test_wrong_password_keeps_the_username_and_signs_nobody_in(client, people):
    r = log_in(client, "coord", "not the password at all")
    assert r.status_code == 400
    assert "Wrong username or password" in r.text and 'value="coord"' in r.text
    assert "sg_session" not in set_cookies(r)
    assert client.get("/console/", headers=HTML, follow_redirects=False).status_code == 303


def test_anonymous_pages_create_no_session(client, people):
    r = client.get("/console/login", headers=HTML)
    assert "sg_session" not in set_cookies(r)
    with session_scope(write=False) as s:
        assert s.exec(select(WebSession)).all() == []


def test_sign_in_returns_to_the_page_asked_for_and_never_off_site(client, people):
    r = client.get("/console/moderation", headers=HTML, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/console/login?next=/console/moderation"
    assert log_in(client, "coord", next_="/console/moderation").headers["location"] == \
        "/console/moderation"
    other = TestClient(client.app)
    with other:
        assert log_in(other, "coord", next_="//evil.example/x").headers["location"] == \
            "/console/"


def test_session_id_planted_before_sign_in_is_replaced(client, people):
    planted = "a" * 64
    client.cookies.set("sg_session", planted, domain="testserver.local")
    r = log_in(client, "coord")
    assert r.status_code == 303
    assert client.cookies.get("sg_session") not in (None, planted)
    assert client.get("/console/", headers=HTML,
                      cookies={"sg_session": planted}, follow_redirects=False).status_code == 303


def test_lab_member_lands_on_lab_forms_and_cannot_open_the_console(client, people):
    r = log_in(client, "a_member")
    assert r.status_code == 303 and r.headers["location"] == "/lab/"
    assert client.get("/lab/", headers=HTML).status_code == 200
    for path in ("/console/", "/console/moderation", "/console/incidents/1"):
        page = client.get(path, headers=HTML)
        assert page.status_code == 403, path
        assert "coordinator" in page.text


def test_a_session_cookie_never_authenticates_the_api(client, people):
    log_in(client, "coord")
    assert client.get("/console/", headers=HTML).status_code == 200
    assert client.get("/api/v1/me").status_code == 401
    # Nor does the API (or a health check) hand out session or CSRF cookies.
    for path in ("/api/v1/labs", "/healthz"):
        assert "set-cookie" not in client.get(path, cookies={"sg_csrf": ""}).headers, path


def test_forms_without_csrf_token_are_refused(client, people):
    with session_scope() as s:
        incident = submit_incident(s, SYSTEM, IncidentCreate(
            title="Leaked weights", occurred="2026-01-01", harm_types=["disinformation"],
            severity="low"))
    # Signing in itself needs the token (no login CSRF).
    client.get("/console/login", headers=HTML)
    r = client.post("/console/login", data={"username": "coord",
                                            "password": f"{PASSWORD} coord"})
    assert r.status_code == 403 and "sg_session" not in set_cookies(r)

    log_in(client, "coord")
    r = client.post(f"/console/incidents/{incident.id}/transition",
                    data={"to": "triaged", "version": "1"}, headers=HTML)
    assert r.status_code == 403
    r = client.post(f"/console/incidents/{incident.id}/transition",
                    data={"to": "triaged", "version": "1", "_csrf_token": "x" * 80})
    assert r.status_code == 403
    page = client.get(f"/console/incidents/{incident.id}", headers=HTML)
    assert "<span class=\"badge\">submitted</span>" in page.text


def test_login_throttling_per_account_survives_restarts_and_expires(settings, client, people):
    for _ in range(PER_ACCOUNT):
        assert log_in(client, "coord", "wrong guess, wrong guess").status_code == 400
    # The right password no longer helps, and a fresh app (a restart, another process)
    # agrees: the failures are rows in the database.
    with TestClient(create_app(settings)) as restarted:
        r = log_in(restarted, "coord")
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
        assert "Too many failed sign-ins" in r.text and "sg_session" not in set_cookies(r)
        # Another account is not locked by it.
        assert log_in(restarted, "a_member").status_code == 303
    freeze(utcnow() + timedelta(minutes=16))
    assert log_in(client, "coord").status_code == 303


def test_login_throttling_per_client(client, people):
    for n in range(PER_CLIENT):
        assert log_in(client, f"nobody{n}", "guess guess guess").status_code == 400
    assert log_in(client, "b_member").status_code == 429


def test_new_password_ends_old_sessions(client, people):
    log_in(client, "coord")
    assert client.get("/console/", headers=HTML).status_code == 200
    with session_scope() as s:
        set_password(s, SYSTEM, get_user(s, "coord"), "a brand new passphrase")
    assert client.get("/console/", headers=HTML, follow_redirects=False).status_code == 303


def test_cli_sets_a_password_that_signs_in(settings, client, people):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "STAGEGATE_DATA_DIR": str(settings.data_dir),
           "STAGEGATE_DATABASE_URL": settings.database_url}
    cmd = [sys.executable, "-c", "from app.cli import main; main()", "user", "set-password",
           "b_member", "--password-stdin"]
    short = subprocess.run(cmd, input="short\n", env=env, capture_output=True, text=True,
                           timeout=60, check=False)
    assert short.returncode == 2 and "password" in short.stderr
    done = subprocess.run(cmd, input="set from the command line\n", env=env,
                          capture_output=True, text=True, timeout=60,
                           check=False)
    assert done.returncode == 0, done.stderr
    assert log_in(client, "b_member", "set from the command line").status_code == 303
