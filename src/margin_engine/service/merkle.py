"""Merkle tree hashing and inclusion proofs exactly as RFC 6962 §2.1 (Certificate Transparency).

- leaf hash ``SHA-256(0x00 || leaf)``, interior node ``SHA-256(0x01 || left || right)``, the empty
  tree's hash ``SHA-256("")``;
- a tree of ``n > 1`` leaves splits at ``k``, the largest power of two smaller than ``n``;
- leaf indices are 0-based; an inclusion proof (RFC 6962 §2.1.1 "audit path") lists the sibling
  hashes from the leaf upwards.

Verification follows the iterative algorithm of RFC 9162 §2.1.3.2 (the one used by
transparency-dev/merkle ``proof.VerifyInclusion``): it checks ``index < size`` and that the proof
has exactly the expected length, so trailing or missing hashes fail.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(leaf: bytes) -> bytes:
    """``SHA-256(0x00 || leaf)``."""
    return hashlib.sha256(LEAF_PREFIX + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def _root_of_hashes(hashes: Sequence[bytes]) -> bytes:
    n = len(hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return hashes[0]
    k = _split(n)
    return node_hash(_root_of_hashes(hashes[:k]), _root_of_hashes(hashes[k:]))


def root_hash(leaves: Sequence[bytes]) -> bytes:
    """The Merkle Tree Hash ``MTH(D[n])`` of the leaves (RFC 6962 §2.1).

    Parameters
    ----------
    leaves : sequence of bytes
        The leaf inputs in order.

    Returns
    -------
    bytes
        The 32-byte root.
    """
    return _root_of_hashes([leaf_hash(x) for x in leaves])


def _path(index: int, hashes: Sequence[bytes]) -> list[bytes]:
    n = len(hashes)
    if n <= 1:
        return []
    k = _split(n)
    if index < k:
        return [*_path(index, hashes[:k]), _root_of_hashes(hashes[k:])]
    return [*_path(index - k, hashes[k:]), _root_of_hashes(hashes[:k])]


def inclusion_path(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """The audit path ``PATH(m, D[n])`` of leaf ``index`` (0-based), leaf side first.

    Parameters
    ----------
    leaves : sequence of bytes
        The leaf inputs in order.
    index : int
        0-based leaf index, ``0 <= index < len(leaves)``.

    Returns
    -------
    list of bytes
        The sibling hashes from the bottom of the tree to the top.
    """
    if not 0 <= index < len(leaves):
        raise ValueError(f"leaf index {index} outside a tree of {len(leaves)} leaves")
    return _path(index, [leaf_hash(x) for x in leaves])


def root_from_inclusion(index: int, size: int, leaf_digest: bytes,
                        path: Sequence[bytes]) -> bytes:
    """Recompute the root from a leaf hash and its audit path (RFC 9162 §2.1.3.2).

    Raises
    ------
    ValueError
        When ``index >= size``, a hash is not 32 bytes, or the path has the wrong length.
    """
    if size <= 0 or not 0 <= index < size:
        raise ValueError(f"leaf_index {index} outside tree_size {size}")
    if len(leaf_digest) != 32 or any(len(h) != 32 for h in path):
        raise ValueError("hashes must be 32 bytes")
    fn, sn = index, size - 1
    r = leaf_digest
    for p in path:
        if sn == 0:
            raise ValueError("proof has more hashes than the tree has levels")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ValueError("proof has fewer hashes than the tree has levels")
    return r


def verify_inclusion(index: int, size: int, leaf: bytes, path: Sequence[bytes],
                     root: bytes) -> bool:
    """Whether ``leaf`` sits at ``index`` of the ``size``-leaf tree with ``root``.

    Malformed proofs (wrong length, index out of range, short hashes) verify as ``False``.
    """
    try:
        got = root_from_inclusion(index, size, leaf_hash(leaf), path)
    except ValueError:
        return False
    return hmac.compare_digest(got, root)


@dataclass(frozen=True)
class InclusionProof:
    """A proof as the service ships it: ``{leaf, leaf_index, tree_size, hashes[]}`` (DESIGN §8).

    ``leaf`` is the leaf's canonical JSON text (hashed as UTF-8), ``hashes`` are hex strings.
    """

    leaf: str
    leaf_index: int
    tree_size: int
    hashes: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """The JSON object of DESIGN §8."""
        return {"leaf": self.leaf, "leaf_index": self.leaf_index, "tree_size": self.tree_size,
                "hashes": list(self.hashes)}

    def verify(self, root_hex: str) -> bool:
        """Whether this proof leads to ``root_hex`` (lower- or upper-case hex)."""
        try:
            root = bytes.fromhex(root_hex)
            path = [bytes.fromhex(h) for h in self.hashes]
        except ValueError:
            return False
        return verify_inclusion(self.leaf_index, self.tree_size, self.leaf.encode("utf-8"),
                                path, root)


def build_proofs(leaves: Sequence[str]) -> tuple[str, list[InclusionProof]]:
    """The hex root and one inclusion proof per leaf of a tree of canonical-JSON leaves.

    O(n log n) per leaf on the recursive definition; fine for thousands of accounts. The live
    service can swap in a compact-range implementation with the same output.
    """
    raw = [x.encode("utf-8") for x in leaves]
    hashes = [leaf_hash(x) for x in raw]
    root = _root_of_hashes(hashes)
    proofs = [InclusionProof(leaf=leaves[i], leaf_index=i, tree_size=len(leaves),
                             hashes=tuple(h.hex() for h in _path(i, hashes)))
              for i in range(len(leaves))]
    return root.hex(), proofs
