"""Deribit API v2 exports: ``private/get_positions`` with ``public/get_instruments`` (or
``public/get_instrument``) and, for the market snapshot, ``public/ticker`` and/or
``public/get_book_summary_by_currency``.

Give the files in any order; each is recognised by its records (a JSON-RPC envelope is
unwrapped): positions carry ``direction``, instrument specifications ``contract_size`` and
``settlement_period`` or ``expiration_timestamp``, tickers ``timestamp`` with ``mark_price``,
book summaries ``creation_timestamp`` with ``mark_price``.

Sizes. Deribit's position ``size`` is in the unit of the instrument's ``contract_size``: USD for
inverse futures and perpetuals (``BTC-PERPETUAL``: 10 USD per contract), the base coin for
options and linear contracts. So the book's size is ``size / contract_size`` contracts, signed
by ``direction`` (``sell`` < 0), e.g. ``size`` 50 in ``BTC-PERPETUAL`` is 5 contracts (DESIGN
§3). A position whose instrument has no specification in the files is refused: its contract
size is unknown. ``average_price`` is the entry price (USD for futures; coin per unit of the
underlying for inverse options, as the book expects). Positions of size 0 are skipped; combos
and spot are refused.

Market snapshot: an instrument's ``mark_price`` from its ticker or book summary (else from the
position), options' ``mark_iv`` (Deribit quotes it in percent: 55.2 → 0.552) and
``underlying_price``; the index of each currency is a ticker's (else a position's)
``index_price``; the snapshot is dated by the latest ticker ``timestamp`` or book-summary
``creation_timestamp``. Deribit accounts are margined cross (standard margin) unless
``--margin-mode portfolio`` is given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from margin_engine.errors import InputError

from .common import Imported, ImportedPosition, millis, number, read_export, records, text


def _kind_of_file(recs: list[dict[str, Any]]) -> str | None:
    if not recs:
        return None
    keys = set(recs[0])
    if "direction" in keys:
        return "positions"
    if "contract_size" in keys and ("settlement_period" in keys
                                    or "expiration_timestamp" in keys):
        return "instruments"
    if "mark_price" in keys and "timestamp" in keys:
        return "tickers"
    if "mark_price" in keys and "creation_timestamp" in keys:
        return "summaries"
    return "unknown"


def _spec(rec: dict[str, Any], at: str) -> dict[str, Any]:
    name = text(rec, "instrument_name", at)
    kind = text(rec, "kind", at)
    if kind not in ("future", "option"):
        raise InputError(f"{at}.kind", f"{kind!r}: only futures, perpetuals and options can be "
                         "imported")
    base = text(rec, "base_currency", at)
    settle = text(rec, "settlement_currency", at)
    itype = text(rec, "instrument_type", at, required=False, choices=("linear", "reversed"))
    inverse = itype == "reversed" if itype else settle == base
    out: dict[str, Any] = {"symbol": name, "underlying": base, "settle": settle,
                           "inverse": inverse,
                           "contract_size": number(rec, "contract_size", at, positive=True)}
    if kind == "future" and rec.get("settlement_period") == "perpetual":
        out["kind"] = "perpetual"
        return out
    expiry = millis(rec, "expiration_timestamp", at)
    assert expiry is not None
    out["kind"] = kind
    out["expiry"] = expiry.isoformat().replace("+00:00", "Z")
    if kind == "option":
        out["strike"] = number(rec, "strike", at, positive=True)
        out["option_type"] = text(rec, "option_type", at, choices=("call", "put"))
    return out


def parse(paths: list[Path]) -> Imported:
    """Read the Deribit exports into positions, instrument specifications and marks."""
    imp = Imported()
    specs: dict[str, tuple[dict[str, Any], str]] = {}
    quotes: dict[str, tuple[dict[str, Any], str]] = {}
    raw_positions: list[tuple[dict[str, Any], str]] = []
    for path in paths:
        recs = records(read_export(path), str(path), allow_single=True)
        kind = _kind_of_file(recs)
        if kind == "unknown":
            raise InputError(str(path), "not a Deribit export this command reads "
                             "(private/get_positions, public/get_instruments, public/ticker, "
                             "public/get_book_summary_by_currency)")
        for i, rec in enumerate(recs):
            at = f"{path}[{i}]"
            if kind == "positions":
                raw_positions.append((rec, at))
            elif kind == "instruments":
                specs[str(text(rec, "instrument_name", at))] = (rec, at)
            elif kind in ("tickers", "summaries"):
                name = str(text(rec, "instrument_name", at))
                imp.see_time(millis(rec, "timestamp" if kind == "tickers"
                                    else "creation_timestamp", at))
                quotes[name] = (rec, at)
    if not raw_positions:
        raise InputError(str(paths[0]), "no private/get_positions export among the files")
    for rec, at in raw_positions:
        name = str(text(rec, "instrument_name", at))
        direction = text(rec, "direction", at, choices=("buy", "sell", "zero"))
        size = number(rec, "size", at)
        assert size is not None
        idx = number(rec, "index_price", at, required=False, positive=True)
        if size == 0 or direction == "zero":
            continue
        if (size < 0) != (direction == "sell"):
            raise InputError(f"{at}.size", f"{size!r} contradicts direction {direction!r}")
        if name not in specs:
            raise InputError(f"{at}.instrument_name", f"no public/get_instruments record for "
                             f"{name!r} among the files: its contract size is unknown")
        srec, sat = specs[name]
        spec = _spec(srec, sat)
        if idx is not None:
            imp.index.setdefault(spec["underlying"], idx)
        contracts = abs(size) / spec["contract_size"]
        imp.add(ImportedPosition(
            symbol=name, size=contracts if direction == "buy" else -contracts, where=at,
            entry_price=number(rec, "average_price", at, required=False, nonneg=True)))
        ins = dict(spec)
        q = quotes.get(name)
        if q is not None:
            qrec, qat = q
            ins["mark_price"] = number(qrec, "mark_price", qat, positive=True)
            ticker_index = number(qrec, "index_price", qat, required=False, positive=True)
            if ticker_index is not None:
                imp.index[spec["underlying"]] = ticker_index
            if spec["kind"] == "option":
                iv = number(qrec, "mark_iv", qat, required=False, positive=True)
                if iv is not None:
                    ins["mark_iv"] = iv / 100.0
                und = number(qrec, "underlying_price", qat, required=False, positive=True)
                if und is not None:
                    ins["underlying_price"] = und
        else:
            ins["mark_price"] = number(rec, "mark_price", at, positive=True)
        if spec["kind"] == "option" and "mark_iv" not in ins:
            imp.unpriced[name] = ("no mark_iv: give its public/ticker or "
                                  "public/get_book_summary_by_currency export")
            continue
        imp.instruments[name] = ins
        if not spec["inverse"]:
            imp.fx[spec["settle"]] = 1.0
    return imp


__all__ = ["parse"]
