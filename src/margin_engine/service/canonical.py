"""Canonical JSON: the one byte encoding that every hash in the service is taken over.

Sorted keys, compact separators (``,`` and ``:``), UTF-8, and exact decimals written as strings
in plain notation without trailing zeros (``Decimal("100.500")`` → ``"100.5"``), so that the same
value read back from SQLite (text) or PostgreSQL (``NUMERIC``) hashes to the same bytes. Floats
are refused: money never passes through binary floating point on its way to a hash.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any


def dec_str(value: Decimal) -> str:
    """The plain-notation string of an exact decimal, trailing zeros removed (``-0`` → ``0``).

    Parameters
    ----------
    value : Decimal
        A finite decimal.

    Returns
    -------
    str
        For example ``"1500"``, ``"0.125"``, ``"-3.2"``.
    """
    if not value.is_finite():
        raise ValueError(f"not a finite decimal: {value}")
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def _plain(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, Decimal):
        return dec_str(value)
    if isinstance(value, float):
        raise TypeError("floats are not allowed in canonical JSON; use Decimal")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence):
        return [_plain(v) for v in value]
    raise TypeError(f"cannot encode {type(value).__name__} canonically")


def canonical_json(value: Any) -> str:
    """Encode ``value`` as canonical JSON text (see the module docstring).

    Parameters
    ----------
    value : Any
        Nested mappings, sequences, str, int, bool, None, Decimal and datetime.

    Returns
    -------
    str
        The canonical text; hash its UTF-8 bytes.
    """
    return json.dumps(_plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def canonical_bytes(value: Any) -> bytes:
    """UTF-8 bytes of :func:`canonical_json`."""
    return canonical_json(value).encode("utf-8")
