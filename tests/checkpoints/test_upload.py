"""Uploading checkpoints: content checks, size limits, manifests and the blob store."""

from __future__ import annotations

import json
import pickle
import struct

import pytest

from tests.checkpoints.tiny import checkpoint_files, tiny_gpt2, upload


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return checkpoint_files(tiny_gpt2(tmp_path_factory.mktemp("tiny")))


def blobs(settings) -> list:
    root = settings.blob_dir
    return sorted(p.name for p in root.glob("??/*")) if root.exists() else []


def test_upload_records_manifest_parameters_and_queues_suites(client, world, settings, files):
    resp = upload(client, world.a_member, files)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["model"] == "lab-a/m" and body["access_level"] == "public"
    assert {e["name"] for e in body["manifest"]} == set(files)
    # 1 layer, n_embd 16, vocab 300, 128 positions; tied embeddings are stored once.
    assert body["parameter_count"] == 300 * 16 + 128 * 16 + 4 * 16 + 16 * 48 + 48 + 16 * 16 \
        + 16 + 16 * 64 + 64 + 64 * 16 + 16 + 2 * 16
    assert body["architecture"] == "GPT2LMHeadModel" and body["model_type"] == "gpt2"
    assert len(body["manifest_digest"]) == 64
    assert len(blobs(settings)) == len(files)
    runs = client.get(f"/api/v1/evals/runs?checkpoint_id={body['id']}",
                      headers=world.a_member.headers).json()["items"]
    assert sorted(r["suite_id"] for r in runs) == ["bias_association", "detectability",
                                                  "perplexity"]
    assert {r["status"] for r in runs} == {"queued"}


def test_same_content_is_stored_once(client, world, settings, files):
    assert upload(client, world.a_member, files, name="one").status_code == 201
    assert upload(client, world.a_member, files, name="two").status_code == 201
    assert len(blobs(settings)) == len(files)
    assert not list((settings.blob_dir / "tmp").iterdir())


def test_download_returns_the_uploaded_bytes(client, world, files):
    ckpt = upload(client, world.a_member, files).json()
    resp = client.get(f"/api/v1/checkpoints/{ckpt['id']}/files/model.safetensors")
    assert resp.status_code == 200 and resp.content == files["model.safetensors"]
    assert client.get(f"/api/v1/checkpoints/{ckpt['id']}/files/nope.json").status_code == 404


def test_duplicate_name_is_a_conflict(client, world, files):
    assert upload(client, world.a_member, files).status_code == 201
    resp = upload(client, world.a_member, files)
    assert resp.status_code == 409 and resp.json()["errors"][0]["field"] == "name"


def _refused(resp, settings, file: str, words: str) -> None:
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert body["errors"][0]["field"] == f"files[{file}]"
    assert file in body["detail"] and words in body["detail"]
    assert blobs(settings) == []


def test_pickle_renamed_safetensors_is_refused(client, world, settings, files):
    evil = pickle.dumps({"weights": [1, 2, 3]}, protocol=4)
    resp = upload(client, world.a_member, files | {"model.safetensors": evil})
    _refused(resp, settings, "model.safetensors", "pickle")


def test_torch_zip_renamed_safetensors_is_refused(client, world, settings, files):
    resp = upload(client, world.a_member, files | {"model.safetensors": b"PK\x03\x04" + b"0" * 64})
    _refused(resp, settings, "model.safetensors", "zip")


def test_bin_weights_are_refused_by_name(client, world, settings, files):
    resp = upload(client, world.a_member, files | {"pytorch_model.bin": b"\x80\x04junk"})
    _refused(resp, settings, "pytorch_model.bin", "pickle")


def test_unknown_file_is_refused(client, world, settings, files):
    resp = upload(client, world.a_member, files | {"modeling_gpt2.py": b"import os"})
    _refused(resp, settings, "modeling_gpt2.py", "unknown file")


