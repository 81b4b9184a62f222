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
    """A 1-D NumPy array that grows by doubling; ``a`` is the live view of its ``n`` items
    (an attribute re-made whenever it grows: the hot paths read it many times per call)."""

    def __init__(self, dtype: type, values: Sequence[float] | NDArray[np.generic] = ()) -> None:
        data: np.ndarray = np.asarray(values, dtype=dtype)
        self._buf: np.ndarray = np.empty(max(16, 2 * data.size), dtype=dtype)
        self._buf[: data.size] = data
        self.n = int(data.size)
        self.a: np.ndarray = self._buf[: self.n]

    def _reserve(self, need: int) -> None:
        """Room for ``need`` items (the buffer at least doubles when it grows)."""
        if need > self._buf.size:
            grown = np.empty(max(need, 2 * self._buf.size), dtype=self._buf.dtype)
            grown[: self.n] = self._buf[: self.n]
            self._buf = grown

    def append(self, value: float) -> int:
        self._reserve(self.n + 1)
        self._buf[self.n] = value
        self.n += 1
        self.a = self._buf[: self.n]
        return self.n - 1

    def extend(self, values: NDArray[np.generic]) -> None:
        """Append every item of ``values``."""
        need = self.n + len(values)
        self._reserve(need)
        self._buf[self.n: need] = values
        self.n = need
        self.a = self._buf[: need]

    def extend_to(self, n: int, fill: float = 0) -> None:
        """Grow to ``n`` items, the new ones set to ``fill`` (nothing when already that long)."""
        if n <= self.n:
            return
        self._reserve(n)
        self._buf[self.n: n] = fill
        self.n = n
        self.a = self._buf[: n]


#: Unit roundoff of float64 (2**-53): one rounding moves a result by at most this × its size.
ROUNDOFF = 2.0 ** -53


class RunningSums:
    """Per-group totals (of units, of accounts) kept current by adding the changes of the terms
    that moved, with the rounding drift bounded.

    Each group holds a compensated (Neumaier) sum: ``total + compensation`` carries the lost
    low-order bits of every addition, so adding changes does not lose precision with the number
    of additions. What can still drift is the rounding in each change itself (a term's new value
    minus its old one, and the changes of one group summed together): ``bound`` accumulates a
    bound on that, and a group whose bound exceeds :attr:`TOLERANCE` × its size (or whose total
    is not finite) is marked stale, so the owner re-sums it from its terms. A stale group is
    re-summed by :meth:`set_exact`; until then the changes added to it are ignored.

    Attributes
    ----------
    TOLERANCE : float
        Drift allowed relative to ``max(1, |total|)`` before a group must be re-summed (1e-12:
        a thousandth of the live book's 1e-9 contract with ``assess_book``).
    """

    TOLERANCE = 1e-12

    def __init__(self) -> None:
        self._total = Column(np.float64)
        self._comp = Column(np.float64)
        self._bound = Column(np.float64)
        self._ok = Column(np.bool_)

    def extend_to(self, n: int) -> None:
        """Make room for groups ``0 .. n-1`` (new groups stale)."""
        for col in (self._total, self._comp, self._bound):
            col.extend_to(n, 0.0)
        self._ok.extend_to(n, False)

    def values(self, groups: IntArray) -> FloatArray:
        """The totals of ``groups`` (valid for the ones not stale)."""
        return self._total.a[groups] + self._comp.a[groups]

    @property
    def n(self) -> int:
        """How many groups there is room for."""
        return self._total.n

    def value_one(self, group: int) -> float | None:
        """The total of one group as a float, ``None`` when it must be re-summed first."""
        if not self._ok.a.item(group):
            return None
        return self._total.a.item(group) + self._comp.a.item(group)

    def is_current(self, groups: IntArray) -> NDArray[np.bool_]:
        """Whether each of ``groups`` holds its terms' total (else it must be re-summed)."""
        return self._ok.a[groups]

    def stale(self, groups: IntArray) -> IntArray:
        """Those of ``groups`` that must be re-summed from their terms."""
        return groups[~self._ok.a[groups]]

    def invalidate(self, groups: IntArray | slice) -> None:
        """Mark ``groups`` stale (their terms changed in a way not added here)."""
        self._ok.a[groups] = False

    def set_exact(self, groups: IntArray, totals: FloatArray) -> None:
        """``groups`` re-summed from their terms: ``totals``, no drift."""
        self._total.a[groups] = totals
        self._comp.a[groups] = 0.0
        self._bound.a[groups] = 0.0
        self._ok.a[groups] = np.isfinite(totals)

    def add(self, groups: Grouping, changes: FloatArray) -> None:
        """Add ``changes[j]`` (a term's new value minus its old one) to the group of term ``j``
        (``groups``)."""
        if not changes.size:
            return
        ids = groups.ids
        d = groups.sums(changes)
        size = groups.sums(np.abs(changes))
        s = self._total.a[ids]
        t = s + d
        abs_s = np.abs(s)
        with np.errstate(invalid="ignore"):  # inf - inf: NaN, caught below
            comp = self._comp.a[ids] + np.where(abs_s >= np.abs(d), (s - t) + d, (d - t) + s)
        self._comp.a[ids] = comp
        self._total.a[ids] = t
        # each change and their sum: count + 1 roundings of at most ROUNDOFF × size each; the
        # compensated addition itself only adds second-order terms (ROUNDOFF² × |total|)
        bound = self._bound.a[ids] + groups.roundings * size + (ROUNDOFF * ROUNDOFF) * abs_s
        self._bound.a[ids] = bound
        total = np.abs(t + comp)
        ok = (bound <= self.TOLERANCE * np.maximum(total, 1.0)) & (total < np.inf)
        if not ok.all():
            self._ok.a[ids[~ok]] = False


class Grouping:
    """Terms assigned to groups, ready to be summed per group (build once, sum many times).

    Parameters
    ----------
    groups : ndarray of int
        The group of each term.

    Attributes
    ----------
    ids : ndarray of int
        The distinct groups, ascending.
    index : ndarray of int
        Each term's position in ``ids``.
    count : ndarray of int
        How many terms each of ``ids`` has.
    """

    def __init__(self, groups: IntArray) -> None:
        self.ids, self.index, self.count = np.unique(groups, return_inverse=True,
                                                     return_counts=True)
        self.roundings = (self.count + 1) * ROUNDOFF
        """Bound on the relative rounding of a group's summed changes (count + 1 roundings)."""

    def sums(self, values: FloatArray) -> FloatArray:
        """Σ ``values`` per group of ``ids``."""
        return np.bincount(self.index, weights=values,
                           minlength=self.ids.size).astype(np.float64, copy=False)


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


def first_by_row(rows: Sequence[int], ids: Sequence[int]) -> dict[int, int]:
    """The first of ``ids`` (position ids) for each instrument row in ``rows`` (theirs, in the
    same order): what a what-if looks a held instrument's position up in."""
    out: dict[int, int] = {}
    for row, g in zip(rows, ids, strict=True):
        out.setdefault(row, g)
    return out
