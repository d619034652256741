"""Type-confused checkpoint files are 422 naming the file and field; the library decides
what safetensors is."""

from __future__ import annotations

import json
import struct

import pytest

from tests.checkpoints.test_upload import _refused, blobs
from tests.checkpoints.tiny import checkpoint_files, tiny_gpt2, upload


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return checkpoint_files(tiny_gpt2(tmp_path_factory.mktemp("tiny")))


def _rewrite(weights: bytes, change) -> bytes:
    """The same file with its header JSON changed by `change(header) -> extra data`."""
    (n,) = struct.unpack("<Q", weights[:8])
    header = json.loads(weights[8:8 + n])
    extra = change(header) or b""
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + weights[8 + n:] + extra


def _config(files, **changes) -> bytes:
    return json.dumps(json.loads(files["config.json"]) | changes).encode()


@pytest.mark.parametrize("changes,words", [
    ({"architectures": 5}, "architectures"),
    ({"architectures": [["GPT2LMHeadModel"]]}, "architectures"),
    ({"model_type": {"a": 1}}, "model_type"),
    ({"torch_dtype": ["float32"]}, "torch_dtype"),
    ({"deep": json.loads("[" * 200 + "]" * 200)}, "nested deeper"),
])
def test_type_confused_config_is_refused(client, world, settings, files, changes, words):
    resp = upload(client, world.a_member, files | {"config.json": _config(files, **changes)})
    _refused(resp, settings, "config.json", words)


def test_config_nested_thousands_deep_is_refused(client, world, settings, files):
    deep = b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    _refused(upload(client, world.a_member, files | {"config.json": deep}), settings,
             "config.json", "nested deeper")


def _first_tensor(header: dict) -> str:
    return next(k for k in header if k != "__metadata__")


@pytest.mark.parametrize("change", [
    lambda h: h[_first_tensor(h)].update(dtype=["F32"]),
    lambda h: h[_first_tensor(h)].update(shape="12"),
    lambda h: h[_first_tensor(h)].update(data_offsets=[0, [1]]),
    lambda h: h.update(__metadata__={"format": 5}),
    lambda h: h.update(__metadata__={"nested": {"a": "b"}}),
])
def test_headers_the_library_rejects_are_refused(client, world, settings, files, change):
    weights = _rewrite(files["model.safetensors"], change)
    _refused(upload(client, world.a_member, files | {"model.safetensors": weights}), settings,
             "model.safetensors", "not valid safetensors")


def test_dtypes_the_library_accepts_are_accepted(client, world, files):
    def add_tensor(header):
        end = max(e["data_offsets"][1] for k, e in header.items() if k != "__metadata__")
        header["extra.scale"] = {"dtype": "F8_E8M0", "shape": [2], "data_offsets": [end, end + 2]}
        return b"\x7f\x7f"

    weights = _rewrite(files["model.safetensors"], add_tensor)
    resp = upload(client, world.a_member, files | {"model.safetensors": weights}, name="e8m0")
    assert resp.status_code == 201, resp.text
    whole = upload(client, world.a_member, files, name="plain").json()
    assert resp.json()["parameter_count"] == whole["parameter_count"] + 2


def test_index_weight_map_value_that_is_a_list_is_refused(client, world, settings, files):
    (n,) = struct.unpack("<Q", files["model.safetensors"][:8])
    names = [k for k in json.loads(files["model.safetensors"][8:8 + n]) if k != "__metadata__"]
    index = {"weight_map": {k: "model.safetensors" for k in names}}
    index["weight_map"][names[0]] = ["model.safetensors"]
    resp = upload(client, world.a_member,
                  files | {"model.safetensors.index.json": json.dumps(index).encode()})
    _refused(resp, settings, "model.safetensors.index.json", "weight_map")
    assert blobs(settings) == []
