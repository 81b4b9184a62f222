"""What every exchange-export parser shares: strict JSON reading, strict numbers, the imported
positions and instruments, and their assembly into a DESIGN §4 book and market snapshot.

Every problem is an :class:`~margin_engine.errors.InputError` whose path starts with the file
(``positions.json[2].positionAmt``), so the command line prints one ``error: <path>: <reason>``
line and exits 2.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from margin_engine.domain.types import ABSURD
from margin_engine.errors import InputError

#: Exports larger than this are refused before parsing (a position export is kilobytes).
MAX_EXPORT_BYTES = 20_000_000
_DECIMAL = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")
MARGIN_MODES = ("isolated", "cross", "portfolio")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def read_export(path: Path) -> Any:
    """Parse one export file strictly: UTF-8, no duplicate keys, no NaN/Infinity, bounded size
    and depth. A JSON-RPC envelope (``{"jsonrpc": ..., "result": ...}``) is unwrapped."""
    where = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_EXPORT_BYTES:
            raise InputError(where, f"file too large ({size:,} bytes; limit "
                             f"{MAX_EXPORT_BYTES:,})")
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise InputError(where, f"cannot read file ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise InputError(where, f"not UTF-8 text (byte {exc.start})") from None
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates,
                          parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise InputError(where, f"malformed JSON: {exc.msg} at line {exc.lineno} column "
                         f"{exc.colno}") from None
    except ValueError as exc:
        raise InputError(where, f"malformed JSON: {exc}") from None
    except RecursionError:
        raise InputError(where, "malformed JSON: nested too deeply") from None
    if isinstance(data, dict) and "jsonrpc" in data:
        if "error" in data:
            raise InputError(f"{where}.error", f"the export is an API error response: "
                             f"{_short(data['error'])}")
        if "result" not in data:
            raise InputError(where, "JSON-RPC envelope without a 'result'")
        data = data["result"]
    return data


def _short(v: Any) -> str:
    s = json.dumps(v)
    return s if len(s) <= 120 else s[:117] + "..."


def records(data: Any, where: str, *, allow_single: bool = False) -> list[dict[str, Any]]:
    """The export as a list of JSON objects (a single object too when ``allow_single``)."""
    if allow_single and isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise InputError(where, f"expected a JSON array of objects, got {type(data).__name__}")
    for i, r in enumerate(data):
        if not isinstance(r, dict):
            raise InputError(f"{where}[{i}]", f"expected a JSON object, got {type(r).__name__}")
    return data


#: Leverage outside this range is a unit or typing error (venues list 1× … 125×/200×).
LEVERAGE_RANGE = (1.0, 1000.0)


def number(rec: Mapping[str, Any], key: str, where: str, *, required: bool = True,
           positive: bool = False, nonneg: bool = False,
           within: tuple[float, float] | None = None) -> float | None:
    """A finite number from a JSON number or a decimal string (``"0.001"``, as Binance sends).
    ``true``, ``""``, ``"1_000"``, full-width digits and hex are refused."""
    at = f"{where}.{key}"
    if key not in rec or rec[key] is None:
        if required:
            raise InputError(at, "missing")
        return None
    v = rec[key]
    if isinstance(v, bool) or not isinstance(v, int | float | str):
        raise InputError(at, f"not a number: {_short(v)}")
    if isinstance(v, str):
        if not _DECIMAL.match(v) or not v.isascii():
            raise InputError(at, f"not a decimal number: {_short(v)}")
        x = float(v)
    else:
        x = float(v)
    if not math.isfinite(x):
        raise InputError(at, "not a finite number")
    if within is None and abs(x) > ABSURD:  # a stated range replaces the general bound
        raise InputError(at, f"absurd magnitude {x!r} (limit {ABSURD:g})")
    if positive and not x > 0:
        raise InputError(at, f"must be > 0, got {x!r}")
    if nonneg and x < 0:
        raise InputError(at, f"must be >= 0, got {x!r}")
    if within is not None and not within[0] <= x <= within[1]:
        raise InputError(at, f"{x!r} is outside [{within[0]:g}, {within[1]:g}]")
    return x


def text(rec: Mapping[str, Any], key: str, where: str, *, required: bool = True,
         choices: Sequence[str] | None = None) -> str | None:
    """A non-empty string field (at most 128 characters), optionally one of ``choices``."""
    at = f"{where}.{key}"
    if key not in rec or rec[key] is None:
        if required:
            raise InputError(at, "missing")
        return None
    v = rec[key]
    if not isinstance(v, str) or not v.strip() or len(v) > 128:
        raise InputError(at, f"expected a non-empty string (at most 128 characters), got "
                         f"{_short(v)}")
    if choices is not None and v not in choices:
        raise InputError(at, f"{v!r} is not one of {', '.join(choices)}")
    return v


def millis(rec: Mapping[str, Any], key: str, where: str, *,
           required: bool = True) -> datetime | None:
    """A Unix time in milliseconds (2009-01-03 … 2100-01-01) as an aware UTC datetime."""
    x = number(rec, key, where, required=required, within=(0.0, 4_102_444_800_000))
    if x is None:
        return None
    if x == 0 and not required:
        return None
    if not x >= 1_230_940_800_000:
        raise InputError(f"{where}.{key}", f"{x:.0f} is not a Unix time in milliseconds "
                         "between 2009-01-03 and 2100-01-01")
    return datetime.fromtimestamp(x / 1000.0, tz=UTC)


@dataclass
class ImportedPosition:
    """One non-zero position as read from an export."""

    symbol: str
    size: float                       # signed contracts (long > 0), DESIGN §3
    where: str                        # the export record it came from, for messages
    entry_price: float | None = None
    margin_mode: str | None = None    # isolated | cross | portfolio when the export says
    isolated_margin: float | None = None
    leverage: float | None = None


@dataclass
class Imported:
    """Positions, and what the export says about instruments and prices."""

    positions: list[ImportedPosition] = field(default_factory=list)
    instruments: dict[str, dict[str, Any]] = field(default_factory=dict)  # DESIGN §4 form
    index: dict[str, float] = field(default_factory=dict)
    fx: dict[str, float] = field(default_factory=dict)
    timestamp: datetime | None = None
    notes: list[str] = field(default_factory=list)
    #: Held symbols the export cannot put in a market snapshot, with the reason.
    unpriced: dict[str, str] = field(default_factory=dict)

    def add(self, p: ImportedPosition) -> None:
        """Add a position; a second non-zero row for the same symbol is refused (a hedge-mode
        LONG and SHORT leg): the book holds one net position per symbol."""
        for q in self.positions:
            if q.symbol == p.symbol:
                raise InputError(p.where, f"second non-zero position in {p.symbol!r} (first "
                                 f"at {q.where}): the book holds one net position per "
                                 "symbol; net hedge-mode legs before importing")
        self.positions.append(p)

    def see_time(self, t: datetime | None) -> None:
        if t is not None and (self.timestamp is None or t > self.timestamp):
            self.timestamp = t


def build_book(imp: Imported, *, account: str, margin_mode: str | None,
               collateral: Mapping[str, float]) -> dict[str, Any]:
    """The DESIGN §4 book: one account per margin mode present (``ID`` for the first mode met,
    ``ID-isolated`` / ``ID-cross`` for another), or one account in ``margin_mode`` when given
    (isolated margins dropped unless that mode is isolated)."""
    groups: dict[str, list[ImportedPosition]] = {}
    for p in imp.positions:
        mode = margin_mode or p.margin_mode or "cross"
        groups.setdefault(mode, []).append(p)
    accounts = []
    for k, (mode, ps) in enumerate(groups.items()):
        acct: dict[str, Any] = {"id": account if k == 0 else f"{account}-{mode}",
                                "margin_mode": mode,
                                "collateral": dict(collateral) if k == 0 else {}}
        rows = []
        for p in ps:
            row: dict[str, Any] = {"symbol": p.symbol, "size": p.size}
            if p.entry_price is not None and p.entry_price > 0:
                row["entry_price"] = p.entry_price
            if mode == "isolated" and p.isolated_margin is not None:
                row["isolated_margin"] = p.isolated_margin
            rows.append(row)
        acct["positions"] = rows
        lev = {p.symbol: p.leverage for p in ps if p.leverage is not None and p.leverage > 0}
        if lev:
            acct["leverage"] = lev
        accounts.append(acct)
    return {"accounts": accounts}


def build_market(imp: Imported) -> dict[str, Any]:
    """The DESIGN §4 market snapshot of the instruments the positions hold."""
    held = [p.symbol for p in imp.positions]
    for s in held:
        if s in imp.unpriced:
            raise InputError("--market-out", f"{s!r}: {imp.unpriced[s]}")
    missing = [s for s in held if s not in imp.instruments]
    if missing:
        raise InputError("--market-out", f"no instrument specification or mark for "
                         f"{', '.join(map(repr, missing))} in the export(s)")
    if imp.timestamp is None:
        raise InputError("--market-out", "the export(s) carry no timestamp to date the "
                         "snapshot")
    unds = sorted({imp.instruments[s]["underlying"] for s in held})
    no_index = [u for u in unds if u not in imp.index]
    if no_index:
        raise InputError("--market-out", f"no index price for {', '.join(no_index)} in the "
                         "export(s)")
    return {"timestamp": imp.timestamp.isoformat().replace("+00:00", "Z"),
            "index": {u: imp.index[u] for u in unds},
            "fx": dict(sorted(imp.fx.items())),
            "instruments": [imp.instruments[s] for s in dict.fromkeys(held)]}