def test_config_asking_for_remote_code_is_refused(client, world, settings, files):
    cfg = json.loads(files["config.json"]) | {"auto_map": {"AutoModel": "x.Model"}}
    resp = upload(client, world.a_member, files | {"config.json": json.dumps(cfg).encode()})
    _refused(resp, settings, "config.json", "auto_map")


def test_config_with_private_keys_is_refused(client, world, settings, files):
    cfg = json.loads(files["config.json"]) | {"_attn_implementation": "eager"}
    resp = upload(client, world.a_member, files | {"config.json": json.dumps(cfg).encode()})
    _refused(resp, settings, "config.json", "_attn_implementation")


def test_safetensors_header_must_match_file_size(client, world, settings, files):
    resp = upload(client, world.a_member,
                  files | {"model.safetensors": files["model.safetensors"][:-4]})
    _refused(resp, settings, "model.safetensors", "not fully covered")
    header = json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}).encode()
    forged = struct.pack("<Q", len(header)) + header + b"\0" * 8
    resp = upload(client, world.a_member, files | {"model.safetensors": forged})
    _refused(resp, settings, "model.safetensors", "not valid safetensors")


def test_missing_weights_are_refused(client, world, settings, files):
    rest = {k: v for k, v in files.items() if k != "model.safetensors"}
    _refused(upload(client, world.a_member, rest), settings, "model.safetensors", "missing")


def test_sharded_weights_need_a_consistent_index(client, world, settings, files, tmp_path):
    from safetensors.torch import load_file, save_file

    src = tmp_path / "m.safetensors"
    src.write_bytes(files["model.safetensors"])
    tensors = load_file(src)
    names = sorted(tensors)
    half = len(names) // 2
    shards = {"model-00001-of-00002.safetensors": names[:half],
              "model-00002-of-00002.safetensors": names[half:]}
    out = {k: v for k, v in files.items() if k != "model.safetensors"}
    for shard, keys in shards.items():
        save_file({k: tensors[k].contiguous() for k in keys}, tmp_path / shard)
        out[shard] = (tmp_path / shard).read_bytes()
    index = {"metadata": {}, "weight_map": {k: s for s, ks in shards.items() for k in ks}}
    resp = upload(client, world.a_member,
                  out | {"model.safetensors.index.json": json.dumps(index).encode()})
    assert resp.status_code == 201, resp.text
    whole = upload(client, world.a_member, files, name="whole").json()
    assert resp.json()["parameter_count"] == whole["parameter_count"]
    # An index pointing at a shard that was not uploaded is refused, naming the index.
    index["weight_map"][names[0]] = "model-00003-of-00003.safetensors"
    resp = upload(client, world.a_member,
                  out | {"model.safetensors.index.json": json.dumps(index).encode()},
                  name="broken")
    assert resp.status_code == 422 and "model.safetensors.index.json" in resp.json()["detail"]


def test_oversize_upload_is_413_and_stores_nothing(client, world, settings, files,
                                                   monkeypatch):
    monkeypatch.setenv("STAGEGATE_MAX_UPLOAD_BYTES", "20000")
    resp = upload(client, world.a_member, files)
    assert resp.status_code == 413, resp.text
    assert resp.json()["errors"][0]["field"].startswith("files")
    assert blobs(settings) == []
    monkeypatch.setenv("STAGEGATE_MAX_UPLOAD_BYTES", "1000000")
    monkeypatch.setenv("STAGEGATE_MAX_UPLOAD_FILE_BYTES", "30000")
    resp = upload(client, world.a_member, files)
    assert resp.status_code == 413 and "model.safetensors" in resp.json()["errors"][0]["field"]
    assert blobs(settings) == []


def test_only_lab_members_upload(client, world, files):
    assert upload(client, None, files).status_code == 401
    assert upload(client, world.b_member, files).status_code == 403


def test_bad_form_field_names_the_field(client, world, files):
    resp = upload(client, world.a_member, files, access="everyone")
    assert resp.status_code == 422 and resp.json()["errors"][0]["field"] == "access_level"
