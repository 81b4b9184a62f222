"""How the live book gets a unit's requirement: an engine per model family.

- :class:`ReferenceEngine` (every model): ``model.margin_unit`` on the unit, the readable
  per-unit path; what the fast engines are checked against.
- :class:`BracketEngine` (``binance-usdm``): per-position brackets over arrays.
- ``deribit-pm`` has its own engine (:mod:`margin_engine.live.deribit_pm_engine`): instrument
  risk vectors on their pair's grid, each unit's pre-aggregated vectors cached.
- :class:`~margin_engine.live.derive_pmrm_engine.DerivePmrmEngine` (``derive-pmrm``): the
  PMRM_2 scenario grid over arrays.
- :class:`PositionCacheEngine`: rule-based models over arrays, per-position figures cached;
  :class:`BracketEngine` (``binance-usdm``) here, ``hyperliquid``, ``dydx-v4`` and
  ``deribit-standard`` in :mod:`margin_engine.live.rule_engines`.
- the risk-based family has its own engine (:mod:`margin_engine.live.risk_engine`): cached
  instrument scenario P&L and each unit's cached scenario vector.
- the scenario grids of ``span`` and ``okx-pm`` (:mod:`margin_engine.live.span_engine`,
  :mod:`margin_engine.live.okx_pm_engine`): cached per-contract scenario rows, every unit's
  requirement in one kernel.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from margin_engine.live.arrays import Column, Grouping, RunningSums, first_by_row
from margin_engine.models.core.base import MarginModel
from margin_engine.models.risk_based.model import RiskBasedModel
from margin_engine.models.venues.binance_usdm import BinanceUsdm
from margin_engine.models.venues.deribit_pm import DeribitPm
from margin_engine.models.venues.deribit_standard import DeribitStandard
from margin_engine.models.venues.derive_pmrm import DerivePmrm
from margin_engine.models.venues.dydx_v4 import DydxV4
from margin_engine.models.venues.hyperliquid import Hyperliquid
from margin_engine.models.venues.okx_pm import OkxPm
from margin_engine.models.venues.span import Span
from margin_engine.policy.liquidation import fast_surplus_function

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

    def surplus_function(self, slot: int, underlying: str) -> Callable[[float], float]:
        """Equity − MM of unit ``slot`` (unit currency) against a factor on ``underlying``'s
        price, everything else at the current market: what the whole-book liquidation solver
        (:mod:`margin_engine.live.liquidation`) refines each unit's root with. Default: the
        per-unit solver's (:func:`~margin_engine.policy.liquidation.fast_surplus_function`);
        an engine may evaluate it on its own arrays (``okx-pm``, ``deribit-pm``: a few times
        faster), agreeing with that one to rounding."""
        lv = self.live
        return fast_surplus_function(lv.model, lv.unit(slot),
                                     lv.account_object(lv.unit_account(slot)), lv.market,
                                     underlying, lv.policy)

    def what_if_with(self, slot: int, orders: Sequence[tuple[int, float]],
                     collateral: Mapping[str, float]) -> tuple[float, float] | None:
        """:meth:`what_if` when the unit's collateral after the orders (their cash moved) is
        ``collateral``; an engine whose model reads no collateral answers :meth:`what_if`."""
        return self.what_if(slot, orders)


class PositionCacheEngine(ReferenceEngine):
    """Rule-based requirements over arrays: each position's (IM, MM) cached, a unit's
    requirement the sum of its positions' figures plus any unit-level terms.

    Each position's (IM, MM) is cached, and so is each unit's total of them
    (:class:`~margin_engine.live.arrays.RunningSums`). A market move re-prices only the
    positions on the moved instruments (:meth:`on_market`) and adds their changes to their
    units' totals: a BTC tick on a book where two thirds of the units hold BTC touches the BTC
    positions only (a tenth of the book on ten coins), not every position of those units. A
    unit whose positions changed (:meth:`on_units`: a fill, a deposit, a new account), whose
    total's rounding drift reached its bound, or after a whole new market is re-summed left to
    right from its positions' figures, the numbers and the order of recomputing every position.
    A what-if adds the ordered positions' changes to the unit's total.

    A subclass prices positions (:meth:`price`, NumPy over arrays), refreshes what it keeps per
    instrument when the market moves (:meth:`refresh_instruments`), and may add unit-level terms
    (:meth:`unit_terms`) and name the units the arrays cannot reproduce exactly
    (:meth:`needs_reference`): those go through ``model.margin_unit`` (the reference path).
    """

    def __init__(self, live: LiveBook) -> None:
        super().__init__(live)
        self._pim = Column(np.float64)
        self._pmm = Column(np.float64)
        self._fresh = Column(np.bool_)
        """A position's cached (IM, MM), and whether current, by global position id."""
        self._uim = RunningSums()
        self._umm = RunningSums()
        """Each unit's Σ position IM and Σ position MM, by slot."""
        self._ref = np.zeros(0, dtype=bool)
        """:meth:`needs_reference` by unit slot (a slot's positions never change)."""
        self._firsts: dict[int, dict[int, int]] = {}

    # -- what a subclass provides --------------------------------------------------------------
    def price(self, g: np.ndarray, size: FloatArray) -> tuple[FloatArray, FloatArray]:
        """(IM, MM) of positions ``g`` (global ids) at their signed ``size`` (contracts), in
        their units' currency; never raises (a unit that would is one
        :meth:`needs_reference`)."""
        raise NotImplementedError

    def price_one(self, g: int, size: float) -> tuple[float, float]:
        """(IM, MM) of position ``g`` at ``size`` (for the what-if's few re-priced positions)."""
        im, mm = self.price(np.array([g], dtype=np.int64), np.array([size]))
        return float(im[0]), float(mm[0])

    def refresh_instruments(self, moved: np.ndarray) -> None:
        """Instruments ``moved`` were revalued: refresh what :meth:`price` reads per instrument
        (called before their positions are re-priced; default: nothing kept)."""

    def unit_terms(self, slots: Sequence[int]) -> tuple[FloatArray, FloatArray] | None:
        """Unit-level (IM, MM) added to the positions' sums (``None``: none)."""
        return None

    def needs_reference(self, slot: int) -> bool:
        """Whether unit ``slot`` must go through ``model.margin_unit`` (default: never)."""
        return False

    def _reference(self, slots: Sequence[int] | np.ndarray) -> np.ndarray:
        """:meth:`needs_reference` of ``slots``, asked once per slot."""
        n = self.live.n_units
        if self._ref.size < n:
            if type(self).needs_reference is PositionCacheEngine.needs_reference:
                new = np.zeros(n - self._ref.size, dtype=bool)
            else:
                new = np.fromiter((self.needs_reference(s) for s in range(self._ref.size, n)),
                                  dtype=bool, count=n - self._ref.size)
            self._ref = np.concatenate([self._ref, new])
        return self._ref[np.asarray(slots, dtype=np.int64)]

    # -- the cache -----------------------------------------------------------------------------
    def _grow(self) -> None:
        lv = self.live
        n = lv.pos_ins.size
        self._pim.extend_to(n, 0.0)
        self._pmm.extend_to(n, 0.0)
        self._fresh.extend_to(n, False)
        self._uim.extend_to(lv.n_units)
        self._umm.extend_to(lv.n_units)

    def on_market(self, moved: np.ndarray) -> None:
        lv = self.live
        self._grow()
        self.refresh_instruments(moved)
        if moved.size == len(lv.instruments.instruments):  # a whole market: re-sum everything
            self._fresh.a[:] = False
            self._uim.invalidate(slice(None))
            self._umm.invalidate(slice(None))
            return
        if not moved.size:
            return
        plan = lv.tick_plan(moved)
        pos, size, groups = plan.pos, plan.pos_size, plan.units
        fresh = self._fresh.a[pos]
        if not fresh.all():  # positions never priced: priced with their (stale) units
            pos, size = pos[fresh], size[fresh]
            groups = Grouping(lv.pos_slot[pos])
        im, mm = self.price(pos, size)
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

    def margins(self, slots: Sequence[int]) -> tuple[FloatArray, FloatArray]:
        lv = self.live
        sl = np.asarray(slots, dtype=np.int64)
        if not sl.size:
            return np.empty(0), np.empty(0)
        self._grow()
        redo = np.union1d(self._uim.stale(sl), self._umm.stale(sl))
        if redo.size:  # left-to-right sums of the units' position figures
            idx, lens = lv.concat_positions(redo)
            stale = idx[~self._fresh.a[idx]]
            if stale.size:  # a position is in one unit only: no duplicates
                self._pim.a[stale], self._pmm.a[stale] = self.price(stale, lv.pos_size[stale])
                self._fresh.a[stale] = True
            self._uim.set_exact(redo, segment_sums(self._pim.a[idx], lens))
            self._umm.set_exact(redo, segment_sums(self._pmm.a[idx], lens))
        im, mm = self._uim.values(sl), self._umm.values(sl)
        extra = self.unit_terms(sl.tolist())
        if extra is not None:
            im, mm = im + extra[0], mm + extra[1]
        ref = np.flatnonzero(self._reference(sl))
        if ref.size:
            im[ref], mm[ref] = super().margins(sl[ref].tolist())
        return im, mm

    def what_if(self, slot: int, orders: Sequence[tuple[int, float]]
                ) -> tuple[float, float] | None:
        if self._ref.item(slot) if slot < self._ref.size else self._reference([slot])[0]:
            return None
        lv = self.live
        first = self._first_position(slot)
        sizes: dict[int, float] = {}
        for row, q in orders:
            g = first.get(row, -1)
            if g < 0:
                return None
            sizes[g] = sizes.get(g, lv.pos_size.item(g)) + q
        im = self._uim.value_one(slot) if slot < self._uim.n else None
        mm = self._umm.value_one(slot) if slot < self._umm.n else None
        if im is None or mm is None:  # the unit's total first (its positions priced)
            self.margins([slot])
            im, mm = self._uim.value_one(slot), self._umm.value_one(slot)
            if im is None or mm is None:  # not finite: the rebuild says why
                return None
        pim, pmm = self._pim.a, self._pmm.a
        for g, q in sizes.items():  # the unit's total plus the ordered positions' changes
            new_im, new_mm = self.price_one(g, q)
            im += new_im - pim.item(g)
            mm += new_mm - pmm.item(g)
        extra = self.unit_terms([slot])
        if extra is not None:
            im, mm = im + float(extra[0][0]), mm + float(extra[1][0])
        return im, mm

    def _first_position(self, slot: int) -> dict[int, int]:
        """Unit ``slot``'s first position (global id) on each instrument row it holds (kept: a
        slot's positions never change; the last 4,096 slots asked)."""
        got = self._firsts.get(slot)
        if got is None:
            lv = self.live
            idx = lv.unit_positions(slot)
            got = first_by_row(lv.pos_ins[idx].tolist(), idx.tolist())
            if len(self._firsts) >= 4096:
                self._firsts.clear()
            self._firsts[slot] = got
        return got


