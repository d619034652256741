"""app/transparency/note.py against the test vectors of Go's golang.org/x/mod/sumdb/note
and sumdb/tlog, and the examples of the C2SP signed-note and tlog-checkpoint specs.

Sources of the strings (copied verbatim):
  * golang/mod  sumdb/note/note_test.go  TestNewVerifier, TestNewSigner, TestSign, TestOpen
                                         (PeterNeumann and EnochRoot keys, signed note)
  * golang/mod  sumdb/tlog/note_test.go  TestFormatTree, TestParseTree
  (golang/mod at commit fe2ec04f7c3c3aa6fad97631aafcff6e49e2d1db)
  * C2SP/C2SP   signed-note.md           "Example" (example.com/foo)
  * C2SP/C2SP   tlog-checkpoint.md       the example checkpoint
  (C2SP/C2SP at commit 5ba5ee830903e91240fc6f9f3a7a9293d49e69c9)
"""

from __future__ import annotations

import base64
import hashlib
import stat

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.transparency.merkle import EMPTY_ROOT, leaf_hash
from app.transparency.note import (
    DASH,
    Checkpoint,
    NoteError,
    Signer,
    Verifier,
    key_id,
    load_or_create_signer,
    open_note,
)

# -- golang/mod sumdb/note/note_test.go ---------------------------------------------------

PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = ("If you think cryptography is the answer to your problem,\n"
        "then you don't know what your problem is.\n")
PETER_SIG = ("— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgK"
             "vqfqdngotpRZb6KE6RyyBwJnAM=\n")
ENOCH_SIG = ("— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01o"
             "OTGwnWLox33WWd1RvMc+QQ=\n")
# TestSign's `want`
SIGNED = TEXT + "\n" + PETER_SIG

# -- C2SP signed-note.md, "Example" ---------------------------------------------------------

C2SP_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
C2SP_NOTE = ("This is an example message.\n"
             "\n"
             "— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZX"
             "sYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n")

# -- C2SP tlog-checkpoint.md (its signature is by a key the spec does not publish) ------------

C2SP_CHECKPOINT = ("example.com/behind-the-sofa\n"
                   "20852163\n"
                   "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n")

# -- golang/mod sumdb/tlog/note_test.go: tlog.RecordHash is RFC 6962's leaf hash ------------

TLOG_TREE = ("go.sum database tree\n"
             "123456789012\n"
             "TszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n")


def _seed(skey: str) -> bytes:
    """The Ed25519 seed of a Go note signer key:
    PRIVATE+KEY+<name>+<hex id>+base64(0x01 ‖ 32-byte seed)."""
    private, key, name, hex_id, b64 = skey.split("+", 4)  # base64 may hold a "+"
    assert (private, key) == ("PRIVATE", "KEY") and name and len(hex_id) == 8
    raw = base64.b64decode(b64, validate=True)
    assert len(raw) == 33 and raw[0] == 1
    return raw[1:]


PETER = Verifier.parse(PETER_VKEY)
ENOCH = Verifier.parse(ENOCH_VKEY)


def _signer(name: str, seed: bytes) -> Signer:
    return Signer(name, Ed25519PrivateKey.from_private_bytes(seed))


def _bytes_splice(s: str, at: int, insert: str) -> str:
    """Go's s[:at] + insert + s[at:], at counted in UTF-8 bytes (the dash is 3)."""
    b = s.encode()
    return (b[:at] + insert.encode() + b[at:]).decode()


# -- verifier keys ----------------------------------------------------------------------------

def test_peter_verifier_key():
    assert PETER.name == "PeterNeumann"
    assert PETER.id == bytes.fromhex("c74f20a3")
    assert len(PETER.public) == 32
    assert key_id(PETER.name, PETER.public) == PETER.id
    assert str(PETER) == PETER_VKEY
    assert Verifier.parse(PETER_VKEY + "\n") == PETER  # a key file's newline


def test_enoch_and_c2sp_verifier_keys():
    assert (ENOCH.name, ENOCH.id.hex(), str(ENOCH)) == ("EnochRoot", "af0cfe78", ENOCH_VKEY)
    c2sp = Verifier.parse(C2SP_VKEY)
    assert (c2sp.name, c2sp.id.hex(), str(c2sp)) == ("example.com/foo", "530d903a", C2SP_VKEY)


def _manglings(key: str):
    """TestNewVerifier's: every proper substring, and each byte incremented."""
    for i in range(len(key) + 1):
        for j in range(i + 1, len(key) + 1):
            if i != 0 or j != len(key):
                yield key[i:j]
    for i in range(len(key)):
        yield key[:i] + chr(ord(key[i]) + 1) + key[i + 1:]


