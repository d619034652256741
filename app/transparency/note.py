"""C2SP signed notes (Ed25519) and tlog checkpoints.

signed-note: https://c2sp.org/signed-note; tlog-checkpoint: https://c2sp.org/tlog-checkpoint.
The same formats as Go's golang.org/x/mod/sumdb/note, so its verifier (and any witness or
monitor built on it) reads our checkpoints: tests/interop/ checks exactly that.

A note is text ending in a newline, a blank line, then one line per signature:
"— <key name> <base64(4-byte key id ‖ 64-byte signature)>". The key id is the first four
bytes of SHA-256(name ‖ "\\n" ‖ 0x01 ‖ public key); 0x01 is the Ed25519 algorithm byte.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALG_ED25519 = 1
DASH = "\u2014"


class NoteError(ValueError):
    """A note, key or checkpoint that does not parse or does not verify."""


def key_id(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([ALG_ED25519]) + public).digest()[:4]


def _check_name(name: str) -> None:
    if not name or any(c.isspace() or c == "+" or not c.isprintable() for c in name):
        raise NoteError(f"key name {name!r}: non-empty, no spaces and no '+'")


@dataclass(frozen=True)
class Verifier:
    name: str
    id: bytes
    public: bytes

    @classmethod
    def parse(cls, vkey: str) -> Verifier:
        """A verifier key: "<name>+<8 hex digits of key id>+<base64(0x01 ‖ public key)>"."""
        try:
            name, hex_id, b64 = vkey.strip().split("+", 2)
            raw = base64.b64decode(b64, validate=True)
        except ValueError:
            raise NoteError("a verifier key is <name>+<key id>+<base64 key>") from None
        _check_name(name)
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise NoteError("the verifier key is not an Ed25519 key")
        if key_id(name, raw[1:]).hex() != hex_id.lower() or len(hex_id) != 8:
            raise NoteError("the verifier key's id does not match its name and key")
        return cls(name, bytes.fromhex(hex_id), raw[1:])

    def __str__(self) -> str:
        raw = base64.b64encode(bytes([ALG_ED25519]) + self.public).decode()
        return f"{self.name}+{self.id.hex()}+{raw}"

    def verify(self, text: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public).verify(signature, text)
            return True
        except Exception:  # noqa: BLE001 (cryptography raises InvalidSignature)
            return False


class Signer:
    def __init__(self, name: str, private: Ed25519PrivateKey):
        _check_name(name)
        self.name, self.private = name, private
        public = private.public_key().public_bytes_raw()
        self.verifier = Verifier(name, key_id(name, public), public)

    def sign(self, text: str) -> str:
        """`text` signed: the note as served."""
        if not text.endswith("\n"):
            raise NoteError("a note's text ends with a newline")
        sig = self.private.sign(text.encode())
        return f"{text}\n{DASH} {self.name} {base64.b64encode(self.verifier.id + sig).decode()}\n"


def open_note(note: str, verifier: Verifier) -> str:
    """The text of `note` when `verifier` signed it; NoteError otherwise."""
    text, sep, sigs = note.rpartition("\n\n")
    if not sep or not sigs.endswith("\n"):
        raise NoteError("not a signed note (no blank line before the signatures)")
    text += "\n"
    verified = False
    # Every line is read before any answer: a malformed line anywhere refuses the note.
    for line in sigs[:-1].split("\n"):
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != DASH:
            raise NoteError(f"malformed signature line {line!r}")
        try:
            raw = base64.b64decode(parts[2], validate=True)
        except ValueError:
            raise NoteError(f"malformed signature line {line!r}") from None
        if parts[1] == verifier.name and raw[:4] == verifier.id:
            if len(raw) != 68 or not verifier.verify(text.encode(), raw[4:]):
                raise NoteError(f"the signature of {verifier.name} does not verify")
            verified = True
    if not verified:
        raise NoteError(f"the note carries no signature by {verifier.name}")
    return text


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes

    def text(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        lines = text.split("\n")
        # Size in ASCII decimal without leading zeros; the root line ends in a newline.
        if len(lines) < 4 or not re.fullmatch("0|[1-9][0-9]*", lines[1], re.ASCII):
            raise NoteError("a checkpoint is <origin>, <size>, <base64 root>, one a line")
        try:
            origin, size, root = lines[0], int(lines[1]), base64.b64decode(lines[2],
                                                                            validate=True)
        except (IndexError, ValueError):
            raise NoteError("a checkpoint is <origin>, <size>, <base64 root>, one a line") \
                from None
        if not origin or size < 0 or len(root) != 32 or not lines[1].isdigit():
            raise NoteError("a checkpoint is <origin>, <size>, <base64 root>, one a line")
        return cls(origin, size, root)


def load_or_create_signer(path: Path, name: str) -> Signer:
    """The log's key: 32 random bytes (the Ed25519 seed), hex in `path`, mode 0600,
    made on first use; O_EXCL so two processes starting at once agree on one key."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(os.urandom(32).hex() + "\n")
        except FileExistsError:
            pass
    seed = bytes.fromhex(path.read_text().strip())
    return Signer(name, Ed25519PrivateKey.from_private_bytes(seed))
