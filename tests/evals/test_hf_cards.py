"""Hugging Face cards read and written by huggingface_hub, and lm-eval files written by the
real harness: what a Hub user and an lm-eval user would check."""

from __future__ import annotations

import copy
import json
import math
from datetime import datetime

import pytest
from huggingface_hub import ModelCard
from huggingface_hub.repocard_data import model_index_to_eval_results

from tests.checkpoints.tiny import checkpoint_files, tiny_gpt2, upload
from tests.evals.test_results_api import LM_EVAL, README, measured_family, report


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return checkpoint_files(tiny_gpt2(tmp_path_factory.mktemp("tiny")))


@pytest.fixture(scope="module")
def lm_eval_file(tmp_path_factory):
    """A results file written by lm-evaluation-harness itself (offline, tiny local model)."""
    pytest.importorskip("lm_eval")
    from tests.evals.conftest import save_tiny_model
    from tests.evals.lm_eval_files import ROWS, run_lm_eval

    root = tmp_path_factory.mktemp("lm-eval")
    model = save_tiny_model(root / "model", [r["q"] + " " + c for r in ROWS
                                              for c in r["choices"]] * 4)
    return run_lm_eval(model, root), str(root)


def card_values(text: str) -> list:
    """Every metric as huggingface_hub reads the card (strict: errors raise)."""
    card = ModelCard(text)
    _, evals = model_index_to_eval_results(card.data.to_dict()["model-index"])
    return evals


def test_real_lm_eval_file_imports_faithfully(client, world, lm_eval_file):
    doc, root = lm_eval_file
    resp = report(client, world.a_member, world.model_a, "lm-eval-harness", doc)
    assert resp.status_code == 201, resp.text
    rows = {r["suite_id"]: r for r in resp.json()}
    assert set(rows) == {"sg_colours", "sg_temps", "sg_group"}
    for task, row in rows.items():
        # Metrics are what `higher_is_better` names: never sample_len or alias.
        assert set(row["metrics"]) == {"acc", "acc_norm"} - ({"acc_norm"} if task == "sg_group"
                                                            else set())
        assert row["metrics"]["acc"] == doc["results"][task]["acc,none"]
        assert row["details"]["stderr"]["acc"] == doc["results"][task]["acc_stderr,none"]
        assert row["details"]["higher_is_better"]["acc"] is True
        assert row["details"]["alias"] == task
    colours = rows["sg_colours"]
    assert colours["details"]["n_samples"] == {"original": 3, "effective": 3}
    assert colours["details"]["subset"] == "colours"
    assert colours["details"]["hub"]["dataset"]["config"] == "colours"
    assert rows["sg_group"]["details"]["subtasks"] == ["sg_colours", "sg_temps"]
    # Provenance names no file on the importer's machine, and dates are ISO 8601.
    assert root not in json.dumps(resp.json())
    assert colours["origin"]["model_args"].startswith("pretrained=<local>/model")
    assert datetime.fromisoformat(colours["origin"]["date"]).tzinfo is not None


def test_a_group_listed_only_under_groups_is_imported(client, world, lm_eval_file):
    doc = copy.deepcopy(lm_eval_file[0])
    del doc["results"]["sg_group"]
    resp = report(client, world.a_member, world.model_a, "lm-eval-harness", doc)
    assert resp.status_code == 201
    group = next(r for r in resp.json() if r["suite_id"] == "sg_group")
    assert group["details"]["subtasks"] == ["sg_colours", "sg_temps"]
    doc["groups"]["sg_group"] = {"alias": "sg_group", "acc,none": "N/A"}
    bad = report(client, world.a_member, world.model_a, "lm-eval-harness", doc)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == \
        "content.groups.sg_group"


def test_na_stderr_is_absent_with_a_warning(client, world):
    doc = copy.deepcopy(LM_EVAL)
    doc["results"]["hellaswag"]["acc_norm,none"] = float("nan")
    # Sent as the file's text: Python's json (and so lm-eval) writes NaN as a bare literal.
    resp = report(client, world.a_member, world.model_a, "lm-eval-harness", json.dumps(doc))
    rows = {r["suite_id"]: r for r in resp.json()}
    gsm = rows["gsm8k"]
    assert "exact_match,flexible-extract" not in gsm["details"]["stderr"]
    assert any("N/A" in w for w in gsm["details"]["warnings"])
    assert "acc_norm" not in rows["hellaswag"]["metrics"]
    assert any("acc_norm" in w for w in rows["hellaswag"]["details"]["warnings"])


