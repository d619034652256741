"""The torch side of evaluations: safe model loading, batched scoring and KV-cache sampling."""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass
from pathlib import Path

import torch


class UnsafeModel(ValueError):
    """A checkpoint asks for something the registry never does (remote code, pickle)."""


@dataclass
class LoadedModel:
    model: torch.nn.Module
    tokenizer: object
    device: str
    dtype: str
    bos_id: int  # GPT-2 style: <|endoftext|> starts every scored or sampled sequence
    max_positions: int


def pick_device(device: str | None = None) -> str:
    if device:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def library_versions() -> dict[str, str]:
    import tokenizers
    import transformers

    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "python": platform.python_version(),
    }


def _refuse_remote_code(model_dir: Path) -> None:
    # trust_remote_code=False already stops execution; refusing early gives the uploader a
    # clear reason instead of a transformers error about an unknown architecture.
    for name in ("config.json", "tokenizer_config.json"):
        p = model_dir / name
        if p.exists():
            cfg = json.loads(p.read_text(encoding="utf-8"))
            if isinstance(cfg, dict) and cfg.get("auto_map"):
                raise UnsafeModel(f"{name} declares auto_map (custom code); refused")
    if not any(model_dir.glob("*.safetensors")):
        raise UnsafeModel("no .safetensors weights in the checkpoint; only safetensors load")


def load_model(model_dir: str | Path, device: str | None = None) -> LoadedModel:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir = Path(model_dir)
    _refuse_remote_code(model_dir)
    device = pick_device(device)
    # bf16 weights on GPU roughly double throughput; CPU bf16 matmuls are slow, keep fp32.
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    model = AutoModelForCausalLM.from_pretrained(
        model_dir,
        local_files_only=True,
        trust_remote_code=False,
        use_safetensors=True,
        dtype=dtype,
    )
    model.to(device).eval()
    tok = AutoTokenizer.from_pretrained(model_dir, local_files_only=True, trust_remote_code=False)
    bos = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    if bos is None:
        raise UnsafeModel("tokenizer has neither a BOS nor an EOS token")
    max_pos = getattr(model.config, "n_positions", None) or model.config.max_position_embeddings
    return LoadedModel(model, tok, device, str(dtype).removeprefix("torch."), bos, int(max_pos))


def encode(lm: LoadedModel, text: str) -> list[int]:
    return lm.tokenizer.encode(text, add_special_tokens=False)


def _pad_right(seqs: list[list[int]], pad: int, device: str):
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[i, : len(s)] = 1
    return ids.to(device), mask.to(device)


@torch.inference_mode()
def window_nll(lm: LoadedModel, ids: list[int], max_length: int, stride: int, batch_size: int,
               progress=None) -> tuple[float, int]:
    """Total NLL (nats) of ``ids[1:]`` given its prefix, by a sliding window.

    Each window sees up to ``max_length`` tokens and scores only the tokens the previous
    window did not, so every token is scored once with at least ``max_length - stride``
    tokens of context (except near the start). Windows are independent, so they batch.
    """
    max_length = min(max_length, lm.max_positions)
    stride = min(stride, max_length - 1)
    windows = []  # (start, end, first scored position)
    prev_end, begin = 1, 0
    while prev_end < len(ids):
        end = min(begin + max_length, len(ids))
        windows.append((begin, end, prev_end))
        prev_end, begin = end, begin + stride
    total, count = 0.0, 0
    for b in range(0, len(windows), batch_size):
        chunk = windows[b : b + batch_size]
        x, mask = _pad_right([ids[s:e] for s, e, _ in chunk], lm.bos_id, lm.device)
        labels = torch.full_like(x, -100)
        for i, (s, e, first) in enumerate(chunk):
            labels[i, first - s : e - s] = x[i, first - s : e - s]
        logits = lm.model(input_ids=x, attention_mask=mask).logits.float()
        # Shift: position t predicts token t+1; cross_entropy ignores the -100 labels.
        nll = torch.nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, logits.size(-1)), labels[:, 1:].reshape(-1),
            ignore_index=-100, reduction="sum",
        )
        total += nll.item()
        count += int((labels[:, 1:] != -100).sum())
        if progress:
            progress(min(1.0, (b + len(chunk)) / len(windows)))
    return total, count


