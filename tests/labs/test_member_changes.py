"""Removing lab members and changing their roles over the API: who may, the last
lab_admin stays, name probing tells nothing, and each change is an event (both databases)."""

from __future__ import annotations

import json

import pytest

MEMBERS = "/api/v1/labs/lab-a/members"


def _labs(client, actor) -> dict:
    r = client.get("/api/v1/me", headers=actor.headers)
    return r.json()["labs"] if r.status_code == 200 else r.status_code


def _membership_events(client, actor) -> list[tuple[str, str]]:
    r = client.get("/api/v1/events", params={"entity_type": "membership", "limit": 200},
                   headers=actor.headers)
    assert r.status_code == 200, r.text
    return [(e["action"], e["entity_id"]) for e in r.json()["items"]]


def test_lab_admin_promotes_demotes_and_removes(client, world):
    r = client.patch(f"{MEMBERS}/a_member", json={"role": "lab_admin"},
                     headers=world.a_admin.headers)
    assert r.status_code == 200, r.text
    assert r.json() == {"lab": "lab-a", "user": "a_member", "role": "lab_admin"}
    assert _labs(client, world.a_member) == {"lab-a": "lab_admin"}
    # With two admins, one may step down and then be removed by the other.
    r = client.patch(f"{MEMBERS}/a_admin", json={"role": "lab_member"},
                     headers=world.a_admin.headers)
    assert r.status_code == 200, r.text
    assert _labs(client, world.a_admin) == {"lab-a": "lab_member"}
    r = client.delete(f"{MEMBERS}/a_admin", headers=world.a_member.headers)
    assert r.status_code == 200, r.text
    assert r.json()["role"] == "lab_member" and r.json()["removed"] is True
    assert _labs(client, world.a_admin) == {}
    # The removed user is an outsider now: the lab's routes answer 403.
    assert client.delete(f"{MEMBERS}/a_member", headers=world.a_admin.headers).status_code \
        == 403
    actions = [a for a, _ in _membership_events(client, world.coord)]
    assert actions.count("role_changed") == 2 and actions.count("removed") == 1


def test_the_last_lab_admin_is_neither_removed_nor_demoted(client, world):
    for actor in (world.a_admin, world.coord):
        r = client.delete(f"{MEMBERS}/a_admin", headers=actor.headers)
        assert r.status_code == 409, r.text
        assert r.json()["errors"][0]["field"] == "user"
        r = client.patch(f"{MEMBERS}/a_admin", json={"role": "lab_member"},
                         headers=actor.headers)
        assert r.status_code == 409, r.text
        assert r.json()["errors"][0]["field"] == "role"
    assert _labs(client, world.a_admin) == {"lab-a": "lab_admin"}
    # Setting the role someone already has is a no-op, not a refusal.
    r = client.patch(f"{MEMBERS}/a_admin", json={"role": "lab_admin"},
                     headers=world.a_admin.headers)
    assert r.status_code == 200
    assert [a for a, _ in _membership_events(client, world.coord)
            if a in ("removed", "role_changed")] == []


def test_a_deactivated_admin_does_not_count_as_the_other_admin(client, world):
    assert client.patch(f"{MEMBERS}/a_member", json={"role": "lab_admin"},
                        headers=world.coord.headers).status_code == 200
    assert client.delete("/api/v1/users/a_member", headers=world.coord.headers).status_code \
        == 200
    r = client.delete(f"{MEMBERS}/a_admin", headers=world.coord.headers)
    assert r.status_code == 409, r.text


def test_coordinator_manages_any_lab_and_members_may_not(client, world):
    r = client.delete("/api/v1/labs/lab-b/members/b_member", headers=world.coord.headers)
    assert r.status_code == 200, r.text
    assert _labs(client, world.b_member) == {}
    for actor in (world.a_member, world.b_member):
        assert client.delete(f"{MEMBERS}/a_member", headers=actor.headers).status_code == 403
        assert client.patch(f"{MEMBERS}/a_member", json={"role": "lab_admin"},
                            headers=actor.headers).status_code == 403
    # An admin of lab-a has no say over lab-b.
    assert client.patch("/api/v1/labs/lab-b/members/a_admin", json={"role": "lab_admin"},
                        headers=world.a_admin.headers).status_code == 403
    assert _labs(client, world.a_member) == {"lab-a": "lab_member"}


def test_unknown_names_and_bad_input(client, world):
    r = client.delete(f"{MEMBERS}/nobody-here", headers=world.a_admin.headers)
    assert r.status_code == 404 and r.json()["errors"][0]["field"] == "user"
    r = client.delete(f"{MEMBERS}/b_member", headers=world.a_admin.headers)  # not in lab-a
    assert r.status_code == 404 and r.json()["errors"][0]["field"] == "user"
    r = client.delete("/api/v1/labs/no-lab/members/a_admin", headers=world.coord.headers)
    assert r.status_code == 404 and r.json()["errors"][0]["field"] == "lab"
    for body in ({"role": "owner"}, {}, {"role": "lab_admin", "extra": 1}):
        r = client.patch(f"{MEMBERS}/a_member", json=body, headers=world.a_admin.headers)
        assert r.status_code == 422, (body, r.text)
    assert _labs(client, world.a_member) == {"lab-a": "lab_member"}


def _normalised(response, name: str):
    body = response.text.replace(name, "NAME")
    return response.status_code, {k: v for k, v in json.loads(body).items() if k != "instance"}


@pytest.mark.parametrize("who", ["a_member", "b_member"])
@pytest.mark.parametrize("method", ["delete", "patch"])
def test_user_names_cannot_be_probed_without_permission(client, world, who, method):
    """An existing, a member's and a missing name answer alike to a caller without
    permission: the permission check comes before the name lookup."""
    answers = []
    for name in ("a_admin", "b_member", "nobody-here"):
        kw = {"json": {"role": "lab_admin"}} if method == "patch" else {}
        r = getattr(client, method)(f"{MEMBERS}/{name}", headers=getattr(world, who).headers,
                                    **kw)
        answers.append(_normalised(r, name))
    assert answers[0][0] == 403, answers[0]
    assert answers[0] == answers[1] == answers[2]
    assert _labs(client, world.a_admin) == {"lab-a": "lab_admin"}
    assert _labs(client, world.b_member) == {"lab-b": "lab_member"}
