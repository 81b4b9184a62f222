"""``json.dumps(doc, indent=2, allow_nan=False)``, the same text several times faster.

With ``indent`` set, the standard library encodes in pure Python through nested generators
(``json.encoder._make_iterencode``): on a 10,000-account ``compute`` document that was the
largest single cost of the command. :func:`dumps_indent2` writes the identical text with one
recursive function per container and the C string encoder for every string; anything it does
not handle itself (a type ``json`` would reject, a non-finite float, a non-string key) is handed
to ``json.dumps``, so errors are the standard library's own.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any

_INF = float("inf")
#: Leaf types a flat container may hold for the C encoder to write it whole (exact types:
#: a subclass of ``dict`` or ``list`` must not pass for a leaf).
_LEAVES = frozenset({str, int, float, bool, type(None)})
#: Per indent (``"\n" + spaces``): the C encoder whose item separator is that indent.
_FLAT: dict[str, Callable[[Any, int], list[str]]] = {}


class _FallbackError(Exception):
    """Something only ``json.dumps`` should decide (its error message is the contract)."""


def dumps_indent2(doc: Any) -> str:
    """The text of ``json.dumps(doc, indent=2, allow_nan=False)``, byte for byte.

    Parameters
    ----------
    doc : Any
        A JSON-like document: dicts with string keys, lists and tuples, strings, ints,
        floats, booleans and ``None`` (subclasses encode as their base type, as ``json`` does).

    Returns
    -------
    str
        The indented JSON text (no trailing newline).

    Raises
    ------
    ValueError, TypeError
        Exactly as ``json.dumps`` does (a non-finite float, an object it cannot encode).
    """
    parts: list[str] = []
    try:
        _encode(doc, "\n", parts.append)
    except (_FallbackError, RecursionError):
        return json.dumps(doc, indent=2, allow_nan=False)
    return "".join(parts)


def _float(o: float) -> str:
    if o != o or o == _INF or o == -_INF:
        raise _FallbackError
    return float.__repr__(o)


#: A leaf's text by its exact type, as ``json``'s encoder writes it.
_TEXT: dict[type, Callable[[Any], str]] = {
    str: encode_basestring_ascii, float: _float, int: int.__repr__,
    bool: {True: "true", False: "false"}.__getitem__, type(None): lambda _: "null"}


def _scalar(o: Any) -> str:
    """A leaf of a subclassed type, checked in ``json``'s order."""
    if isinstance(o, str):
        return encode_basestring_ascii(o)
    if isinstance(o, int):
        return int.__repr__(o)
    if isinstance(o, float):
        return _float(o)
    raise _FallbackError


def _encode(o: Any, nl: str, out: Callable[[str], None]) -> None:
    """Append ``o``'s text to ``out``; ``nl`` is a newline and the current indent."""
    text = _TEXT.get(type(o))
    if text is not None:
        out(text(o))
    elif isinstance(o, list | tuple):
        if not o:
            out("[]")
            return
        inner = nl + "  "
        if _LEAVES.issuperset(map(type, o)):
            out("[" + inner + _flat(inner, o)[1:-1] + nl + "]")
            return
        sep = "[" + inner
        for v in o:
            out(sep)
            _encode(v, inner, out)
            sep = "," + inner
        out(nl + "]")
    elif isinstance(o, dict):
        if not o:
            out("{}")
            return
        inner = nl + "  "
        if _LEAVES.issuperset(map(type, o.values())) and _LEAVES.issuperset(map(type, o)):
            out("{" + inner + _flat(inner, o)[1:-1] + nl + "}")
            return
        sep = "{" + inner
        get = _TEXT.get
        for k, v in o.items():
            if type(k) is not str:
                raise _FallbackError  # json's own key conversions and errors
            text = get(type(v))
            if text is not None:
                out(sep + encode_basestring_ascii(k) + ": " + text(v))
            else:
                out(sep + encode_basestring_ascii(k) + ": ")
                _encode(v, inner, out)
            sep = "," + inner
        out(nl + "}")
    else:
        out(_scalar(o))


def _flat(inner: str, o: Any) -> str:
    """A container of leaves only, through the C encoder, its items separated by ``inner``
    (the brackets are replaced by the caller)."""
    enc = _FLAT.get(inner)
    if enc is None:
        enc = _FLAT[inner] = c_make_encoder(None, None, encode_basestring_ascii, None, ": ",
                                            "," + inner, False, False, False)
    try:
        return "".join(enc(o, 0))
    except (ValueError, TypeError):
        raise _FallbackError from None
