"""app/transparency/merkle.py against the RFC 6962 reference vectors of independent
implementations, a from-the-RFC reference (MTH, PATH, PROOF written out below from
RFC 6962 §2.1), and tampered proofs.

Sources of the numbers (copied, not computed):
  * transparency-dev/merkle  testonly/constants.go   LeafInputs, NodeHashes, RootHashes,
                                                     CompactTrees, EmptyRootHash
    (the same vectors as google/certificate-transparency-go and google/trillian's
    merkle/testonly, from which transparency-dev/merkle was split)
  * transparency-dev/merkle  cmd/proofgen/main.go    inclusionProofs, consistencyProofs,
                                                     sha256SomeHash, and the probe mutations
                                                     that generate testdata/{inclusion,
                                                     consistency}/**.json
  * transparency-dev/merkle  testdata/inclusion/1/happy-path.json,
                             testdata/consistency/1/happy-path.json,
                             testdata/inclusion/single-entry/matching-root-and-leaf.json
  (transparency-dev/merkle at commit 417fb0c314750d94e53942e9f92e79b6d35915db)
"""

from __future__ import annotations

import base64
import hashlib
import random
from functools import lru_cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.transparency import merkle
from app.transparency.merkle import (
    EMPTY_ROOT,
    MemoryTree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    new_nodes,
    node_hash,
    subtrees,
    tree_root,
    verify_consistency,
    verify_inclusion,
)

hd = bytes.fromhex
b64 = base64.b64decode

# -- transparency-dev/merkle testonly/constants.go ---------------------------------------

LEAF_INPUTS = [hd(x) for x in (
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
)]

NODE_HASHES = [[hd(x) for x in level] for level in (
    (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ), (
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ), (
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ), (
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ),
)]

EMPTY_ROOT_HASH = hd("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")

ROOT_HASHES = [EMPTY_ROOT_HASH] + [hd(x) for x in (  # indexed by tree size
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
)]

# CompactTrees(): the complete subtrees of each tree size, as (level, index) into NodeHashes.
COMPACT_TREES = [
    [],
    [(0, 0)],
    [(1, 0)],
    [(1, 0), (0, 2)],
    [(2, 0)],
    [(2, 0), (0, 4)],
    [(2, 0), (1, 2)],
    [(2, 0), (1, 2), (0, 6)],
    [(3, 0)],
]

# -- transparency-dev/merkle cmd/proofgen/main.go ----------------------------------------

SOME_HASH = hd("abacaba000000000000000000000000000000000000000000060061e00123456")

