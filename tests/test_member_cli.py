"""`stagegate lab member-remove/member-role` and `stagegate user reactivate` against a real
uvicorn server (both databases): they act over HTTP with the caller's own token."""

from __future__ import annotations

import json


def _labs(client, actor) -> dict:
    return client.get("/api/v1/me", headers=actor.headers).json()["labs"]


def test_lab_admin_changes_roles_and_removes_members(world, client, stagegate):
    code, out, err = stagegate("lab", "member-role", "lab-a", "a_member", "lab_admin",
                               as_=world.a_admin)
    assert code == 0, err
    assert out.strip() == "a_member is now lab_admin of lab-a"
    assert _labs(client, world.a_member) == {"lab-a": "lab_admin"}
    code, out, err = stagegate("lab", "member-remove", "lab-a", "a_admin", "--json",
                               as_=world.a_member)
    assert code == 0, err
    assert json.loads(out) == {"lab": "lab-a", "user": "a_admin", "role": "lab_admin",
                               "removed": True}
    assert _labs(client, world.a_admin) == {}
    # The last lab_admin stays: one line, exit code 2, the field named.
    code, out, err = stagegate("lab", "member-remove", "lab-a", "a_member", as_=world.coord)
    assert code == 2 and out == "" and err.startswith("error: 409 (user):"), err
    code, _, err = stagegate("lab", "member-role", "lab-a", "a_member", "lab_member",
                             as_=world.coord)
    assert code == 2 and err.startswith("error: 409 (role):"), err
    assert _labs(client, world.a_member) == {"lab-a": "lab_admin"}


def test_members_and_outsiders_are_refused(world, client, stagegate):
    for name in ("a_admin", "nobody-here"):
        code, _, err = stagegate("lab", "member-remove", "lab-a", name, as_=world.a_member)
        assert code == 2 and err.startswith("error: 403"), err
    code, _, err = stagegate("lab", "member-role", "lab-a", "a_member", "owner",
                             as_=world.a_admin)
    assert code == 2 and "owner" in err  # click refuses the role before any request
    code, _, err = stagegate("lab", "member-remove", "lab-a", "a_admin")
    assert code == 2 and err.startswith("error: 401"), err
    assert _labs(client, world.a_admin) == {"lab-a": "lab_admin"}


def test_user_reactivate(world, client, stagegate):
    assert client.delete("/api/v1/users/b_member", headers=world.coord.headers).status_code \
        == 200
    code, _, err = stagegate("user", "reactivate", "b_member", as_=world.a_admin)
    assert code == 2 and err.startswith("error: 403"), err
    code, out, err = stagegate("user", "reactivate", "b_member", as_=world.coord)
    assert code == 0, err
    assert out.strip() == "reactivated user b_member"
    code, out, err = stagegate("user", "reactivate", "b_member", "--json", as_=world.coord)
    assert code == 0 and json.loads(out)["name"] == "b_member"
    code, _, err = stagegate("user", "reactivate", "nobody-here", as_=world.coord)
    assert code == 2 and err.startswith("error: 404"), err
    # Old tokens stay revoked after reactivation.
    assert client.get("/api/v1/me", headers=world.b_member.headers).status_code == 401