def test_mangled_verifier_keys_are_refused():
    accepted = []
    for bad in _manglings(PETER_VKEY):
        try:
            Verifier.parse(bad)
            accepted.append(bad)
        except NoteError:
            pass
    assert accepted == []


@pytest.mark.parametrize("vkey", [
    # TestNewVerifier: wrong length key, with adjusted key hash
    "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
    # TestNewVerifier: unknown algorithm, with adjusted key hash
    "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    "",
    "PeterNeumann",
    "PeterNeumann+c74f20a3",
    "PeterNeumann+c74f20a3+",
    "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW+extra",
    "PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",     # 7 hex digits
    "PeterNeumann+0c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",   # 9 hex digits
    "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",    # wrong id
    "PeterNeuman+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",     # wrong name
    "PeterNeumann+zzzzzzzz+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",    # not hex
    "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T",     # bad base64
    "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy1 TW",    # space
    "PeterNeumann c74f20a3 ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ENOCH_VKEY.replace("EnochRoot", "PeterNeumann"),
])
def test_malformed_verifier_keys(vkey):
    with pytest.raises(NoteError):
        Verifier.parse(vkey)


def _vkey(name: str, seed: bytes = bytes(32)) -> str:
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    b64 = base64.b64encode(bytes([1]) + public).decode()
    return f"{name}+{key_id(name, public).hex()}+{b64}"


@pytest.mark.parametrize("name", ["", "Peter Neumann", "Peter\u00a0Neumann"])
def test_verifier_key_names_are_checked(name):
    with pytest.raises(NoteError):
        Verifier.parse(_vkey(name))


# -- signing: Ed25519 is deterministic, so our signature lines equal Go's ------------------

def test_peter_signer_key_matches_its_verifier_key():
    signer = _signer("PeterNeumann", _seed(PETER_SKEY))
    assert signer.verifier == PETER
    assert str(signer.verifier) == PETER_VKEY


def test_sign_reproduces_go_sign():
    """TestSign: Sign(&Note{Text: text}, signer) is `want`, byte for byte."""
    assert _signer("PeterNeumann", _seed(PETER_SKEY)).sign(TEXT) == SIGNED


def test_sign_reproduces_the_enoch_signature():
    """note_test.go gives no EnochRoot private key; its public key is the one of the
    all-zero Ed25519 seed, and that seed signs TEXT into TestOpen's enochSig."""
    signer = _signer("EnochRoot", bytes(32))
    assert signer.verifier == ENOCH
    assert signer.sign(TEXT) == TEXT + "\n" + ENOCH_SIG


@pytest.mark.parametrize("name", ["", "a b", "a+b", "PeterNeumann\n", "tab\there"])
def test_signer_names_are_checked(name):
    with pytest.raises(NoteError):
        _signer(name, bytes(32))


def test_sign_needs_a_final_newline():
    signer = _signer("PeterNeumann", _seed(PETER_SKEY))
    with pytest.raises(NoteError):
        signer.sign("abc")  # TestSign: "Sign with short text"
    with pytest.raises(NoteError):
        signer.sign(TEXT[:-1])


def test_verifier_verify():
    sig = base64.b64decode(PETER_SIG.split(" ")[2])[4:]
    assert PETER.verify(TEXT.encode(), sig)
    assert not PETER.verify(TEXT.encode() + b"x", sig)
    assert not PETER.verify(TEXT.encode(), bytes([sig[0] ^ 1]) + sig[1:])
    assert not PETER.verify(TEXT.encode(), sig[:-1])
    assert not ENOCH.verify(TEXT.encode(), sig)


# -- opening notes ----------------------------------------------------------------------------

def test_open_the_go_note():
    assert open_note(SIGNED, PETER) == TEXT


def test_open_the_c2sp_example():
    assert open_note(C2SP_NOTE, Verifier.parse(C2SP_VKEY)) == "This is an example message.\n"


def test_open_with_several_signatures():
    """TestOpen: one note, two signatures; each verifier finds its own."""
    for sigs in (PETER_SIG + ENOCH_SIG, ENOCH_SIG + PETER_SIG):
        note = TEXT + "\n" + sigs
        assert open_note(note, PETER) == TEXT
        assert open_note(note, ENOCH) == TEXT
    # TestOpen "Duplicated verified and unverified signatures"
    enoch_abcd = _bytes_splice(ENOCH_SIG, 60, "ABCD")
    note = TEXT + "\n" + PETER_SIG + PETER_SIG + ENOCH_SIG + ENOCH_SIG + enoch_abcd
    assert open_note(note, PETER) == TEXT


