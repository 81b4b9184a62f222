"""The append-only, hash-chained audit log: how an entry is hashed and how a chain is checked.

Each entry's ``hash`` is ``SHA-256(prev_hash_bytes || canonical_json(body))`` where ``body`` is the
entry without ``prev_hash`` and ``hash`` (``seq``, ``recorded_at``, ``actor``, ``action``,
``account``, ``changes``, ``model``, ``model_version``, ``params_hash``, ``market_timestamp``,
``margin``) and the first entry's ``prev_hash`` is 64 zeros (:data:`GENESIS`). Changing any stored
field, deleting or reordering an entry changes a hash the next check recomputes.

An unkeyed chain can be recomputed end to end by whoever can write the database, and deleting
the newest entries leaves a valid shorter chain: publish (or sign) the head hash off the box to
close that gap (transparency-dev checkpoints; see docs/service.md).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .canonical import canonical_bytes

GENESIS = "0" * 64

BODY_FIELDS = ("seq", "recorded_at", "actor", "action", "account", "changes", "model",
               "model_version", "params_hash", "market_timestamp", "margin")


def entry_hash(prev_hash: str, body: Mapping[str, Any]) -> str:
    """Hex ``SHA-256(bytes.fromhex(prev_hash) || canonical_json(body))``.

    Parameters
    ----------
    prev_hash : str
        The previous entry's hash (hex), :data:`GENESIS` for the first entry.
    body : mapping
        The entry's fields of :data:`BODY_FIELDS` (other keys are ignored).

    Returns
    -------
    str
        64 lower-case hex digits.
    """
    doc = {k: body.get(k) for k in BODY_FIELDS}
    return hashlib.sha256(bytes.fromhex(prev_hash) + canonical_bytes(doc)).hexdigest()


@dataclass(frozen=True)
class ChainCheck:
    """The outcome of :func:`verify_chain`: ``ok``, entries checked, the first problem."""

    ok: bool
    checked: int
    head: str
    broken_seq: int | None = None
    reason: str = ""
    problems: tuple[str, ...] = field(default_factory=tuple)


def verify_chain(entries: Iterable[Mapping[str, Any]]) -> ChainCheck:
    """Recompute the chain over entries in ``seq`` order and name the first broken one.

    Parameters
    ----------
    entries : iterable of mappings
        Each with the body fields plus ``prev_hash`` and ``hash``, ordered by ``seq``.

    Returns
    -------
    ChainCheck
        ``ok`` False at the first entry whose ``seq`` is not the next number, whose ``prev_hash``
        is not the previous entry's ``hash``, or whose ``hash`` does not recompute.
    """
    prev = GENESIS
    expected_seq = 1
    n = 0
    for e in entries:
        seq = int(e["seq"])
        if seq != expected_seq:
            return ChainCheck(False, n, prev, seq, f"seq {seq} follows {expected_seq - 1}"
                              " (an entry is missing or out of order)")
        if not hmac.compare_digest(str(e["prev_hash"]), prev):
            return ChainCheck(False, n, prev, seq, "prev_hash does not match the previous hash")
        want = entry_hash(prev, e)
        if not hmac.compare_digest(str(e["hash"]), want):
            return ChainCheck(False, n, prev, seq, "hash mismatch")
        prev = want
        expected_seq += 1
        n += 1
    return ChainCheck(True, n, prev)