@torch.inference_mode()
def continuation_logprobs(lm: LoadedModel, pairs: list[tuple[list[int], list[int]]],
                          batch_size: int = 32) -> list[tuple[float, int]]:
    """Sum of log p(continuation | prefix) and its token count, for each (prefix, cont) pair."""
    # Sorting by length keeps padding waste low; results are put back in input order.
    order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
    res: dict[int, tuple[float, int]] = {}
    for b in range(0, len(order), batch_size):
        idx = order[b : b + batch_size]
        seqs = [(pairs[i][0] + pairs[i][1])[-lm.max_positions :] for i in idx]
        x, mask = _pad_right(seqs, lm.bos_id, lm.device)
        logp = torch.log_softmax(lm.model(input_ids=x, attention_mask=mask).logits.float(), -1)
        tok_lp = logp[:, :-1].gather(-1, x[:, 1:].unsqueeze(-1)).squeeze(-1)
        for row, i in enumerate(idx):
            n_cont = min(len(pairs[i][1]), len(seqs[row]) - 1)
            end = len(seqs[row]) - 1
            res[i] = (float(tok_lp[row, end - n_cont : end].sum()), n_cont)
    return [res[i] for i in range(len(pairs))]


@torch.inference_mode()
def sample(lm: LoadedModel, prompts: list[list[int]], max_new_tokens: int, *, temperature=1.0,
           top_k: int | None = None, batch_size: int = 64, seed: int = 0,
           allow_eos: bool = True, progress=None) -> list[list[int]]:
    """Sample continuations for token-id prompts: batched, left-padded, with a KV cache.

    One forward over the padded prompts fills the cache, then each step feeds one token
    per row. Left padding keeps every row's last prompt token in the last column, and
    explicit position ids keep padded rows' positions starting at 0. Returns the new
    tokens of each row, cut at the first end-of-text; with ``allow_eos=False`` end-of-text
    is never drawn, so every row has exactly ``max_new_tokens`` tokens.
    """
    gen = torch.Generator(device=lm.device).manual_seed(seed)
    eos = lm.tokenizer.eos_token_id
    results: list[list[int]] = []
    for b in range(0, len(prompts), batch_size):
        keep = max(1, lm.max_positions - max_new_tokens)  # prompt + sample must fit positions
        batch = [p[-keep:] for p in prompts[b : b + batch_size]]
        width = max(len(p) for p in batch)
        ids = torch.full((len(batch), width), lm.bos_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, p in enumerate(batch):
            ids[i, width - len(p):] = torch.tensor(p, dtype=torch.long)
            mask[i, width - len(p):] = 1
        ids, mask = ids.to(lm.device), mask.to(lm.device)
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        out = lm.model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True)
        past, logits = out.past_key_values, out.logits[:, -1]
        new = torch.empty((len(batch), max_new_tokens), dtype=torch.long, device=lm.device)
        for t in range(max_new_tokens):
            logits = logits.float() / max(temperature, 1e-6)
            if not allow_eos:
                logits[:, eos] = float("-inf")
            if top_k:
                kth = torch.topk(logits, min(top_k, logits.size(-1)), dim=-1).values[:, -1:]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            nxt = torch.multinomial(torch.softmax(logits, -1), 1, generator=gen)
            new[:, t] = nxt[:, 0]
            if t + 1 == max_new_tokens:
                break
            mask = torch.cat([mask, mask.new_ones((len(batch), 1))], dim=-1)
            pos = pos[:, -1:] + 1
            out = lm.model(input_ids=nxt, attention_mask=mask, position_ids=pos,
                           past_key_values=past, use_cache=True)
            past, logits = out.past_key_values, out.logits[:, -1]
        for row in new.tolist():
            results.append(row[: row.index(eos)] if eos in row else row)
        if progress:
            progress(min(1.0, len(results) / len(prompts)))
    return results
