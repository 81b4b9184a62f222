"""Growable NumPy columns and the per-instrument arrays the live book and its engines read."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from margin_engine.domain.instruments import Instrument, Kind
from margin_engine.domain.market import MarketSnapshot
from margin_engine.models.core.valuation import mark

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

KIND_CODE = {Kind.SPOT: 0, Kind.PERPETUAL: 1, Kind.FUTURE: 2, Kind.OPTION: 3}


class Column:
    """A 1-D NumPy array that grows by doubling; ``a`` is the live view of its ``n`` items."""

    def __init__(self, dtype: type, values: Sequence[float] | NDArray[np.generic] = ()) -> None:
        data: np.ndarray = np.asarray(values, dtype=dtype)
        self._buf: np.ndarray = np.empty(max(16, 2 * data.size), dtype=dtype)
        self._buf[: data.size] = data
        self.n = int(data.size)

    @property
    def a(self) -> np.ndarray:
        return self._buf[: self.n]

    def append(self, value: float) -> int:
        if self.n == self._buf.size:
            grown = np.empty(2 * self._buf.size, dtype=self._buf.dtype)
            grown[: self.n] = self._buf[: self.n]
            self._buf = grown
        self._buf[self.n] = value
        self.n += 1
        return self.n - 1

    def extend(self, values: NDArray[np.generic]) -> None:
        """Append every item of ``values`` (one copy, grown by doubling)."""
        need = self.n + len(values)
        if need > self._buf.size:
            grown = np.empty(max(need, 2 * self._buf.size), dtype=self._buf.dtype)
            grown[: self.n] = self._buf[: self.n]
            self._buf = grown
        self._buf[self.n: need] = values
        self.n = need


class InstrumentArrays:
    """Every instrument of the market as columns: kind, contract size, inverse, the currency
    index of its underlying and settlement currency, and its mark (``valuation.mark``)."""

    def __init__(self, market: MarketSnapshot) -> None:
        self.instruments: list[Instrument] = list(market.instruments)
        self.index = {ins.symbol: k for k, ins in enumerate(self.instruments)}
        names = set(market.index) | set(market.fx) | {"USD"}
        names |= {ins.settle for ins in self.instruments}
        self.currencies = sorted(names)
        self.ccy = {c: k for k, c in enumerate(self.currencies)}
        ins = self.instruments
        self.kind = np.array([KIND_CODE[i.kind] for i in ins], dtype=np.int64)
        self.contract_size = np.array([i.contract_size for i in ins])
        self.inverse = np.array([i.inverse for i in ins], dtype=bool)
        self.underlying = np.array([self.ccy[i.underlying] for i in ins], dtype=np.int64)
        self.settle = np.array([self.ccy[i.settle] for i in ins], dtype=np.int64)
        self.mark = np.zeros(len(ins))
        self.usd = np.zeros(len(self.currencies))
        self.refresh(market, None)

    def refresh(self, market: MarketSnapshot, touched: frozenset[str] | None) -> IntArray:
        """Re-read marks and currency prices; returns the instruments that may have moved
        (those on or settled in a touched currency; all when ``touched`` is None)."""
        self.instruments = list(market.instruments)
        self.usd = np.array([market.usd_price(c) if market.is_priced(c) else np.nan
                             for c in self.currencies])
        if touched is None:
            rows = np.arange(len(self.instruments), dtype=np.int64)
        else:
            codes = np.array([self.ccy[c] for c in touched if c in self.ccy], dtype=np.int64)
            rows = np.flatnonzero(np.isin(self.underlying, codes) | np.isin(self.settle, codes))
        for k in rows.tolist():
            self.mark[k] = mark(self.instruments[k], market)
        return rows.astype(np.int64)


def position_equity(arr: InstrumentArrays, ins: IntArray, size: FloatArray,
                    entry: FloatArray) -> FloatArray:
    """``valuation.equity_value`` of many positions, in each one's settlement currency."""
    m = arr.mark[ins]
    cs = arr.contract_size[ins]
    kind = arr.kind[ins]
    inv = arr.inverse[ins]
    has_entry = ~np.isnan(entry)
    e = np.where(has_entry, entry, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        fut = np.where(inv, size * cs * (1.0 / e - 1.0 / m), size * cs * (m - e))
    fut = np.where(has_entry, fut, 0.0)
    return np.where((kind == KIND_CODE[Kind.OPTION]) | (kind == KIND_CODE[Kind.SPOT]),
                    size * cs * m, fut)


def position_equity_one(arr: InstrumentArrays, k: int, size: float, entry: float) -> float:
    """:func:`position_equity` of one position in plain floats (the same operations in the same
    order); ``entry`` NaN when unknown."""
    m = float(arr.mark[k])
    cs = float(arr.contract_size[k])
    kind = int(arr.kind[k])
    if kind in (KIND_CODE[Kind.OPTION], KIND_CODE[Kind.SPOT]):
        return size * cs * m
    if math.isnan(entry):
        return 0.0
    if m == 0.0 or entry == 0.0:  # NumPy's inf/nan, as the array version gives
        return float(position_equity(arr, np.array([k]), np.array([size]),
                                     np.array([entry]))[0])
    if bool(arr.inverse[k]):
        return size * cs * (1.0 / entry - 1.0 / m)
    return size * cs * (m - entry)
