"""How the live book gets a unit's requirement: an engine per model family.

- :class:`ReferenceEngine` (every model): ``model.margin_unit`` on the unit, the readable
  per-unit path; what the fast engines are checked against.
- :class:`BracketEngine` (``binance-usdm``): per-position brackets over arrays.
- the risk-based family has its own engine (:mod:`margin_engine.live.risk_engine`): cached
  instrument scenario P&L and each unit's cached scenario vector.
- the scenario grids of ``span`` and ``okx-pm`` (:mod:`margin_engine.live.span_engine`,
  :mod:`margin_engine.live.okx_pm_engine`): cached per-contract scenario rows, every unit's
  requirement in one kernel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from margin_engine.models.core.base import MarginModel
from margin_engine.models.venues.binance_usdm import BinanceUsdm
from margin_engine.models.venues.okx_pm import OkxPm
from margin_engine.models.venues.span import Span

if TYPE_CHECKING:
    from margin_engine.live.book import LiveBook

FloatArray = np.ndarray


class ReferenceEngine:
    """Requirements from ``model.margin_unit`` (one unit at a time)."""

    def __init__(self, live: LiveBook) -> None:
        self.live = live

    def on_market(self, moved: np.ndarray) -> None:
        """Instruments ``moved`` were revalued (the reference path reads the market itself)."""

    def on_units(self, slots: Sequence[int]) -> None:
        """Unit slots whose positions changed (new slots included)."""

    def margins(self, slots: Sequence[int]) -> tuple[FloatArray, FloatArray]:
        lv = self.live
        im = np.empty(len(slots))
        mm = np.empty(len(slots))
        if len(slots) > 1:  # the whole-book path: revalue each instrument once
            lv.model.prepare([(lv.unit(s), lv.account_object(lv.unit_account(s)))
                              for s in slots], lv.market)
        for k, s in enumerate(slots):
            req = lv.model.margin_unit(lv.unit(s), lv.account_object(lv.unit_account(s)),
                                       lv.market)
            im[k], mm[k] = req.initial_margin, req.maintenance_margin
        return im, mm

    def what_if(self, slot: int, orders: Sequence[tuple[int, float]]
                ) -> tuple[float, float] | None:
        """(IM, MM) of ``slot`` with ``orders`` (instrument row, size) added to positions it
        already holds; ``None``: not answerable from the cache (the caller rebuilds)."""
        return None

    def what_if_with(self, slot: int, orders: Sequence[tuple[int, float]],
                     collateral: Mapping[str, float]) -> tuple[float, float] | None:
        """:meth:`what_if` when the unit's collateral after the orders (their cash moved) is
        ``collateral``; an engine whose model reads no collateral answers :meth:`what_if`."""
        return self.what_if(slot, orders)


class BracketEngine(ReferenceEngine):
    """Binance USDⓈ-M brackets over arrays: every position's notional, bracket, IM and MM at
    once (``binance_usdm._position_margin`` vectorised).

    Each position's (IM, MM) is cached and recomputed only when its instrument's mark moved
    (:meth:`on_market`) or its unit changed (:meth:`on_units`: a fill, a deposit, a new
    account); a unit's requirement is the left-to-right sum of its positions' cached figures,
    the same numbers in the same order as recomputing every position. A BTC tick on a book where
    two thirds of the units hold BTC thus re-prices the BTC positions only (a tenth of the book
    on ten coins), not every position of those units.
    """

    def __init__(self, live: LiveBook) -> None:
        super().__init__(live)
        model = live.model
        assert isinstance(model, BinanceUsdm)
        self.model = model
        arr = live.instruments
        n = len(arr.instruments)
        width = max(len(t.brackets) for t in model.params.brackets.values())
        self.cap = np.full((n, width), np.inf)
        self.mmr = np.zeros((n, width))
        self.cum = np.zeros((n, width))
        self.lev = np.full((n, width), np.inf)
        self.rows = np.zeros(n, dtype=np.int64)
        for k, ins in enumerate(arr.instruments):
            table = model.params.brackets.get(ins.symbol)
            if table is None:
                continue
            b = table.brackets
            self.rows[k] = len(b)
            self.cap[k, : len(b) - 1] = [r.notionalCap for r in b[:-1]]
            self.mmr[k, : len(b)] = [r.maintMarginRatio for r in b]
            self.cum[k, : len(b)] = [r.cum for r in b]
            self.lev[k, : len(b)] = [r.initialLeverage for r in b]
        self._tables: dict[int, tuple[list[float], list[float], list[float], list[float]]] = {}
        self._pim = np.zeros(0)
        self._pmm = np.zeros(0)
        self._fresh = np.zeros(0, dtype=bool)
        """Whether a position's cached (IM, MM) is current, by global position id."""

    def on_market(self, moved: np.ndarray) -> None:
        n = min(self._fresh.size, self.live.pos_ins.size)
        if moved.size and n:
            hit = np.zeros(len(self.live.instruments.instruments), dtype=bool)
            hit[moved] = True
            self._fresh[:n] &= ~hit[self.live.pos_ins[:n]]

    def on_units(self, slots: Sequence[int]) -> None:
        lv = self.live
        for s in slots:
            pos = lv.unit_positions(s)
            self._fresh[pos[pos < self._fresh.size]] = False

    def position_margins(self, ins: np.ndarray, size: np.ndarray, leverage: np.ndarray
                         ) -> tuple[FloatArray, FloatArray]:
        arr = self.live.instruments
        n = np.abs(size) * arr.contract_size[ins] * arr.mark[ins]
        row = (n[:, None] >= self.cap[ins]).sum(axis=1)  # first bracket with N < cap
        row = np.minimum(row, self.rows[ins] - 1)
        mmr = self.mmr[ins, row]
        cum = self.cum[ins, row]
        lev = np.minimum(leverage, self.lev[ins, row])
        mm = np.maximum(n * mmr - cum, 0.0)
        im = np.maximum(n / lev, mm)
        return im, mm

    def margins(self, slots: Sequence[int]) -> tuple[FloatArray, FloatArray]:
        lv = self.live
        if not len(slots):
            return np.empty(0), np.empty(0)
        idx, lens = lv.concat_positions(slots)
        n = lv.pos_ins.size
        if self._fresh.size < n:  # positions opened since: not computed yet
            grow = n - self._fresh.size
            self._pim = np.concatenate([self._pim, np.zeros(grow)])
            self._pmm = np.concatenate([self._pmm, np.zeros(grow)])
            self._fresh = np.concatenate([self._fresh, np.zeros(grow, dtype=bool)])
        stale = idx[~self._fresh[idx]]
        if stale.size:  # a position is in one unit only: no duplicates
            self._pim[stale], self._pmm[stale] = self.position_margins(
                lv.pos_ins[stale], lv.pos_size[stale], lv.pos_leverage(stale))
            self._fresh[stale] = True
        return segment_sums(self._pim[idx], lens), segment_sums(self._pmm[idx], lens)

    def position_margin(self, k: int, size: float, leverage: float) -> tuple[float, float]:
        """:meth:`position_margins` of one position in plain floats (the same operations in
        the same order, so the same bits), for the what-if's few changed positions."""
        arr = self.live.instruments
        n = abs(size) * float(arr.contract_size[k]) * float(arr.mark[k])
        row = min(sum(1 for c in self._table(k)[0] if n >= c), int(self.rows[k]) - 1)
        _, mmr, cum, lev_row = self._table(k)
        lev = min(leverage, lev_row[row])
        mm = max(n * mmr[row] - cum[row], 0.0)
        return max(n / lev, mm), mm

    def _table(self, k: int) -> tuple[list[float], list[float], list[float], list[float]]:
        got = self._tables.get(k)
        if got is None:
            got = (self.cap[k].tolist(), self.mmr[k].tolist(), self.cum[k].tolist(),
                   self.lev[k].tolist())
            self._tables[k] = got
        return got

    def what_if(self, slot: int, orders: Sequence[tuple[int, float]]
                ) -> tuple[float, float] | None:
        lv = self.live
        idx = lv.unit_positions(slot)
        if self._fresh.size >= lv.pos_ins.size and self._fresh[idx].all():
            # the unit's cached position figures, the ordered positions re-priced
            ins_l = lv.pos_ins[idx].tolist()
            im_l = self._pim[idx].tolist()
            mm_l = self._pmm[idx].tolist()
            sizes: dict[int, float] = {}
            for row, q in orders:
                if row not in ins_l:
                    return None
                j = ins_l.index(row)
                sizes[j] = sizes.get(j, float(lv.pos_size[idx[j]])) + q
            for j, q in sizes.items():
                im_l[j], mm_l[j] = self.position_margin(
                    ins_l[j], q, lv.pos_leverage_one(int(idx[j])))
            return float(sum(im_l)), float(sum(mm_l))
        ins = lv.pos_ins[idx]
        size = lv.pos_size[idx].copy()
        for row, q in orders:
            hit = np.flatnonzero(ins == row)
            if not hit.size:
                return None
            size[hit[0]] += q
        im_p, mm_p = self.position_margins(ins, size, lv.pos_leverage(idx))
        return float(sum(im_p.tolist())), float(sum(mm_p.tolist()))


def segment_sums(values: FloatArray, lens: np.ndarray) -> FloatArray:
    """Left-to-right sums of consecutive segments (empty segments sum to 0)."""
    out = np.zeros(lens.size)
    ends = np.cumsum(lens)
    starts = ends - lens
    nonempty = lens > 0
    if nonempty.any():
        out[nonempty] = np.add.reduceat(values, starts[nonempty])
    return out


def make_engine(model: MarginModel, live: LiveBook) -> ReferenceEngine:
    """The fastest engine that reproduces ``model`` (the reference engine otherwise)."""
    from margin_engine.live.okx_pm_engine import OkxPmEngine
    from margin_engine.live.risk_engine import RiskEngine, supports
    from margin_engine.live.span_engine import SpanEngine

    if isinstance(model, BinanceUsdm):
        return BracketEngine(live)
    if isinstance(model, Span):
        return SpanEngine(live)
    if isinstance(model, OkxPm):
        return OkxPmEngine(live)
    if supports(model):
        return RiskEngine(live)
    return ReferenceEngine(live)
