"""The deep leak sweep (tests/visibility_world.py: leaks) on the worlds of issue 8: a
derived result follows every checkpoint it names, and the sweep finds a hidden name or
digest wherever in an answer it sits."""

from __future__ import annotations

import json

import pytest

from tests.visibility_world import Builder, hidden_needles, leaks

OUTSIDERS = ("anonymous", "x_member")
TAG = "5eb1a2c3d4"


@pytest.fixture
def b(settings):
    return Builder(["lab-a", "lab-b"])


def gpt2_family(b: Builder) -> dict[str, int]:
    """124M and 355M public, 774M and 1.5B partners-only; a transfer matrix at 355M that
    names all four, stored as the worker stores one."""
    b.model("lab-a", "gpt2")
    ids = {name: b.checkpoint("lab-a", "gpt2", name, access, salt=f"{TAG}-{name}")
           for name, access in [("124M", "public"), ("355M", "public"),
                                (f"774M-{TAG}", "partners"), (f"1.5B-{TAG}", "partners")]}
    ids["matrix"] = b.transfer_result(ids["355M"], [c for n, c in ids.items() if n != "355M"])
    return ids


def test_a_transfer_matrix_naming_partner_checkpoints_stays_hidden(client, b):
    ids = gpt2_family(b)
    hidden = {"checkpoint_id": {ids[f"774M-{TAG}"], ids[f"1.5B-{TAG}"]},
              "result_id": {ids["matrix"]}}
    needles = hidden_needles(TAG, range(min(hidden["checkpoint_id"]),
                                        max(hidden["checkpoint_id"]) + 1))
    model_id = client.get("/api/v1/models?lab=lab-a").json()["items"][0]["id"]
    urls = [f"/api/v1/evals/results/{ids['matrix']}", "/api/v1/evals/results?limit=200",
            "/api/v1/evals/results?model=lab-a/gpt2", "/api/v1/checkpoints?limit=200",
            f"/api/v1/models/{model_id}/card", f"/api/v1/models/{model_id}/card.md",
            f"/api/v1/checkpoints/{ids['355M']}/card.md", "/api/v1/events?limit=200",
            "/models/lab-a/gpt2", "/"]
    for who in OUTSIDERS:
        headers = b.outsiders[who]
        assert client.get(urls[0], headers=headers).status_code == 404
        for url in urls:
            r = client.get(url, headers=headers)
            assert r.status_code < 500, (url, r.text)
            assert not leaks(url, r.headers.get("content-type"), r.content, needles,
                             hidden), (who, url)
    # Its own lab sees the matrix, with the names and digests the sweep looks for.
    r = client.get(urls[0], headers=b.members["lab-a"].headers)
    assert r.status_code == 200
    found = leaks("/api/v1/evals/results", r.headers["content-type"], r.content, needles,
                  hidden)
    assert f"$.details.checkpoints.774M-{TAG}<key>: the tag of hidden names and titles" in found
    assert any(hit.startswith(f"$.details.checkpoints.774M-{TAG}: hidden checkpoint")
               for hit in found)
    assert any(hit.startswith("$.details.labels[2]:") for hit in found)


def test_a_partner_sees_the_matrix_once_it_may_see_every_checkpoint(client, b):
    ids = gpt2_family(b)
    url = f"/api/v1/evals/results/{ids['matrix']}"
    partner = b.members["lab-b"].headers
    assert client.get(url, headers=partner).status_code == 404
    b.agreement("lab-a", "lab-b", "gpt2", "active_undated")
    assert client.get(f"/api/v1/checkpoints/{ids[f'774M-{TAG}']}",
                      headers=partner).status_code == 200
    r = client.get(url, headers=partner)
    assert r.status_code == 200
    assert set(r.json()["details"]["checkpoints"]) == {"124M", "355M", f"774M-{TAG}",
                                                       f"1.5B-{TAG}"}


def test_the_sweep_names_the_path_of_every_hit():
    hidden = {"checkpoint_id": {7}, "plan_id": {9}, "incident_id": {4}}
    needles = {"s3cret": "a hidden name"}
    doc = {"items": [{"id": 9, "details": {"checkpoints": {"S3CRET-774M": "x"}},
                      "checkpoint_ids": [1, 7], "note": "see /plans/9",
                      "count": 7, "version": 9}],
           "events": [{"entity_type": "incident", "entity_id": "4"}]}
    found = leaks("/api/v1/plans", "application/json", json.dumps(doc).encode(), needles,
                  hidden)
    assert sorted(found) == sorted([
        "$.items[0].id: hidden plan_id 9",
        "$.items[0].details.checkpoints.S3CRET-774M<key>: a hidden name",
        "$.items[0].checkpoint_ids: hidden checkpoint_id 7",
        "$.items[0].note: link to hidden plan_id 9",
        "$.events[0].entity_id: hidden incident_id 4"])
    # Asking for a hidden id or name by itself is no leak: a 404 may echo the request.
    assert leaks("/api/v1/plans/9", "application/json", b'{"detail": "plan 9 (/plans/9)"}',
                 needles, hidden) == []
    assert leaks("/models/lab-a/s3cret", "text/html", b"<p>no model lab-a/s3cret</p>",
                 needles, hidden) == []
    assert leaks("/", "text/html", b'<a href="/incidents/4">S3cret</a>', needles, hidden) == [
        "body: a hidden name", "body: link to hidden incident_id 4"]



@pytest.fixture
def policed(settings):
    return Builder(["lab-a", "lab-b"], policies=["gpt2-2019"])


def test_a_verdict_counts_a_hidden_checkpoint_but_never_names_it(client, policed):
    """A partners-only checkpoint's queued evaluations count in the public verdict (README:
    "What an outsider sees of a verdict"): pending, with confidential evidence. Nothing in
    the verdict, its history, its events or the plan page names the checkpoint or its runs."""
    b = policed
    b.model("lab-a", "m")
    plan_id = b.plan("lab-a", "m", "active")
    ckpt = b.checkpoint("lab-a", "m", f"774M-{TAG}", "partners", salt=TAG)
    hidden = {"checkpoint_id": {ckpt}}
    needles = hidden_needles(TAG, range(ckpt, ckpt + 1))
    urls = [f"/api/v1/plans/{plan_id}/compliance", "/api/v1/events?limit=200",
            f"/api/v1/plans/{plan_id}/compliance/history", f"/plans/{plan_id}",
            "/models/lab-a/m"]
    for who in OUTSIDERS:
        for url in urls:
            r = client.get(url, headers=b.outsiders[who])
            assert r.status_code == 200, url
            assert not leaks(url, r.headers.get("content-type"), r.content, needles,
                             hidden), (who, url)
    verdicts = [rule for stage in client.get(urls[0]).json()["stages"]
                for rule in stage["rules"] if rule["rule"] == "detection-research-alongside"]
    assert verdicts and all(v["verdict"] == "pending" for v in verdicts)
    assert all(e["id"] is None and e.get("confidential") for v in verdicts
               for e in v["evidence"])
