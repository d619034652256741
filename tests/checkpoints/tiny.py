"""Tiny real GPT-2 checkpoints built from a config (no downloads), for upload and eval tests."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

EOT = "<|endoftext|>"
_SUBJECTS = ["The registry", "A lab", "The partner", "Our model", "The detector", "A reviewer",
             "The coordinator", "Each checkpoint"]
_VERBS = ["measured", "released", "reviewed", "published", "evaluated", "withheld"]
_OBJECTS = ["the small model in February", "a larger model after six months",
            "samples of synthetic text", "the staged release plan", "its model card",
            "the detection accuracy"]
# Distinct documents (the corpus split hashes each one), a few sentences each.
TEXTS = [f"{s} {v} {o}. {_SUBJECTS[(i + 3) % 8]} {_VERBS[(i + 1) % 6]} {_OBJECTS[(i + 2) % 6]}."
         f" Then {_SUBJECTS[(i + 5) % 8].lower()} {_VERBS[(i + 4) % 6]} {_OBJECTS[i % 6]}."
         for i, (s, v, o) in enumerate((s, v, o) for s in _SUBJECTS for v in _VERBS[:3]
                                       for o in _OBJECTS[:2])]


def corpus():
    from app.evals.corpus import make_corpus

    return make_corpus("tiny", TEXTS)


@lru_cache(maxsize=4)
def _build(root: str, seed: int) -> str:
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    out = Path(root) / f"tiny-gpt2-{seed}"
    if (out / "config.json").exists():
        return str(out)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(TEXTS, vocab_size=300, min_frequency=1, special_tokens=[EOT],
                            show_progress=False)
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, bos_token=EOT,
                                  eos_token=EOT, unk_token=EOT, model_max_length=128)
    eot = tok.convert_tokens_to_ids(EOT)
    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=len(tok), n_positions=128, n_layer=1, n_head=2, n_embd=16,
                     bos_token_id=eot, eos_token_id=eot)
    model = GPT2LMHeadModel(cfg)
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return str(out)


def tiny_gpt2(root: Path, seed: int = 0) -> Path:
    """A 1-layer GPT-2 with a 300-token byte-level BPE tokenizer, saved as safetensors."""
    return Path(_build(str(root), seed))


def checkpoint_files(model_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(Path(model_dir).iterdir()) if p.is_file()}


def upload(client, actor, files: dict[str, bytes], *, model: str = "lab-a/m",
           name: str = "step-1", access: str = "public"):
    """POST /api/v1/checkpoints as multipart, the way `curl -F` or requests would."""
    parts = [("files", (fname, content, "application/octet-stream"))
             for fname, content in files.items()]
    return client.post("/api/v1/checkpoints", headers=actor.headers if actor else {},
                       data={"model": model, "name": name, "access_level": access},
                       files=parts)


# Suite settings small enough that all three suites run in a few seconds on a CPU.
SMALL = {"perplexity": {"max_length": 64, "stride": 32, "max_tokens": 2000},
         "detectability": {"n_samples": 16, "gen_tokens": 8, "prompt_tokens": 4},
         "bias_association": {"n_bootstrap": 50,
                              "words": {"occupation": ["nurse", "engineer"],
                                        "attribute": ["kind", "angry"]}}}