def test_checkpoint_card_parses_and_is_a_fixed_point(client, world, settings, files,
                                                      lm_eval_file, tmp_path):
    ckpts = measured_family(client, world, settings, files)
    public = ckpts["public"]["id"]
    assert report(client, world.a_member, world.model_a, "lm-eval-harness", lm_eval_file[0],
                  checkpoint_id=public).status_code == 201
    url = f"/api/v1/checkpoints/{public}/card.md"
    first = client.get(url).text
    assert "verified" not in first
    evals = card_values(first)
    stored = client.get(f"/api/v1/evals/results?checkpoint_id={public}&limit=200").json()
    expected = sorted((r["id"], k, v) for r in stored["items"] for k, v in r["metrics"].items()
                      if isinstance(v, (int, float)) and math.isfinite(v))
    got = sorted((int(e.source_url.rsplit("/", 1)[1]) if "/api/v1/evals/results/" in
                  e.source_url else -1, e.metric_type + (f",{e.metric_config}"
                                                         if e.metric_config else ""),
                  e.metric_value) for e in evals)
    # Every stored number comes back from the Hub's parser, under its own result's URL.
    assert got == expected
    assert all(e.source_url.startswith("http://testserver") for e in evals)
    assert all(e.source_name for e in evals)
    stderr = {(e.dataset_type, e.metric_type): (e.metric_args or {}).get("stderr")
              for e in evals}
    assert stderr[("hellaswag", "acc")] == 0.0045
    # Load and save with huggingface_hub, import the saved file, export again: same bytes.
    card = ModelCard(first)
    card.save(tmp_path / "README.md")
    saved = (tmp_path / "README.md").read_text()
    back = report(client, world.a_member, world.model_a, "model-index", saved,
                  checkpoint_id=public)
    assert back.status_code == 201, back.text
    assert client.get(url).text == first
    again = client.get(f"/api/v1/evals/results?checkpoint_id={public}&limit=200").json()
    assert len(again["items"]) == len(stored["items"])
    model_card = client.get(f"/api/v1/models/{world.model_a}/card.md").text
    # The model-level LAMBADA report, and what the registry measured on the main-branch
    # checkpoint (the newest public one), each naming it.
    values = card_values(model_card)
    assert sorted(e.metric_value for e in values
                  if e.source_name.endswith("on checkpoint step-1")) == \
        sorted(v for r in stored["items"] if r["source"] == "measured"
               for v in r["metrics"].values() if isinstance(v, (int, float)))
    assert len([e for e in values if "on checkpoint" not in e.source_name]) == 2
    assert report(client, world.a_member, world.model_a, "model-index",
                  str(ModelCard(model_card))).status_code == 201
    assert client.get(f"/api/v1/models/{world.model_a}/card.md").text == model_card


def test_tasks_over_one_dataset_stay_apart(client, world):
    doc = copy.deepcopy(LM_EVAL)
    doc["results"]["hellaswag_copy"] = dict(doc["results"]["hellaswag"], **{"acc,none": 0.5})
    doc["configs"]["hellaswag_copy"] = doc["configs"]["hellaswag"]
    rows = report(client, world.a_member, world.model_a, "lm-eval-harness", doc).json()
    assert {r["suite_id"]: r["metrics"]["acc"] for r in rows if "acc" in r["metrics"]} == \
        {"hellaswag": 0.2891, "hellaswag_copy": 0.5}
    values = {(e.dataset_type, e.metric_type): e.metric_value for e in card_values(
        client.get(f"/api/v1/models/{world.model_a}/card.md").text)}
    assert values[("hellaswag", "acc")] == 0.2891
    assert values[("hellaswag_copy", "acc")] == 0.5


def test_reported_results_can_be_repaired_and_deleted(client, world):
    (row, _) = report(client, world.a_member, world.model_a, "lm-eval-harness",
                      LM_EVAL).json()
    card = client.get(f"/api/v1/models/{world.model_a}/card.md").text
    sources = {e.source_url for e in card_values(card)}
    assert sources == {f"http://testserver.local/api/v1/evals/results/{i}"
                       for i in (row["id"], row["id"] + 1)}
    path = f"/api/v1/evals/results/{row['id']}"
    body = {"source_name": "Our paper", "source_url": "https://example.org/paper"}
    assert client.patch(path, json=body, headers=world.b_member.headers).status_code == 403
    bad = client.patch(path, json={"source_url": "/relative"}, headers=world.a_member.headers)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "source_url"
    ok = client.patch(path, json=body, headers=world.a_member.headers)
    assert ok.status_code == 200 and ok.json()["origin"]["source_url"] == body["source_url"]
    card = client.get(f"/api/v1/models/{world.model_a}/card.md").text
    assert "https://example.org/paper" in {e.source_url for e in card_values(card)}
    assert client.delete(path, headers=world.b_member.headers).status_code == 403
    assert client.delete(path, headers=world.a_member.headers).status_code == 200
    assert client.get(path).status_code == 404
    assert len(card_values(client.get(f"/api/v1/models/{world.model_a}/card.md").text)) == 2
    events = client.get(f"/api/v1/events?entity_type=model&entity_id={world.model_a}",
                        headers=world.a_member.headers).json()["items"]
    actions = [e["action"] for e in events]
    assert "reported_result_updated" in actions and "reported_result_deleted" in actions


def test_reimport_with_a_url_sets_it(client, world):
    report(client, world.a_member, world.model_a, "lm-eval-harness", LM_EVAL)
    rows = report(client, world.a_member, world.model_a, "lm-eval-harness", LM_EVAL,
                  source_name="run 7", source_url="https://example.org/run/7").json()
    assert {r["origin"]["source_url"] for r in rows} == {"https://example.org/run/7"}


