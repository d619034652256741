"""Accounts in the browser: a lab's members and roles (/lab/members) and the console's
accounts page (/console/users): the same services and rules as the API, refusals shown
in the page, CSRF on every write (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from litestar.testing import TestClient
from sqlmodel import select

from app.auth.principal import SYSTEM
from app.auth.service import get_user
from app.auth.tables import WebSession
from app.db import session_scope
from app.labs.service import get_lab
from app.labs.tables import Membership
from tests.web.test_console_auth import HTML, PASSWORD, log_in, people, token_of  # noqa: F401


def role_of(user: str, lab: str = "lab-a") -> str | None:
    with session_scope(write=False) as s:
        row = s.exec(select(Membership).where(
            Membership.user_id == get_user(s, user).id,
            Membership.lab_id == get_lab(s, lab).id)).first()
        return row.role if row else None


def post_form(client, page_path: str, action: str, data: dict, **kw):
    page = client.get(page_path, headers=HTML)
    assert page.status_code == 200
    return client.post(action, data={**data, "_csrf_token": token_of(page.text)},
                       headers=HTML, follow_redirects=False, **kw)


@pytest.fixture
def admin(client, people):  # noqa: F811
    from app.auth.passwords import set_password
    with session_scope() as s:
        set_password(s, SYSTEM, get_user(s, "a_admin"), f"{PASSWORD} a_admin")
    assert log_in(client, "a_admin").status_code == 303
    return client


def test_lab_admin_adds_changes_and_removes_members(admin):
    page = admin.get("/lab/members", headers=HTML)
    assert page.status_code == 200
    assert "Lab A" in page.text and "a_member" in page.text and ">b_member" not in page.text
    assert 'action="/lab/members/role"' in page.text
    assert 'action="/lab/members/remove"' in page.text
    # Add an existing user (of another lab) as a member.
    r = post_form(admin, "/lab/members", "/lab/members/add",
                  {"form": "add", "lab": "lab-a", "user": "b_member", "role": "lab_member"})
    assert r.status_code == 303 and r.headers["location"] == "/lab/members?done=member-added"
    assert role_of("b_member") == "lab_member"
    assert "Member added." in admin.get(r.headers["location"], headers=HTML).text
    # Promote, then remove.
    r = post_form(admin, "/lab/members", "/lab/members/role",
                  {"lab": "lab-a", "user": "a_member", "role": "lab_admin"})
    assert r.status_code == 303 and r.headers["location"].endswith("done=role-changed")
    assert role_of("a_member") == "lab_admin"
    r = post_form(admin, "/lab/members", "/lab/members/remove",
                  {"lab": "lab-a", "user": "b_member"})
    assert r.status_code == 303 and r.headers["location"].endswith("done=member-removed")
    assert role_of("b_member") is None
    # An unknown user is refused in the page, with what was typed kept.
    r = post_form(admin, "/lab/members", "/lab/members/add",
                  {"form": "add", "lab": "lab-a", "user": "nobody-here", "role": "lab_admin"})
    assert r.status_code == 404
    assert "no user" in r.text and 'value="nobody-here"' in r.text
    # A bad role is 422, shown in the page.
    r = post_form(admin, "/lab/members", "/lab/members/role",
                  {"lab": "lab-a", "user": "a_member", "role": "owner"})
    assert r.status_code == 422 and "role must be one of" in r.text
    # Adding someone already a member: 409 in the page.
    r = post_form(admin, "/lab/members", "/lab/members/add",
                  {"form": "add", "lab": "lab-a", "user": "a_member", "role": "lab_member"})
    assert r.status_code == 409 and "already" in r.text


def test_last_admin_cannot_be_removed_or_demoted(admin):
    r = post_form(admin, "/lab/members", "/lab/members/remove",
                  {"lab": "lab-a", "user": "a_admin"})
    assert r.status_code == 409
    assert "last lab_admin" in r.text and 'role="alert"' in r.text
    r = post_form(admin, "/lab/members", "/lab/members/role",
                  {"lab": "lab-a", "user": "a_admin", "role": "lab_member"})
    assert r.status_code == 409 and "last lab_admin" in r.text
    assert role_of("a_admin") == "lab_admin"


def test_plain_member_sees_no_forms_and_a_forged_post_is_403(client, people):  # noqa: F811
    assert log_in(client, "a_member").status_code == 303
    page = client.get("/lab/members", headers=HTML)
    assert page.status_code == 200 and "a_admin" in page.text
    assert "/lab/members/role" not in page.text and "/lab/members/remove" not in page.text
    assert "/lab/members/add" not in page.text
    token = token_of(page.text)  # the nav's sign-out form carries one
    for action, data in (("/lab/members/remove", {"lab": "lab-a", "user": "a_admin"}),
                         ("/lab/members/role", {"lab": "lab-a", "user": "a_member",
                                                "role": "lab_admin"}),
                         ("/lab/members/add", {"lab": "lab-a", "user": "b_member",
                                               "role": "lab_admin"}),
                         ("/lab/members/remove", {"lab": "lab-b", "user": "b_member"})):
        r = client.post(action, data={**data, "_csrf_token": token}, headers=HTML,
                        follow_redirects=False)
        assert r.status_code == 403, (action, data)
    assert role_of("a_admin") == "lab_admin" and role_of("a_member") == "lab_member"
    assert role_of("b_member", "lab-b") == "lab_member"
    # Not even a coordinator's page.
    assert client.get("/console/users", headers=HTML).status_code == 403


def test_writes_without_a_csrf_token_are_refused(admin):
    r = admin.post("/lab/members/remove", data={"lab": "lab-a", "user": "a_member"},
                   headers=HTML, follow_redirects=False)
    assert r.status_code == 403
    assert role_of("a_member") == "lab_member"


def test_coordinator_deactivates_and_reactivates_an_account(app, client, people):  # noqa: F811
    with TestClient(app) as member:
        assert log_in(member, "a_member").status_code == 303
        assert member.get("/lab/", headers=HTML).status_code == 200
        assert log_in(client, "coord").status_code == 303
        page = client.get("/console/users", headers=HTML)
        assert page.status_code == 200
        assert "a_member" in page.text and "lab-a (lab_member)" in page.text
        assert 'href="/console/users"' in page.text
        # Without the name typed again: refused in the page, nothing changes.
        r = post_form(client, "/console/users", "/console/users/deactivate",
                      {"name": "a_member", "confirm": "a_membe"})
        assert r.status_code == 422 and "to confirm" in r.text
        assert member.get("/lab/", headers=HTML).status_code == 200
        # No CSRF token: refused.
        r = client.post("/console/users/deactivate",
                        data={"name": "a_member", "confirm": "a_member"},
                        headers=HTML, follow_redirects=False)
        assert r.status_code == 403
        assert member.get("/lab/", headers=HTML).status_code == 200
        r = post_form(client, "/console/users", "/console/users/deactivate",
                      {"name": "a_member", "confirm": "a_member"})
        assert r.status_code == 303 and r.headers["location"].endswith("done=deactivated")
        after = client.get(r.headers["location"], headers=HTML)
        assert "Account deactivated" in after.text and "deactivated 20" in after.text
        # Their session stops working at once, and their password is refused.
        r = member.get("/lab/", headers=HTML, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/console/login")
        with session_scope(write=False) as s:
            uid = get_user(s, "a_member").id
            assert all(f'"uid":{uid}' not in bytes(w.data).decode().replace(" ", "")
                       for w in s.exec(select(WebSession)))
        assert log_in(member, "a_member").status_code == 400
        # Reactivated: the password signs in again.
        r = post_form(client, "/console/users", "/console/users/reactivate",
                      {"name": "a_member"})
        assert r.status_code == 303 and r.headers["location"].endswith("done=reactivated")
        assert log_in(member, "a_member").status_code == 303
        assert member.get("/lab/", headers=HTML).status_code == 200


def test_users_page_and_actions_are_for_coordinators_only(admin):
    assert admin.get("/console/users", headers=HTML).status_code == 403
    page = admin.get("/lab/members", headers=HTML)
    r = admin.post("/console/users/deactivate",
                   data={"name": "a_member", "confirm": "a_member",
                         "_csrf_token": token_of(page.text)},
                   headers=HTML, follow_redirects=False)
    assert r.status_code == 403
    assert admin.get("/api/v1/me", headers=HTML).status_code in (200, 401)
    with session_scope(write=False) as s:
        assert get_user(s, "a_member").deactivated_at is None


def test_coordinator_grants_and_revokes_an_exemption(client, people):  # noqa: F811
    r = client.post("/api/v1/plans", headers=people.a_member.headers, json={
        "model": "lab-a/m", "title": "Exempted", "file": True,
        "policies": ["pai-publication-norms"],
        "stages": [{"name": "small", "access_level": "public_weights"}]})
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    path = f"/console/plans/{pid}/exemptions"
    assert log_in(client, "coord").status_code == 303
    page = client.get(path, headers=HTML)
    assert page.status_code == 200 and "This plan has no exemptions." in page.text
    assert 'value="documented-risk-assessment"' in page.text
    grant = {"position": "1", "policy": "pai-publication-norms",
             "rule": "documented-risk-assessment",
             "reason": "Assessment filed on paper; to be transcribed.",
             "expires_at": "2099-01-01T00:00"}
    # Refusals in the page, with the reason typed kept.
    r = post_form(client, path, path, {**grant, "rule": "nope"})
    assert r.status_code == 422 and "has no rule" in r.text
    assert "Assessment filed on paper; to be transcribed." in r.text
    r = post_form(client, path, path, {**grant, "expires_at": "2001-01-01T00:00"})
    assert r.status_code == 422 and "in the future" in r.text
    r = post_form(client, path, path, {**grant, "reason": "short"})
    assert r.status_code == 422 and "reason" in r.text
    r = client.post(path, data=grant, headers=HTML, follow_redirects=False)
    assert r.status_code == 403  # no CSRF token
    r = post_form(client, path, path, grant)
    assert r.status_code == 303 and r.headers["location"].endswith("done=granted")
    [exemption] = client.get(f"/api/v1/plans/{pid}/exemptions").json()
    assert exemption["granted_by"] == "coord" and exemption["revoked_at"] is None
    shown = client.get(r.headers["location"], headers=HTML).text
    assert "Exemption granted." in shown and "in force" in shown
    r = post_form(client, path, f"{path}/revoke", {"exemption_id": str(exemption["id"])})
    assert r.status_code == 303 and r.headers["location"].endswith("done=revoked")
    assert client.get(f"/api/v1/plans/{pid}/exemptions").json()[0]["revoked_at"]
    # Lab members (admins too) get no console page and no write.
    with TestClient(client.app) as other:
        assert log_in(other, "a_member").status_code == 303
        assert other.get(path, headers=HTML).status_code == 403
        lab = other.get("/lab/members", headers=HTML)
        r = other.post(path, data={**grant, "_csrf_token": token_of(lab.text)},
                       headers=HTML, follow_redirects=False)
        assert r.status_code == 403
    assert len(client.get(f"/api/v1/plans/{pid}/exemptions").json()) == 1