# inclusionProofs: (leafIdx, size, proof). proofgen's leafIdx is 1-based
# (it hashes leaves[leafIdx-1] and probes index leafIdx-1), so index = leafIdx - 1.
INCLUSION_PROOFS = [
    (1, 1, []),
    (1, 8, [
        hd("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
        hd("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        hd("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
    ]),
    (6, 8, [
        hd("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        hd("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
        hd("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    ]),
    (3, 3, [
        hd("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
    ]),
    (2, 5, [
        hd("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
        hd("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        hd("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
    ]),
]

# consistencyProofs: (size1, size2, proof).
CONSISTENCY_PROOFS = [
    (1, 1, []),
    (1, 8, [
        hd("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
        hd("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        hd("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
    ]),
    (6, 8, [
        hd("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
        hd("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
        hd("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    ]),
    (2, 5, [
        hd("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        hd("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
    ]),
    (6, 7, [
        hd("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
        hd("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
        hd("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    ]),
]

REFERENCE_TREE = MemoryTree([leaf_hash(d) for d in LEAF_INPUTS])


# -- reference leaves, nodes, roots ------------------------------------------------------

def test_empty_root():
    assert EMPTY_ROOT == EMPTY_ROOT_HASH
    assert MemoryTree().root() == EMPTY_ROOT_HASH
    assert tree_root(0, lambda nodes: pytest.fail("an empty root reads nothing")) \
        == EMPTY_ROOT_HASH


def test_leaf_hashes():
    assert [leaf_hash(d) for d in LEAF_INPUTS] == NODE_HASHES[0]


def test_every_complete_subtree_node():
    for level, row in enumerate(NODE_HASHES):
        assert REFERENCE_TREE.levels[level] == row
    assert [len(row) for row in REFERENCE_TREE.levels] == [8, 4, 2, 1]
    for level in range(1, 4):  # each parent is node_hash of its two children
        for n, h in enumerate(NODE_HASHES[level]):
            assert node_hash(NODE_HASHES[level - 1][2 * n], NODE_HASHES[level - 1][2 * n + 1]) == h


@pytest.mark.parametrize("size", range(9))
def test_root_hashes(size):
    assert REFERENCE_TREE.root(size) == ROOT_HASHES[size]
    assert MemoryTree([leaf_hash(d) for d in LEAF_INPUTS[:size]]).root() == ROOT_HASHES[size]


@pytest.mark.parametrize("size", range(9))
def test_compact_trees(size):
    """subtrees(0, size) is the compact range of CompactTrees(), and folds to the root."""
    assert subtrees(0, size) == COMPACT_TREES[size]
    if size:
        hashes = [NODE_HASHES[level][n] for level, n in COMPACT_TREES[size]]
        assert merkle.fold(hashes) == ROOT_HASHES[size]


def test_published_json_probes():
    """Three probes exactly as published (base64) in transparency-dev/merkle testdata/."""
    # testdata/inclusion/1/happy-path.json
    proof = [b64(x) for x in ("lqKW0iTyhcZ77pPDD4owkVfw2qNdxbh+QQt4YwoJz8c=",
                              "Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=",
                              "a0eq8p7jwq+a+Im8H7klTavTEXfxYjLdaqsDXKOb9uQ=")]
    root8 = b64("XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=")
    leaf0 = b64("bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=")
    assert root8 == ROOT_HASHES[8] and leaf0 == NODE_HASHES[0][0]
    assert verify_inclusion(0, 8, leaf0, proof, root8)
    assert inclusion_proof(0, 8, REFERENCE_TREE.read) == proof
    # testdata/consistency/1/happy-path.json (same proof hashes)
    root1 = b64("bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=")
    assert verify_consistency(1, 8, root1, root8, proof)
    assert consistency_proof(1, 8, REFERENCE_TREE.read) == proof
    # testdata/inclusion/single-entry/matching-root-and-leaf.json
    h = b64("DTrtAjFI/9KiWfvQzcf7PPl1ZYdg03dbgq9vkKrMLfw=")
    assert h == leaf_hash(b"data")
    assert verify_inclusion(0, 1, h, [], h)


# -- reference proofs and the probes proofgen derives from them --------------------------

@pytest.mark.parametrize("leaf_idx,size,proof", INCLUSION_PROOFS)
def test_inclusion_proof_vectors(leaf_idx, size, proof):
    index = leaf_idx - 1
    assert inclusion_proof(index, size, REFERENCE_TREE.read) == proof
    assert inclusion_proof(index, size, MemoryTree(NODE_HASHES[0][:size]).read) == proof
    assert verify_inclusion(index, size, NODE_HASHES[0][index], proof, ROOT_HASHES[size])


@pytest.mark.parametrize("size1,size2,proof", CONSISTENCY_PROOFS)
def test_consistency_proof_vectors(size1, size2, proof):
    assert consistency_proof(size1, size2, REFERENCE_TREE.read) == proof
    assert verify_consistency(size1, size2, ROOT_HASHES[size1], ROOT_HASHES[size2], proof)


def _flip(h: bytes, mask: int) -> bytes:
    return bytes([h[0] ^ mask]) + h[1:]


U64 = 1 << 64  # proofgen's arithmetic is on uint64: 0 - 1 wraps


def invalid_inclusion_probes(index, size, proof, root, leaf):
    """proofgen's invalidInclusionProof, transcribed."""
    probes = [
        ((index - 1) % U64, size, root, leaf, proof, "leafIdx sub @1"),
        (index + 1, size, root, leaf, proof, "leafIdx plus @1"),
        (index ^ 2, size, root, leaf, proof, "leafIdx XOR @2"),
        (index, size * 2, root, leaf, proof, "treeSize mul @2"),
        (index, size // 2, root, leaf, proof, "treeSize div @2"),
        (index, size, root, b"WrongLeaf", proof, "wrong leaf"),
        (index, size, EMPTY_ROOT_HASH, leaf, proof, "empty root"),
        (index, size, SOME_HASH, leaf, proof, "random root"),
        (index, size, root, leaf, proof + [b""], "trailing garbage"),
        (index, size, root, leaf, proof + [root], "trailing root"),
        (index, size, root, leaf, [b""] + proof, "preceding garbage"),
        (index, size, root, leaf, [root] + proof, "preceding root"),
    ]
    for i in range(len(proof)):
        wrong = list(proof)
        wrong[i] = _flip(wrong[i], 8)
        probes.append((index, size, root, leaf, wrong, f"modified proof[{i}] bit @3"))
    if proof:
        probes.append((index, size, root, leaf, proof[:-1], "removed component"))
    if len(proof) > 1:
        probes.append((index, size, root, leaf, [proof[0], SOME_HASH] + proof[1:],
                       "inserted component"))
    return probes


@pytest.mark.parametrize("leaf_idx,size,proof", INCLUSION_PROOFS)
def test_inclusion_probes_rejected(leaf_idx, size, proof):
    index = leaf_idx - 1
    probes = invalid_inclusion_probes(index, size, proof, ROOT_HASHES[size],
                                      NODE_HASHES[0][index])
    # proofgen's field order is (index, size, root, leaf, proof)
    accepted = [desc for i, s, root, leaf, pr, desc in probes
                if verify_inclusion(i, s, leaf, pr, root)]
    assert accepted == []


def test_single_entry_and_static_inclusion_probes():
    """proofgen's singleEntryInclusionProbes and staticInclusionProbes."""
    h = leaf_hash(b"data")
    assert verify_inclusion(0, 1, h, [], h)                  # matching root and leaf
    assert not verify_inclusion(0, 1, b"", [], h)            # empty leaf
    assert not verify_inclusion(0, 1, h, [], b"")            # empty root
    for index, size in [(0, 0), (0, 1), (1, 0), (2, 1)]:
        assert not verify_inclusion(index, size, SOME_HASH, [], b"")                # random leaf
        assert not verify_inclusion(index, size, b"", [], EMPTY_ROOT_HASH)          # empty root
        assert not verify_inclusion(index, size, SOME_HASH, [], EMPTY_ROOT_HASH)


def test_inclusion_rejects_empty_root_and_leaf():
    assert not verify_inclusion(0, 1, b"", [], b"")


def invalid_consistency_probes(size1, size2, root1, root2, proof):
    """proofgen's invalidConsistencyProof, transcribed."""
    probes = [
        ((size1 - 1) % U64, size2, root1, root2, proof, "size1 sub @1"),
        (size1 + 1, size2, root1, root2, proof, "size1 plus @1"),
        (size1 ^ 2, size2, root1, root2, proof, "size1 XOR @2"),
        (size1, size2 * 2, root1, root2, proof, "size2 mul @2"),
        (size1, size2 // 2, root1, root2, proof, "size2 div @2"),
        (size1, size2, b"WrongRoot", root2, proof, "wrong root1"),
        (size1, size2, root1, b"WrongRoot", proof, "wrong root2"),
        (size1, size2, root2, root1, proof, "swapped roots"),
        (size1, size2, root1, root2, [], "empty proof"),
        (size1, size2, root1, root2, proof + [b""], "trailing garbage"),
        (size1, size2, root1, root2, proof + [root1], "trailing root1"),
        (size1, size2, root1, root2, proof + [root2], "trailing root2"),
        (size1, size2, root1, root2, [b""] + proof, "preceding garbage"),
        (size1, size2, root1, root2, [root1] + proof, "preceding root1"),
        (size1, size2, root1, root2, [root2] + proof, "preceding root2"),
        (size1, size2, root1, root2, [proof[0]] + proof, "preceding proof @0"),
        (size1, size2, root1, root2, proof[:-1], "truncated proof"),
    ]
    for i in range(len(proof)):
        wrong = list(proof)
        wrong[i] = _flip(wrong[i], 16)
        probes.append((size1, size2, root1, root2, wrong, f"modified proof@{i} bit @4"))
    return probes


@pytest.mark.parametrize("size1,size2,proof", [v for v in CONSISTENCY_PROOFS if v[2]])
def test_consistency_probes_rejected(size1, size2, proof):
    probes = invalid_consistency_probes(size1, size2, ROOT_HASHES[size1], ROOT_HASHES[size2],
                                        proof)
    accepted = [desc for s1, s2, r1, r2, pr, desc in probes
                if verify_consistency(s1, s2, r1, r2, pr)]
    assert accepted == []


# proofgen's staticConsistencyProbes: (size1, size2, root1, root2, proof, Go wants an error)
_R1, _R2, _E = b"don't care 1", b"don't care 2", EMPTY_ROOT_HASH
STATIC_CONSISTENCY_PROBES = [
    (0, 0, _R1, _R2, [], True),      # sizes are equal (zero) but roots are not
    (1, 1, _R1, _R2, [], True),      # sizes are equal (one) but roots are not
    (1, 1, _R2, _R2, [], False),     # sizes are equal (one) and proof is empty
    (1, 0, _R1, _R2, [], True),      # size1 is greater than size2
    (2, 1, _R1, _R2, [], True),      # size1 is greater than size2 again
    (1, 2, _R1, _R2, [], True),      # sizes do not match and proof is empty
    (0, 0, _E, _R2, [], True),       # roots do not match and sizes are zero
    (1, 1, _E, _R2, [], True),       # roots do not match and sizes are one
    (0, 0, _E, _E, [_E], True),      # sizes match but proof is not empty (zero)
    (1, 1, _E, _E, [_E], True),      # sizes match but proof is not empty (one)
    (0, 1, _E, _E, [_E], True),      # consistency check on empty tree is useless
]


@pytest.mark.parametrize("size1,size2,root1,root2,proof,want_error", STATIC_CONSISTENCY_PROBES)
def test_static_consistency_probes(size1, size2, root1, root2, proof, want_error):
    assert verify_consistency(size1, size2, root1, root2, proof) is not want_error


def test_empty_tree_is_a_prefix_of_every_tree():
    """Where this module parts from Go on purpose: proofgen's 'size1 is zero and size2 is
    not zero' (0, 1, empty root, _, []) is an error in Go ("meaningless"); here the
    empty tree, with the empty root, is consistent with any tree, with an empty proof."""
    assert verify_consistency(0, 1, EMPTY_ROOT_HASH, ROOT_HASHES[1], [])
    assert verify_consistency(0, 8, EMPTY_ROOT_HASH, ROOT_HASHES[8], [])
    assert verify_consistency(0, 0, EMPTY_ROOT_HASH, EMPTY_ROOT_HASH, [])
    assert consistency_proof(0, 8, REFERENCE_TREE.read) == []


@pytest.mark.parametrize("size1,size2,root1,root2", [(0, 0, _R1, _R1), (0, 1, _R1, _R2)])
def test_consistency_from_size_zero_checks_first_root(size1, size2, root1, root2):
    assert not verify_consistency(size1, size2, root1, root2, [])


def test_proof_arguments_out_of_range():
    with pytest.raises(ValueError):
        inclusion_proof(8, 8, REFERENCE_TREE.read)
    with pytest.raises(ValueError):
        inclusion_proof(-1, 8, REFERENCE_TREE.read)
    with pytest.raises(ValueError):
        inclusion_proof(0, 0, REFERENCE_TREE.read)
    with pytest.raises(ValueError):
        consistency_proof(5, 4, REFERENCE_TREE.read)
    with pytest.raises(ValueError):
        consistency_proof(-1, 4, REFERENCE_TREE.read)
    assert consistency_proof(4, 4, REFERENCE_TREE.read) == []


# -- a reference from the RFC 6962 §2.1 text ----------------------------------------------

def _k(n: int) -> int:
    """The largest power of two smaller than n."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


class Reference:
    """MTH, PATH and PROOF exactly as RFC 6962 §2.1, §2.1.1, §2.1.2 define them, over
    D = data; hashes of subranges memoised (only a speed-up: MTH(D[lo:hi]) is a value)."""

    def __init__(self, data: list[bytes]):
        self.data = data
        self.mth = lru_cache(maxsize=None)(self._mth)

    def _mth(self, lo: int, hi: int) -> bytes:
        n = hi - lo
        if n == 0:
            return hashlib.sha256(b"").digest()
        if n == 1:
            return hashlib.sha256(b"\x00" + self.data[lo]).digest()
        k = _k(n)
        return hashlib.sha256(b"\x01" + self.mth(lo, lo + k) + self.mth(lo + k, hi)).digest()

    def path(self, m: int, lo: int, hi: int) -> list[bytes]:
        """PATH(m, D[lo:hi]), m relative to lo."""
        n = hi - lo
        if n == 1:
            return []
        k = _k(n)
        if m < k:
            return self.path(m, lo, lo + k) + [self.mth(lo + k, hi)]
        return self.path(m - k, lo + k, hi) + [self.mth(lo, lo + k)]

    def path_sides(self, m: int, n: int) -> list[bool]:
        """For each PATH(m, D[n]) element, leaf side first: whether it is a left sibling."""
        if n == 1:
            return []
        k = _k(n)
        return self.path_sides(m, k) + [False] if m < k else \
            self.path_sides(m - k, n - k) + [True]

    def proof(self, m: int, n: int) -> list[bytes]:
        """PROOF(m, D[n]) = SUBPROOF(m, D[0:n], true)."""
        return self.subproof(m, 0, n, True)

    @staticmethod
    def verify_consistency(m: int, n: int, first: bytes, second: bytes,
                           proof: list[bytes]) -> bool:
        """For 0 < m < n: whether `proof`, read as PROOF(m, D[n]) (its elements the
        hashes SUBPROOF lists, innermost first), rebuilds MTH(D[0:m]) = first and
        MTH(D[0:n]) = second along the RFC 6962 §2.1.2 recursion."""
        used = 0

        def rebuild(m: int, n: int, b: bool) -> tuple[bytes, bytes] | None:
            # (MTH(D[0:m]), MTH(D[0:n])) of this subtree, consuming proof elements
            nonlocal used
            if m == n:
                if b:
                    return first, first
                if used == len(proof):
                    return None
                used += 1
                return proof[used - 1], proof[used - 1]
            k = _k(n)
            inner = rebuild(m, k, b) if m <= k else rebuild(m - k, n - k, False)
            if inner is None or used == len(proof):
                return None
            x = proof[used]
            used += 1
            if m <= k:
                return inner[0], hashlib.sha256(b"\x01" + inner[1] + x).digest()
            return (hashlib.sha256(b"\x01" + x + inner[0]).digest(),
                    hashlib.sha256(b"\x01" + x + inner[1]).digest())

        got = rebuild(m, n, True)
        return got is not None and used == len(proof) and got == (first, second)

    def subproof(self, m: int, lo: int, hi: int, b: bool) -> list[bytes]:
        n = hi - lo
        if m == n:
            return [] if b else [self.mth(lo, hi)]
        k = _k(n)
        if m <= k:
            return self.subproof(m, lo, lo + k, b) + [self.mth(lo + k, hi)]
        return self.subproof(m - k, lo + k, hi, False) + [self.mth(lo, lo + k)]


def test_reference_agrees_with_the_published_vectors():
    ref = Reference(LEAF_INPUTS)
    assert [ref.mth(0, n) for n in range(9)] == ROOT_HASHES
    for leaf_idx, size, proof in INCLUSION_PROOFS:
        assert ref.path(leaf_idx - 1, 0, size) == proof
    for size1, size2, proof in CONSISTENCY_PROOFS:
        assert ref.proof(size1, size2) == proof


# -- random trees --------------------------------------------------------------------------

RNG = random.Random(6962)
DATA = [RNG.randbytes(RNG.randrange(0, 40)) for _ in range(2000)]
REF = Reference(DATA)
BIG = MemoryTree([leaf_hash(d) for d in DATA])

SMALL_SIZES = [1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100,
               127, 128, 129, 255, 256, 257, 300]
LARGE_SIZES = [511, 512, 513, 1000, 1024, 1025, 2000]


def _sample(n: int, rng: random.Random, count: int) -> list[int]:
    """Indices 0..n-1: the edges and powers of two around them, and a random sample."""
    picks = {0, 1, n // 2, n - 2, n - 1} | {p + d for p in (2 ** e for e in range(12))
                                            for d in (-1, 0, 1)}
    picks |= set(rng.sample(range(n), min(count, n)))
    return sorted(i for i in picks if 0 <= i < n)


def test_memory_tree_roots_equal_reference_mth():
    for n in range(2001):
        assert BIG.root(n) == REF.mth(0, n), n


def _inclusion_tampers(i, n, leaf, proof, root, rng):
    """(index, size, leaf, proof, root, description) variants of a valid proof, none of
    which may verify (wrong index and size are handled separately, by path shape)."""
    out = [
        (i, n, leaf_hash(b"other"), proof, root, "wrong leaf"),
        (i, n, leaf, proof, REF.mth(0, n - 1) if n > 1 else SOME_HASH, "previous root"),
        (i, n, leaf, proof, rng.randbytes(32), "random root"),
        (i, n, leaf, proof + [rng.randbytes(32)], root, "hash appended"),
        (i, n, leaf, [rng.randbytes(32)] + proof, root, "hash prepended"),
        (i, n, leaf, proof + [root], root, "root appended"),
        (i, n, leaf, [leaf] + proof, root, "leaf prepended"),
    ]
    positions = range(len(proof)) if len(proof) <= 8 else rng.sample(range(len(proof)), 4)
    for p in positions:
        wrong = list(proof)
        wrong[p] = bytes([wrong[p][0] ^ 1]) + wrong[p][1:]
        out.append((i, n, leaf, wrong, root, f"hash {p} flipped"))
        out.append((i, n, leaf, proof[:p] + proof[p + 1:], root, f"hash {p} dropped"))
        out.append((i, n, leaf, proof[:p] + [rng.randbytes(32)] + proof[p:], root,
                    f"hash added at {p}"))
        if p + 1 < len(proof):
            swapped = list(proof)
            swapped[p], swapped[p + 1] = swapped[p + 1], swapped[p]
            out.append((i, n, leaf, swapped, root, f"hashes {p}, {p + 1} swapped"))
    return out


def _check_inclusion(i, n, rng, tamper=True):
    leaf = BIG.levels[0][i]
    root = REF.mth(0, n)
    proof = inclusion_proof(i, n, BIG.read)
    assert proof == REF.path(i, 0, n), (i, n)
    assert verify_inclusion(i, n, leaf, proof, root), (i, n)
    if not tamper:
        return
    for args in _inclusion_tampers(i, n, leaf, proof, root, rng):
        assert not verify_inclusion(*args[:5]), (i, n, args[5])
    # Another index never verifies. Another size verifies exactly when PATH has the same
    # shape there (the same number of siblings, on the same sides: leaf 0 of 3 leaves and
    # of 4), for then the verifier computes the very same hashes; a proof does not commit
    # to the tree size, in any RFC 9162 verifier.
    sides = REF.path_sides(i, n)
    for j in {i - 1, i + 1, i ^ 1, i ^ 2, n, n + 1, -1}:
        assert not verify_inclusion(j, n, leaf, proof, root), (i, n, j)
    for m in {n - 1, n + 1, n * 2, n // 2, 0, i, i + 1}:
        same_shape = 0 <= i < m and REF.path_sides(i, m) == sides
        assert verify_inclusion(i, m, leaf, proof, root) is same_shape, (i, n, m)


def _consistency_tampers(m, n, proof, r1, r2, rng):
    out = [
        (m, n, r1, r2, [], "empty proof"),
        (m, n, rng.randbytes(32), r2, proof, "random first root"),
        (m, n, r1, rng.randbytes(32), proof, "random second root"),
        (m, n, r2, r1, proof, "swapped roots"),
        (m, n, r1, r2, proof + [rng.randbytes(32)], "hash appended"),
        (m, n, r1, r2, proof + [r1], "first root appended"),
        (m, n, r1, r2, proof + [r2], "second root appended"),
        (m, n, r1, r2, [rng.randbytes(32)] + proof, "hash prepended"),
        (m, n, r1, r2, [r2] + proof, "second root prepended"),
        (m, n, r1, r2, [proof[0]] + proof, "first hash repeated"),
    ]
    if m & (m - 1):  # not a power of two: the proof never starts with first_root
        out.append((m, n, r1, r2, [r1] + proof, "first root prepended"))
    else:  # a power of two: the verifier prepends first_root itself
        out.append((m, n, r1, r2, [r1] + proof, "first root prepended twice"))
    positions = range(len(proof)) if len(proof) <= 8 else rng.sample(range(len(proof)), 4)
    for p in positions:
        wrong = list(proof)
        wrong[p] = bytes([wrong[p][0] ^ 1]) + wrong[p][1:]
        out.append((m, n, r1, r2, wrong, f"hash {p} flipped"))
        out.append((m, n, r1, r2, proof[:p] + proof[p + 1:], f"hash {p} dropped"))
        out.append((m, n, r1, r2, proof[:p] + [rng.randbytes(32)] + proof[p:],
                    f"hash added at {p}"))
        if p + 1 < len(proof):
            swapped = list(proof)
            swapped[p], swapped[p + 1] = swapped[p + 1], swapped[p]
            out.append((m, n, r1, r2, swapped, f"hashes {p}, {p + 1} swapped"))
    return out


def _wrong_sizes(m, n):
    """proofgen's size mutations and a few more."""
    return {(m - 1, n), (m + 1, n), (m ^ 2, n), (n, n), (m, n * 2), (m, n // 2),
            (m, n + 1), (m, n - 1), (m, m), (0, n), (n + 1, n), (m * 2, n), (m // 2, n),
            (m - 1, n - 1), (m + 1, n + 1)} - {(m, n)}


def _check_consistency(m, n, rng, tamper=True):
    r1, r2 = REF.mth(0, m), REF.mth(0, n)
    proof = consistency_proof(m, n, BIG.read)
    assert proof == (REF.proof(m, n) if 0 < m < n else []), (m, n)
    assert verify_consistency(m, n, r1, r2, proof), (m, n)
    if 0 < m < n:
        assert REF.verify_consistency(m, n, r1, r2, proof), (m, n)
    if not tamper:
        return
    if m in (0, n):
        assert proof == []
        assert not verify_consistency(m, n, r1, r2, [r2]), (m, n)
        if m == n and n:
            assert not verify_consistency(m, n, r1, REF.mth(0, n - 1), []), (m, n)
        return
    for args in _consistency_tampers(m, n, proof, r1, r2, rng):
        assert not verify_consistency(*args[:5]), (m, n, args[5])
    # Other sizes: like inclusion proofs, a consistency proof does not commit to the two
    # sizes (PROOF(1, D[3]) reads as PROOF(1, D[4]) of another tree with the same root),
    # so the verifier must agree with the RFC 6962 reading of the proof at those sizes.
    for m2, n2 in _wrong_sizes(m, n):
        want = 0 < m2 < n2 and REF.verify_consistency(m2, n2, r1, r2, proof)
        assert verify_consistency(m2, n2, r1, r2, proof) is want, (m, n, m2, n2)


@pytest.mark.parametrize("n", SMALL_SIZES)
def test_every_proof_of_small_trees(n):
    """Every inclusion proof and every consistency proof (all first sizes 0..n) of a tree
    of n leaves equals the RFC's and verifies; every tampered copy is rejected (of every
    proof up to 65 leaves, of a sample of ~30 beyond: the time goes on tampering)."""
    rng = random.Random(n)
    tampered = set(range(n + 1)) if n <= 65 else set(_sample(n + 1, rng, 12))
    for i in range(n):
        _check_inclusion(i, n, rng, tamper=i in tampered)
    for m in range(n + 1):
        _check_consistency(m, n, rng, tamper=m in tampered)


@pytest.mark.parametrize("n", LARGE_SIZES)
def test_sampled_proofs_of_large_trees(n):
    rng = random.Random(n)
    for k, i in enumerate(_sample(n, rng, 16)):
        _check_inclusion(i, n, rng, tamper=k % 3 == 0)
    for k, m in enumerate([0] + [i + 1 for i in _sample(n, rng, 16)]):
        _check_consistency(m, n, rng, tamper=k % 3 == 0)


def test_consistency_between_arbitrary_prefixes():
    """Proofs between two prefixes of the big tree, both sizes chosen at random."""
    rng = random.Random(9162)
    for _ in range(100):
        n = rng.randrange(1, 2001)
        m = rng.randrange(1, n + 1)
        _check_consistency(m, n, rng)


# -- new_nodes ------------------------------------------------------------------------------

def _all_nodes(tree: MemoryTree) -> dict[tuple[int, int], bytes]:
    return {(level, n): h for level, row in enumerate(tree.levels) for n, h in enumerate(row)}


def _append_in_batches(hashes: list[bytes], batches: list[int]) -> dict:
    store: dict[tuple[int, int], bytes] = {}
    size = 0

    def read(nodes):
        return [store[node] for node in nodes]  # KeyError: asked for a node not stored

    for count in batches:
        batch = hashes[size:size + count]
        made = new_nodes(size, batch, read)
        keys = [(level, n) for level, n, _ in made]
        assert len(set(keys)) == len(keys)
        assert not set(keys) & set(store), "a node is made twice"
        store.update({(level, n): h for level, n, h in made})
        size += len(batch)
        # the store now serves roots and proofs as a MemoryTree does
        assert tree_root(size, read) == REF.mth(0, size)
    return store


def test_new_nodes_in_random_batches():
    rng = random.Random(1)
    hashes = BIG.levels[0]
    for _ in range(5):
        batches, total = [], 0
        while total < 2000:
            count = rng.choice([0, 1, 1, 2, 3, rng.randrange(1, 70), rng.randrange(1, 400)])
            count = min(count, 2000 - total)
            batches.append(count)
            total += count
        assert _append_in_batches(hashes, batches) == _all_nodes(BIG)


def test_new_nodes_one_at_a_time_and_all_at_once():
    hashes = BIG.levels[0][:600]
    want = _all_nodes(MemoryTree(hashes))
    assert _append_in_batches(hashes, [1] * 600) == want
    assert _append_in_batches(hashes, [600]) == want
    made = new_nodes(0, hashes[:8], lambda nodes: pytest.fail(f"read {nodes}"))
    assert [(lv, n) for lv, n, _ in made] == [
        (0, 0), (0, 1), (1, 0), (0, 2), (0, 3), (1, 1), (2, 0), (0, 4), (0, 5), (1, 2),
        (0, 6), (0, 7), (1, 3), (2, 1), (3, 0)]


def test_new_nodes_reproduce_the_reference_node_hashes():
    made = new_nodes(0, NODE_HASHES[0], lambda nodes: [])
    assert {(lv, n): h for lv, n, h in made} == {
        (level, n): h for level, row in enumerate(NODE_HASHES) for n, h in enumerate(row)}
    # appending the last three leaves to the 5-leaf tree reads only its compact range
    store = _all_nodes(MemoryTree(NODE_HASHES[0][:5]))
    asked = []

    def read(nodes):
        asked.append(list(nodes))
        return [store[node] for node in nodes]

    made = new_nodes(5, NODE_HASHES[0][5:], read)
    assert asked == [COMPACT_TREES[5]]
    assert {(lv, n): h for lv, n, h in made} == {
        (0, 5): NODE_HASHES[0][5], (1, 2): NODE_HASHES[1][2], (0, 6): NODE_HASHES[0][6],
        (0, 7): NODE_HASHES[0][7], (1, 3): NODE_HASHES[1][3], (2, 1): NODE_HASHES[2][1],
        (3, 0): NODE_HASHES[3][0]}


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=30))
def test_new_nodes_any_batches(batches):
    total = sum(batches)
    hashes = BIG.levels[0][:total]
    assert _append_in_batches(hashes, batches) == _all_nodes(MemoryTree(hashes))


@settings(max_examples=100, deadline=None, derandomize=True)
@given(st.integers(min_value=1, max_value=2000).flatmap(
    lambda n: st.tuples(st.just(n), st.integers(min_value=0, max_value=n - 1),
                        st.integers(min_value=0, max_value=n))))
def test_any_size_index_and_first_size(args):
    n, i, m = args
    root = REF.mth(0, n)
    proof = inclusion_proof(i, n, BIG.read)
    assert proof == REF.path(i, 0, n)
    assert verify_inclusion(i, n, BIG.levels[0][i], proof, root)
    cproof = consistency_proof(m, n, BIG.read)
    assert verify_consistency(m, n, REF.mth(0, m), root, cproof)
    if 0 < m < n:
        assert cproof == REF.proof(m, n)
        assert not verify_consistency(m, n, REF.mth(0, m), root, cproof[:-1])