@pytest.mark.parametrize("text,field", [
    ("---\nmodel-index: &a\n- name: x\n  results: *a\n---\n", "content"),
    (("---\nmodel-index:\n- name: x\n  results:\n  - task: {type: text-generation}\n"
      "    dataset: {type: d, name: D}\n    metrics:\n    - {type: acc, value: 1}\n"
      "    - {type: acc, value: 2}\n---\n"), "content.model-index[0].results[0].metrics[1]"),
    (("---\nmodel-index:\n- name: x\n  results:\n  - task: {type: t}\n"
      "    dataset: {type: d, name: D}\n    metrics: [{type: acc, value: 1}]\n"
      "  - task: {type: t}\n    dataset: {type: d, name: E}\n"
      "    metrics: [{type: f1, value: 1}]\n---\n"), "content.model-index[0].results[1]"),
])
def test_cards_the_hub_would_mangle_are_refused(client, world, text, field):
    resp = report(client, world.a_member, world.model_a, "model-index", text)
    assert resp.status_code == 422, resp.text
    assert resp.json()["errors"][0]["field"] == field


def test_card_import_keeps_what_the_card_says(client, world):
    text = "\n" + README.replace("    metrics:\n", "    metrics:\n    - type: f1\n"
                                 "      value: 0.5\n      config: macro\n"
                                 "      args: {average: macro}\n", 1)
    resp = report(client, world.a_member, world.model_a, "model-index", text)
    assert resp.status_code == 201, resp.text  # a leading blank line, as the Hub allows
    (row,) = resp.json()
    hub = row["details"]["hub"]
    assert hub["task"] == {"type": "text-generation", "name": "Text Generation"}
    assert hub["metrics"]["f1,macro"] == {"type": "f1", "config": "macro",
                                          "args": {"average": "macro"}}
    assert hub["metrics"]["ppl"]["name"] == "PPL"
    assert row["origin"]["card_metadata"]["license"] == "mit"
    # The card's metadata fills the model's empty fields.
    model = client.get(f"/api/v1/models/{world.model_a}").json()
    assert (model["licence"], model["languages"]) == ("mit", ["en"])
    out = card_values(client.get(f"/api/v1/models/{world.model_a}/card.md").text)
    f1 = next(e for e in out if e.metric_type == "f1")
    assert (f1.metric_config, f1.metric_args, f1.task_name) == ("macro", {"average": "macro"},
                                                               "Text Generation")
    assert f1.source_url == "https://openai.com/blog/better-language-models/"


def test_hub_metadata_is_validated_and_exported(client, world):
    headers = world.a_member.headers
    base = {"lab": "lab-a", "name": "M2", "library_name": "transformers",
            "pipeline_tag": "text-generation", "base_model": ["openai-community/gpt2"],
            "datasets": ["Skylion007/openwebtext"]}
    for field, value in (("licence", "MIT-ish"), ("pipeline_tag", "chat"),
                         ("base_model", ["not a repo id"])):
        bad = client.post("/api/v1/models", json=base | {"slug": "m2", field: value},
                          headers=headers)
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"].startswith(field)
    resp = client.post("/api/v1/models", json=base | {"slug": "m2", "licence": "Apache-2.0"},
                       headers=headers)
    assert resp.status_code == 201, resp.text
    assert resp.json()["licence"] == "apache-2.0"
    data = ModelCard(client.get(f"/api/v1/models/{resp.json()['id']}/card.md").text).data
    assert (data.license, data.library_name, data.pipeline_tag, data.base_model,
            data.datasets) == ("apache-2.0", "transformers", "text-generation",
                               ["openai-community/gpt2"], ["Skylion007/openwebtext"])


def test_suite_references_with_a_version_are_accepted(client, world, files):
    ckpt = upload(client, world.a_member, files, name="step-1").json()
    for run in client.get(f"/api/v1/evals/runs?checkpoint_id={ckpt['id']}",
                          headers=world.a_member.headers).json()["items"]:
        client.post(f"/api/v1/evals/runs/{run['id']}/cancel", headers=world.a_member.headers)
    ok = client.post("/api/v1/evals/runs", json={"checkpoint_id": ckpt["id"],
                                                 "suite": "perplexity@1"},
                     headers=world.a_member.headers)
    assert ok.status_code == 201, ok.text
    assert ok.json()["suite_id"] == "perplexity"
    old = client.post("/api/v1/evals/runs", json={"checkpoint_id": ckpt["id"],
                                                  "suite": "perplexity@99"},
                      headers=world.a_member.headers)
    assert old.status_code == 404 and old.json()["errors"][0]["field"] == "suite"


def test_card_links_use_the_configured_public_url(client, world):
    import dataclasses

    from app.settings import configure, get_settings

    before = get_settings()
    configure(dataclasses.replace(before, public_url="https://registry.example.org"))
    try:
        report(client, world.a_member, world.model_a, "lm-eval-harness", LM_EVAL)
        text = client.get(f"/api/v1/models/{world.model_a}/card.md").text
    finally:
        configure(before)
    assert {e.source_url.rsplit("/", 1)[0] for e in card_values(text)} == \
        {"https://registry.example.org/api/v1/evals/results"}
