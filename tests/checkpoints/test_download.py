"""Checkpoint file downloads: HEAD, Range (resume), If-None-Match; /static from anywhere."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.checkpoints.tiny import checkpoint_files, tiny_gpt2, upload

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture
def weights(world, client, tmp_path):
    src = tiny_gpt2(tmp_path)
    up = upload(client, world.a_member, checkpoint_files(src), name="c1")
    assert up.status_code == 201, up.text
    body = (src / "model.safetensors").read_bytes()
    return f"/api/v1/checkpoints/{up.json()['id']}/files/model.safetensors", body


def test_head_gives_size_and_digest_without_the_body(live_server, weights):
    url, body = weights
    full = httpx.get(live_server + url)
    head = httpx.head(live_server + url)
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) == len(body)
    assert head.headers["etag"] == full.headers["etag"]
    assert head.headers["accept-ranges"] == "bytes"
    assert httpx.head(live_server + url.replace("model.safetensors", "nope")).status_code == 404


def test_ranges_resume_a_download(live_server, weights):
    url, body = weights
    n = len(body)
    cases = {"bytes=0-99": (0, 99), f"bytes=100-{n + 50}": (100, n - 1),
             "bytes=-10": (n - 10, n - 1), "bytes=5-": (5, n - 1)}
    for header, (first, last) in cases.items():
        r = httpx.get(live_server + url, headers={"Range": header})
        assert r.status_code == 206, header
        assert r.content == body[first:last + 1]
        assert r.headers["content-range"] == f"bytes {first}-{last}/{n}"
    r = httpx.get(live_server + url, headers={"Range": f"bytes={n}-"})
    assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{n}"
    assert r.json()["errors"][0]["field"] == "range"
    # A changed file (If-Range no longer matches) or a multi-range gets the whole file.
    r = httpx.get(live_server + url, headers={"Range": "bytes=0-9", "If-Range": '"other"'})
    assert r.status_code == 200 and r.content == body
    r = httpx.get(live_server + url, headers={"Range": "bytes=0-1,5-6"})
    assert r.status_code == 200 and r.content == body


def test_if_none_match_on_a_file_is_304(live_server, weights):
    url, _ = weights
    etag = httpx.get(live_server + url).headers["etag"]
    again = httpx.get(live_server + url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_static_files_are_served_whatever_the_working_directory(backend, tmp_path):
    with socket_port() as port:
        env = os.environ | {"STAGEGATE_DATA_DIR": str(tmp_path), "PYTHONPATH": str(ROOT),
                            "STAGEGATE_INPROCESS_WORKER": "0"}
        env.pop("STAGEGATE_DATABASE_URL", None)
        proc = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
                                cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            for _ in range(150):
                try:
                    css = httpx.get(f"http://127.0.0.1:{port}/static/style.css")
                    break
                except httpx.TransportError:
                    time.sleep(0.2)
            assert css.status_code == 200
            assert css.content == (ROOT / "static" / "style.css").read_bytes()
        finally:
            proc.terminate()
            proc.wait(10)


class socket_port:
    def __enter__(self) -> int:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    def __exit__(self, *exc) -> None:
        return None
