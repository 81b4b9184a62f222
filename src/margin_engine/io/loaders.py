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
from margin_engine.errors import InputError, format_path

M = TypeVar("M", bound=BaseModel)


def read_json(path: str | Path) -> Any:
    """Parse a JSON file; a missing or malformed file is an :class:`InputError`."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(str(p), f"cannot read file ({exc.strerror or exc})") from None
    try:
        # NaN/Infinity literals parse to floats so that validation names their field path.
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(str(p), f"malformed JSON: {exc.msg} at line {exc.lineno} column "
                         f"{exc.colno}") from None


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
        A missing or malformed file, or a field that fails validation, with its path
        (``accounts[0].positions[2].size: not a finite number``).
    """
    return parse_model(Book, read_json(path), "book")
