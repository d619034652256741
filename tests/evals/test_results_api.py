"""Reported results (lm-eval JSON, HF model-index), the live model card and its HF export."""

from __future__ import annotations

import pytest

from app.evals.reported import front_matter
from app.evals.worker import run_worker
from tests.checkpoints.tiny import SMALL, checkpoint_files, corpus, tiny_gpt2, upload

LM_EVAL = {
    "results": {
        "hellaswag": {"alias": "hellaswag", "acc,none": 0.2891, "acc_stderr,none": 0.0045,
                      "acc_norm,none": 0.3114, "acc_norm_stderr,none": 0.0046},
        "gsm8k": {"alias": "gsm8k", "exact_match,strict-match": 0.0,
                  "exact_match_stderr,strict-match": 0.0,
                  "exact_match,flexible-extract": 0.0136,
                  "exact_match_stderr,flexible-extract": "N/A"},
    },
    "configs": {"hellaswag": {"task": "hellaswag", "dataset_path": "hellaswag",
                              "num_fewshot": 0, "output_type": "multiple_choice"},
                "gsm8k": {"task": "gsm8k", "dataset_path": "gsm8k", "num_fewshot": 5}},
    "versions": {"hellaswag": 1.0, "gsm8k": 3.0},
    "n-shot": {"hellaswag": 0, "gsm8k": 5},
    "config": {"model": "hf", "model_args": "pretrained=gpt2", "batch_size": 8},
    "git_hash": "4d7d2f6", "date": 1718000000.0,
}
# The older lm-eval layout: plain metric names, integer versions, no configs.
LM_EVAL_OLD = {"results": {"lambada_openai": {"ppl": 40.055, "ppl_stderr": 1.48,
                                              "acc": 0.3256, "acc_stderr": 0.0065}},
               "versions": {"lambada_openai": 0}, "config": {"model": "gpt2"}}
README = """---
language: en
license: mit
model-index:
- name: gpt2
  results:
  - task:
      type: text-generation
      name: Text Generation
    dataset:
      name: LAMBADA
      type: lambada
    metrics:
    - type: ppl
      value: 35.13
      name: PPL
      verified: false
    - type: accuracy
      value: 45.99
    source:
      name: Language Models are Unsupervised Multitask Learners
      url: https://openai.com/blog/better-language-models/
---

# GPT-2
"""


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return checkpoint_files(tiny_gpt2(tmp_path_factory.mktemp("tiny")))


def report(client, actor, model_id: int, fmt: str, content, **extra):
    return client.post(f"/api/v1/models/{model_id}/reported-results",
                       json={"format": fmt, "content": content, **extra},
                       headers=actor.headers if actor else {})


def test_import_lm_eval_results(client, world):
    resp = report(client, world.a_member, world.model_a, "lm-eval-harness", LM_EVAL,
                  source_name="lab's own run")
    assert resp.status_code == 201, resp.text
    rows = {r["suite_id"]: r for r in resp.json()}
    assert set(rows) == {"hellaswag", "gsm8k"}
    hs = rows["hellaswag"]
    assert hs["source"] == "reported" and hs["metrics"] == {"acc": 0.2891, "acc_norm": 0.3114}
    assert hs["details"]["stderr"] == {"acc": 0.0045, "acc_norm": 0.0046}
    assert hs["suite_version"] == 1 and hs["dataset_name"] == "hellaswag"
    assert hs["config"]["num_fewshot"] == 0 and hs["details"]["n_shot"] == 0
    assert hs["origin"]["format"] == "lm-eval-harness" and hs["origin"]["git_hash"] == "4d7d2f6"
    # Filters other than lm-eval's default "none" stay in the metric name.
    assert rows["gsm8k"]["metrics"] == {"exact_match,strict-match": 0.0,
                                        "exact_match,flexible-extract": 0.0136}
    # Importing the same file again changes nothing.
    again = report(client, world.a_member, world.model_a, "lm-eval-harness", LM_EVAL).json()
    assert sorted(r["id"] for r in again) == sorted(r["id"] for r in resp.json())
    old = report(client, world.a_member, world.model_a, "lm-eval-harness", LM_EVAL_OLD)
    assert old.status_code == 201
    assert old.json()[0]["metrics"] == {"ppl": 40.055, "acc": 0.3256}


def test_import_model_index_readme(client, world):
    resp = report(client, world.a_member, world.model_a, "model-index", README)
    assert resp.status_code == 201, resp.text
    (row,) = resp.json()
    assert row["suite_id"] == "lambada" and row["dataset_name"] == "LAMBADA"
    assert row["metrics"] == {"ppl": 35.13, "accuracy": 45.99}
    assert row["origin"]["source_name"].startswith("Language Models")
    assert row["origin"]["source_url"] == "https://openai.com/blog/better-language-models/"