def test_text_with_blank_lines():
    """signed-note: the text MAY hold empty lines; the last one separates the signatures."""
    signer = _signer("PeterNeumann", _seed(PETER_SKEY))
    text = "a\n\nb\n\n\nc\n"
    assert open_note(signer.sign(text), PETER) == text


@pytest.mark.parametrize("note", [
    # TestOpen's badMsgs
    TEXT,
    TEXT + "\n",
    TEXT + "\n" + PETER_SIG[:-1],
    "\x01" + TEXT + "\n" + PETER_SIG,
    "\xff" + TEXT + "\n" + PETER_SIG,
    TEXT + "\n" + "— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKv"
                  "qfqdngotpRZb6KE6RyyBwJnAM=",
    # TestOpen "Invalid signature": ABCD spliced into the base64 at byte 60
    TEXT + "\n" + _bytes_splice(PETER_SIG, 60, "ABCD"),
    # TestOpen "Verifiers returns a Verifier for the wrong name or hash"
    TEXT + "\n" + PETER_SIG.replace("PeterNeumann", "CarmenSandiego"),
    TEXT + "\n" + PETER_SIG.replace("x08g", "xxxx"),
    # signed by another key only
    TEXT + "\n" + ENOCH_SIG,
    # the text changed
    TEXT.replace("cryptography", "cryptografy") + "\n" + PETER_SIG,
    TEXT + "P.S.\n" + "\n" + PETER_SIG,
    TEXT[:-1] + " \n" + "\n" + PETER_SIG,
    # the signature changed: a base64 character of the signature part, the key id
    TEXT + "\n" + PETER_SIG.replace("AcElZ", "AcElY"),
    TEXT + "\n" + PETER_SIG.replace("x08go/", "x08go0"),
    TEXT + "\n" + PETER_SIG.replace("nAM=", "nAA="),
    # signature lines in other shapes
    TEXT + "\n" + PETER_SIG.replace("—", "-"),
    TEXT + "\n" + PETER_SIG.replace("— ", "—  "),
    TEXT + "\n" + PETER_SIG.replace(" x08", "  x08"),
    TEXT + "\n" + PETER_SIG.replace("\n", " \n"),
    TEXT + "\n" + PETER_SIG.replace("PeterNeumann", "PeterNeumann extra"),
    TEXT + "\n" + PETER_SIG[:-6] + "!!!!=\n",
    TEXT + "\n\n" + PETER_SIG[2:],
    "",
    "\n",
    "\n\n",
])
def test_bad_notes_are_refused(note):
    with pytest.raises(NoteError):
        open_note(note, PETER)


def test_signed_by_another_key_or_another_name():
    peter_seed = _seed(PETER_SKEY)
    # the same key under another name: another key id
    other_name = _signer("PeterNeumann2", peter_seed).sign(TEXT)
    with pytest.raises(NoteError):
        open_note(other_name, PETER)
    # its signature line renamed to PeterNeumann: the key id is still the other name's
    renamed = other_name.replace(f"{DASH} PeterNeumann2 ", f"{DASH} PeterNeumann ")
    assert renamed != other_name
    with pytest.raises(NoteError):
        open_note(renamed, PETER)
    # another key under the name PeterNeumann
    impostor = _signer("PeterNeumann", bytes(range(32))).sign(TEXT)
    with pytest.raises(NoteError):
        open_note(impostor, PETER)
    # another key that claims PeterNeumann's key id: the signature does not verify
    sig = base64.b64decode(impostor.rsplit(" ", 1)[1])
    forged = TEXT + "\n" + f"{DASH} PeterNeumann " + \
        base64.b64encode(PETER.id + sig[4:]).decode() + "\n"
    with pytest.raises(NoteError):
        open_note(forged, PETER)
    # Peter's signature under Enoch's name and key id
    sig = base64.b64decode(PETER_SIG.split(" ")[2])
    moved = TEXT + "\n" + f"{DASH} EnochRoot " + base64.b64encode(ENOCH.id + sig[4:]).decode() \
        + "\n"
    with pytest.raises(NoteError):
        open_note(moved, ENOCH)


def test_lines_after_a_verified_signature_are_checked():
    with pytest.raises(NoteError):
        open_note(TEXT + "\n" + PETER_SIG + "Unexpected line.\n", PETER)


