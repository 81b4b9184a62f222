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
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from margin_engine.models.core.base import MarginModel
from margin_engine.models.venues.binance_usdm import BinanceUsdm
from margin_engine.models.venues.deribit_pm import DeribitPm
from margin_engine.models.venues.deribit_standard import DeribitStandard
from margin_engine.models.venues.derive_pmrm import DerivePmrm
from margin_engine.models.venues.dydx_v4 import DydxV4
from margin_engine.models.venues.hyperliquid import Hyperliquid

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


class PositionCacheEngine(ReferenceEngine):
    """Rule-based requirements over arrays: each position's (IM, MM) cached, a unit's
    requirement the sum of its positions' figures plus any unit-level terms.

    A position's figures are recomputed only when its instrument's mark moved
    (:meth:`on_market`) or its unit changed (:meth:`on_units`: a fill, a deposit, a new
    account). A BTC tick on a book where two thirds of the units hold BTC thus re-prices the BTC
    positions only (a tenth of the book on ten coins), not every position of those units. A
    what-if re-prices only the ordered positions over the unit's cached figures.

    A subclass prices positions (:meth:`price`, NumPy over arrays) and may add unit-level terms
    (:meth:`unit_terms`) and name the units the arrays cannot reproduce exactly
    (:meth:`needs_reference`): those go through ``model.margin_unit`` (the reference path).
    """

    def __init__(self, live: LiveBook) -> None:
        super().__init__(live)
        self._pim = np.zeros(0)
        self._pmm = np.zeros(0)
        self._fresh = np.zeros(0, dtype=bool)
        """Whether a position's cached (IM, MM) is current, by global position id."""
        self._ref = np.zeros(0, dtype=bool)
        """:meth:`needs_reference` by unit slot (a slot's positions never change)."""

    # -- what a subclass provides --------------------------------------------------------------
    def price(self, g: np.ndarray, size: FloatArray) -> tuple[FloatArray, FloatArray]:
        """(IM, MM) of positions ``g`` (global ids) at signed ``size`` (contracts), in their
        units' currency; never raises (a unit that would is one :meth:`needs_reference`)."""
        raise NotImplementedError

    def price_one(self, g: int, size: float) -> tuple[float, float]:
        """:meth:`price` of one position (for the what-if's few re-priced positions)."""
        im, mm = self.price(np.array([g], dtype=np.int64), np.array([size]))
        return float(im[0]), float(mm[0])

    def unit_terms(self, slots: Sequence[int]) -> tuple[FloatArray, FloatArray] | None:
        """Unit-level (IM, MM) added to the positions' sums (``None``: none)."""
        return None

    def needs_reference(self, slot: int) -> bool:
        """Whether unit ``slot`` must go through ``model.margin_unit`` (default: never)."""
        return False

    def _reference(self, slots: Sequence[int]) -> np.ndarray:
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

    def _refresh(self, idx: np.ndarray) -> None:
        """Price the positions of ``idx`` whose cached figures are stale."""
        lv = self.live
        n = lv.pos_ins.size
        if self._fresh.size < n:  # positions opened since: not computed yet
            grow = n - self._fresh.size
            self._pim = np.concatenate([self._pim, np.zeros(grow)])
            self._pmm = np.concatenate([self._pmm, np.zeros(grow)])
            self._fresh = np.concatenate([self._fresh, np.zeros(grow, dtype=bool)])
        stale = idx[~self._fresh[idx]]
        if stale.size:  # a position is in one unit only: no duplicates
            self._pim[stale], self._pmm[stale] = self.price(stale, lv.pos_size[stale])
            self._fresh[stale] = True

    def margins(self, slots: Sequence[int]) -> tuple[FloatArray, FloatArray]:
        lv = self.live
        if not len(slots):
            return np.empty(0), np.empty(0)
        idx, lens = lv.concat_positions(slots)
        self._refresh(idx)
        im = segment_sums(self._pim[idx], lens)
        mm = segment_sums(self._pmm[idx], lens)
        extra = self.unit_terms(slots)
        if extra is not None:
            im, mm = im + extra[0], mm + extra[1]
        ref = np.flatnonzero(self._reference(slots))
        if ref.size:
            im[ref], mm[ref] = super().margins([slots[k] for k in ref.tolist()])
        return im, mm

    def what_if(self, slot: int, orders: Sequence[tuple[int, float]]
                ) -> tuple[float, float] | None:
        if (self._ref[slot] if slot < self._ref.size else self._reference([slot])[0]):
            return None
        lv = self.live
        idx = lv.unit_positions(slot)
        if not (self._fresh.size >= lv.pos_ins.size and self._fresh[idx].all()):
            self._refresh(idx)
        ins_l = lv.pos_ins[idx].tolist()
        sizes: dict[int, float] = {}
        for row, q in orders:
            if row not in ins_l:
                return None
            j = ins_l.index(row)
            sizes[j] = sizes.get(j, float(lv.pos_size[idx[j]])) + q
        im_l = self._pim[idx].tolist()
        mm_l = self._pmm[idx].tolist()
        for j, q in sizes.items():  # the unit's cached figures, the ordered positions re-priced
            im_l[j], mm_l[j] = self.price_one(int(idx[j]), q)
        im, mm = float(sum(im_l)), float(sum(mm_l))
        extra = self.unit_terms([slot])
        if extra is not None:
            im, mm = im + float(extra[0][0]), mm + float(extra[1][0])
        return im, mm


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

    def price(self, g: np.ndarray, size: FloatArray) -> tuple[FloatArray, FloatArray]:
        lv = self.live
        return self.position_margins(lv.pos_ins[g], size, lv.pos_leverage(g))

    def price_one(self, g: int, size: float) -> tuple[float, float]:
        lv = self.live
        return self.position_margin(int(lv.pos_ins[g]), size, lv.pos_leverage_one(g))

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
    from margin_engine.live.deribit_pm_engine import DeribitPmEngine
    from margin_engine.live.derive_pmrm_engine import DerivePmrmEngine
    from margin_engine.live.risk_engine import RiskEngine, supports
    from margin_engine.live.rule_engines import FractionEngine, StandardEngine, TierEngine

    if isinstance(model, BinanceUsdm):
        return BracketEngine(live)
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
