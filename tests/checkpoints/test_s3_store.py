"""Checkpoint files in an S3 bucket (STAGEGATE_BLOB_URL), against a real SeaweedFS server:
uploads land content-addressed under the prefix, downloads redirect to presigned URLs
or stream, refused uploads leave nothing, `blobs clean` removes what crashes leave."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tarfile
import time
import uuid

import httpx
import pytest
from click.testing import CliRunner

from app.checkpoints.blobstore import LocalBlobStore
from app.checkpoints.cli import blobs
from app.checkpoints.s3store import S3BlobStore
from app.checkpoints.service import blob_store, clean_blobs, materialise
from app.checkpoints.tables import Checkpoint
from app.db import session_scope
from app.settings import configure
from tests.agreements.conftest import active, people  # noqa: F401  (lab-c, lab-d)
from tests.checkpoints.tiny import checkpoint_files, tiny_gpt2, upload

# Storage, not SQL: one database is enough, except where a test says otherwise.
sqlite_only = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


@pytest.fixture
def settings(settings, seaweed, monkeypatch):
    """The suite's settings with blobs in the bucket, under a prefix of this test's own."""
    for name, value in seaweed.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return configure(dataclasses.replace(
        settings, blob_url=f"s3://{seaweed.bucket}/t-{uuid.uuid4().hex[:10]}/blobs"))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return checkpoint_files(tiny_gpt2(tmp_path_factory.mktemp("tiny")))


@pytest.fixture
def s3(seaweed):
    return seaweed.client()


def _keys(s3, settings) -> list[str]:
    bucket, _, prefix = settings.blob_url[5:].partition("/")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/")
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def _uploaded(client, world, files, name="c1", access="public") -> dict:
    up = upload(client, world.a_member, files, name=name, access=access)
    assert up.status_code == 201, up.text
    return up.json()


@sqlite_only
def test_an_upload_lands_content_addressed_under_the_prefix(client, world, files, s3,
                                                            settings, tmp_path):
    body = _uploaded(client, world, files)
    prefix = settings.blob_url.split("/", 3)[3]
    assert _keys(s3, settings) == sorted(f"{prefix}/{e['sha256'][:2]}/{e['sha256']}"
                                         for e in body["manifest"])
    for entry in body["manifest"]:
        obj = s3.get_object(Bucket="stagegate-test", Key=f"{prefix}/{entry['sha256'][:2]}/"
                                                        f"{entry['sha256']}")
        assert hashlib.sha256(obj["Body"].read()).hexdigest() == entry["sha256"]
    # Nothing stays on this machine: no local blob, no staging file.
    assert not list(settings.blob_dir.glob("??/*"))
    assert not list((settings.blob_dir / "tmp").glob("*"))
    # The evaluation worker reads the checkpoint back from the bucket.
    with session_scope(write=False) as session:
        out = materialise(session.get(Checkpoint, body["id"]), tmp_path / "work", settings)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == files


@sqlite_only
def test_a_download_is_a_302_to_a_presigned_url(client, world, files, settings):
    cid = _uploaded(client, world, files)["id"]
    weights = files["model.safetensors"]
    sha = hashlib.sha256(weights).hexdigest()
    r = client.get(f"/api/v1/checkpoints/{cid}/files/model.safetensors",
                   headers=world.a_member.headers, follow_redirects=False)
    assert r.status_code == 302 and r.headers["x-content-sha256"] == sha
    assert "no-store" in r.headers["cache-control"]
    url = r.headers["location"]
    assert url.startswith(os.environ["AWS_ENDPOINT_URL"]) and "X-Amz-Expires=300" in url
    assert world.a_member.token not in url
    got = httpx.get(url)
    assert got.status_code == 200 and got.content == weights
    assert got.headers["content-disposition"] == 'attachment; filename="model.safetensors"'
    # The bucket answers Range itself, for resuming through the same URL.
    part = httpx.get(url, headers={"Range": "bytes=10-99"})
    assert part.status_code == 206 and part.content == weights[10:100]
    # A URL altered to reach another object is refused by the bucket.
    other = url.replace(sha, hashlib.sha256(files["config.json"]).hexdigest())
    assert httpx.get(other).status_code == 403


@sqlite_only
def test_redirect_0_streams_with_ranges_etag_and_304_and_head_answers_here(client, world, files, settings):
    cid = _uploaded(client, world, files)["id"]
    weights = files["model.safetensors"]
    n = len(weights)
    url = f"/api/v1/checkpoints/{cid}/files/model.safetensors?redirect=0"
    full = client.get(url)
    assert full.status_code == 200 and full.content == weights
    etag = f'"{hashlib.sha256(weights).hexdigest()}"'
    assert full.headers["etag"] == etag and full.headers["accept-ranges"] == "bytes"
    assert full.headers["content-length"] == str(n)
    assert full.headers["content-disposition"] == 'attachment; filename="model.safetensors"'
    cases = {"bytes=0-99": (0, 99), f"bytes=100-{n + 50}": (100, n - 1),
             "bytes=-10": (n - 10, n - 1), "bytes=5-": (5, n - 1)}
    for header, (first, last) in cases.items():
        r = client.get(url, headers={"Range": header})
        assert r.status_code == 206, header
        assert r.content == weights[first:last + 1]
        assert r.headers["content-range"] == f"bytes {first}-{last}/{n}"
    r = client.get(url, headers={"Range": f"bytes={n}-"})
    assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{n}"
    r = client.get(url, headers={"Range": "bytes=0-9", "If-Range": '"other"'})
    assert r.status_code == 200 and r.content == weights
    r = client.get(url, headers={"Range": "bytes=0-1,5-6"})
    assert r.status_code == 200 and r.content == weights
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    # The registry's validators and an Accept without a wildcard are answered here too.
    plain = url.removesuffix("?redirect=0")
    r = client.get(plain, headers={"If-None-Match": etag}, follow_redirects=False)
    assert r.status_code == 304
    r = client.get(plain, headers={"Range": "bytes=0-3", "If-Range": etag},
                   follow_redirects=False)
    assert r.status_code == 206 and r.content == weights[:4]
    for accept in ("*/*", "text/html,application/xhtml+xml,*/*;q=0.8"):
        assert client.get(plain, headers={"Accept": accept},
                          follow_redirects=False).status_code == 302
    for accept in ("application/octet-stream", "application/octet-stream, */*;q=0"):
        r = client.get(plain, headers={"Accept": accept} | world.a_member.headers,
                       follow_redirects=False)
        assert r.status_code == 200 and r.content == weights
    bad = client.get(f"{plain}?redirect=maybe")
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "redirect"
    # HEAD is answered by the registry, never redirected.
    head = client.head(plain, follow_redirects=False)
    assert head.status_code == 200 and head.content == b"" and "location" not in head.headers
    assert head.headers["content-length"] == str(n)
    assert head.headers["etag"] == etag and head.headers["accept-ranges"] == "bytes"
    assert client.head(plain, headers={"If-None-Match": etag}).status_code == 304
    assert client.head(plain.replace("model.safetensors", "nope")).status_code == 404


@sqlite_only
def test_no_presigned_url_without_access(client, people, files, settings):  # noqa: F811
    cid = _uploaded(client, people, files, access="partners")["id"]
    url = f"/api/v1/checkpoints/{cid}/files/config.json"
    never = client.get("/api/v1/checkpoints/987654/files/config.json",
                       headers=people.c_member.headers)
    for headers in ({}, people.c_member.headers, people.b_member.headers):
        r = client.get(url, headers=headers, follow_redirects=False)
        assert r.status_code == 404 and "location" not in r.headers
        assert r.json()["detail"] == never.json()["detail"].replace("987654", str(cid))
    active(client, people, parties=["lab-c"], scope={"checkpoints": [cid]})
    r = client.get(url, headers=people.c_member.headers, follow_redirects=False)
    assert r.status_code == 302
    assert httpx.get(r.headers["location"]).content == files["config.json"]


@sqlite_only
def test_a_refused_upload_leaves_no_object(client, world, files, s3, settings):
    bad = dict(files) | {"model.safetensors": b"\x80\x04not a safetensors file" * 100}
    r = upload(client, world.a_member, bad)
    assert r.status_code == 422, r.text
    assert _keys(s3, settings) == []
    assert not list((settings.blob_dir / "tmp").glob("*"))


@sqlite_only
def test_a_failed_multipart_upload_is_aborted(seaweed, settings, s3, tmp_path):
    store = S3BlobStore(settings.blob_url, staging=tmp_path / "tmp", part_size=5 * 2**20)
    data = os.urandom(11 * 2**20 + 7)  # three parts
    staged, sha, _ = store.stage(_Reader(data), limit=2**30, field="f")
    parts = []

    def fail_second_part(**kwargs):
        parts.append(1)
        if len(parts) == 2:
            raise ConnectionError("the network went away")
    store.client.meta.events.register("before-call.s3.UploadPart", fail_second_part)
    with pytest.raises(Exception, match="network went away"):
        store.commit(staged, sha)
    assert not staged.exists()
    assert _keys(s3, settings) == []
    bucket, _, prefix = settings.blob_url[5:].partition("/")
    assert not s3.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads")
    # The same file again, without the fault: multipart, whole.
    store.client.meta.events.unregister("before-call.s3.UploadPart", fail_second_part)
    staged, sha, _size = store.stage(_Reader(data), limit=2**30, field="f")
    store.commit(staged, sha)
    assert store.has(sha) and b"".join(store.read(sha)) == data
    assert b"".join(store.read(sha, 5, 9)) == data[5:10]


@sqlite_only
def test_clean_removes_what_a_crash_left_and_keeps_what_rows_name(client, world, files, s3,
                                                                  settings, tmp_path):
    body = _uploaded(client, world, files)
    named = sorted(_keys(s3, settings))
    bucket, _, prefix = settings.blob_url[5:].partition("/")
    orphan = hashlib.sha256(b"a crash's orphan").hexdigest()
    s3.put_object(Bucket=bucket, Key=f"{prefix}/{orphan[:2]}/{orphan}", Body=b"x" * 10)
    s3.put_object(Bucket=bucket, Key=f"{prefix}/README.txt", Body=b"not ours")
    abandoned = s3.create_multipart_upload(Bucket=bucket, Key=f"{prefix}/ab/{'ab' * 32}")
    time.sleep(1.1)  # S3 times have whole seconds
    store = blob_store(settings)
    # Young blobs are spared by default: a running upload may be about to name them.
    with session_scope(write=False) as session:
        report = clean_blobs(session, store)
    assert report.orphans == [] and report.young == 1 and report.leftovers == []
    runner = CliRunner()
    dry = runner.invoke(blobs, ["clean", "--dry-run", "--min-age", "0"],
                        catch_exceptions=False)
    assert dry.exit_code == 0, dry.output
    assert f"would remove blob {orphan}" in dry.output and "multipart upload" in dry.output
    assert f"{prefix}/{orphan[:2]}/{orphan}" in _keys(s3, settings)
    done = runner.invoke(blobs, ["clean", "--min-age", "0"], catch_exceptions=False)
    assert done.exit_code == 0, done.output
    assert f"removed blob {orphan}" in done.output
    assert _keys(s3, settings) == sorted(named + [f"{prefix}/README.txt"])
    assert not s3.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads")
    # What rows name is still downloadable.
    r = client.get(f"/api/v1/checkpoints/{body['id']}/files/config.json?redirect=0")
    assert r.content == files["config.json"]
    del abandoned


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)
def test_clean_on_the_local_folder(backend, client, world, files, settings, tmp_path):
    local = configure(dataclasses.replace(settings, blob_url=""))
    _uploaded(client, world, files)
    store = blob_store(local)
    assert isinstance(store, LocalBlobStore)
    named = {b.sha256 for b in store.blobs()}
    orphan = hashlib.sha256(b"orphan").hexdigest()
    (local.blob_dir / orphan[:2]).mkdir(exist_ok=True)
    (local.blob_dir / orphan[:2] / orphan).write_bytes(b"orphan")
    stale = local.blob_dir / "tmp" / "upload-stale"
    stale.write_bytes(b"half an upload")
    old = time.time() - 7200
    os.utime(local.blob_dir / orphan[:2] / orphan, (old, old))
    os.utime(stale, (old, old))
    with session_scope(write=False) as session:
        report = clean_blobs(session, store)
    assert [b.sha256 for b in report.orphans] == [orphan]
    assert [x.name for x in report.leftovers] == [str(stale)]
    assert {b.sha256 for b in store.blobs()} == named and not stale.exists()


@sqlite_only
def test_the_cli_download_follows_the_redirect(live_server, stagegate, world, files,
                                               settings, tmp_path):
    up = httpx.post(f"{live_server}/api/v1/checkpoints", headers=world.a_member.headers,
                    data={"model": "lab-a/m", "name": "c1", "access_level": "internal"},
                    files=[("files", (n, b)) for n, b in files.items()], timeout=60)
    assert up.status_code == 201, up.text
    code, _out, err = stagegate("checkpoint", "download", up.json()["id"], "--to",
                               tmp_path / "got", "--no-progress", as_=world.a_member)
    assert code == 0, err
    assert {p.name: p.read_bytes() for p in (tmp_path / "got").iterdir()} == files


@sqlite_only
def test_backup_names_the_bucket_and_restore_checks_it(client, world, files, settings, s3,
                                                       tmp_path):
    from app.backup import create_backup, restore_backup

    body = _uploaded(client, world, files)
    summary = create_backup(settings, tmp_path / "b.tar")
    assert summary["blob_store"] == settings.blob_url and summary["blobs"] == 0
    assert summary["blobs_in_store"] == len(body["manifest"])
    with tarfile.open(tmp_path / "b.tar") as tar:
        assert not [n for n in tar.getnames() if n.startswith("blobs/")]
    # Restored over itself (--force): every named blob is in the bucket.
    assert restore_backup(settings, tmp_path / "b.tar", force=True)["missing_blobs"] == []
    # A blob lost from the bucket is named, not silently missing.
    bucket, _, prefix = settings.blob_url[5:].partition("/")
    lost = body["manifest"][0]["sha256"]
    s3.delete_object(Bucket=bucket, Key=f"{prefix}/{lost[:2]}/{lost}")
    assert restore_backup(settings, tmp_path / "b.tar", force=True)["missing_blobs"] == [lost]


@sqlite_only
def test_a_local_backup_restored_with_a_bucket_uploads_its_blobs(client, world, files,
                                                                 settings, s3, tmp_path):
    from app.backup import create_backup, restore_backup

    local = configure(dataclasses.replace(settings, blob_url=""))
    body = _uploaded(client, world, files)
    summary = create_backup(local, tmp_path / "b.tar")
    assert summary["blobs"] == len(body["manifest"]) and "blob_store" not in summary
    configure(settings)
    assert restore_backup(settings, tmp_path / "b.tar", force=True)["missing_blobs"] == []
    assert len(_keys(s3, settings)) == len(body["manifest"])
    r = client.get(f"/api/v1/checkpoints/{body['id']}/files/model.safetensors",
                   follow_redirects=False)
    assert httpx.get(r.headers["location"]).content == files["model.safetensors"]


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def read(self, n: int) -> bytes:
        chunk = self.data[self.at:self.at + n]
        self.at += len(chunk)
        return chunk

