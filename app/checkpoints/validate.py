"""Checks an uploaded checkpoint by content: safetensors only, no remote code, no pickle."""

from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass
from pathlib import Path

from safetensors import safe_open

from app.errors import Invalid
from app.safeyaml import load_json

TOKENIZER_FILES = {"tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json",
                   "special_tokens_map.json", "added_tokens.json", "generation_config.json"}
INDEX = "model.safetensors.index.json"
SHARD = re.compile(r"^model(-\d{5}-of-\d{5})?\.safetensors$")
# Formats that can carry pickled Python code; named so the uploader knows what to convert.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib", ".npy",
                   ".npz", ".h5", ".msgpack")
# Private config keys transformers itself writes; anything else starting with "_" could
# steer loading (e.g. "_attn_implementation") and is refused.
ALLOWED_PRIVATE_KEYS = {"_name_or_path", "_commit_hash", "_from_model_config"}
MAX_HEADER = 100 * 1024 * 1024
# config, index and tokenizer files; a large vocabulary's tokenizer.json is ~30 MB.
MAX_JSON_BYTES = 64 * 1024 * 1024
MAX_JSON_DEPTH = 64


@dataclass
class CheckpointInfo:
    parameter_count: int
    architecture: str | None
    model_type: str | None
    tensors: int


def reject(name: str, reason: str) -> Invalid:
    return Invalid(f"{name}: {reason}", field=f"files[{name}]", file=name)


def sniff_pickle(head: bytes) -> str | None:
    if head[:4] == b"PK\x03\x04":
        return "is a zip archive (PyTorch .bin/.pt format, which holds pickled code)"
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "is a Python pickle, which can run code when loaded"
    return None


def check_name(name: str) -> None:
    if not name or "/" in name or "\\" in name or name.startswith(".") or "\0" in name:
        raise reject(name or "(empty)", "file names must be plain names without folders")
    if name.lower().endswith(PICKLE_SUFFIXES):
        raise reject(name, "pickle-based weight formats are refused; upload safetensors")
    if not (name == "config.json" or name == INDEX or name in TOKENIZER_FILES
            or SHARD.match(name)):
        raise reject(name, "unknown file; expected config.json, model*.safetensors, "
                     f"{INDEX} or tokenizer files ({', '.join(sorted(TOKENIZER_FILES))})")


def read_safetensors_header(name: str, path: Path, size: int) -> dict[str, list[int]]:
    """Tensor name -> shape, as the `safetensors` library itself reads the file: whatever
    it refuses (bad JSON types, non-string metadata, offsets that overlap, leave gaps or
    miss the file's end) is refused here, and whatever it loads is accepted."""
    with open(path, "rb") as f:
        head = f.read(8)
    bad = sniff_pickle(head)
    if bad:
        raise reject(name, f"{bad}, not safetensors")
    if len(head) < 8:
        raise reject(name, "too short to be safetensors")
    (n,) = struct.unpack("<Q", head)
    if n > MAX_HEADER or n + 8 > size:
        raise reject(name, "not safetensors: header length does not fit the file")
    try:
        with safe_open(str(path), framework="numpy") as f:
            return {key: list(f.get_slice(key).get_shape()) for key in f.keys()}  # noqa: SIM118
    except Exception as exc:  # noqa: BLE001 - SafetensorError or whatever else it raises
        reason = str(exc).splitlines()[0][:300] if str(exc) else exc.__class__.__name__
        raise reject(name, f"not valid safetensors: {reason}") from None


def read_json(name: str, path: Path) -> object:
    head = path.open("rb").read(8)
    bad = sniff_pickle(head)
    if bad:
        raise reject(name, bad)
    if path.stat().st_size > MAX_JSON_BYTES:
        raise reject(name, f"larger than {MAX_JSON_BYTES} bytes")
    try:
        return load_json(path.read_bytes(), field=f"files[{name}]", max_bytes=MAX_JSON_BYTES,
                         max_depth=MAX_JSON_DEPTH)
    except Invalid as exc:
        raise reject(name, exc.detail) from None


def _string_or_none(name: str, cfg: dict, key: str) -> None:
    if cfg.get(key) is not None and not isinstance(cfg[key], str):
        raise reject(name, f"{key} must be a string, not {type(cfg[key]).__name__}")


def check_config(name: str, cfg: object) -> None:
    if not isinstance(cfg, dict):
        raise reject(name, "must be a JSON object")
    if "auto_map" in cfg:
        raise reject(name, "asks for remote code (auto_map); the registry never runs it")
    private = sorted(k for k in cfg if k.startswith("_") and k not in ALLOWED_PRIVATE_KEYS)
    if private:
        raise reject(name, f"sets private keys {private}; remove them")
    # Fields the registry and transformers read: a wrong type is the uploader's error
    # (422), not a crash when the card is built or the model loads.
    archs = cfg.get("architectures")
    if archs is not None and not (isinstance(archs, list)
                                  and all(isinstance(a, str) for a in archs)):
        raise reject(name, "architectures must be a list of strings")
    for key in ("model_type", "torch_dtype", "dtype"):
        _string_or_none(name, cfg, key)


def validate_checkpoint(files: dict[str, tuple[Path, int]]) -> CheckpointInfo:
    """`files` maps upload name -> (staged path, size). Raises Invalid naming the file."""
    for name in files:
        check_name(name)
    if "config.json" not in files:
        raise reject("config.json", "missing; a checkpoint needs its config.json")
    shards = sorted(n for n in files if n.endswith(".safetensors"))
    if not shards:
        raise reject("model.safetensors", "missing; upload the weights as safetensors")
    config = read_json("config.json", files["config.json"][0])
    check_config("config.json", config)
    for name in files:
        if name.endswith(".json") and name != "config.json":
            doc = read_json(name, files[name][0])
            if name in ("tokenizer_config.json", "generation_config.json"):
                check_config(name, doc)
        elif name == "merges.txt":
            head = files[name][0].open("rb").read(8)
            if sniff_pickle(head):
                raise reject(name, sniff_pickle(head))
    headers = {n: read_safetensors_header(n, *files[n]) for n in shards}
    if len(shards) > 1 or INDEX in files:
        check_index(files, headers)
    params = sum(math.prod(shape) for h in headers.values() for shape in h.values())
    archs = config.get("architectures") or []
    arch = archs[0] if archs and isinstance(archs[0], str) else None
    model_type = config.get("model_type") if isinstance(config.get("model_type"), str) else None
    return CheckpointInfo(parameter_count=params, architecture=arch or model_type,
                          model_type=model_type,
                          tensors=sum(len(h) for h in headers.values()))


def check_index(files: dict[str, tuple[Path, int]], headers: dict[str, dict]) -> None:
    if INDEX not in files:
        raise reject(INDEX, "missing; sharded weights need their index")
    index = read_json(INDEX, files[INDEX][0])
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise reject(INDEX, "has no weight_map")
    for tensor, shard in weight_map.items():
        if not isinstance(shard, str):
            raise reject(INDEX, f"weight_map[{tensor!r}] must be a shard file name (a string)")
        if shard not in headers:
            raise reject(INDEX, f"maps {tensor!r} to {shard!r}, which was not uploaded")
        if tensor not in headers[shard]:
            raise reject(INDEX, f"maps {tensor!r} to {shard!r}, which does not contain it")
    unused = sorted(set(headers) - set(weight_map.values()))
    if unused:
        raise reject(unused[0], f"is not referenced by {INDEX}")
