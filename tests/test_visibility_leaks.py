"""Regressions of issue 7 items 1 and 3: what was never public stays hidden, and a private
model does not show through its plans, checkpoints, runs, results, events or filters."""

from __future__ import annotations

import pytest

from tests.visibility_world import Builder

OUTSIDERS = ("anonymous", "x_member")


@pytest.fixture
def b(settings):
    return Builder(["lab-a", "lab-b"])


def _events(client, headers, **filters) -> list[tuple[str, str, str]]:
    query = "&".join(f"{k}={v}" for k, v in filters.items())
    items = client.get(f"/api/v1/events?limit=200&{query}", headers=headers).json()["items"]
    return [(e["entity_type"], e["entity_id"], e["action"]) for e in items]


def test_a_withdrawn_draft_stays_with_its_lab(client, b):
    b.model("lab-a", "m")
    plan_id = b.plan("lab-a", "m", "draft")
    # Withdrawn through the API, as the issue reproduced it.
    member = b.members["lab-a"].headers
    version = client.get(f"/api/v1/plans/{plan_id}", headers=member).json()["version"]
    r = client.post(f"/api/v1/plans/{plan_id}/transitions",
                    json={"to": "withdrawn", "version": version}, headers=member)
    assert r.status_code == 200 and r.json()["status"] == "withdrawn"
    assert r.json()["filed_at"] is None
    urls = [f"/api/v1/plans/{plan_id}", f"/api/v1/plans/{plan_id}/revisions",
            f"/api/v1/plans/{plan_id}/revisions/1", f"/api/v1/plans/{plan_id}/diff?a=1&b=2"]
    for who in OUTSIDERS:
        headers = b.outsiders[who]
        for url in urls:
            # Twice: the second read would come from the plan cache on SQLite.
            for _ in range(2):
                r = client.get(url, headers=headers)
                assert r.status_code == 404, (who, url, r.text)
                assert "Confidential" not in r.text
        assert client.get("/api/v1/plans?status=withdrawn",
                          headers=headers).json()["items"] == []
        assert _events(client, headers, entity_type="plan") == []
    # Its lab still sees all of it, events included.
    assert client.get(urls[0], headers=member).json()["status"] == "withdrawn"
    assert _events(client, member, entity_type="plan") == [
        ("plan", str(plan_id), "drafted"), ("plan", str(plan_id), "withdrawn")]


def test_a_plan_withdrawn_after_filing_stays_public(client, b):
    b.model("lab-a", "m")
    plan_id = b.plan("lab-a", "m", "withdrawn_filed")
    r = client.get(f"/api/v1/plans/{plan_id}")
    assert r.status_code == 200 and r.json()["status"] == "withdrawn"
    assert [e[2] for e in _events(client, {}, entity_type="plan")] == ["filed", "withdrawn"]


def test_private_model_shows_through_nothing(client, b):
    b.model("lab-a", "open")  # a public neighbour, so "nothing" is not trivially true
    hidden = b.model("lab-a", "secret", public=False)
    plan_id = b.plan("lab-a", "secret", "filed")
    ckpt = b.checkpoint("lab-a", "secret", "step-1", "public")
    b.reported("lab-a", hidden, ckpt)
    for who in OUTSIDERS:
        headers = b.outsiders[who]
        assert client.get(f"/api/v1/plans/{plan_id}", headers=headers).status_code == 404
        assert client.get(f"/api/v1/checkpoints/{ckpt}", headers=headers).status_code == 404
        for url in ("/api/v1/plans", "/api/v1/checkpoints", "/api/v1/evals/runs",
                    "/api/v1/evals/results"):
            assert client.get(url, headers=headers).json()["items"] == [], url
        seen = _events(client, headers)
        assert {e[0] for e in seen} <= {"lab", "membership", "model"}
        assert ("model", str(hidden), "created") not in seen
        assert "secret" not in client.get("/api/v1/events?limit=200", headers=headers).text
    member = b.members["lab-a"].headers
    kinds = {e[0] for e in _events(client, member)}
    assert {"plan", "checkpoint", "eval_run", "model"} <= kinds


def test_making_a_model_private_hides_its_past(client, b):
    model_id = b.model("lab-a", "later")
    plan_id = b.plan("lab-a", "later", "active")
    ckpt = b.checkpoint("lab-a", "later", "step-1", "public")
    b.reported("lab-a", model_id, None)
    before = _events(client, {})
    assert ("model", str(model_id), "created") in before
    assert {"plan", "checkpoint", "eval_run"} <= {e[0] for e in before}
    assert client.get(f"/api/v1/plans/{plan_id}").status_code == 200  # fills the cache
    b.make_private("lab-a", model_id)
    for who in OUTSIDERS:
        headers = b.outsiders[who]
        # The created event of the model, and every event of its plan, checkpoint and
        # runs, written as public at the time, are gone now.
        assert [e for e in _events(client, headers) if e[0] not in ("lab", "membership")] == []
        for url in (f"/api/v1/plans/{plan_id}", f"/api/v1/plans/{plan_id}/revisions",
                    f"/api/v1/checkpoints/{ckpt}", f"/api/v1/models/{model_id}/card"):
            assert client.get(url, headers=headers).status_code == 404, url


@pytest.mark.parametrize("route", ["/api/v1/incidents", "/api/v1/plans",
                                   "/api/v1/checkpoints", "/api/v1/evals/runs",
                                   "/api/v1/evals/results"])
def test_a_hidden_model_filters_like_a_missing_one(client, b, route):
    hidden = b.model("lab-a", "secret", public=False)
    b.plan("lab-a", "secret", "filed")
    ckpt = b.checkpoint("lab-a", "secret", "step-1", "public")
    b.reported("lab-a", hidden, ckpt)
    # A public incident about the private model (its lab files it; a coordinator confirms).
    incident = b.incident("lab-a", "secret", "public")
    assert client.get(f"/api/v1/incidents/{incident}").status_code == 200
    for who in OUTSIDERS:
        headers = b.outsiders[who]
        hid = client.get(f"{route}?model=lab-a/secret", headers=headers)
        gone = client.get(f"{route}?model=lab-a/nothing", headers=headers)
        # Same status, same bytes, once the ref itself is swapped in the message.
        assert hid.status_code == gone.status_code
        assert hid.content.replace(b"secret", b"nothing") == gone.content
    member = b.members["lab-a"].headers
    assert client.get(f"{route}?model=lab-a/secret", headers=member).status_code == 200
