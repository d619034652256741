"""Content-addressed file store: each blob is kept once, named by its SHA-256, in a local
folder (the default) or an S3-compatible bucket (app/checkpoints/s3store.py)."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

from app.errors import TooLarge

CHUNK = 1 << 20
# Objects younger than this are left alone by `stagegate blobs clean`: an upload commits
# its blobs before the row that names them, so a young unnamed blob may be in flight. The
# same age marks an abandoned multipart upload or staging file.
GRACE_S = 3600.0


@dataclass(frozen=True)
class Blob:
    """One stored blob (what the cleaner lists)."""
    sha256: str
    size: int
    modified: float  # seconds since the epoch


@dataclass(frozen=True)
class Leftover:
    """Something an interrupted upload left: a staging file or an S3 multipart upload."""
    what: str  # "staging file" | "multipart upload"
    name: str
    started: float
    handle: object = None


def content_disposition(name: str) -> str:
    """What Litestar's File sends, so both backends name a download the same way."""
    quoted = quote(name)
    return f'attachment; filename="{name}"' if quoted == name else \
        f"attachment; filename*=utf-8''{quoted}"


def is_sha256(name: str) -> bool:
    return len(name) == 64 and all(c in "0123456789abcdef" for c in name)


class BlobStore:
    """What every backend does. Uploads are staged in a local folder while they are hashed
    and validated, whatever the backend, and committed to their content address after."""

    #: Whether downloads may be sent elsewhere (a presigned URL) instead of streamed.
    redirects = False

    def __init__(self, staging: Path) -> None:
        self.staging = Path(staging)

    def __str__(self) -> str:
        raise NotImplementedError

    def stage(self, source: BinaryIO, *, limit: int, field: str) -> tuple[Path, str, int]:
        """Copy a stream into a temporary file while hashing it; refuse past `limit` bytes."""
        self.staging.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.staging, prefix="upload-")
        h, size = hashlib.sha256(), 0
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := source.read(CHUNK):
                    size += len(chunk)
                    if size > limit:
                        raise TooLarge(f"{field} is larger than the limit of {limit} bytes",
                                       field=field, limit=limit)
                    h.update(chunk)
                    out.write(chunk)
        except BaseException:
            os.unlink(name)
            raise
        return Path(name), h.hexdigest(), size

    # -- backend specific ------------------------------------------------------------
    def commit(self, staged: Path, sha256: str) -> None:
        """Move a staged file to its content address (the staged file is gone after)."""
        raise NotImplementedError

    def has(self, sha256: str) -> bool:
        raise NotImplementedError

    def local_path(self, sha256: str) -> Path | None:
        """The blob as a local file, where it is one (the local backend)."""
        return None

    def read(self, sha256: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The bytes start..end (inclusive; None: to the end), in chunks."""
        raise NotImplementedError

    def presigned_url(self, sha256: str, filename: str) -> str | None:
        """A short-lived URL anyone holding it may GET the blob from; None: not offered."""
        return None

    def materialise(self, files: dict[str, str], dest: Path) -> Path:
        """Lay out {file name: sha256} as a directory."""
        raise NotImplementedError

    def blobs(self) -> Iterator[Blob]:
        raise NotImplementedError

    def delete(self, sha256: str) -> None:
        raise NotImplementedError

    def leftovers(self, older_than: float) -> list[Leftover]:
        """Upload remains started before `older_than` (epoch seconds)."""
        return self._stale_staging(older_than)

    def remove_leftover(self, leftover: Leftover) -> None:
        Path(leftover.name).unlink(missing_ok=True)

    def _stale_staging(self, older_than: float) -> list[Leftover]:
        out = []
        for path in self.staging.glob("upload-*") if self.staging.exists() else []:
            try:
                mtime = path.stat().st_mtime
            except FileNotFoundError:
                continue
            if mtime < older_than:
                out.append(Leftover("staging file", str(path), mtime))
        return out


class LocalBlobStore(BlobStore):
    """`<data>/blobs/<sha[:2]>/<sha>`, staging in `<data>/blobs/tmp`."""

    def __init__(self, root: Path) -> None:
        super().__init__(Path(root) / "tmp")
        self.root = Path(root)

    def __str__(self) -> str:
        return str(self.root)

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def has(self, sha256: str) -> bool:
        return self.path(sha256).exists()

    def local_path(self, sha256: str) -> Path:
        return self.path(sha256)

    def commit(self, staged: Path, sha256: str) -> Path:
        """A blob already there is kept (and touched: `blobs clean` spares young blobs, and
        a row is about to name this one)."""
        dest = self.path(sha256)
        if dest.exists():
            staged.unlink(missing_ok=True)
            try:
                os.utime(dest)
            except OSError:
                pass
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(staged, 0o444)
        # Atomic on one filesystem: readers see no blob or the whole blob, never a part.
        os.replace(staged, dest)
        return dest

    def read(self, sha256: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        with open(self.path(sha256), "rb") as f:
            f.seek(start)
            left = None if end is None else end - start + 1
            while left is None or left > 0:
                data = f.read(CHUNK if left is None else min(CHUNK, left))
                if not data:
                    return
                if left is not None:
                    left -= len(data)
                yield data

    def materialise(self, files: dict[str, str], dest: Path) -> Path:
        """Hardlinks where possible."""
        dest.mkdir(parents=True, exist_ok=True)
        for name, sha in files.items():
            target = dest / name
            target.unlink(missing_ok=True)
            try:
                os.link(self.path(sha), target)
            except OSError:
                shutil.copyfile(self.path(sha), target)
        return dest

    def blobs(self) -> Iterator[Blob]:
        for path in sorted(self.root.glob("??/*")) if self.root.exists() else []:
            if path.parent.name == path.name[:2] and is_sha256(path.name):
                st = path.stat()
                yield Blob(path.name, st.st_size, st.st_mtime)

    def delete(self, sha256: str) -> None:
        self.path(sha256).unlink(missing_ok=True)
