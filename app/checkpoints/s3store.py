"""The blob store in an S3-compatible bucket (AWS S3, MinIO, Ceph, R2, SeaweedFS), by boto3.

Keys are the local layout under the URL's prefix: `s3://bucket/prefix` holds
`prefix/<sha[:2]>/<sha>`. The endpoint and credentials come from the usual AWS variables
(AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_REGION or AWS_DEFAULT_REGION), read by boto3 itself where it reads them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from app.checkpoints.blobstore import (
    CHUNK,
    GRACE_S,
    Blob,
    BlobStore,
    Leftover,
    content_disposition,
    is_sha256,
)

# 16 MiB parts, 8 at a time: a 1 GB file is 64 parts; S3's minimum part is 5 MiB.
PART = 16 * 1024 * 1024
CONCURRENCY = 8


def _endpoint() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def _region() -> str | None:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None


def client_settings() -> tuple:
    """What the client is made from (the store cache's key: a changed variable, a new client)."""
    return (_endpoint(), _region(), os.environ.get("AWS_ACCESS_KEY_ID"),
            os.environ.get("AWS_PROFILE"))


def parse_url(url: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` -> ("bucket", "some/prefix/"); prefix may be empty."""
    if not url.startswith("s3://"):
        raise ValueError(f"{url!r}: give s3://BUCKET or s3://BUCKET/PREFIX")
    bucket, _, prefix = url[5:].partition("/")
    if not bucket:
        raise ValueError(f"{url!r}: no bucket name")
    prefix = prefix.strip("/")
    return bucket, f"{prefix}/" if prefix else ""


def make_client(endpoint: str | None = None):
    endpoint = endpoint or _endpoint()
    region = _region() or ("us-east-1" if endpoint else None)
    # Path-style addressing for a named endpoint: MinIO, SeaweedFS and Ceph answer it
    # without wildcard DNS; AWS itself gets boto3's default (virtual-hosted).
    config = Config(signature_version="s3v4", connect_timeout=10, read_timeout=120,
                    retries={"max_attempts": 5, "mode": "standard"},
                    s3={"addressing_style": "path" if endpoint else "auto"},
                    max_pool_connections=CONCURRENCY * 2)
    return boto3.session.Session().client("s3", endpoint_url=endpoint, region_name=region,
                                          config=config)


def _chunks(body) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(CHUNK)
    finally:
        body.close()


class S3BlobStore(BlobStore):
    redirects = True

    def __init__(self, url: str, *, staging: Path, ttl_s: int = 300,
                 presign_endpoint: str = "", part_size: int = PART) -> None:
        super().__init__(staging)
        self.url = url.rstrip("/")
        self.bucket, self.prefix = parse_url(url)
        self.ttl_s = ttl_s
        self.client = make_client()
        # A URL is signed for the host the client will use: where the registry reaches the
        # bucket on an inner address, presign with the public one (no request is made).
        self.presigner = make_client(presign_endpoint) if presign_endpoint else self.client
        self.transfer = TransferConfig(multipart_threshold=part_size,
                                       multipart_chunksize=part_size,
                                       max_concurrency=CONCURRENCY)

    def __str__(self) -> str:
        return self.url

    def key(self, sha256: str) -> str:
        return f"{self.prefix}{sha256[:2]}/{sha256}"

    def _head(self, sha256: str) -> dict | None:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=self.key(sha256))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def has(self, sha256: str) -> bool:
        return self._head(sha256) is not None

    def commit(self, staged: Path, sha256: str) -> None:
        """Upload the staged file (multipart past one part) unless the key is already there.

        An object that is there but older than half the cleaner's grace is uploaded again:
        the new row will name it, and `blobs clean` must not take it for a crash's orphan
        between its listing and that row's commit. A failed multipart upload is aborted by
        boto3's transfer manager; a killed process's is removed by `blobs clean`."""
        try:
            head = self._head(sha256)
            if head is not None and \
                    time.time() - head["LastModified"].timestamp() < GRACE_S / 2:
                return
            self.client.upload_file(
                str(staged), self.bucket, self.key(sha256), Config=self.transfer,
                ExtraArgs={"ContentType": "application/octet-stream",
                           "Metadata": {"sha256": sha256}})
        finally:
            staged.unlink(missing_ok=True)

    def read(self, sha256: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        args = {"Bucket": self.bucket, "Key": self.key(sha256)}
        if start or end is not None:
            args["Range"] = f"bytes={start}-{'' if end is None else end}"
        # Asked now, not on the first chunk: a missing object is an error before any
        # header is sent, not a truncated 200.
        return _chunks(self.client.get_object(**args)["Body"])

    def presigned_url(self, sha256: str, filename: str) -> str:
        return self.presigner.generate_presigned_url(
            "get_object", ExpiresIn=self.ttl_s,
            Params={"Bucket": self.bucket, "Key": self.key(sha256),
                    "ResponseContentDisposition": content_disposition(filename),
                    "ResponseContentType": "application/octet-stream"})

    def materialise(self, files: dict[str, str], dest: Path) -> Path:
        """Downloaded (ranged parts in parallel); each file appears whole or not at all."""
        dest.mkdir(parents=True, exist_ok=True)
        for name, sha in files.items():
            target = dest / name
            part = target.with_name(f".{target.name}.part")
            try:
                self.client.download_file(self.bucket, self.key(sha), str(part),
                                          Config=self.transfer)
                part.replace(target)
            finally:
                part.unlink(missing_ok=True)
        return dest

    def blobs(self) -> Iterator[Blob]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix)
        for page in pages:
            for obj in page.get("Contents", []):
                head, _, sha = obj["Key"][len(self.prefix):].partition("/")
                if is_sha256(sha) and head == sha[:2]:
                    yield Blob(sha, obj["Size"], obj["LastModified"].timestamp())

    def delete(self, sha256: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.key(sha256))

    def leftovers(self, older_than: float) -> list[Leftover]:
        out = self._stale_staging(older_than)
        pages = self.client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.bucket, Prefix=self.prefix)
        for page in pages:
            for up in page.get("Uploads", []) or []:
                started = up["Initiated"].timestamp()
                if started < older_than:
                    out.append(Leftover("multipart upload", up["Key"], started,
                                        up["UploadId"]))
        return out

    def remove_leftover(self, leftover: Leftover) -> None:
        if leftover.what != "multipart upload":
            return super().remove_leftover(leftover)
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=leftover.name,
                                               UploadId=leftover.handle)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchUpload":
                raise
