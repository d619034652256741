"""Content-addressed file store: each blob is kept once, named by its SHA-256."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

from app.errors import TooLarge

CHUNK = 1 << 20


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def has(self, sha256: str) -> bool:
        return self.path(sha256).exists()

    def stage(self, source: BinaryIO, *, limit: int, field: str) -> tuple[Path, str, int]:
        """Copy a stream into a temporary file while hashing it; refuse past `limit` bytes."""
        tmp_dir = self.root / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=tmp_dir, prefix="upload-")
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

    def commit(self, staged: Path, sha256: str) -> Path:
        """Move a staged file to its content address; a blob already there is kept."""
        dest = self.path(sha256)
        if dest.exists():
            staged.unlink(missing_ok=True)
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(staged, 0o444)
        # Atomic on one filesystem: readers see no blob or the whole blob, never a part.
        os.replace(staged, dest)
        return dest

    def materialise(self, files: dict[str, str], dest: Path) -> Path:
        """Lay out {file name: sha256} as a directory; hardlinks where possible."""
        dest.mkdir(parents=True, exist_ok=True)
        for name, sha in files.items():
            target = dest / name
            target.unlink(missing_ok=True)
            try:
                os.link(self.path(sha), target)
            except OSError:
                shutil.copyfile(self.path(sha), target)
        return dest
