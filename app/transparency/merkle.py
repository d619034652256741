"""RFC 6962 (RFC 9162 §2.1) Merkle tree hashing, proofs and their verification.

Pure functions, no database. A tree's complete subtrees are addressed by (level, n): the
node at level L, index n covers leaves [n·2^L, (n+1)·2^L). The log stores exactly those
nodes (app/transparency/tables.py), and every hash a proof or a root needs is a fold of
them: `needed` lists the nodes, a `read` callable fetches them in one go, `fold` combines.
This is how Go's golang.org/x/mod/sumdb/tlog works, and why a proof at a million leaves
is one indexed query.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

Node = tuple[int, int]  # (level, index)
Reader = Callable[[list[Node]], list[bytes]]

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split(n: int) -> int:
    """The largest power of two smaller than n (n > 1): RFC 6962's k."""
    return 1 << ((n - 1).bit_length() - 1)


def subtrees(lo: int, hi: int) -> list[Node]:
    """The maximal complete subtrees covering leaves [lo, hi), left to right. For the
    ranges RFC 6962 recursion produces (lo aligned to the next power of two above
    hi - lo), their right-to-left fold is MTH(D[lo:hi])."""
    nodes = []
    while lo < hi:
        level = (lo & -lo).bit_length() - 1 if lo else (hi - lo).bit_length()
        while lo + (1 << level) > hi:
            level -= 1
        nodes.append((level, lo >> level))
        lo += 1 << level
    return nodes


def fold(hashes: Sequence[bytes]) -> bytes:
    h = hashes[-1]
    for left in reversed(hashes[:-1]):
        h = node_hash(left, h)
    return h


# -- what a root or a proof needs ------------------------------------------------------

def inclusion_ranges(index: int, lo: int, hi: int) -> list[tuple[int, int]]:
    """RFC 6962 §2.1.1 PATH(m, D[lo:hi]) as leaf ranges, leaf side first."""
    path = []
    while hi - lo > 1:
        k = split(hi - lo)
        if index < lo + k:
            path.append((lo + k, hi))
            hi = lo + k
        else:
            path.append((lo, lo + k))
            lo += k
    return list(reversed(path))


def consistency_ranges(first: int, second: int) -> list[tuple[int, int]]:
    """RFC 6962 §2.1.2 PROOF(m, D[n]) = SUBPROOF(m, D[0:n], true) as leaf ranges."""
    out: list[tuple[int, int]] = []
    m, lo, hi, whole = first, 0, second, True
    while True:
        n = hi - lo
        if m == n:
            if not whole:
                out.append((lo, hi))
            break
        k = split(n)
        if m <= k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            m, lo, whole = m - k, lo + k, False
    return list(reversed(out))


def hashes_of(ranges: list[tuple[int, int]], read: Reader) -> list[bytes]:
    """MTH of each leaf range, from one read of the stored complete subtrees."""
    parts = [subtrees(lo, hi) for lo, hi in ranges]
    wanted = sorted({node for part in parts for node in part})
    got = dict(zip(wanted, read(wanted), strict=True))
    return [fold([got[node] for node in part]) for part in parts]


def tree_root(size: int, read: Reader) -> bytes:
    return hashes_of([(0, size)], read)[0] if size else EMPTY_ROOT


def inclusion_proof(index: int, size: int, read: Reader) -> list[bytes]:
    if not 0 <= index < size:
        raise ValueError(f"index {index} is not in a tree of {size} leaves")
    return hashes_of(inclusion_ranges(index, 0, size), read)


def consistency_proof(first: int, second: int, read: Reader) -> list[bytes]:
    if not 0 <= first <= second:
        raise ValueError(f"no consistency proof from {first} leaves to {second}")
    if first in (0, second):
        return []
    return hashes_of(consistency_ranges(first, second), read)


def new_nodes(size: int, leaf_hashes: Sequence[bytes], read: Reader) -> list[tuple[int, int, bytes]]:
    """The complete-subtree nodes that appending `leaf_hashes` to a tree of `size`
    leaves creates, as (level, index, hash): each leaf, and each parent it completes."""
    # The left siblings an append can need are the tree's right edge (its compact range).
    edge = subtrees(0, size)
    known = dict(zip(edge, read(edge), strict=True)) if edge else {}
    out = []
    for offset, h in enumerate(leaf_hashes):
        i = size + offset
        known[(0, i)] = h
        out.append((0, i, h))
        level, n = 0, i
        while n & 1:
            h = node_hash(known[(level, n - 1)], h)
            level, n = level + 1, n >> 1
            known[(level, n)] = h
            out.append((level, n, h))
    return out


# -- verification (RFC 9162 §2.1.3.2 and §2.1.4.2) --------------------------------------

def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes],
                     root: bytes) -> bool:
    """True when `proof` shows the leaf hash `leaf` at `index` in the tree of `size`
    leaves whose root is `root`."""
    if not 0 <= index < size or any(len(h) != 32 for h in (leaf, root, *proof)):
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes,
                       proof: Sequence[bytes]) -> bool:
    """True when `proof` shows the tree (first, first_root) is a prefix of the tree
    (second, second_root)."""
    if not 0 <= first <= second:
        return False
    if first == 0 and first_root != EMPTY_ROOT:
        return False
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        return not proof
    proof = list(proof)
    if not proof:
        return False
    if first & (first - 1) == 0:  # a power of two: first_root is the proof's first node
        proof.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == first_root and sr == second_root


class MemoryTree:
    """A tree held in memory (tests, the monitor): `read` over its leaf hashes."""

    def __init__(self, leaf_hashes: Sequence[bytes] = ()):
        self.levels: list[list[bytes]] = [[]]
        for h in leaf_hashes:
            self.append(h)

    @property
    def size(self) -> int:
        return len(self.levels[0])

    def append(self, h: bytes) -> None:
        level = 0
        self.levels[0].append(h)
        while len(self.levels[level]) % 2 == 0:
            row = self.levels[level]
            if len(self.levels) == level + 1:
                self.levels.append([])
            self.levels[level + 1].append(node_hash(row[-2], row[-1]))
            level += 1

    def read(self, nodes: list[Node]) -> list[bytes]:
        return [self.levels[level][n] for level, n in nodes]

    def root(self, size: int | None = None) -> bytes:
        return tree_root(self.size if size is None else size, self.read)
