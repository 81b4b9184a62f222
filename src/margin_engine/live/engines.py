"""How the live book gets a unit's requirement: an engine per model family.

- :class:`ReferenceEngine` (every model): ``model.margin_unit`` on the unit, the readable
  per-unit path; what the fast engines are checked against.
- :class:`BracketEngine` (``binance-usdm``): per-position brackets over arrays.
- the risk-based family has its own engine (:mod:`margin_engine.live.risk_engine`): cached
  instrument scenario P&L and each unit's cached scenario vector.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from margin_engine.live.arrays import Column, Grouping, RunningSums
from margin_engine.models.core.base import MarginModel
from margin_engine.models.venues.binance_usdm import BinanceUsdm

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


class BracketEngine(ReferenceEngine):
    """Binance USDⓈ-M brackets over arrays: every position's notional, bracket, IM and MM at
    once (``binance_usdm._position_margin`` vectorised).

    Each position's (IM, MM) is cached, and so is each unit's total of them
    (:class:`~margin_engine.live.arrays.RunningSums`). A market move re-prices only the
    positions on the moved instruments (:meth:`on_market`) and adds their changes to their
    units' totals: a BTC tick on a book where two thirds of the units hold BTC touches the BTC
    positions only (a tenth of the book on ten coins), not every position of those units. A
    unit whose positions changed (:meth:`on_units`: a fill, a deposit, a new account), whose
    total's rounding drift reached its bound, or after a whole new market is re-summed left to
    right from its positions' figures, the numbers and the order of recomputing every position.
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
        self._pim = Column(np.float64)
        self._pmm = Column(np.float64)
        self._prow = Column(np.int64)
        self._fresh = Column(np.bool_)
        """A position's cached (IM, MM, bracket row), and whether current, by global id."""
        self._uim = RunningSums()
        self._umm = RunningSums()
        """Each unit's Σ position IM and Σ position MM, by slot."""

    def _grow(self) -> None:
        lv = self.live
        n = lv.pos_ins.size
        self._pim.extend_to(n, 0.0)
        self._pmm.extend_to(n, 0.0)
        self._prow.extend_to(n, 0)
        self._fresh.extend_to(n, False)
        self._uim.extend_to(lv.n_units)
        self._umm.extend_to(lv.n_units)

    def on_market(self, moved: np.ndarray) -> None:
        lv = self.live
        self._grow()
        if moved.size == len(lv.instruments.instruments):  # a whole market: re-sum everything
            self._fresh.a[:] = False
            self._uim.invalidate(slice(None))
            self._umm.invalidate(slice(None))
            return
        plan = lv.tick_plan(moved)
        pos, ins, size, lev, groups = (plan.pos, plan.pos_ins, plan.pos_size, plan.leverage,
                                       plan.units)
        fresh = self._fresh.a[pos]
        if not fresh.all():  # positions never priced: priced with their (stale) units
            pos, ins, size, lev = pos[fresh], ins[fresh], size[fresh], lev[fresh]
            groups = Grouping(lv.pos_slot[pos])
        before = self._prow.a[pos]
        im, mm, row = self.position_margins(ins, size, lev, before)
        if row is not before:  # a notional crossed into another bracket
            self._prow.a[pos] = row
        self._uim.add(groups, im - self._pim.a[pos])
        self._umm.add(groups, mm - self._pmm.a[pos])
        self._pim.a[pos] = im
        self._pmm.a[pos] = mm

    def on_units(self, slots: Sequence[int]) -> None:
        lv = self.live
        self._grow()
        sl = np.asarray(slots, dtype=np.int64)
        idx, _ = lv.concat_positions(sl)
        self._fresh.a[idx] = False
        self._uim.invalidate(sl)
        self._umm.invalidate(sl)

    def position_margins(self, ins: np.ndarray, size: np.ndarray, leverage: np.ndarray,
                         row: np.ndarray | None = None
                         ) -> tuple[FloatArray, FloatArray, np.ndarray]:
        """(IM, MM, bracket row) of positions at the current marks; ``row``: each one's
        bracket before (checked, and searched again only where the notional left it)."""
        arr = self.live.instruments
        n = np.abs(size) * arr.contract_size[ins] * arr.mark[ins]
        width = self.cap.shape[1]
        cap = self.cap.ravel()
        if row is None:
            row = self._bracket(ins, n)
        else:  # the bracket [cap[row - 1], cap[row]) still holding the notional
            at = ins * width + row
            below = np.where(row > 0, cap[at - 1], -np.inf)
            out = ~((n < cap[at]) & (n >= below))
            if out.any():
                row = row.copy()
                row[out] = self._bracket(ins[out], n[out])
        at = ins * width + row
        lev = np.minimum(leverage, self.lev.ravel()[at])
        mm = np.maximum(n * self.mmr.ravel()[at] - self.cum.ravel()[at], 0.0)
        im = np.maximum(n / lev, mm)
        return im, mm, row

    def _bracket(self, ins: np.ndarray, notional: np.ndarray) -> np.ndarray:
        """The bracket row of each notional: the first with notional < its cap."""
        row = (notional[:, None] >= self.cap[ins]).sum(axis=1)
        # a symbol without a table (refused by the model) would give -1: its padding is row 0's
        return np.maximum(np.minimum(row, self.rows[ins] - 1), 0)

    def margins(self, slots: Sequence[int]) -> tuple[FloatArray, FloatArray]:
        lv = self.live
        sl = np.asarray(slots, dtype=np.int64)
        self._grow()
        redo = np.union1d(self._uim.stale(sl), self._umm.stale(sl))
        if redo.size:  # left-to-right sums of the units' position figures
            idx, lens = lv.concat_positions(redo)
            stale = idx[~self._fresh.a[idx]]
            if stale.size:  # a position is in one unit only: no duplicates
                (self._pim.a[stale], self._pmm.a[stale],
                 self._prow.a[stale]) = self.position_margins(
                    lv.pos_ins[stale], lv.pos_size[stale], lv.pos_leverage(stale))
                self._fresh.a[stale] = True
            self._uim.set_exact(redo, segment_sums(self._pim.a[idx], lens))
            self._umm.set_exact(redo, segment_sums(self._pmm.a[idx], lens))
        return self._uim.values(sl), self._umm.values(sl)

    def position_margin(self, k: int, size: float, leverage: float) -> tuple[float, float]:
        """:meth:`position_margins` of one position in plain floats (the same operations in
        the same order, so the same bits), for the what-if's few changed positions."""
        arr = self.live.instruments
        n = abs(size) * float(arr.contract_size[k]) * float(arr.mark[k])
        caps, mmr, cum, lev_row = self._table(k)
        # caps ascend: how many are <= n is the bisection point (NaN: none, as the arrays say)
        below = bisect_right(caps, n) if n == n else 0
        row = max(min(below, int(self.rows[k]) - 1), 0)
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
        im = self._uim.value_one(slot) if slot < self._uim.n else None
        mm = self._umm.value_one(slot) if slot < self._umm.n else None
        if im is not None and mm is not None:
            # the unit's current totals (its positions' figures are current), plus the
            # ordered positions' changes
            ins_l = lv.pos_ins[idx].tolist()
            sizes: dict[int, float] = {}
            for row, q in orders:
                if row not in ins_l:
                    return None
                g = int(idx[ins_l.index(row)])
                sizes[g] = sizes.get(g, float(lv.pos_size[g])) + q
            pim, pmm, ins = self._pim.a, self._pmm.a, lv.pos_ins
            for g, q in sizes.items():
                new_im, new_mm = self.position_margin(int(ins[g]), q, lv.pos_leverage_one(g))
                im += new_im - float(pim[g])
                mm += new_mm - float(pmm[g])
            return im, mm
        ins = lv.pos_ins[idx]
        size = lv.pos_size[idx].copy()
        for row, q in orders:
            hit = np.flatnonzero(ins == row)
            if not hit.size:
                return None
            size[hit[0]] += q
        im_p, mm_p, _ = self.position_margins(ins, size, lv.pos_leverage(idx))
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
    from margin_engine.live.risk_engine import RiskEngine, supports

    if isinstance(model, BinanceUsdm):
        return BracketEngine(live)
    if supports(model):
        return RiskEngine(live)
    return ReferenceEngine(live)
