"""The torch runner: safe loading, KV-cache sampling and windowed scoring are correct."""

import json
import math
import shutil

import pytest

from app.evals import runner
from app.evals.corpus import Corpus, demo_corpus, load_corpus, make_corpus, split
from app.evals.suites import run_suite


def test_model_with_auto_map_is_refused(tiny_model, tiny_corpus, tmp_path):
    bad = tmp_path / "remote-code"
    shutil.copytree(tiny_model, bad)
    cfg = json.loads((bad / "config.json").read_text())
    cfg["auto_map"] = {"AutoModelForCausalLM": "evil.EvilModel"}
    (bad / "config.json").write_text(json.dumps(cfg))
    (bad / "evil.py").write_text("raise SystemExit('remote code ran')\n")
    with pytest.raises(runner.UnsafeModel, match="auto_map"):
        run_suite("perplexity", bad, tiny_corpus)


def test_checkpoint_without_safetensors_is_refused(tiny_model, tmp_path):
    bad = tmp_path / "pickled"
    shutil.copytree(tiny_model, bad)
    (bad / "model.safetensors").rename(bad / "pytorch_model.bin")
    with pytest.raises(runner.UnsafeModel, match="safetensors"):
        runner.load_model(bad)


def test_batched_kv_sampling_matches_one_by_one_generate(tiny_model):
    import torch

    lm = runner.load_model(tiny_model, "cpu")
    prompts = [[lm.bos_id] + runner.encode(lm, t) for t in
               ["The if statement", "A class", "Exceptions are raised when an error"]]
    # top_k=1 is greedy, so the left-padded, cached batch must equal plain generate().
    batched = runner.sample(lm, prompts, 10, top_k=1, allow_eos=False)
    for p, got in zip(prompts, batched):
        ref = lm.model.generate(torch.tensor([p]), max_new_tokens=10, do_sample=False,
                                pad_token_id=lm.bos_id, suppress_tokens=[lm.bos_id])
        assert got == ref[0, len(p):].tolist()


def test_window_nll_matches_full_context_when_text_fits(tiny_model):
    lm = runner.load_model(tiny_model, "cpu")
    ids = [lm.bos_id] + runner.encode(lm, demo_corpus().texts[0])[:100]
    full, n_full = runner.window_nll(lm, ids, max_length=128, stride=64, batch_size=4)
    small, n_small = runner.window_nll(lm, ids, max_length=32, stride=16, batch_size=3)
    assert n_full == n_small == len(ids) - 1
    assert math.isfinite(small) and small > 0
    # Same text scored once with full context and once in windows: same total per token.
    ref = sum(lp for lp, _ in runner.continuation_logprobs(lm, [([ids[0]], ids[1:])]))
    assert full == pytest.approx(-ref, rel=1e-4)


def test_demo_corpus_digest_is_stable_and_split_deterministic():
    a, b = demo_corpus(), demo_corpus()
    assert a.digest == b.digest and len(a.texts) > 300
    assert all(len(t) >= 150 for t in a.texts)
    train, held = split(a, seed=0)
    assert (train, held) == split(b, seed=0)
    assert set(train).isdisjoint(held) and len(train) + len(held) == len(a.texts)
    assert 0.1 < len(held) / len(a.texts) < 0.3
    assert split(a, seed=1) != (train, held)
    # A document's side depends on itself only: dropping others never moves it.
    sub = make_corpus("sub", a.texts[:50])
    assert set(split(sub)[1]) <= set(held)


def test_load_corpus_txt_and_jsonl(tmp_path):
    (tmp_path / "c.txt").write_text("First document.\n\nSecond\ndocument.\n\n\n")
    rows = ['{"text": "First document."}', '{"text": "Second\\ndocument."}']
    (tmp_path / "c.jsonl").write_text("\n".join(rows) + "\n")
    txt, jsonl = load_corpus(tmp_path / "c.txt"), load_corpus(tmp_path / "c.jsonl")
    assert isinstance(txt, Corpus) and txt.texts == ["First document.", "Second\ndocument."]
    assert jsonl.texts == txt.texts and jsonl.digest == txt.digest
    (tmp_path / "bad.jsonl").write_text('{"body": "x"}\n')
    with pytest.raises(ValueError, match="line 1"):
        load_corpus(tmp_path / "bad.jsonl")
