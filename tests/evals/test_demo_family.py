"""The demo family builds real, loadable, cached checkpoints in the 2019 size order."""

import json
import time

import pytest

from app.evals.demo_family import SIZES, build_demo_family

TINY = {
    "vocab_size": 300, "block_size": 32, "batch_size": 2, "steps": 2,
    "sizes": {"xs": {"n_layer": 1, "n_embd": 16, "n_head": 2},
              "s": {"n_layer": 2, "n_embd": 24, "n_head": 2}},
}


def test_default_sizes_follow_gpt2_parameter_ratios():
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    with torch.device("meta"):  # shapes only: no memory, no weight initialisation
        counts = [sum(p.numel() for p in GPT2LMHeadModel(GPT2Config(
            vocab_size=2048, n_positions=256, **s)).parameters()) for s in SIZES.values()]
    ratios = [c / counts[0] for c in counts]
    for got, want in zip(ratios, [1, 2.9, 6.2, 12.5]):
        assert got == pytest.approx(want, rel=0.1)


@pytest.mark.slow
def test_demo_family_builds_loads_and_is_cached(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dirs = build_demo_family(tmp_path, progress=False, recipe_overrides=TINY)
    assert list(dirs) == ["xs", "s"]
    params = []
    for d in dirs.values():
        assert (d / "model.safetensors").exists() and (d / ".recipe").exists()
        tok = AutoTokenizer.from_pretrained(d, local_files_only=True)
        assert tok.decode(tok.encode("The if statement")) == "The if statement"
        model = AutoModelForCausalLM.from_pretrained(d, local_files_only=True,
                                                     use_safetensors=True)
        params.append(sum(p.numel() for p in model.parameters()))
        assert json.loads((d / "demo_family.json").read_text())["parameters"] == params[-1]
    assert params[0] < params[1]
    weights = (dirs["xs"] / "model.safetensors").read_bytes()
    t0 = time.perf_counter()
    assert build_demo_family(tmp_path, progress=False, recipe_overrides=TINY) == dirs
    assert time.perf_counter() - t0 < 5
    assert (dirs["xs"] / "model.safetensors").read_bytes() == weights
