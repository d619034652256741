"""Go's own checksum-database code (golang.org/x/mod/sumdb/note and sumdb/tlog) verifies
the transparency log a real server serves: tests/interop/verify.go, built with Debian's
golang-go and golang-golang-x-mod-dev (`make go`), never a module download.

Skipped when the toolchain is missing, unless CI=true (then it fails)."""

from __future__ import annotations

import base64
import http.client
import json
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from app.auth.principal import SYSTEM
from app.db import session_scope
from app.events.service import record
from app.settings import get_settings
from app.transparency.log import tree_size

HERE = Path(__file__).parent
GO = os.environ.get("STAGEGATE_GO", "/usr/bin/go")
GOPATH = "/usr/share/gocode"
XMOD = Path(GOPATH) / "src/golang.org/x/mod/sumdb"


@pytest.fixture(scope="session")
def verifier(tmp_path_factory) -> Path:
    """tests/interop/verify.go, built once per test process (about a second)."""
    if not (Path(GO).is_file() and (XMOD / "tlog/tile.go").is_file()
            and (XMOD / "note/note.go").is_file()):
        why = f"Go or golang.org/x/mod not found ({GO}, {XMOD}): `make go` installs them"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    out = tmp_path_factory.mktemp("go")
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": GOPATH, "GOFLAGS": "",
           "GOCACHE": str(out / "cache"), "CGO_ENABLED": "0"}
    built = subprocess.run([GO, "build", "-o", str(out / "verify"), str(HERE / "verify.go")],
                           env=env, capture_output=True, text=True, timeout=300,
                           check=False)
    assert built.returncode == 0, f"go build failed:\n{built.stdout}{built.stderr}"
    return out / "verify"


@pytest.fixture(autouse=True)
def _checkpoint_every_read(monkeypatch):
    """Autouse, so it runs before `settings` builds Settings (which reads the env): every
    GET /log/checkpoint after a write signs a new checkpoint."""
    monkeypatch.setenv("STAGEGATE_LOG_CHECKPOINT_S", "0")


def run_verifier(binary: Path, url: str, *args) -> tuple[int, str]:
    done = subprocess.run([str(binary), *map(str, args), url], capture_output=True,
                          text=True, timeout=120, check=False)
    return done.returncode, done.stdout + done.stderr


def grow_to(size: int) -> None:
    """Record events until the log holds `size` leaves: a few transactions of many
    events (many leaves in one append), then single-event ones."""
    with session_scope(write=False) as s:
        now = tree_size(s)
    assert now <= size, f"the log already has {now} leaves"
    while now < size:
        batch = min(size - now, 97) if size - now > 5 else 1
        with session_scope() as s:
            for k in range(batch):
                record(s, SYSTEM, "interop", now + k, "touched", {"n": now + k},
                       visibility="public", data={"n": now + k})
        now += batch
    with session_scope(write=False) as s:
        assert tree_size(s) == size


# -- a proxy that tampers with one kind of answer --------------------------------------

def _flip(data: bytes, at: int = 0) -> bytes:
    b = bytearray(data)
    b[at] ^= 0x01
    return bytes(b)


def _flip_proof(body: bytes) -> bytes:
    doc = json.loads(body)
    if doc["hashes"]:
        doc["hashes"][0] = base64.b64encode(_flip(base64.b64decode(doc["hashes"][0]))).decode()
    return json.dumps(doc).encode()


def _flip_history(body: bytes) -> bytes:
    doc = json.loads(body)
    last = doc["items"][-1]  # the oldest: its size says one leaf more than was signed
    text, sigs = last["note"].split("\n\n", 1)
    origin, size, root = text.split("\n")
    last["note"] = f"{origin}\n{int(size) + 1}\n{root}\n\n{sigs}"
    last["tree_size"] = int(size) + 1
    return json.dumps(doc).encode()


def _flip_checkpoint(body: bytes) -> bytes:
    origin, size, root, rest = body.split(b"\n", 3)
    root = base64.b64encode(_flip(base64.b64decode(root), 31))
    return b"\n".join([origin, size, root, rest])