class BracketEngine(PositionCacheEngine):
    """Binance USDⓈ-M brackets over arrays: every position's notional, bracket, IM and MM at
    once (``binance_usdm._position_margin`` vectorised), cached as
    :class:`PositionCacheEngine` describes; a unit's requirement is the left-to-right sum of
    its positions' figures.
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
        self._prow = Column(np.int64)
        """Each position's bracket row at its last pricing, by global id."""

    def price(self, g: np.ndarray, size: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Each position's bracket row is kept: a tick only checks the notional still lies
        in it (any row is a valid guess: one that no longer holds is searched again)."""
        lv = self.live
        self._prow.extend_to(lv.pos_ins.size, 0)
        im, mm, row = self.position_margins(lv.pos_ins[g], size, lv.pos_leverage(g),
                                            self._prow.a[g])
        self._prow.a[g] = row
        return im, mm

    def price_one(self, g: int, size: float) -> tuple[float, float]:
        lv = self.live
        return self.position_margin(lv.pos_ins.item(g), size, lv.pos_leverage_one(g))

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

    def position_margin(self, k: int, size: float, leverage: float) -> tuple[float, float]:
        """:meth:`position_margins` of one position in plain floats (the same operations in
        the same order, so the same bits), for the what-if's few changed positions."""
        arr = self.live.instruments
        n = abs(size) * arr.contract_size.item(k) * arr.mark.item(k)
        caps, mmr, cum, lev_row = self._table(k)
        # caps ascend: how many are <= n is the bisection point (NaN: none, as the arrays say)
        below = bisect_right(caps, n) if n == n else 0
        row = max(min(below, self.rows.item(k) - 1), 0)
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


def segment_sums(values: FloatArray, lens: np.ndarray) -> FloatArray:
    """Left-to-right sums of consecutive segments (empty segments sum to 0)."""
    out = np.zeros(lens.size)
    ends = np.cumsum(lens)
    starts = ends - lens
    nonempty = lens > 0
    if nonempty.any():
        out[nonempty] = np.add.reduceat(values, starts[nonempty])
    return out


SCAN_FROM_UNITS = 200
"""Units from which ``deribit-standard``'s bands are scanned for the whole book (below, its
per-unit solver, a few cheap rule evaluations per unit, is faster than starting a live book)."""


def scans_whole_book(model: MarginModel, n_units: int) -> bool:
    """Whether ``model``'s engine re-margins every unit holding an underlying cheaply enough,
    per market move, for the whole-book liquidation scan (:mod:`margin_engine.live.liquidation`)
    to beat the per-unit solver on ``n_units`` units: the scenario-grid engines (``span``,
    ``okx-pm``, ``deribit-pm``, ``derive-pmrm``) and the risk-based family (there moving the
    book only where units share instruments: :func:`positions_per_move`) always,
    ``deribit-standard`` from :data:`SCAN_FROM_UNITS` units (3.4x on 10,000 accounts,
    docs/performance.md). Not the closed-form rule engines (no solver). Measured in
    docs/performance.md, "Liquidation prices of a whole book"."""
    if isinstance(model, DeribitStandard):
        return n_units >= SCAN_FROM_UNITS
    return isinstance(model, Span | OkxPm | DeribitPm | DerivePmrm | RiskBasedModel)


def positions_per_move(model: MarginModel) -> float:
    """When a market move of the whole book pays in the liquidation scan: the units asking for
    a grid point must hold at least this many positions on the underlying per instrument on it
    that the book holds (each unit's surplus function is evaluated there otherwise). A move of
    the risk-based engine revalues every held instrument on the underlying over every scenario,
    as one unit's evaluation revalues the unit's own, so a move pays once the instruments are
    shared; 0: always move (the other engines)."""
    return RISK_POSITIONS_PER_MOVE if isinstance(model, RiskBasedModel) else 0.0


#: :func:`positions_per_move` of the risk-based family (measured: bench/bench_liquidation.py).
RISK_POSITIONS_PER_MOVE = 3.0


def make_engine(model: MarginModel, live: LiveBook) -> ReferenceEngine:
    """The fastest engine that reproduces ``model`` (the reference engine otherwise)."""
    from margin_engine.live.deribit_pm_engine import DeribitPmEngine
    from margin_engine.live.derive_pmrm_engine import DerivePmrmEngine
    from margin_engine.live.okx_pm_engine import OkxPmEngine
    from margin_engine.live.risk_engine import RiskEngine, supports
    from margin_engine.live.rule_engines import FractionEngine, StandardEngine, TierEngine
    from margin_engine.live.span_engine import SpanEngine

    if isinstance(model, BinanceUsdm):
        return BracketEngine(live)
    if isinstance(model, Span):
        return SpanEngine(live)
    if isinstance(model, OkxPm):
        return OkxPmEngine(live)
    if isinstance(model, DeribitPm):
        return DeribitPmEngine(live)
    if isinstance(model, DerivePmrm):
        return DerivePmrmEngine(live)
    if isinstance(model, Hyperliquid):
        return TierEngine(live)
    if isinstance(model, DydxV4):
        return FractionEngine(live)
    if isinstance(model, DeribitStandard):
        return StandardEngine(live)
    if supports(model):
        return RiskEngine(live)
    return ReferenceEngine(live)
