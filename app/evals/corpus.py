"""Evaluation corpora: the built-in demo text, registered dataset files, stable splits."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Corpus:
    name: str
    texts: list[str]
    digest: str  # sha256 over the canonical content, so results can cite exactly what they saw


def _digest(texts: list[str]) -> str:
    # Length-prefixing each document makes the digest unambiguous (no separator collisions).
    h = hashlib.sha256()
    for t in texts:
        b = t.encode("utf-8")
        h.update(len(b).to_bytes(8, "big"))
        h.update(b)
    return h.hexdigest()


def make_corpus(name: str, texts: list[str]) -> Corpus:
    clean = [t.strip() for t in texts if t and t.strip()]
    return Corpus(name=name, texts=clean, digest=_digest(clean))


# Lines that are markup rather than prose: underlines of reST headings, code and grammar.
_RULE = re.compile(r"^[\*=\-~^\"#+]{3,}\s*$")


def _paragraphs(topic: str) -> list[str]:
    """Keep prose paragraphs of a stdlib doc topic; drop headings, code blocks, grammar."""
    out = []
    for block in re.split(r"\n\s*\n", topic):
        lines = block.split("\n")
        if any(_RULE.match(ln) for ln in lines):
            continue
        # Indented blocks are code samples, grammar productions or tables in the docs.
        if all(ln.startswith(" ") for ln in lines if ln.strip()):
            continue
        text = " ".join(ln.strip() for ln in lines if ln.strip())
        if len(text) < 80 or ">>>" in text or text.count("::=") > 0:
            continue
        out.append(text)
    return out


def demo_corpus(min_chars: int = 300) -> Corpus:
    """Human-written English that ships with every Python: the reference docs in pydoc_data.

    Consecutive prose paragraphs of one topic are joined into documents of at least
    ``min_chars`` characters so each document has room for a prompt and a continuation.
    """
    from pydoc_data.topics import topics

    docs: list[str] = []
    for key in sorted(topics):
        buf = ""
        for para in _paragraphs(topics[key]):
            buf = f"{buf} {para}".strip()
            if len(buf) >= min_chars:
                docs.append(buf)
                buf = ""
        if len(buf) >= min_chars // 2:
            docs.append(buf)
    return make_corpus("pydoc-topics", docs)


def load_corpus(path: str | Path) -> Corpus:
    """A registered dataset file: .txt (blank-line separated documents) or .jsonl ("text")."""
    p = Path(path)
    raw = p.read_text(encoding="utf-8")
    if p.suffix == ".jsonl":
        texts = []
        for n, line in enumerate(raw.splitlines(), 1):
            if not line.strip():
                continue
            row = json.loads(line)
            # A malformed data file is a bad value from the uploader, hence ValueError.
            if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                msg = f"{p.name} line {n}: expected an object with a string 'text'"
                raise ValueError(msg)  # noqa: TRY004
            texts.append(row["text"])
    elif p.suffix == ".txt":
        texts = re.split(r"\n\s*\n", raw)
    else:
        raise ValueError(f"{p.name}: unsupported corpus format (use .txt or .jsonl)")
    return make_corpus(p.stem, texts)


def split(corpus: Corpus, seed: int = 0,
          held_out_fraction: float = 0.2) -> tuple[list[str], list[str]]:
    """Deterministic train / held-out split: a document's side depends on its own hash only,
    so adding documents never moves existing ones across the split."""
    if not 0.0 < held_out_fraction < 1.0:
        raise ValueError("held_out_fraction must be between 0 and 1")
    train, held = [], []
    for t in corpus.texts:
        h = hashlib.sha256(f"{seed}\0{t}".encode()).digest()
        u = int.from_bytes(h[:8], "big") / 2**64
        (held if u < held_out_fraction else train).append(t)
    # Tiny corpora could put everything on one side; keep both sides non-empty.
    if not held and len(train) > 1:
        held.append(train.pop())
    if not train and len(held) > 1:
        train.append(held.pop(0))
    return train, held
