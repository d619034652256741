"""The monitor: what a journalist, a lab or a coordinator runs to hold the registry to its
log (`stagegate log verify`). It trusts nothing the server computes: it checks the
checkpoint's signature against a pinned key, downloads every leaf, recomputes the root,
compares each leaf with the one it saw last time (kept beside the state file), checks
every opening it is given against its commitment, and checks the server's consistency
proof from the last checkpoint it saw. The first bad index is named.

Imports httpx (through app.client), merkle and note only: no database, no web stack.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from app.client import ApiError, Client
from app.transparency import merkle
from app.transparency.note import Checkpoint, NoteError, Verifier, open_note

PAGE = 5000  # service.MAX_ENTRIES


class Inconsistent(Exception):
    """The log is not what it claimed: `index` names the first bad leaf where there is one."""

    def __init__(self, message: str, index: int | None = None):
        super().__init__(message)
        self.index = index


@dataclass
class State:
    """What the monitor remembers: the pinned key, the last checkpoint it accepted and
    the hash of every leaf up to it (a sidecar file of 32-byte hashes)."""
    key: str | None = None
    note: str | None = None
    size: int = 0
    root: bytes = merkle.EMPTY_ROOT
    hashes: list[bytes] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path | None) -> State:
        if path is None or not path.exists():
            return cls()
        data = json.loads(path.read_text())
        raw = Path(str(path) + ".leaves").read_bytes() if data.get("size") else b""
        hashes = [raw[i:i + 32] for i in range(0, len(raw), 32)]
        if len(hashes) != data.get("size", 0):
            raise ValueError(f"{path}.leaves holds {len(hashes)} hashes, not {data['size']}")
        return cls(key=data.get("key"), note=data.get("checkpoint"), size=data.get("size", 0),
                   root=base64.b64decode(data.get("root", "")) or merkle.EMPTY_ROOT,
                   hashes=hashes)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        leaves = Path(str(path) + ".leaves")
        for target, body in ((leaves, b"".join(self.hashes)),
                             (path, json.dumps({"key": self.key, "checkpoint": self.note,
                                                "size": self.size,
                                                "root": base64.b64encode(self.root).decode()},
                                               indent=2).encode())):
            tmp = Path(str(target) + ".tmp")
            tmp.write_bytes(body)
            os.replace(tmp, target)


@dataclass
class Verdict:
    origin: str
    size: int
    root: bytes
    previous: int
    opened: int
    sealed: int
    pinned_now: bool

    def line(self) -> str:
        seen = (f"consistent with the {self.previous} seen before" if self.previous
                else "first check")
        pinned = "; key pinned now" if self.pinned_now else ""
        return (f"ok: {self.origin} at {self.size} leaves, root {self.root.hex()[:16]}…, "
                f"{seen}; {self.opened} openings verified, {self.sealed} sealed{pinned}")


def verify(client: Client, state: State, key: str | None = None) -> tuple[Verdict, State]:
    """Check the log behind `client` against `state`; raise Inconsistent on any fault.
    Returns the verdict and the new state (the caller saves it)."""
    pinned_now = False
    if key and state.key and key.strip() != state.key:
        raise Inconsistent("the key given differs from the key pinned in the state file")
    vkey = key or state.key
    if vkey is None:
        vkey = client.request("GET", "/api/v1/log/key").text.strip()
        pinned_now = True
    verifier = Verifier.parse(vkey)
    note = client.request("GET", "/log/checkpoint").text
    try:
        cp = Checkpoint.parse(open_note(note, verifier))
    except NoteError as exc:
        raise Inconsistent(f"checkpoint: {exc}") from None
    if cp.origin != verifier.name:
        raise Inconsistent(f"checkpoint origin {cp.origin!r} is not the key's {verifier.name!r}")
    if cp.size < state.size:
        raise Inconsistent(f"the log shrank from {state.size} leaves to {cp.size}",
                           index=cp.size)
    if cp.size == state.size and cp.root != state.root:
        raise Inconsistent(f"fork: two checkpoints of size {cp.size} with different roots "
                           f"({state.root.hex()[:16]}… seen before, {cp.root.hex()[:16]}… now)")
    _check_history(client, verifier, state)

    tree = merkle.MemoryTree()
    opened = sealed = 0
    for entry in _entries(client, cp.size):
        i = entry["index"]
        data = entry["leaf"].encode()
        h = merkle.leaf_hash(data)
        if i < state.size and h != state.hashes[i]:
            raise Inconsistent(f"index {i}: the leaf differs from the one seen at size "
                               f"{state.size} (history rewritten)", index=i)
        _check_entry(i, entry)
        opened += entry["state"] == "open"
        sealed += entry["state"] == "sealed"
        tree.append(h)
    if tree.size != cp.size:
        raise Inconsistent(f"the server listed {tree.size} leaves for a checkpoint of "
                           f"{cp.size}", index=tree.size)
    if tree.root() != cp.root:
        raise Inconsistent("the leaves served do not hash to the signed checkpoint's root")
    if 0 < state.size < cp.size:
        proof = client.get("/api/v1/log/proof/consistency", first=state.size, second=cp.size)
        hashes = [base64.b64decode(h) for h in proof["hashes"]]
        if not merkle.verify_consistency(state.size, cp.size, state.root, cp.root, hashes):
            raise Inconsistent(f"the server's consistency proof from {state.size} to "
                               f"{cp.size} does not verify")
    new = State(key=str(verifier), note=note, size=cp.size, root=cp.root,
                hashes=tree.levels[0])
    return Verdict(cp.origin, cp.size, cp.root, state.size, opened, sealed, pinned_now), new


def _check_history(client: Client, verifier: Verifier, state: State) -> None:
    """A fork shows as a signed checkpoint, in the server's own history, of the size we
    hold with another root."""
    if not state.size:
        return
    page = client.get("/api/v1/log/checkpoints", before=state.size + 1, limit=1)
    for item in page["items"]:
        if item["tree_size"] != state.size:
            continue
        try:
            cp = Checkpoint.parse(open_note(item["note"], verifier))
        except NoteError:
            continue  # not signed by the pinned key: nobody is bound by it
        if cp.root != state.root:
            raise Inconsistent(f"fork: the log signed a checkpoint of size {cp.size} with "
                               f"root {cp.root.hex()[:16]}…, but showed "
                               f"{state.root.hex()[:16]}… before")


def _entries(client: Client, size: int):
    start = 0
    while start < size:
        end = min(size, start + PAGE)
        page = client.get("/api/v1/log/entries", start=start, end=end)
        got = page["entries"]
        for expected, entry in enumerate(got, start=start):
            if entry["index"] != expected:
                raise Inconsistent(f"index {expected}: the server skipped it", index=expected)
            yield entry
        if len(got) != end - start:
            raise Inconsistent(f"index {start + len(got)}: the server did not list it",
                               index=start + len(got))
        start = end


def _check_entry(i: int, entry: dict) -> None:
    try:
        leaf = json.loads(entry["leaf"])
        commitment = leaf["commitment"]
    except (ValueError, KeyError, TypeError):
        raise Inconsistent(f"index {i}: the leaf is not a commitment this monitor reads",
                           index=i) from None
    if entry["state"] == "missing":
        raise Inconsistent(f"index {i}: the event this leaf commits to is gone from the "
                           "registry", index=i)
    opening = entry.get("opening")
    if entry["state"] != "open" or not opening:
        return
    content = opening["content"].encode()
    if hashlib.sha256(bytes.fromhex(opening["salt"]) + content).hexdigest() != commitment:
        raise Inconsistent(f"index {i}: the opening does not match the commitment (the "
                           "event was changed after it was logged)", index=i)
    shown = json.loads(content)
    if (shown.get("at"), shown.get("entity_type")) != (leaf.get("at"), leaf.get("entity_type")):
        raise Inconsistent(f"index {i}: the leaf's time or entity type differs from the "
                           "event's", index=i)


def run(url: str | None, state_path: Path | None, key: str | None,
        token: str | None = None) -> tuple[int, str]:
    """(exit code, one line): 0 consistent, 1 inconsistent."""
    client = Client(url, token=token)
    try:
        state = State.load(state_path)
        try:
            verdict, new = verify(client, state, key)
        except Inconsistent as exc:
            return 1, f"FAIL: {exc}"
        except ApiError:
            raise
        if state_path is not None:
            new.save(state_path)
        return 0, verdict.line()
    finally:
        client.http.close()
