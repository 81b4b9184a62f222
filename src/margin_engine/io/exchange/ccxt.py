"""ccxt ``fetch_positions`` output: a JSON array of ccxt's unified position structure (the
"Position Structure" of the ccxt Manual), e.g. ``json.dump(exchange.fetch_positions(), f)``.

Fields read: ``symbol`` (unified, ``BASE/QUOTE:SETTLE[-YYMMDD[-STRIKE-C|P]]``), ``side``
(``long`` | ``short``), ``contracts`` (unsigned number of contracts), ``contractSize``,
``entryPrice``, ``markPrice``, ``leverage``, ``marginMode`` (``cross`` | ``isolated``; the older
boolean ``isolated`` too), ``collateral`` (an isolated position's own margin) and ``timestamp``.
The book's size is ``±contracts`` (DESIGN §3: signed contracts) and ``contract_size`` is
``contractSize``: base units per contract for a linear contract, USD face per contract for an
inverse one, which is ccxt's convention too.

Book symbols are venue-style names built from the unified symbol: a linear swap
``BTC/USDT:USDT`` → ``BTCUSDT``; an inverse swap ``BTC/USD:BTC`` → ``BTC-PERPETUAL``; a future
``BTC/USD:BTC-250328`` → ``BTC-28MAR25`` (linear: ``BTC_USDT-28MAR25``); an option
``BTC/USD:BTC-250328-80000-C`` → ``BTC-28MAR25-80000-C``. The market snapshot
(``--market-out``) has no index price or implied vol from a position export: the index of each
underlying is the mark of its perpetual (else of a future), stablecoins are valued at 1 USD,
and options are refused there (no ``mark_iv``; import the venue's own export instead).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from margin_engine.errors import InputError

from .common import (
    LEVERAGE_RANGE,
    Imported,
    ImportedPosition,
    millis,
    number,
    read_export,
    records,
    text,
)

_UNIFIED = re.compile(
    r"^(?P<base>[A-Za-z0-9]+)/(?P<quote>[A-Za-z0-9]+):(?P<settle>[A-Za-z0-9]+)"
    r"(?:-(?P<yy>\d{2})(?P<mm>\d{2})(?P<dd>\d{2})(?:-(?P<strike>\d+(?:\.\d+)?)-(?P<cp>[CP]))?)?$")
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
STABLE = frozenset({"USDT", "USDC", "BUSD", "FDUSD", "DAI", "USDE"})


def _strike(s: str) -> str:
    x = float(s)
    return str(int(x)) if x.is_integer() else s.replace(".", "d")


def instrument_of(symbol: str, where: str) -> dict[str, Any]:
    """The DESIGN §4 instrument fields a unified contract symbol implies (without the mark)."""
    m = _UNIFIED.match(symbol)
    if not m:
        raise InputError(where, f"{symbol!r} is not a unified contract symbol "
                         "(BASE/QUOTE:SETTLE[-YYMMDD[-STRIKE-C|P]]; spot has no positions)")
    base, quote, settle = m["base"].upper(), m["quote"].upper(), m["settle"].upper()
    inverse = settle == base
    out: dict[str, Any] = {"underlying": base, "settle": settle, "inverse": inverse}
    if m["yy"] is None:
        out |= {"symbol": f"{base}-PERPETUAL" if inverse else f"{base}{quote}",
                "kind": "perpetual"}
        return out
    try:
        expiry = datetime(2000 + int(m["yy"]), int(m["mm"]), int(m["dd"]), 8, tzinfo=UTC)
    except ValueError:
        raise InputError(where, f"{symbol!r}: not a valid expiry date") from None
    code = f"{expiry.day}{_MONTHS[expiry.month - 1]}{expiry.year % 100:02d}"
    stem = base if inverse else f"{base}_{settle}"
    out["expiry"] = expiry.isoformat().replace("+00:00", "Z")
    if m["strike"] is None:
        out |= {"symbol": f"{stem}-{code}", "kind": "future"}
    else:
        out |= {"symbol": f"{stem}-{code}-{_strike(m['strike'])}-{m['cp']}", "kind": "option",
                "strike": float(m["strike"]), "option_type": "call" if m["cp"] == "C" else "put"}
    return out


def _mode(rec: dict[str, Any], at: str) -> str | None:
    mode = text(rec, "marginMode", at, required=False, choices=("cross", "isolated"))
    if mode is None and "isolated" in rec and rec["isolated"] is not None:
        if not isinstance(rec["isolated"], bool):
            raise InputError(f"{at}.isolated", f"expected true or false, got {rec['isolated']!r}")
        mode = "isolated" if rec["isolated"] else "cross"
    return mode


def parse(paths: list[Path]) -> Imported:
    """Read ccxt position arrays into positions, instruments and marks."""
    imp = Imported()
    perp: dict[str, float] = {}
    dated: dict[str, float] = {}
    for path in paths:
        for i, rec in enumerate(records(read_export(path), str(path))):
            at = f"{path}[{i}]"
            symbol = text(rec, "symbol", at)
            assert symbol is not None
            spec = instrument_of(symbol, f"{at}.symbol")
            contracts = number(rec, "contracts", at, nonneg=True)
            assert contracts is not None
            imp.see_time(millis(rec, "timestamp", at, required=False))
            if contracts == 0:
                continue
            side = text(rec, "side", at, choices=("long", "short"))
            mode = _mode(rec, at)
            collateral = number(rec, "collateral", at, required=False, nonneg=True)
            imp.add(ImportedPosition(
                symbol=spec["symbol"], size=contracts if side == "long" else -contracts,
                where=at, entry_price=number(rec, "entryPrice", at, required=False, nonneg=True),
                margin_mode=mode,
                isolated_margin=collateral if mode == "isolated" else None,
                leverage=number(rec, "leverage", at, required=False, within=LEVERAGE_RANGE)))
            cs = number(rec, "contractSize", at, required=False, positive=True)
            mark = number(rec, "markPrice", at, required=False, positive=True)
            if spec["kind"] == "option":
                imp.unpriced[spec["symbol"]] = ("a ccxt position carries no implied vol; "
                                                "import the venue's own export for options")
                continue
            if cs is None or mark is None:
                imp.unpriced[spec["symbol"]] = "the position has no contractSize or markPrice"
                continue
            imp.instruments[spec["symbol"]] = {**spec, "contract_size": cs, "mark_price": mark}
            (perp if spec["kind"] == "perpetual" else dated).setdefault(spec["underlying"],
                                                                       mark)
            if spec["settle"] in STABLE:
                imp.fx[spec["settle"]] = 1.0
    imp.index = {**dated, **perp}
    return imp


__all__ = ["instrument_of", "parse"]
