"""A checkpoint upload is authorised before its body is read, and bounded while it streams."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.checkpoints.tiny import checkpoint_files, tiny_gpt2, upload

BOUNDARY = "sgboundary"
MiB = 1024 * 1024


def _head(model: str, name: str = "big") -> bytes:
    fields = "".join(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
                     for k, v in (("model", model), ("name", name), ("access_level", "public")))
    return (fields + f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; '
            'filename="model.safetensors"\r\nContent-Type: application/octet-stream\r\n\r\n'
            ).encode()


def _post_streaming(app, token: str, first: bytes, chunks: int) -> tuple[int, dict, int]:
    """POST through the ASGI interface with a body of `first` then up to `chunks` MiB,
    counting how many body messages the server pulled."""
    pulled = 0
    sent: list[dict] = []

    async def receive():
        nonlocal pulled
        pulled += 1
        if pulled == 1:
            return {"type": "http.request", "body": first, "more_body": True}
        return {"type": "http.request", "body": b"\0" * MiB, "more_body": pulled <= chunks}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/api/v1/checkpoints",
             "raw_path": b"/api/v1/checkpoints", "root_path": "", "query_string": b"",
             "client": ("127.0.0.1", 5000), "server": ("testserver", 80),
             "headers": [(b"host", b"testserver"),
                         (b"authorization", f"Bearer {token}".encode()),
                         (b"content-type",
                          f"multipart/form-data; boundary={BOUNDARY}".encode())]}
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], json.loads(body), pulled


def test_upload_to_another_labs_model_is_refused_before_the_body_is_read(app, world,
                                                                         settings):
    # 2 GiB offered; the refusal must come after the form fields, not after the file.
    status, body, pulled = _post_streaming(app, world.a_member.token, _head("lab-b/m"),
                                           chunks=2048)
    assert status == 403, body
    assert pulled <= 2, f"the server read {pulled} MiB before refusing"
    tmp = Path(settings.data_dir) / "blobs" / "tmp"
    assert not tmp.exists() or not any(tmp.iterdir())


def test_upload_naming_a_hidden_model_is_refused_before_the_body_is_read(app, world):
    status, body, pulled = _post_streaming(app, world.b_member.token, _head("lab-a/nope"),
                                           chunks=2048)
    assert status == 404, body
    assert body["errors"][0]["field"] == "model"
    assert pulled <= 2


def test_file_before_the_model_field_is_refused_unread(app, world):
    first = (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; '
             'filename="model.safetensors"\r\n\r\n').encode()
    status, body, pulled = _post_streaming(app, world.a_member.token, first, chunks=2048)
    assert status == 422, body
    assert body["errors"][0]["field"] == "model"
    assert pulled <= 2


def test_a_file_over_the_limit_is_refused_while_streaming(app, world, monkeypatch):
    monkeypatch.setenv("STAGEGATE_MAX_UPLOAD_FILE_BYTES", str(3 * MiB))
    status, body, pulled = _post_streaming(app, world.a_member.token, _head("lab-a/m"),
                                           chunks=2048)
    assert status == 413, body
    assert body["errors"][0]["field"] == "files[model.safetensors]"
    assert pulled <= 5


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return checkpoint_files(tiny_gpt2(tmp_path_factory.mktemp("tiny")))


def test_a_member_still_uploads(client, world, files):
    resp = upload(client, world.a_member, files)
    assert resp.status_code == 201, resp.text
