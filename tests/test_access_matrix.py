"""Every core route x {anonymous, lab A member, lab B member, coordinator}."""

import pytest

from tests.factories import FOUR_STAGES

WHO = ("anon", "a_member", "b_member", "coord")


def plan_body(model="lab-a/m"):
    return {"model": model, "title": "New plan", "stages": FOUR_STAGES[:1]}


# (method, path, body, expected statuses for WHO); {draft}, {filed}, {model} are filled in.
MATRIX = [
    ("GET", "/api/v1/plans/{draft}", None, (404, 200, 404, 200)),
    ("GET", "/api/v1/plans/{filed}", None, (200, 200, 200, 200)),
    ("GET", "/api/v1/plans/{draft}/revisions", None, (404, 200, 404, 200)),
    ("GET", "/api/v1/plans/{draft}/revisions/1", None, (404, 200, 404, 200)),
    ("GET", "/api/v1/plans/{filed}/revisions/1", None, (200, 200, 200, 200)),
    ("GET", "/api/v1/plans/{draft}/diff?a=1&b=1", None, (404, 200, 404, 200)),
    ("GET", "/api/v1/plans", None, (200, 200, 200, 200)),
    ("POST", "/api/v1/plans", plan_body(), (401, 201, 403, 201)),
    ("PATCH", "/api/v1/plans/{draft}", {"version": 1, "title": "T"}, (401, 200, 404, 200)),
    ("PATCH", "/api/v1/plans/{filed}", {"version": 1, "title": "T"}, (401, 200, 403, 200)),
    ("POST", "/api/v1/plans/{draft}/transitions", {"to": "filed", "version": 1},
     (401, 200, 404, 200)),
    ("POST", "/api/v1/plans/{filed}/stages/1/transitions", {"to": "ready", "version": 1},
     (401, 200, 403, 200)),
    ("GET", "/api/v1/models", None, (200, 200, 200, 200)),
    ("GET", "/api/v1/models/{model}", None, (200, 200, 200, 200)),
    ("POST", "/api/v1/models", {"lab": "lab-a", "slug": "n2", "name": "N2"},
     (401, 201, 403, 201)),
    ("PATCH", "/api/v1/models/{model}", {"version": 1, "name": "N"}, (401, 200, 403, 200)),
    ("GET", "/api/v1/labs", None, (200, 200, 200, 200)),
    ("GET", "/api/v1/labs/lab-a", None, (200, 200, 200, 200)),
    ("POST", "/api/v1/labs", {"slug": "lab-c", "name": "C"}, (401, 403, 403, 201)),
    ("POST", "/api/v1/labs/lab-a/members", {"user": "b_member"}, (401, 403, 403, 201)),
    ("POST", "/api/v1/users", {"name": "zed", "lab": "lab-a"}, (401, 403, 403, 201)),
    ("GET", "/api/v1/me", None, (401, 200, 200, 200)),
    ("GET", "/api/v1/events", None, (200, 200, 200, 200)),
    ("GET", "/api/v1/tokens", None, (401, 200, 200, 200)),
    ("GET", "/healthz", None, (200, 200, 200, 200)),
    ("GET", "/schema/openapi.json", None, (200, 200, 200, 200)),
]

CASES = [(m, p, b, who, expected[i]) for m, p, b, expected in MATRIX
         for i, who in enumerate(WHO)]


@pytest.mark.parametrize("method,path,body,who,status", CASES,
                         ids=[f"{c[0]} {c[1]} as {c[3]}" for c in CASES])
def test_access(client, world, method, path, body, who, status):
    ids = {"draft": world.plan(filed=False), "filed": world.plan(filed=True),
           "model": world.model_a}
    headers = {} if who == "anon" else getattr(world, who).headers
    r = client.request(method, path.format(**ids), json=body, headers=headers)
    assert r.status_code == status, r.text


def test_lists_hide_other_labs_drafts(client, world):
    draft, filed = world.plan(filed=False), world.plan(filed=True)
    seen = {who: {p["id"] for p in client.get(
        "/api/v1/plans", headers={} if who == "anon" else getattr(world, who).headers
    ).json()["items"]} for who in WHO}
    assert seen == {"anon": {filed}, "a_member": {draft, filed}, "b_member": {filed},
                    "coord": {draft, filed}}


def test_private_model_is_404_outside_its_lab(client, world):
    r = client.patch(f"/api/v1/models/{world.model_a}", json={"version": 1, "public": False},
                     headers=world.a_member.headers)
    assert r.status_code == 200
    assert client.get(f"/api/v1/models/{world.model_a}").status_code == 404
    assert client.get(f"/api/v1/models/{world.model_a}",
                      headers=world.b_member.headers).status_code == 404
    assert client.get(f"/api/v1/models/{world.model_a}",
                      headers=world.coord.headers).status_code == 200