TAMPER = {
    # mode: (does this path get tampered with, how, what Go must say)
    # x/mod 0.7.0's TileHashReader lets this one through (CVE-2026-56865): verify.go's
    # own check of every tile against the tree Go rebuilds must catch it.
    "tile": (lambda p: p == "/log/tile/0/000", lambda b: _flip(b, 100),
             "a forged tile that x/mod"),
    "partial-tile": (lambda p: p.startswith("/log/tile/1/"), lambda b: _flip(b, 5),
                     "downloaded inconsistent tile"),
    "entries": (lambda p: p.startswith("/log/tile/entries/001"), lambda b: _flip(b, 40),
                "FAIL entries"),
    "inclusion": (lambda p: p.startswith("/api/v1/log/proof/inclusion"), _flip_proof,
                  "tlog.CheckRecord"),
    "consistency": (lambda p: p.startswith("/api/v1/log/proof/consistency"), _flip_proof,
                    "tlog.CheckTree"),
    "checkpoint": (lambda p: p == "/log/checkpoint", _flip_checkpoint,
                   "note.Open: invalid signature"),
    "history": (lambda p: p.startswith("/api/v1/log/checkpoints"), _flip_history,
                "note.Open: invalid signature"),
}


@pytest.fixture
def tampering_proxy(live_server):
    """http://127.0.0.1:PORT/<mode>: the live server, with TAMPER[mode] applied."""
    upstream = urlsplit(live_server)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            _, mode, path = self.path.split("/", 2)
            path = "/" + path
            conn = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=30)
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
            conn.close()
            hit, change, _ = TAMPER.get(mode, (lambda p: False, None, None))
            if resp.status == 200 and hit(path.split("?")[0]):
                body = change(body)
            self.send_response(resp.status)
            self.send_header("Content-Type", resp.getheader("Content-Type", ""))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


# -- the test ----------------------------------------------------------------------------

def test_go_sumdb_verifies_the_log(verifier, world, live_server, tampering_proxy):
    assert get_settings().log_checkpoint_s == 0
    http = httpx.Client(base_url=live_server, timeout=30)
    # Some real service writes first (world: labs, users, models; two plans).
    world.plan(filed=True)
    world.plan(filed=False, lab="lab-b")

    # Checkpoints at sizes that make tiles of every shape: inside tile 0, exactly one
    # full tile (a level-1 tile of width 1), then past it with level-0 partial tiles.
    signed = []
    for size in (37, 256):
        grow_to(size)
        signed.append(http.get("/log/checkpoint").text)
    code, out = run_verifier(verifier, live_server, "-min-size", 256, "-min-checkpoints", 2)
    assert code == 0, f"Go rejected the log at 256 leaves:\n{out}"

    for size in (300, 513, 700):
        grow_to(size)
        signed.append(http.get("/log/checkpoint").text)
    assert [int(n.split("\n")[1]) for n in signed] == [37, 256, 300, 513, 700]

    code, out = run_verifier(verifier, live_server, "-min-size", 700, "-min-checkpoints", 5)
    print(out)
    assert code == 0, f"Go rejected the log:\n{out}"
    assert "tlog.TreeHash(700) over" in out
    assert "3 bundle(s), 700 entries" in out
    # The four older checkpoints (37, 256, 300, 513) each proven a prefix of 700, and of
    # each other, through proofs Go checked and computed identically.
    assert "4 older ones consistent with size 700" in out
    assert "3 proof(s) between older checkpoints; 12 inclusion proofs" in out
    assert "all checks passed" in out

    # The same Go code rejects a log that lies, whatever it lies in.
    for mode, (_, _, said) in TAMPER.items():
        code, out = run_verifier(verifier, f"{tampering_proxy}/{mode}", "-min-size", 700)
        assert code != 0 and "FAIL" in out and said in out, \
            f"Go accepted a tampered {mode}:\n{out}"

    # Untampered through the proxy: the proxy itself is faithful.
    code, out = run_verifier(verifier, f"{tampering_proxy}/none", "-min-size", 700)
    assert code == 0, out