@pytest.mark.parametrize("fmt,content,field", [
    ("lm-eval-harness", {"versions": {}}, "content.results"),
    ("lm-eval-harness", "{not json", "content"),
    ("model-index", "no front matter", "content"),
    ("model-index", "---\nlicense: mit\n---\n", "content.model-index"),
    ("model-index", {"model-index": [{"name": "x", "results": [
        {"dataset": {"type": "d"}, "metrics": [{"type": "acc", "value": "high"}]}]}]},
     "content.model-index[0].results[0].metrics"),
])
def test_bad_reported_results_name_the_field(client, world, fmt, content, field):
    resp = report(client, world.a_member, world.model_a, fmt, content)
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["field"] == field


def test_only_the_labs_members_report(client, world):
    assert report(client, None, world.model_a, "lm-eval-harness", LM_EVAL).status_code == 401
    assert report(client, world.b_member, world.model_a, "lm-eval-harness",
                  LM_EVAL).status_code == 403
    assert report(client, world.coord, world.model_a, "lm-eval-harness",
                  LM_EVAL).status_code == 201


def measured_family(client, world, settings, files) -> dict:
    """A public and an internal checkpoint, perplexity measured on both, plus reports."""
    public = upload(client, world.a_member, files, name="step-1").json()
    internal = upload(client, world.a_member, files, name="step-2", access="internal").json()
    for ckpt in (public, internal):
        for run in client.get(f"/api/v1/evals/runs?checkpoint_id={ckpt['id']}",
                              headers=world.a_member.headers).json()["items"]:
            if run["suite_id"] != "perplexity":
                client.post(f"/api/v1/evals/runs/{run['id']}/cancel",
                            headers=world.a_member.headers)
    assert run_worker(settings, once=True, corpus=corpus(), config_overrides=SMALL,
                      enqueue_every_s=None) == 2
    assert report(client, world.a_member, world.model_a, "lm-eval-harness", LM_EVAL,
                  checkpoint_id=public["id"]).status_code == 201
    assert report(client, world.a_member, world.model_a, "model-index",
                  README).status_code == 201
    return {"public": public, "internal": internal}


def test_card_separates_measured_and_reported_with_provenance(client, world, settings,
                                                               files):
    ckpts = measured_family(client, world, settings, files)
    card = client.get(f"/api/v1/models/{world.model_a}/card").json()
    assert card["model"]["ref"] == "lab-a/m"
    # Anonymous callers see the public checkpoint only, never the internal one's numbers.
    assert [c["name"] for c in card["checkpoints"]] == ["step-1"]
    (c,) = card["checkpoints"]
    (m,) = c["measured"]
    assert m["suite"].startswith("perplexity@") and m["current"] is True
    assert m["metrics"]["perplexity"] > 1
    prov = m["provenance"]
    assert prov["source"] == "measured" and prov["manifest_digest"] == c["manifest_digest"]
    for key in ("dataset_digest", "seed", "config", "code_version", "library_versions",
                "device", "dtype", "duration_s", "tokens_processed"):
        assert prov[key] is not None, key
    assert {r["suite_id"] for r in c["reported"]} == {"hellaswag", "gsm8k"}
    assert all(r["provenance"]["source"] == "reported" for r in c["reported"])
    assert [r["suite_id"] for r in card["reported"]] == ["lambada"]
    assert {r["suite"]: r["status"] for r in c["runs"]}["perplexity@1"] == "succeeded"
    inside = client.get(f"/api/v1/models/{world.model_a}/card",
                        headers=world.a_member.headers).json()
    assert [c["name"] for c in inside["checkpoints"]] == ["step-1", "step-2"]
    results = client.get("/api/v1/evals/results?model=lab-a/m&limit=200").json()["items"]
    assert ckpts["internal"]["id"] not in {r["checkpoint_id"] for r in results}


def test_hf_export_round_trips_through_the_importer(client, world, settings, files):
    ckpts = measured_family(client, world, settings, files)
    resp = client.get(f"/api/v1/checkpoints/{ckpts['public']['id']}/card.md")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/markdown")
    text = resp.text
    meta = front_matter(text)
    (entry,) = meta["model-index"]
    assert entry["name"] == "lab-a/m@step-1"
    assert "## Measured by the registry" in text and "## Reported by the lab" in text
    exported = sorted(
        (r["dataset"]["type"], r["dataset"]["name"], m["type"], m["value"])
        for r in entry["results"] for m in r["metrics"])
    # Lab B re-imports lab A's exported README into its own model: same numbers back.
    back = report(client, world.b_member, world.model_b, "model-index", text)
    assert back.status_code == 201, back.text
    imported = sorted((r["suite_id"], r["dataset_name"], k.partition(",")[0], v)
                      for r in back.json() for k, v in r["metrics"].items())
    assert imported == exported
    assert "tiny" in {s for s, _, _, _ in imported}
    # The model's own README carries the model-level report and links each checkpoint.
    model_card = client.get(f"/api/v1/models/{world.model_a}/card.md").text
    assert [e["name"] for e in front_matter(model_card)["model-index"]] == ["lab-a/m"]
    assert f"/api/v1/checkpoints/{ckpts['public']['id']}/card.md" in model_card
