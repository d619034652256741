"""The model's README (`stagegate card export LAB/MODEL`, /api/v1/models/{id}/card.md)
carries the measurements of its main-branch checkpoint (the newest public one) in its
`model-index`, as huggingface_hub reads them, and never a non-public checkpoint's
numbers, whoever exports (both databases)."""

from __future__ import annotations

import math

import httpx
import pytest
from huggingface_hub import ModelCard
from huggingface_hub.repocard_data import model_index_to_eval_results

from app.evals.hf_export import MEASURED_SOURCE
from app.evals.worker import run_worker
from tests.checkpoints.tiny import SMALL, checkpoint_files, corpus, tiny_gpt2, upload
from tests.evals.test_results_api import README, report


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Three different tiny checkpoints: identical files would share one measurement."""
    root = tmp_path_factory.mktemp("tiny")
    return [checkpoint_files(tiny_gpt2(root, seed)) for seed in range(3)]


def hub_evals(text: str) -> list:
    """What the Hub's own parser makes of a README's `model-index` (strict: errors raise)."""
    card = ModelCard(text)
    _, evals = model_index_to_eval_results(card.data.to_dict()["model-index"])
    return evals


def measured(client, world, ckpt_id: int) -> dict[int, dict]:
    rows = client.get(f"/api/v1/evals/results?checkpoint_id={ckpt_id}&source=measured"
                      f"&limit=200", headers=world.coord.headers).json()["items"]
    return {r["id"]: r for r in rows}


def values_of(rows: dict[int, dict]) -> list:
    return sorted((i, k, v) for i, r in rows.items() for k, v in r["metrics"].items()
                  if isinstance(v, (int, float)) and math.isfinite(v))


def evaluate(client, world, settings, files, *specs) -> dict[str, int]:
    """Upload checkpoints (name, access level) in order; measure perplexity on each with
    the worker in this process, the other suites cancelled to keep it quick."""
    ids = {}
    for (name, access), content in zip(specs, files, strict=False):
        resp = upload(client, world.a_member, content, name=name, access=access)
        assert resp.status_code == 201, resp.text
        ids[name] = resp.json()["id"]
        for run in client.get(f"/api/v1/evals/runs?checkpoint_id={ids[name]}",
                              headers=world.a_member.headers).json()["items"]:
            if run["suite_id"] != "perplexity":
                client.post(f"/api/v1/evals/runs/{run['id']}/cancel",
                            headers=world.a_member.headers)
    assert run_worker(settings, once=True, corpus=corpus(), config_overrides=SMALL,
                      enqueue_every_s=None) == len(specs)
    return ids


def split(evals) -> tuple[list, list]:
    ours = [e for e in evals if "/api/v1/evals/results/" in (e.source_url or "")
            and (e.source_name or "").startswith(MEASURED_SOURCE)]
    return ours, [e for e in evals if e not in ours]


def test_model_readme_carries_the_newest_public_checkpoints_measurements(
        client, world, settings, files, stagegate, live_server, tmp_path):
    ids = evaluate(client, world, settings, files, ("step-1", "public"),
                   ("step-2", "public"), ("step-3", "internal"))
    assert report(client, world.a_member, world.model_a, "model-index",
                  README).status_code == 201
    main = measured(client, world, ids["step-2"])
    assert main and all(r["metrics"].get("perplexity", 0) > 1 for r in main.values())
    hidden = set(measured(client, world, ids["step-3"])) | set(
        measured(client, world, ids["step-1"]))

    # The CLI's export is the API's, for an outsider and for the lab alike: the measured
    # part of `model-index` is step-2's (the newest public), step-3 (internal) never.
    url = f"/api/v1/models/{world.model_a}/card.md"
    for actor in (None, world.a_member, world.coord):
        target = tmp_path / "README.md"
        args = ("card", "export", "lab-a/m", "-o", target)
        code, _, err = stagegate(*args, as_=actor) if actor else stagegate(*args)
        assert code == 0, err
        text = target.read_text()
        assert text == httpx.get(live_server + url,
                                 headers=actor.headers if actor else {}).text
        ours, reported = split(hub_evals(text))
        got = sorted((int(e.source_url.rsplit("/", 1)[1]), e.metric_type, e.metric_value)
                     for e in ours)
        assert got == values_of(main), actor
        assert not {i for i, _, _ in got} & hidden
        assert {e.source_name for e in ours} == {f"{MEASURED_SOURCE} on checkpoint step-2"}
        assert {(e.dataset_type, e.metric_type, e.metric_value) for e in reported} == \
            {("lambada", "ppl", 35.13), ("lambada", "accuracy", 45.99)}
        assert "the registry's measurements of checkpoint **step-2**" in text
        assert f"/api/v1/checkpoints/{ids['step-2']}/card.md" in text
    # The internal checkpoint's numbers reach its lab's tables, never its metadata.
    inside = client.get(url, headers=world.a_member.headers).text
    assert "| step-3 |" in inside
    assert "step-3" not in client.get(url).text

    # Hub round trip: the card imported back stores no report of the registry's own
    # measurements, and the export is then the same bytes.
    before = client.get("/api/v1/evals/results?model=lab-a/m&source=reported&limit=200",
                        headers=world.a_member.headers).json()["items"]
    text = client.get(url).text
    assert report(client, world.a_member, world.model_a, "model-index",
                  str(ModelCard(text))).status_code == 201
    after = client.get("/api/v1/evals/results?model=lab-a/m&source=reported&limit=200",
                       headers=world.a_member.headers).json()["items"]
    assert len(after) == len(before)
    assert client.get(url).text == text

    # The per-checkpoint READMEs stay as they were: only their own results, unnamed.
    own = hub_evals(client.get(f"/api/v1/checkpoints/{ids['step-1']}/card.md").text)
    assert {e.source_name for e in own} == {MEASURED_SOURCE}
    assert sorted((int(e.source_url.rsplit("/", 1)[1]), e.metric_type, e.metric_value)
                  for e in own) == values_of(measured(client, world, ids["step-1"]))


def test_main_branch_follows_access_and_a_private_model_carries_no_measurement(
        client, world, settings, files):
    ids = evaluate(client, world, settings, files, ("old", "public"), ("new", "public"))
    url = f"/api/v1/models/{world.model_a}/card.md"

    def measured_ids(headers=None) -> set[int]:
        ours, _ = split(hub_evals(client.get(url, headers=headers or {}).text))
        return {int(e.source_url.rsplit("/", 1)[1]) for e in ours}

    assert measured_ids() == set(measured(client, world, ids["new"]))
    # Taken back to partners: the main branch is the older public checkpoint again.
    assert client.patch(f"/api/v1/checkpoints/{ids['new']}", json={"access_level": "partners"},
                        headers=world.a_member.headers).status_code == 200
    for headers in ({}, world.a_member.headers):
        assert measured_ids(headers) == set(measured(client, world, ids["old"]))
    # A private model has no public checkpoint: its members' export carries no numbers
    # in `model-index` (and says why), outsiders get no export at all.
    model = client.get(f"/api/v1/models/{world.model_a}").json()
    assert client.patch(f"/api/v1/models/{world.model_a}",
                        json={"version": model["version"], "public": False},
                        headers=world.a_member.headers).status_code == 200
    text = client.get(url, headers=world.a_member.headers).text
    assert "model-index" not in ModelCard(text).data.to_dict()
    assert "No checkpoint of this model is public yet" in text
    assert client.get(url).status_code == 404
