"""Accounts under abuse: deactivated and deleted users, repeated members, name probing."""

from __future__ import annotations

import json
import sqlite3

import psycopg
import pytest


def test_a_deactivated_users_token_answers_401(client, world):
    me = client.get("/api/v1/me", headers=world.b_member.headers)
    assert me.status_code == 200
    # Only coordinators switch accounts off; a lab admin cannot.
    assert client.delete("/api/v1/users/b_member", headers=world.a_admin.headers).status_code == 403
    r = client.delete("/api/v1/users/b_member", headers=world.coord.headers)
    assert r.status_code == 200 and r.json()["name"] == "b_member"
    for path in ("/api/v1/me", "/api/v1/plans", "/api/v1/labs"):
        r = client.get(path, headers=world.b_member.headers)
        assert r.status_code == 401, path
        assert r.headers["content-type"].startswith("application/problem+json")
        assert "deactivated" in r.json()["detail"]
    # Everyone else carries on.
    assert client.get("/api/v1/me", headers=world.a_member.headers).status_code == 200


def _delete_user_row(backend: str, settings, name: str) -> None:
    """As an operator might by hand: the row goes, its tokens and memberships stay."""
    if backend == "sqlite":
        conn = sqlite3.connect(settings.database_url.split("///", 1)[1])
        conn.execute('DELETE FROM "user" WHERE name = ?', (name,))  # foreign_keys is off
        conn.commit()
        conn.close()
    else:
        url = settings.database_url
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SET session_replication_role = replica")  # skip FK triggers
            conn.execute('DELETE FROM "user" WHERE name = %s', (name,))


def test_a_deleted_users_token_answers_401_not_500(client, world, backend, settings):
    _delete_user_row(backend, settings, "b_member")
    r = client.get("/api/v1/me", headers=world.b_member.headers)
    assert r.status_code == 401 and r.json()["status"] == 401
    r = client.get("/api/v1/plans", headers=world.b_member.headers)
    assert r.status_code == 401


def test_adding_an_existing_member_again_is_409_and_changes_nothing(client, world):
    r = client.post("/api/v1/labs/lab-a/members", json={"user": "a_member", "role": "lab_admin"},
                    headers=world.a_admin.headers)
    assert r.status_code == 409
    body = r.json()
    assert body["errors"][0]["field"] == "user" and body["role"] == "lab_member"
    me = client.get("/api/v1/me", headers=world.a_member.headers).json()
    assert me["labs"] == {"lab-a": "lab_member"}
    # Adding someone new still works, and a second time is the same 409.
    r = client.post("/api/v1/labs/lab-a/members", json={"user": "b_member"},
                    headers=world.a_admin.headers)
    assert r.status_code == 201, r.text
    r = client.post("/api/v1/labs/lab-a/members", json={"user": "b_member"},
                    headers=world.a_admin.headers)
    assert r.status_code == 409


def _normalised(response, name: str):
    """Status and body, the probed name and the request path blanked out."""
    body = response.text.replace(name, "NAME")
    return response.status_code, {k: v for k, v in json.loads(body).items() if k != "instance"}


# (caller, method, path, body with NAME for the probed user name)
PROBES = [
    ("b_member", "post", "/api/v1/labs/lab-a/members", {"user": "NAME"}),
    ("a_member", "post", "/api/v1/labs/lab-a/members", {"user": "NAME"}),
    ("a_member", "post", "/api/v1/users", {"name": "NAME", "lab": "lab-a"}),
    ("b_member", "post", "/api/v1/users", {"name": "NAME", "lab": "lab-a"}),
    ("a_admin", "post", "/api/v1/users", {"name": "NAME"}),
    ("a_admin", "post", "/api/v1/users", {"name": "NAME", "lab": "lab-b"}),
    ("a_member", "post", "/api/v1/tokens", {"user": "NAME"}),
    ("a_admin", "delete", "/api/v1/users/NAME", None),
    ("a_member", "delete", "/api/v1/tokens/NAME", None),
]


@pytest.mark.parametrize("probe", PROBES, ids=lambda p: f"{p[0]}-{p[1]}-{p[2]}-{p[3]}")
def test_user_names_cannot_be_probed_without_permission(client, world, probe):
    """An existing and a missing name answer byte-alike to a caller without permission."""
    who, method, path, body = probe
    if "tokens/NAME" in path:  # tokens are named by prefix: real ones of others, and none
        names = [world.a_admin.token.split("_")[1], world.b_member.token.split("_")[1],
                 "deadbeef"]
    else:
        names = ["a_admin", "b_member", "nobody-here"]
    answers = []
    for name in names:
        p = path.replace("NAME", name)
        kw = {"json": {k: v.replace("NAME", name) for k, v in body.items()}} if body else {}
        r = getattr(client, method)(p, headers=getattr(world, who).headers, **kw)
        answers.append(_normalised(r, name))
    assert answers[0][0] in (403, 404), answers[0]
    assert answers[0] == answers[2] and answers[1] == answers[2]
    # Nothing was created or changed by the probes.
    assert client.get("/api/v1/me", headers=world.a_admin.headers).json()["labs"] == {
        "lab-a": "lab_admin"}
