"""Evaluation jobs over HTTP: listing, filters, cursor pagination, visibility, suites."""

from __future__ import annotations

import pytest

from tests.checkpoints.tiny import checkpoint_files, tiny_gpt2, upload


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return checkpoint_files(tiny_gpt2(tmp_path_factory.mktemp("tiny")))


def test_runs_page_by_cursor_and_filter(client, world, files):
    a = upload(client, world.a_member, files, name="a").json()
    b = upload(client, world.a_member, files, name="b").json()
    seen, cursor = [], None
    while True:
        url = "/api/v1/evals/runs?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(url).json()
        seen += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    # Three suites per checkpoint, and a transfer matrix once the model has two.
    assert len(seen) == 7 == len(set(seen)) and seen == sorted(seen, reverse=True)
    only_b = client.get(f"/api/v1/evals/runs?checkpoint_id={b['id']}").json()["items"]
    assert {r["checkpoint_id"] for r in only_b} == {b["id"]}
    assert len(client.get("/api/v1/evals/runs?model=lab-a/m&status=queued")
               .json()["items"]) == 7
    assert client.get("/api/v1/evals/runs?model=lab-b/m").json()["items"] == []
    assert client.get("/api/v1/evals/runs?cursor=garbage").status_code == 422
    assert a["id"] != b["id"]


def test_runs_on_internal_checkpoints_are_hidden(client, world, files):
    ckpt = upload(client, world.a_member, files, access="internal").json()
    run_id = client.get(f"/api/v1/evals/runs?checkpoint_id={ckpt['id']}",
                        headers=world.a_member.headers).json()["items"][0]["id"]
    assert client.get(f"/api/v1/evals/runs/{run_id}").status_code == 404
    assert client.get(f"/api/v1/evals/runs/{run_id}",
                      headers=world.b_member.headers).status_code == 404
    assert client.get(f"/api/v1/evals/runs/{run_id}",
                      headers=world.coord.headers).status_code == 200
    assert client.post(f"/api/v1/evals/runs/{run_id}/cancel",
                       headers=world.b_member.headers).status_code == 404


def test_suites_are_listed_with_versions(client):
    suites = {s["id"]: s for s in client.get("/api/v1/evals/suites").json()}
    assert set(suites) == {"perplexity", "detectability", "bias_association"}
    assert all(s["version"] >= 1 and s["config"] for s in suites.values())
