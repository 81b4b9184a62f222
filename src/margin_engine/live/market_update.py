"""Partial market updates (DESIGN §8 ``POST /v1/market``): parse, validate, apply.

An update is ``{timestamp?, index?: {COIN: price}, fx?: {CCY: price},
order_books?: {SYMBOL: {bids: [[price, size], ...], asks: [...]}},
instruments?: [{symbol, mark_price?, mark_iv?, underlying_price?}]}``. Only what it names
changes; an order book replaces the symbol's depth (what the liquidity add-on walks), and
re-margins the units holding its underlying. Without ``timestamp`` the valuation time stays
where it was; a new timestamp moves it (every option's time to expiry changes, so every
underlying counts as touched).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from margin_engine.domain.instruments import Instrument
from margin_engine.domain.market import MarketSnapshot, OrderBook
from margin_engine.domain.types import ABSURD
from margin_engine.errors import InputError, first_validation_problem

_INSTRUMENT_FIELDS = ("mark_price", "mark_iv", "underlying_price")


@dataclass(frozen=True)
class MarketUpdate:
    """A validated partial update (prices are positive finite floats)."""

    timestamp: datetime | None = None
    index: Mapping[str, float] = field(default_factory=dict)
    fx: Mapping[str, float] = field(default_factory=dict)
    instruments: tuple[tuple[str, Mapping[str, float]], ...] = ()
    order_books: Mapping[str, OrderBook] = field(default_factory=dict)


def _price(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InputError(path, f"expected a number, got {type(value).__name__}")
    try:
        x = float(value)
    except ValueError:
        raise InputError(path, f"not a number: {value!r}") from None
    if not math.isfinite(x) or x <= 0 or x > ABSURD:
        raise InputError(path, f"must be a finite number > 0, got {value!r}")
    return x


def parse_update(data: Mapping[str, Any], market: MarketSnapshot) -> MarketUpdate:
    """Validate ``data`` against ``market``; raises :class:`InputError` naming the field."""
    if not isinstance(data, Mapping):
        raise InputError("<root>", "a market update must be a JSON object")
    unknown = sorted(set(data) - {"timestamp", "index", "fx", "instruments", "order_books"})
    if unknown:
        raise InputError(unknown[0], "unknown field (known: timestamp, index, fx, "
                         "order_books, instruments)")
    ts: datetime | None = None
    if data.get("timestamp") is not None:
        raw = data["timestamp"]
        try:
            ts = raw if isinstance(raw, datetime) else datetime.fromisoformat(
                str(raw).replace("Z", "+00:00"))
        except ValueError:
            raise InputError("timestamp", f"not an ISO 8601 time: {raw!r}") from None
        if ts.tzinfo is None:
            raise InputError("timestamp", "must carry a time zone (use Z for UTC)")
        if ts < market.timestamp:
            raise InputError("timestamp", f"{ts.isoformat()} is before the current market "
                             f"time {market.timestamp.isoformat()}")
        for ins in market.instruments:
            if ins.expiry is not None and ins.expiry <= ts:
                raise InputError("timestamp", f"{ins.symbol} expires at or before "
                                 f"{ts.isoformat()}; expired instruments must be settled first")
    index = _prices(data.get("index"), "index", market.index)
    fx = _prices(data.get("fx"), "fx", market.fx)
    items = data.get("instruments") or []
    if not isinstance(items, list):
        raise InputError("instruments", "expected a list")
    out: list[tuple[str, Mapping[str, float]]] = []
    for i, item in enumerate(items):
        at = f"instruments[{i}]"
        if not isinstance(item, Mapping):
            raise InputError(at, "expected an object")
        sym = item.get("symbol")
        if not isinstance(sym, str) or not market.has(sym):
            raise InputError(f"{at}.symbol", f"unknown symbol {sym!r}")
        bad = sorted(set(item) - {"symbol", *_INSTRUMENT_FIELDS})
        if bad:
            raise InputError(f"{at}.{bad[0]}", "unknown field (known: symbol, "
                             f"{', '.join(_INSTRUMENT_FIELDS)})")
        ins = market.instrument(sym)
        upd = {k: _price(item[k], f"{at}.{k}") for k in _INSTRUMENT_FIELDS
               if item.get(k) is not None}
        if not ins.is_option and ("mark_iv" in upd or "underlying_price" in upd):
            raise InputError(f"{at}.mark_iv", f"{sym} is not an option")
        out.append((sym, upd))
    return MarketUpdate(ts, index, fx, tuple(out), _books(data.get("order_books"), market))


def _books(raw: Any, market: MarketSnapshot) -> dict[str, OrderBook]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise InputError("order_books", "expected an object {SYMBOL: {bids, asks}}")
    out = {}
    for sym, book in raw.items():
        at = f"order_books.{sym}"
        if not market.has(str(sym)):
            raise InputError(at, f"unknown symbol {sym!r}")
        if not isinstance(book, Mapping):
            raise InputError(at, "expected an object {bids, asks}")
        try:
            out[str(sym)] = OrderBook.model_validate(dict(book))
        except ValueError as exc:  # pydantic's ValidationError: its first problem
            loc, msg = first_validation_problem(exc)
            raise InputError(f"{at}.{loc}" if loc else at, msg) from None
    return out


def _prices(raw: Any, name: str, known: Mapping[str, float]) -> dict[str, float]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise InputError(name, "expected an object of prices")
    out = {}
    for k, v in raw.items():
        if k not in known:
            raise InputError(f"{name}.{k}", f"not in the market ({', '.join(sorted(known))})")
        out[str(k)] = _price(v, f"{name}.{k}")
    return out


def apply_update(market: MarketSnapshot, update: MarketUpdate
                 ) -> tuple[MarketSnapshot, frozenset[str], frozenset[str]]:
    """The updated snapshot, the touched currencies (underlyings and priced currencies whose
    value may have moved) and the symbols whose fields changed."""
    touched: set[str] = set(update.index) | set(update.fx)
    symbols: set[str] = set()
    instruments = market.instruments
    if update.instruments:
        pos = {ins.symbol: k for k, ins in enumerate(instruments)}
        moved: list[Instrument] = list(instruments)
        for sym, fields in update.instruments:
            k = pos[sym]
            moved[k] = moved[k].model_copy(update=dict(fields))
            touched.add(moved[k].underlying)
            symbols.add(sym)
        instruments = tuple(moved)
    changed: dict[str, Any] = {"instruments": instruments}
    if update.order_books:
        changed["order_books"] = {**market.order_books, **update.order_books}
        for sym in update.order_books:
            touched.add(market.instrument(sym).underlying)
            symbols.add(sym)
    if update.index:
        changed["index"] = {**market.index, **update.index}
    if update.fx:
        changed["fx"] = {**market.fx, **update.fx}
    if update.timestamp is not None and update.timestamp != market.timestamp:
        changed["timestamp"] = update.timestamp
        touched |= set(market.index) | set(market.fx)
        symbols |= {ins.symbol for ins in market.instruments}
    new = MarketSnapshot.model_construct(**{**dict(market), **changed})
    return new, frozenset(touched), frozenset(symbols)
