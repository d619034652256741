"""Suites on a tiny real model: sane numbers, determinism, provenance, comparisons."""

import math
import subprocess
import sys

import pytest

from app.evals.suites import SUITES, compare_bias, run_suite, transfer_matrix

FAST_DETECT = {"n_samples": 24, "prompt_tokens": 4, "gen_tokens": 12}
FAST_BIAS = {"n_bootstrap": 500, "words": {
    "occupation": ["nurse", "engineer", "doctor", "teacher", "lawyer", "cook", "pilot", "farmer"],
    "attribute": ["kind", "violent", "smart", "lazy", "honest", "poor", "rich", "angry"],
}}


def test_suite_specs_import_without_torch():
    # The web process lists suites and corpora; it must never pull in torch to do so.
    code = ("import sys, app.evals.suites, app.evals.corpus, app.evals.demo_family; "
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
    assert set(SUITES) == {"perplexity", "detectability", "bias_association"}
    assert all(isinstance(s.version, int) for s in SUITES.values())


def test_perplexity_is_sane_and_carries_provenance(tiny_model, tiny_corpus):
    seen = []
    r = run_suite("perplexity", tiny_model, tiny_corpus, progress=seen.append)
    assert math.isfinite(r.metrics["perplexity"]) and r.metrics["perplexity"] > 1
    assert r.metrics["bits_per_byte"] > 0
    # A random model is close to uniform over its vocabulary: perplexity near vocab size.
    assert r.metrics["perplexity"] < 3 * 300
    assert r.tokens_processed > 0 and r.device == "cpu" and r.dtype == "float32"
    assert set(r.library_versions) == {"torch", "transformers", "tokenizers", "python"}
    assert r.suite_version == 1 and r.corpus_digest == tiny_corpus.digest
    assert seen and seen[-1] == pytest.approx(1.0)


def test_perplexity_same_whatever_the_batch_size(tiny_model, tiny_corpus):
    a = run_suite("perplexity", tiny_model, tiny_corpus, config_overrides={"batch_size": 1})
    b = run_suite("perplexity", tiny_model, tiny_corpus, config_overrides={"batch_size": 7})
    assert a.metrics["perplexity"] == pytest.approx(b.metrics["perplexity"], rel=1e-4)


def test_detectability_metrics_are_probabilities(tiny_model, tiny_corpus):
    r = run_suite("detectability", tiny_model, tiny_corpus, config_overrides=FAST_DETECT)
    for method in ("t1", "topk40"):
        for det in ("tfidf", "zeroshot"):
            assert 0.0 <= r.metrics[f"{det}_acc_{method}"] <= 1.0
            assert 0.0 <= r.metrics[f"{det}_auroc_{method}"] <= 1.0
    assert r.details["examples"]["t1"]


def test_same_seed_same_metrics_other_seed_other_samples(tiny_model, tiny_corpus):
    a = run_suite("detectability", tiny_model, tiny_corpus, seed=3, config_overrides=FAST_DETECT)
    b = run_suite("detectability", tiny_model, tiny_corpus, seed=3, config_overrides=FAST_DETECT)
    c = run_suite("detectability", tiny_model, tiny_corpus, seed=4, config_overrides=FAST_DETECT)
    assert a.metrics == b.metrics and a.details == b.details
    assert a.details["examples"] != c.details["examples"]


def test_bias_cis_contain_the_point_estimate(tiny_model, tiny_corpus):
    r = run_suite("bias_association", tiny_model, tiny_corpus, seed=1,
                  config_overrides=FAST_BIAS)
    for cat in ("gender", "religion", "race", "mean"):
        lo, hi = r.metrics[f"{cat}_association_ci_low"], r.metrics[f"{cat}_association_ci_high"]
        assert lo <= r.metrics[f"{cat}_association"] <= hi
        assert r.metrics[f"{cat}_association"] >= 0
    again = run_suite("bias_association", tiny_model, tiny_corpus, seed=1,
                  config_overrides=FAST_BIAS)
    assert again.metrics == r.metrics


def test_compare_bias_between_checkpoints(tiny_model, tiny_model_b, tiny_corpus):
    a = run_suite("bias_association", tiny_model, tiny_corpus, config_overrides=FAST_BIAS)
    b = run_suite("bias_association", tiny_model_b, tiny_corpus, config_overrides=FAST_BIAS)
    same = compare_bias(a, a)
    assert same["overall"]["difference"] == 0 and same["overall"]["p_value"] == 1.0
    assert not same["significant_at_0_05"]
    diff = compare_bias(a, b)
    o = diff["overall"]
    assert 0 < o["p_value"] <= 1 and o["ci_low"] <= o["difference"] <= o["ci_high"]
    assert set(diff["categories"]) == {"gender", "religion", "race"}


def test_transfer_matrix_is_square_over_checkpoints(tiny_model, tiny_model_b, tiny_corpus):
    t = transfer_matrix({"a": tiny_model, "b": tiny_model_b}, tiny_corpus,
                        config_overrides=FAST_DETECT)
    assert t["labels"] == ["a", "b"]
    assert len(t["matrix"]) == 2 and all(len(row) == 2 for row in t["matrix"])
    assert all(0 <= x <= 1 for row in t["matrix"] for x in row)


def test_unknown_suite_and_config_key_are_refused(tiny_model, tiny_corpus):
    with pytest.raises(ValueError, match="unknown suite"):
        run_suite("toxicity", tiny_model, tiny_corpus)
    with pytest.raises(ValueError, match="unknown config key"):
        run_suite("perplexity", tiny_model, tiny_corpus, config_overrides={"strid": 3})
