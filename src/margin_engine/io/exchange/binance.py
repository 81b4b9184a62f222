"""Binance USDⓈ-M futures ``GET /fapi/v2/positionRisk`` and ``/fapi/v3/positionRisk`` exports.

Each row is one symbol (one leg in hedge mode); Binance sends numbers as decimal strings.
``positionAmt`` is signed base units, and a USDⓈ-M contract is one base unit, so the book's size is
``positionAmt`` as is (DESIGN §3: signed contracts, ``contract_size`` 1). Rows with
``positionAmt`` 0 (Binance lists every symbol) are skipped. The margin mode is ``marginType``
(v2); v3 rows have none, so a row with ``isolatedWallet`` > 0 is isolated and the others cross.
An isolated position's own collateral is ``isolatedWallet`` (the wallet balance assigned to it,
before unrealised P&L). ``leverage`` (v2) becomes the account's leverage for the symbol.

The market snapshot (``--market-out``) lists each held symbol as a linear contract settled in
its quote asset (``marginAsset`` in v3), ``BTCUSDT`` a perpetual and ``BTCUSDT_250328`` a dated
future expiring 08:00 UTC that day, at ``markPrice``. positionRisk carries no index price, so the
index of each underlying is taken as the mark of its perpetual (else its future), and USDT/USDC
at 1 USD; the snapshot is dated by the latest ``updateTime``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

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

QUOTES = ("USDT", "USDC", "BUSD", "FDUSD")
_DATED = re.compile(r"^(?P<pair>[A-Z0-9]+)_(?P<yy>\d{2})(?P<mm>\d{2})(?P<dd>\d{2})$")


def split_symbol(symbol: str, where: str) -> tuple[str, str, datetime | None]:
    """(underlying, quote, expiry or None) of a USDⓈ-M symbol: ``BTCUSDT``, ``BTCUSDT_250328``."""
    pair, expiry = symbol, None
    m = _DATED.match(symbol)
    if m:
        pair = m["pair"]
        try:
            expiry = datetime(2000 + int(m["yy"]), int(m["mm"]), int(m["dd"]), 8, tzinfo=UTC)
        except ValueError:
            raise InputError(where, f"{symbol!r}: not a valid delivery date") from None
    for q in QUOTES:
        if pair.endswith(q) and len(pair) > len(q):
            return pair[: -len(q)], q, expiry
    raise InputError(where, f"{symbol!r} is not a USDⓈ-M symbol (a base asset followed by "
                     f"{', '.join(QUOTES)})")


def parse(paths: list[Path]) -> Imported:
    """Read positionRisk exports (a JSON array, as the endpoint answers) into positions."""
    imp = Imported()
    perp_marks: dict[str, float] = {}
    future_marks: dict[str, float] = {}
    for path in paths:
        for i, rec in enumerate(records(read_export(path), str(path))):
            at = f"{path}[{i}]"
            symbol = text(rec, "symbol", at)
            assert symbol is not None
            amt = number(rec, "positionAmt", at)
            assert amt is not None
            mark = number(rec, "markPrice", at, positive=True)
            assert mark is not None
            side = text(rec, "positionSide", at, required=False,
                        choices=("BOTH", "LONG", "SHORT"))
            if (side == "LONG" and amt < 0) or (side == "SHORT" and amt > 0):
                raise InputError(f"{at}.positionAmt", f"{amt!r} contradicts positionSide "
                                 f"{side}")
            und, quote, expiry = split_symbol(symbol, f"{at}.symbol")
            settle = text(rec, "marginAsset", at, required=False) or quote
            imp.see_time(millis(rec, "updateTime", at, required=False))
            if amt == 0:
                continue
            entry = number(rec, "entryPrice", at, nonneg=True)
            margin_type = text(rec, "marginType", at, required=False,
                               choices=("isolated", "cross"))
            wallet = number(rec, "isolatedWallet", at, required=False, nonneg=True)
            mode = margin_type or ("isolated" if wallet else "cross")
            lev = number(rec, "leverage", at, required=False, within=LEVERAGE_RANGE)
            imp.add(ImportedPosition(symbol=symbol, size=amt, where=at, entry_price=entry,
                                     margin_mode=mode,
                                     isolated_margin=wallet if mode == "isolated" else None,
                                     leverage=lev))
            ins: dict[str, object] = {"symbol": symbol,
                                      "kind": "future" if expiry else "perpetual",
                                      "underlying": und, "settle": settle, "inverse": False,
                                      "contract_size": 1.0, "mark_price": mark}
            if expiry is not None:
                ins["expiry"] = expiry.isoformat().replace("+00:00", "Z")
                future_marks.setdefault(und, mark)
            else:
                perp_marks.setdefault(und, mark)
            imp.instruments[symbol] = ins
            imp.fx[settle] = 1.0
    imp.index = {**future_marks, **perp_marks}
    imp.notes.append("positionRisk has no index price: each underlying's index is its "
                     "perpetual's mark (else its future's); USDT/USDC valued at 1 USD")
    return imp


__all__ = ["QUOTES", "parse", "split_symbol"]
