"""The demo family: four tiny GPT-2 checkpoints in the 2019 size ratios, trained locally."""

from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path

from app.evals.corpus import demo_corpus, split

# Same shape of scaling as GPT-2 124M/355M/774M/1.5B (more layers and wider), shrunk so
# the whole family trains on two CPU cores in minutes. Parameter ratios come out near
# x1, x2.9, x6.2, x12.5 of the smallest with the shared 2,048-token vocabulary.
SIZES = {
    "tiny-124m-scale": {"n_layer": 2, "n_embd": 48, "n_head": 4},
    "tiny-355m-scale": {"n_layer": 4, "n_embd": 80, "n_head": 5},
    "tiny-774m-scale": {"n_layer": 6, "n_embd": 104, "n_head": 8},
    "tiny-1.5b-scale": {"n_layer": 8, "n_embd": 136, "n_head": 8},
}

RECIPE = {
    "version": 1,
    "vocab_size": 2048,
    "block_size": 128,
    "batch_size": 8,
    "steps": 160,
    "lr": 3e-3,
    "warmup": 10,
    "weight_decay": 0.1,
    "seed": 0,
    "sizes": SIZES,
}
EOT = "<|endoftext|>"


def _recipe_digest(recipe: dict, corpus_digest: str) -> str:
    blob = json.dumps({"recipe": recipe, "corpus": corpus_digest}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def build_demo_family(data_dir: Path, progress: bool = True, *,
                      recipe_overrides: dict | None = None) -> dict[str, Path]:
    """Build (or reuse) the demo checkpoints under ``data_dir/demo-family/<name>/``.

    Each directory holds safetensors weights plus tokenizer files and a ``.recipe`` marker
    with the digest of recipe and corpus; a directory whose marker matches is reused.
    """
    recipe = {**RECIPE, **(recipe_overrides or {})}
    corpus = demo_corpus()
    digest = _recipe_digest(recipe, corpus.digest)
    root = Path(data_dir) / "demo-family"
    dirs = {name: root / name for name in recipe["sizes"]}
    if all(_marker(d) == digest for d in dirs.values()):
        return dirs

    import torch
    from tqdm import tqdm

    train_texts, _ = split(corpus, seed=recipe["seed"])
    tok = _train_tokenizer(train_texts, recipe["vocab_size"])
    eot = tok.convert_tokens_to_ids(EOT)
    stream = []
    for t in train_texts:  # documents separated by end-of-text, as in GPT-2 pretraining
        stream += tok.encode(t, add_special_tokens=False) + [eot]
    data = torch.tensor(stream, dtype=torch.long)

    torch.set_num_threads(max(1, torch.get_num_threads()))
    todo = [n for n, d in dirs.items() if _marker(d) != digest]
    bar = tqdm(total=recipe["steps"] * len(todo), desc="demo family", disable=not progress)
    for i, name in enumerate(recipe["sizes"]):
        if name not in todo:
            continue
        t0 = time.perf_counter()
        model = _train_one(recipe, recipe["sizes"][name], len(tok), data, recipe["seed"] + i,
                           eot, bar)
        out = dirs[name]
        out.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(out, safe_serialization=True)
        tok.save_pretrained(out)
        n_params = sum(p.numel() for p in model.parameters())
        info = {"name": name, "parameters": n_params, "train_tokens_seen":
                recipe["steps"] * recipe["batch_size"] * recipe["block_size"],
                "train_seconds": round(time.perf_counter() - t0, 2), "recipe_digest": digest}
        (out / "demo_family.json").write_text(json.dumps(info, indent=1))
        (out / ".recipe").write_text(digest)  # written last: a marker means a complete build
    bar.close()
    return dirs


def _marker(d: Path) -> str | None:
    p = d / ".recipe"
    return p.read_text().strip() if p.exists() else None


def _train_tokenizer(texts: list[str], vocab_size: int):
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=vocab_size, min_frequency=2,
                            special_tokens=[EOT], show_progress=False)
    # Wrapped as a transformers fast tokenizer so AutoTokenizer can load it offline.
    return PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, bos_token=EOT,
                                   eos_token=EOT, unk_token=EOT, model_max_length=1024)


def _train_one(recipe, size, vocab, data, seed, eot, bar):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=vocab, n_positions=recipe["block_size"] * 2,
                     bos_token_id=eot, eos_token_id=eot, **size)
    model = GPT2LMHeadModel(cfg)
    model.train()
    # No weight decay on biases and norms, as in nanoGPT.
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": recipe["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=recipe["lr"], betas=(0.9, 0.95))
    gen = torch.Generator().manual_seed(seed)
    bs, T, steps = recipe["batch_size"], recipe["block_size"], recipe["steps"]
    for step in range(steps):
        # Linear warmup then cosine decay to a tenth: the usual recipe for short runs.
        w = recipe["warmup"]
        frac = (step + 1) / w if step < w else 0.1 + 0.45 * (
            1 + math.cos(math.pi * (step - w) / max(1, steps - w)))
        for g in opt.param_groups:
            g["lr"] = recipe["lr"] * frac
        starts = torch.randint(0, len(data) - T - 1, (bs,), generator=gen)
        x = torch.stack([data[s : s + T] for s in starts])
        loss = model(input_ids=x, labels=x).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}")
    return model.eval()