def test_lines_before_the_signature_are_checked():
    with pytest.raises(NoteError):
        open_note(TEXT + "\n" + "Unexpected line.\n" + PETER_SIG, PETER)


# -- checkpoints ------------------------------------------------------------------------------

def test_tlog_tree_golden():
    """tlog TestFormatTree / TestParseTree."""
    cp = Checkpoint("go.sum database tree", 123456789012, leaf_hash(b"hello world"))
    assert cp.text() == TLOG_TREE
    assert Checkpoint.parse(TLOG_TREE) == cp
    # TestParseTree "junk on end is ignored" (tlog-checkpoint: extension lines)
    for good in (TLOG_TREE + "JOE", TLOG_TREE + "JOE\n", TLOG_TREE + "JOE\n" * 1000):
        assert Checkpoint.parse(good) == cp


def test_c2sp_checkpoint_example():
    cp = Checkpoint.parse(C2SP_CHECKPOINT)
    assert cp.origin == "example.com/behind-the-sofa"
    assert cp.size == 20852163
    assert cp.root == base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    assert cp.text() == C2SP_CHECKPOINT


@pytest.mark.parametrize("cp", [
    Checkpoint("example.com/log", 0, EMPTY_ROOT),
    Checkpoint("example.com/log", 1, leaf_hash(b"")),
    Checkpoint("stagegate.example/transparency", 2 ** 63 - 1, hashlib.sha256(b"x").digest()),
    Checkpoint("o", 7, bytes(32)),
])
def test_checkpoint_round_trip(cp):
    assert Checkpoint.parse(cp.text()) == cp
    assert cp.text().endswith("\n") and cp.text().count("\n") == 3
    signer = _signer("example.com/log", bytes(range(32)))
    note = signer.sign(cp.text())
    assert Checkpoint.parse(open_note(note, signer.verifier)) == cp
    with pytest.raises(NoteError):
        open_note(note, PETER)


ROOT = "TszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0="


@pytest.mark.parametrize("text", [
    # tlog TestParseTree badTrees (the first, "not-" + in, is a different origin: fine here)
    "go.sum database tree\n0xabcdef\n" + ROOT + "\n",
    "go.sum database tree\n123456789012\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBTOOBIG=\n",
    "",
    "\n",
    "o\n",
    "o\n5\n",
    "o\n5\n\n",
    "\n5\n" + ROOT + "\n",                 # empty origin
    "o\n\n" + ROOT + "\n",                 # empty size
    "o\n-1\n" + ROOT + "\n",
    "o\n+5\n" + ROOT + "\n",
    "o\n 5\n" + ROOT + "\n",
    "o\n5 \n" + ROOT + "\n",
    "o\n5_000\n" + ROOT + "\n",
    "o\n1e3\n" + ROOT + "\n",
    "o\nfive\n" + ROOT + "\n",
    "o\n5\n" + ROOT[:-4] + "\n",           # bad base64
    "o\n5\n" + ROOT[:-1] + "\n",           # missing padding
    "o\n5\n" + ROOT + " \n",
    "o\n5\n" + base64.b64encode(bytes(31)).decode() + "\n",
    "o\n5\n" + base64.b64encode(bytes(33)).decode() + "\n",
    "o\n5\n" + bytes(32).hex() + "\n",
    ROOT + "\n",
    "o " + "5 " + ROOT + "\n",
])
def test_malformed_checkpoints(text):
    with pytest.raises(NoteError):
        Checkpoint.parse(text)


@pytest.mark.parametrize("text", [
    "o\n05\n" + ROOT + "\n",
    "o\n00\n" + ROOT + "\n",
    "o\n\u0665\n" + ROOT + "\n",           # ARABIC-INDIC DIGIT FIVE: int() reads 5
    "o\n5\n" + ROOT,
])
def test_checkpoint_size_is_canonical(text):
    with pytest.raises(NoteError):
        Checkpoint.parse(text)


# -- the log's key file -------------------------------------------------------------------------

def test_load_or_create_signer(tmp_path):
    path = tmp_path / "keys" / "log.key"
    first = load_or_create_signer(path, "example.com/log")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(bytes.fromhex(path.read_text().strip())) == 32
    again = load_or_create_signer(path, "example.com/log")
    assert again.verifier == first.verifier
    assert open_note(first.sign("a\n"), again.verifier) == "a\n"
    path.write_text(_seed(PETER_SKEY).hex() + "\n")
    assert load_or_create_signer(path, "PeterNeumann").sign(TEXT) == SIGNED
