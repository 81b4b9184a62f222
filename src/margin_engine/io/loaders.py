"""Reading the public JSON formats (DESIGN §4) into validated domain objects.

Every failure becomes an :class:`InputError` naming the field path, e.g.
``accounts[0].positions[2].size: Input should be a finite number``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from margin_engine.domain.book import Book
from margin_engine.domain.market import MarketSnapshot
from margin_engine.domain.types import SIZE_MIN
from margin_engine.errors import NUMBER_ERROR_TYPES, InputError, format_path, json_kind

M = TypeVar("M", bound=BaseModel)


#: The largest JSON input file read (book, market, configuration), in bytes.
MAX_JSON_BYTES = 16 * 1024 * 1024

_UTF16_32_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")


def no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` for :func:`json.loads` that refuses a key given twice."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKeyError(key)
        out[key] = value
    return out


class DuplicateKeyError(ValueError):
    """A JSON object holds the same key twice (``key``)."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def read_json(path: str | Path) -> Any:
    """Parse a JSON input file strictly.

    Refused, as an :class:`InputError` naming the file: a missing or unreadable file, one over
    :data:`MAX_JSON_BYTES`, text that is not UTF-8 (a UTF-16/32 byte-order mark included),
    malformed JSON, an object with the same key twice, and nesting deeper than Python's parser
    goes (about 1,000 levels). ``NaN``/``Infinity`` literals parse to floats so that validation
    names their field path.
    """
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_JSON_BYTES:
            raise InputError(str(p), f"file is {size / 2**20:.1f} MiB, over the "
                             f"{MAX_JSON_BYTES // 2**20} MiB limit for JSON input")
        with p.open("rb") as fh:
            raw = fh.read(MAX_JSON_BYTES + 1)
    except OSError as exc:
        raise InputError(str(p), f"cannot read file ({exc.strerror or exc})") from None
    if len(raw) > MAX_JSON_BYTES:
        raise InputError(str(p), f"file is over the {MAX_JSON_BYTES // 2**20} MiB limit for "
                         f"JSON input")
    if raw.startswith(_UTF16_32_BOMS):
        raise InputError(str(p), "not UTF-8 (it starts with a UTF-16/32 byte-order mark); "
                         "save the file as UTF-8")
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise InputError(str(p), f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset "
                         f"{exc.start})") from None
    try:
        return json.loads(text, object_pairs_hook=no_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise InputError(str(p), f"malformed JSON: {exc.msg} at line {exc.lineno} column "
                         f"{exc.colno}") from None
    except DuplicateKeyError as exc:
        raise InputError(str(p), f"duplicate key {exc.key!r} in a JSON object (each key may "
                         f"appear once)") from None
    except RecursionError:
        raise InputError(str(p), "JSON nested too deeply (arrays/objects about 1,000 levels "
                         "deep)") from None
    except ValueError as exc:  # e.g. an integer literal longer than Python converts
        raise InputError(str(p), f"malformed JSON: {exc}") from None


def validation_problems(exc: ValidationError, prefix: str = "") -> list[tuple[str, str]]:
    """Turn pydantic errors into ``(path, reason)`` pairs, expanding model-level messages."""
    out: list[tuple[str, str]] = []
    for err in exc.errors():
        loc = [p for p in err["loc"] if p not in ("function-after", "function-before")]
        path = format_path(loc)
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "finite_number" or (
                isinstance(err.get("input"), float) and not math.isfinite(err["input"])):
            msg = "not a finite number"
        elif err["type"] in NUMBER_ERROR_TYPES:
            msg = f"expected a number, got {json_kind(err.get('input'))}"
        elif err["type"] == "bool_type":
            msg = f"expected true or false, got {json_kind(err.get('input'))}"
        elif err["type"] in ("tuple_type", "list_type"):
            msg = f"expected an array, got {json_kind(err.get('input'))}"
        elif err["type"] in ("dict_type", "model_type", "model_attributes_type"):
            msg = f"expected an object, got {json_kind(err.get('input'))}"
        elif err["type"] == "string_type":
            msg = f"expected a string, got {json_kind(err.get('input'))}"
        base = f"{prefix}.{path}" if prefix and path != "<root>" else (prefix or path)
        # A model-level validator reports 'sub.path: reason; other: reason'.
        for part in msg.split("; "):
            head, sep, tail = part.partition(": ")
            if sep and (head.startswith(("positions[", "instruments[", "accounts[", "order_books."))
                        or head in {"symbol", "expiry"}):
                joined = head if base in ("<root>", "") else (
                    f"{base}{head}" if head.startswith("[") else f"{base}.{head}")
                out.append((joined, tail))
            else:
                out.append((base, part))
    return out


def parse_model(cls: type[M], data: Any, what: str) -> M:
    """Validate ``data`` as ``cls``; errors become an :class:`InputError`."""
    if not isinstance(data, dict):
        raise InputError(what, f"expected a JSON object, got {type(data).__name__}")
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        probs = validation_problems(exc)
        raise InputError(probs[0][0], probs[0][1], more=probs[1:]) from None


def load_market(path: str | Path) -> MarketSnapshot:
    """Read a market snapshot JSON file (DESIGN §4, docs/formats.md).

    Parameters
    ----------
    path : str or Path
        The file: timestamp, index and FX prices, instruments, optional vol surface and
        order books.

    Returns
    -------
    MarketSnapshot
        Validated and frozen.

    Raises
    ------
    InputError
        A missing or malformed file, or a field that fails validation, with its path
        (``instruments[3].expiry: expired ...``).
    """
    return parse_model(MarketSnapshot, read_json(path), "market")


def load_book(path: str | Path) -> Book:
    """Read a book JSON file (DESIGN §4, docs/formats.md).

    Parameters
    ----------
    path : str or Path
        The file: ``{"accounts": [{id, margin_mode, collateral, positions, ...}]}``.

    Returns
    -------
    Book
        Validated and frozen; symbols are checked against a market later
        (:func:`margin_engine.domain.book.check_against_market`).

    Raises
    ------
    InputError
        A missing, oversized or malformed file, or a field that fails validation, with its
        path (``accounts[0].positions[2].size: not a finite number``); a nonzero size below
        ``SIZE_MIN`` is refused too.
    """
    book = parse_model(Book, read_json(path), "book")
    for i, acct in enumerate(book.accounts):
        for j, pos in enumerate(acct.positions):
            if pos.size != 0.0 and abs(pos.size) < SIZE_MIN:
                raise InputError(f"accounts[{i}].positions[{j}].size",
                                 f"a nonzero size must have magnitude at least {SIZE_MIN:g}, "
                                 f"got {pos.size!r}")
    return book
