"""Evaluation throughput: tokens/s and MFU of the runner's scoring and sampling vs naive loops.

    .venv/bin/python bench/evals.py                              # CPU, small model, < 2 min
    .venv/bin/python bench/evals.py --sizes 124M,1.5B --device cuda

Random-init GPT-2 models (GPT-2's 50,257-token vocabulary). Every ratio is measured
against a baseline run in the same process: fp32, batch 1 for scoring, and one
``model.generate`` call per prompt for sampling. MFU divides achieved model FLOP/s by the
FLOP/s of a large matmul timed here, in the same dtype, so it is a fraction of what this
device actually reaches, not of a datasheet number.
"""

from __future__ import annotations

import argparse
import copy
import time
from types import SimpleNamespace

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from app.evals import runner

SIZES = {  # n_layer, n_embd, n_head
    "mini": (4, 256, 4),
    "small": (6, 512, 8),
    "124M": (12, 768, 12),
    "355M": (24, 1024, 16),
    "774M": (36, 1280, 20),
    "1.5B": (48, 1600, 25),
}
VOCAB = 50257


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn, device: str) -> float:
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


def matmul_ceiling(device: str, dtype: torch.dtype) -> float:
    """FLOP/s of a big square matmul: the practical peak the model passes are compared to."""
    n = 8192 if device.startswith("cuda") else 2048
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b  # warm-up: kernel selection and allocation
    reps = 20 if device.startswith("cuda") else 3
    dt = timed(lambda: [a @ b for _ in range(reps)], device)
    return 2 * n**3 * reps / dt


def forward_flops(cfg: GPT2Config, tokens: int, ctx: float) -> float:
    """Kaplan et al.: 2 FLOPs per weight per token (the tied LM head included) plus attention."""
    d, L = cfg.n_embd, cfg.n_layer
    weights = 12 * L * d * d + VOCAB * d
    return tokens * (2 * weights + 2 * L * ctx * d)


def loaded(model, device: str, dtype: torch.dtype) -> runner.LoadedModel:
    # The runner only needs the end-of-text id from a tokenizer; a random model has no other.
    tok = SimpleNamespace(eos_token_id=VOCAB - 1)
    model = model.to(device=device, dtype=dtype).eval()
    return runner.LoadedModel(model, tok, device, str(dtype).removeprefix("torch."), VOCAB - 1,
                              model.config.n_positions)


def bench_size(name: str, args, device: str, fast_dtype: torch.dtype, ceilings: dict) -> list:
    L, d, h = SIZES[name]
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=VOCAB, n_layer=L, n_embd=d, n_head=h, n_positions=1024)
    base = GPT2LMHeadModel(cfg)
    fast = loaded(copy.deepcopy(base), device, fast_dtype)
    slow = loaded(base, device, torch.float32)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, VOCAB - 1, (args.score_tokens,), generator=g).tolist()
    rows = []

    # (1) Perplexity pass over the same token stream and the same windows.
    ctx = args.max_length / 2 + args.stride / 2  # mean attended context per scored token
    for label, lm, bs in (("runner", fast, args.batch), ("naive", slow, 1)):
        runner.window_nll(lm, ids[: args.max_length + 1], args.max_length, args.stride, bs)
        dt = timed(lambda lm=lm, bs=bs: runner.window_nll(lm, ids, args.max_length, args.stride,
                                                          bs), device)
        n = len(ids) - 1
        # Windows overlap: the model runs on max_length tokens per stride scored tokens.
        flops = forward_flops(cfg, n * args.max_length / args.stride, ctx)
        rows.append((name, "score", label, lm.dtype, bs, n, dt, flops, ceilings[lm.dtype]))

    # (2) Sampling: batched KV-cache loop vs one model.generate call per prompt.
    prompts = [ids[i * 7 : i * 7 + args.prompt_len] for i in range(args.n_prompts)]
    new = args.new_tokens
    flops = forward_flops(cfg, args.n_prompts * (args.prompt_len + new),
                          args.prompt_len + new / 2)
    runner.sample(fast, prompts[:2], 2, top_k=40)
    dt = timed(lambda: runner.sample(fast, prompts, new, top_k=40, batch_size=args.n_prompts,
                                     allow_eos=False), device)
    rows.append((name, "sample", "runner", fast.dtype, args.n_prompts, args.n_prompts * new, dt,
                 flops, ceilings[fast.dtype]))

    def naive():
        for p in prompts[: args.naive_prompts]:
            slow.model.generate(torch.tensor([p], device=device), max_new_tokens=new,
                                min_new_tokens=new, do_sample=True, top_k=40,
                                pad_token_id=VOCAB - 1)

    dt = timed(naive, device)
    frac = args.naive_prompts / args.n_prompts
    rows.append((name, "sample", "generate", slow.dtype, 1, args.naive_prompts * new, dt,
                 flops * frac, ceilings[slow.dtype]))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="mini", help=f"comma list of {', '.join(SIZES)}")
    ap.add_argument("--device", default=None)
    ap.add_argument("--score-tokens", type=int, default=4096)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--stride", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--n-prompts", type=int, default=32)
    ap.add_argument("--naive-prompts", type=int, default=4,
                    help="generate() calls to time (one prompt each); rates are per token")
    ap.add_argument("--prompt-len", type=int, default=16)
    ap.add_argument("--new-tokens", type=int, default=32)
    args = ap.parse_args()
    device = runner.pick_device(args.device)
    fast_dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    torch.manual_seed(0)
    ceilings = {str(dt): matmul_ceiling(device, dt) for dt in {fast_dtype, torch.float32}}
    ceilings = {k.removeprefix("torch."): v for k, v in ceilings.items()}
    print(f"device={device} torch={torch.__version__} threads={torch.get_num_threads()} "
          + " ".join(f"matmul_ceiling[{k}]={v / 1e12:.3f} TFLOP/s" for k, v in ceilings.items()))
    rows = []
    for name in args.sizes.split(","):
        rows += bench_size(name.strip(), args, device, fast_dtype, ceilings)
    print(f"{'size':6} {'pass':6} {'variant':9} {'dtype':9} {'batch':>5} {'tokens':>7} "
          f"{'sec':>7} {'tok/s':>9} {'TFLOP/s':>8} {'MFU':>6}")
    rate = {}
    for name, pas, var, dt_name, bs, n, sec, flops, ceil in rows:
        tps = n / sec
        rate[(name, pas, var)] = tps
        print(f"{name:6} {pas:6} {var:9} {dt_name:9} {bs:>5} {n:>7} {sec:>7.2f} {tps:>9.1f} "
              f"{flops / sec / 1e12:>8.4f} {flops / sec / ceil:>6.1%}")
    for name in args.sizes.split(","):
        name = name.strip()
        print(f"{name}: scoring runner/naive = "
              f"{rate[(name, 'score', 'runner')] / rate[(name, 'score', 'naive')]:.2f}x, "
              f"sampling runner/generate = "
              f"{rate[(name, 'sample', 'runner')] / rate[(name, 'sample', 'generate')]:.2f}x")


if __name__ == "__main__":
    main()
