"""RFC 6962 Merkle hashing and inclusion proofs against the published test vectors.

Vectors: transparency-dev/merkle (the library under Trillian and Go CT), file
``testonly/constants.go`` (leaf inputs, node and root hashes of trees of 1..8 leaves) and
``proof/verify_test.go`` (``inclusionProofs``: 1-based leaf, size, audit path), read 2026-12-06 at
commit 02194e9afb6c1d95b5381350007963aa70fff472 (verify_test.go) / 582a6ad1 (constants.go). They
are the RFC 6962 §2.1 algorithm's outputs as Certificate Transparency logs compute them.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from margin_engine.service.merkle import (
    EMPTY_ROOT,
    InclusionProof,
    build_proofs,
    inclusion_path,
    leaf_hash,
    root_hash,
    verify_inclusion,
)

LEAVES = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243",
                                      "5051525354555657", "606162636465666768696a6b6c6d6e6f")]
ROOTS = [bytes.fromhex(h) for h in (
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")]
LEAF_HASHES = [bytes.fromhex(h) for h in (
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
    "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
    "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
    "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1")]
# (1-based leaf, tree size, audit path) from verify_test.go's inclusionProofs
PROOFS = [
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (3, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (2, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (1, 1, []),
]
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def test_empty_tree_and_leaf_hashes_are_the_published_ones():
    assert root_hash([]) == EMPTY_ROOT == bytes.fromhex(
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    assert [leaf_hash(x) for x in LEAVES] == LEAF_HASHES


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_of_trees_of_1_to_8_leaves(size):
    assert root_hash(LEAVES[:size]) == ROOTS[size - 1]


@pytest.mark.parametrize(("leaf", "size", "path"), PROOFS)
def test_published_inclusion_proofs(leaf, size, path):
    want = [bytes.fromhex(h) for h in path]
    assert inclusion_path(LEAVES[:size], leaf - 1) == want
    assert verify_inclusion(leaf - 1, size, LEAVES[leaf - 1], want, ROOTS[size - 1])


@pytest.mark.parametrize(("leaf", "size", "path"), PROOFS[:4])
def test_corrupted_published_proofs_fail(leaf, size, path):
    """The corruptions of verify_test.go's corruptInclusionProof: each must be rejected."""
    idx, root, data = leaf - 1, ROOTS[size - 1], LEAVES[leaf - 1]
    proof = [bytes.fromhex(h) for h in path]
    probes = [(idx - 1, size, data, proof, root), (idx + 1, size, data, proof, root),
              (idx ^ 2, size, data, proof, root), (idx, size * 2, data, proof, root),
              (idx, size // 2, data, proof, root), (idx, size, b"WrongLeaf", proof, root),
              (idx, size, data, proof, EMPTY_ROOT), (idx, size, data, proof, SOME_HASH),
              (idx, size, data, [*proof, b""], root), (idx, size, data, [*proof, root], root),
              (idx, size, data, [b"", *proof], root), (idx, size, data, [root, *proof], root),
              (idx, size, data, proof[:-1], root),
              (idx, size, data, [proof[0], SOME_HASH, *proof[1:]], root)]
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = bytes([bad[i][0] ^ 8]) + bad[i][1:]
        probes.append((idx, size, data, bad, root))
    for p in probes:
        if p[0] < 0:
            continue
        assert not verify_inclusion(*p), p[:2]


def test_out_of_range_probes_fail():
    for index, size in ((0, 0), (1, 0), (2, 1)):
        assert not verify_inclusion(index, size, b"x", [], EMPTY_ROOT)


leaves_st = st.lists(st.text(max_size=20), min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(leaves_st)
def test_every_leaf_of_a_random_tree_verifies(leaves):
    root, proofs = build_proofs(leaves)
    assert root == root_hash([x.encode() for x in leaves]).hex()
    assert all(p.verify(root) for p in proofs)


@settings(max_examples=60, deadline=None)
@given(leaves_st, st.data())
def test_any_flipped_bit_fails(leaves, data):
    root, proofs = build_proofs(leaves)
    p = proofs[data.draw(st.integers(0, len(proofs) - 1))]
    where = data.draw(st.sampled_from(["leaf", "root", "hash"] if p.hashes else ["leaf", "root"]))
    bit = data.draw(st.integers(0, 255))
    if where == "root":
        raw = bytearray(bytes.fromhex(root))
        raw[bit // 8] ^= 1 << (bit % 8)
        assert not p.verify(raw.hex())
    elif where == "hash":
        i = data.draw(st.integers(0, len(p.hashes) - 1))
        raw = bytearray(bytes.fromhex(p.hashes[i]))
        raw[bit // 8] ^= 1 << (bit % 8)
        hashes = (*p.hashes[:i], raw.hex(), *p.hashes[i + 1:])
        assert not InclusionProof(p.leaf, p.leaf_index, p.tree_size, hashes).verify(root)
    else:
        raw = bytearray(p.leaf.encode() or b"\x00")
        raw[(bit // 8) % len(raw)] ^= 1 << (bit % 8)
        forged = raw.decode("latin-1")
        if forged != p.leaf:
            assert not InclusionProof(forged, p.leaf_index, p.tree_size, p.hashes).verify(root)


def test_second_preimage_of_an_interior_node_is_not_a_leaf():
    """Without the 0x00/0x01 prefixes an interior node could pose as a leaf (pymerkle's own
    defence test); with them it cannot."""
    left, right = leaf_hash(b"a"), leaf_hash(b"b")
    root = root_hash([b"a", b"b"])
    assert not verify_inclusion(0, 1, left + right, [], root)
    assert hashlib.sha256(b"\x01" + left + right).digest() == root
