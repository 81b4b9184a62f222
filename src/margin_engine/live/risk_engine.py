"""The risk-based family on the live book: instrument scenario P&L cached per scenario family,
each unit's scenario vector cached, a what-if one row addition and one measure.

A unit on underlyings ``U`` in currency ``c`` gets the model's scenario set for ``U``
(``model.scenario_set``). When that set is the universe set (every held underlying) restricted to
``U`` — same dates, weights and columns, as with complete histories under historical or filtered
simulation — the unit reads the universe family's instrument rows, so each instrument is revalued
once per currency however many underlying combinations the book holds; otherwise (Monte Carlo,
whose copula depends on ``U``, or gaps in a history) the group ``(c, U)`` gets its own family.

The fused kernel (``_full_kernel``) measures each unit's total vector and, for the
diversification cap, each underlying's standalone vector in one pass over the unit's positions
(kept grouped by underlying in the family's position arrays), and keeps the total vector, its
measure and every group's standalone measure. A market move then works incrementally
(``_tick_kernel``): a unit holding a moved instrument gets ``V += Σ q·(row_new − row_old)`` over
its moved positions only, its total re-measured, and only the groups holding a moved position
re-summed from their rows and re-measured (a BTC tick: the total and BTC's standalone, not the
other underlyings'). Each unit carries a bound on the rounding its vector has accumulated that
way; past ``DRIFT_TOL`` × its measure it is summed again from its rows, so the cached figures
stay within 1e-12 (relative) of summing from scratch. A move of most of a family's rows (a new
snapshot) re-measures from rows instead.

The other components are the model's own arithmetic (``RiskBasedModel.margin_unit``) over
arrays, the per-position add-ons (liquidity, concentration, minimum charges) included: each
position's notional from its instrument's per-contract figures read once per call, its walk of
the order book once while the books and its size stay the same (a what-if uses the model's
helpers on the one unit). ``apc = "floor"`` gets a second
family per group on the model's stressed scenario set (``stressed_scenario_set``, the same
universe-restriction rule), each unit's stressed vector kept and updated the same way (no cap),
and the floor ``max(0, stressed − market risk)`` taken over arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numba
import numpy as np
from numba import prange

from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError
from margin_engine.live.engines import ReferenceEngine
from margin_engine.live.revalue import instrument_pnl_batch
from margin_engine.maths import addons
from margin_engine.maths.aggregation import (
    SELECT_SORT,
    choose_method,
    measure_row,
    tail_plan,
)
from margin_engine.maths.compiled import twins
from margin_engine.maths.risk_measures import TAIL_TOLERANCE, normalise_weights
from margin_engine.maths.scenarios import ScenarioSet
from margin_engine.models.core.base import MarginModel
from margin_engine.models.core.valuation import notional_usd
from margin_engine.models.risk_based.model import RiskBasedModel

if TYPE_CHECKING:
    from margin_engine.live.book import LiveBook

_CODE = {"worst_loss": 0, "var": 1, "es": 2}
_EPS = float(np.finfo(np.float64).eps)
DRIFT_TOL = 1e-12
"""A unit's vector updated by row changes is re-summed from its rows once the bound on its
accumulated rounding exceeds this fraction of its measure (the tests allow 1e-9)."""
_UNKNOWN = -2  # a slot the engine has not placed yet (``_s_fid``); -1: a unit with no position

Key = tuple[str, tuple[str, ...] | None]
Measure = tuple[int, float, float, np.ndarray, int, float, int, int]


def supports(model: MarginModel) -> bool:
    """Whether the fast engine reproduces ``model`` (every risk-based model and APC)."""
    return isinstance(model, RiskBasedModel)


@numba.njit(cache=True, nogil=True)
def _measure_into(vec, loss, buf_v, buf_i, meas):  # pragma: no cover - compiled
    """The measure of the P&L vector ``vec`` (0 when negative); ``loss`` is scratch."""
    code, p, tol, weights, k_eq, atom_eq, m, method = meas
    for s in range(vec.shape[0]):
        loss[s] = -vec[s]
    v, _ = measure_row(loss, code, p, tol, weights, k_eq, atom_eq, m, method, buf_v, buf_i)
    return v if v > 0.0 else 0.0


@numba.njit(cache=True, nogil=True)
def _buffers(n, meas):  # pragma: no cover - compiled
    m, method = meas[6], meas[7]
    buf_len = n if (method == SELECT_SORT or m > n) else max(m, 1)
    return (np.zeros(n), np.empty(n), np.empty(buf_len), np.empty(buf_len, dtype=np.int64))


@numba.njit(cache=True, nogil=True)
def _measure_vec(pnl, meas):  # pragma: no cover - compiled
    _, loss, buf_v, buf_i = _buffers(pnl.shape[0], meas)
    return _measure_into(pnl, loss, buf_v, buf_i, meas)


@numba.njit(cache=True, nogil=True)
def _aggregate(pnl, a, b, prow, psize, pstart, do_cap, meas, tot, acc, loss, buf_v, buf_i,
               gsa):  # pragma: no cover - compiled
    """``tot`` = Σ size × row over positions ``[a, b)`` (grouped by underlying, ``pstart``
    marking each group's first); with ``do_cap`` and more than one group, each group's
    standalone measure goes to ``gsa`` at its first position. Returns (Σ standalone, groups)."""
    n = tot.shape[0]
    groups = 0
    for j in range(a, b):
        if pstart[j]:
            groups += 1
    split = do_cap and groups > 1
    for s in range(n):
        tot[s] = 0.0
        acc[s] = 0.0
    standalone = 0.0
    g0 = a
    for j in range(a, b):
        if split and pstart[j] and j > a:
            v = _measure_into(acc, loss, buf_v, buf_i, meas)
            gsa[g0] = v
            standalone += v
            for s in range(n):
                acc[s] = 0.0
            g0 = j
        row = pnl[prow[j]]
        q = psize[j]
        for s in range(n):
            x = q * row[s]
            tot[s] += x
            acc[s] += x
    if split:
        v = _measure_into(acc, loss, buf_v, buf_i, meas)
        gsa[g0] = v
        standalone += v
    return standalone, groups


def _full_kernel(pnl, lis, pa, pb, prow, psize, pstart, do_cap, meas, vec, val, sa, nund, gsa,
                 err):  # pragma: no cover - compiled
    """Units ``lis`` from their rows: total vector (kept), its measure, Σ standalone."""
    n = pnl.shape[1]
    for t in prange(lis.shape[0]):
        u = lis[t]
        acc, loss, buf_v, buf_i = _buffers(n, meas)
        sa[u], nund[u] = _aggregate(pnl, pa[u], pb[u], prow, psize, pstart, do_cap, meas,
                                    vec[u], acc, loss, buf_v, buf_i, gsa)
        val[u] = _measure_into(vec[u], loss, buf_v, buf_i, meas) if pb[u] > pa[u] else 0.0
        err[u] = 0.0


_FULL_KERNEL = twins(_full_kernel)


def _tick_kernel(pnl, delta, dmap, dmax, lis, pa, pb, prow, psize, pstart, do_cap, meas,
                 drift_tol, vec, val, sa, nund, gsa, err):  # pragma: no cover - compiled
    """Units ``lis`` after rows ``dmap >= 0`` moved by ``delta`` (``pnl`` holds the new rows):
    the total vector += Σ size × Δrow over the moved positions and re-measured; the standalone
    of each underlying group holding a moved position re-summed from its rows and re-measured,
    the others kept. ``err`` bounds each vector's accumulated rounding (``dmax``: max |new row|
    + max |old row|); past ``drift_tol`` × the measure the unit is re-summed from its rows."""
    n = pnl.shape[1]
    for t in prange(lis.shape[0]):
        u = lis[t]
        a = pa[u]
        b = pb[u]
        k = 0
        for j in range(a, b):
            if dmap[prow[j]] >= 0:
                k += 1
        if k == 0:
            continue
        dq = np.empty(k)
        dix = np.empty(k, dtype=np.int64)
        bound = 0.0
        i = 0
        for j in range(a, b):
            d = dmap[prow[j]]
            if d >= 0:
                dq[i] = psize[j]
                dix[i] = d
                bound += abs(psize[j]) * dmax[d]
                i += 1
        acc, loss, buf_v, buf_i = _buffers(n, meas)
        tot = vec[u]
        vmax = 0.0
        for s in range(n):  # one pass over the kept vector: update, loss row, max |V|
            x = tot[s]
            for i in range(k):
                x += dq[i] * delta[dix[i], s]
            tot[s] = x
            loss[s] = -x
            x = abs(x)
            if x > vmax:
                vmax = x
        e = err[u] + _EPS * (k + 1) * (vmax + bound)
        v, _ = measure_row(loss, meas[0], meas[1], meas[2], meas[3], meas[4], meas[5],
                           meas[6], meas[7], buf_v, buf_i)
        v = v if v > 0.0 else 0.0
        if e > drift_tol * v:
            sa[u], nund[u] = _aggregate(pnl, a, b, prow, psize, pstart, do_cap, meas, tot,
                                        acc, loss, buf_v, buf_i, gsa)
            v = _measure_into(tot, loss, buf_v, buf_i, meas)
            e = 0.0
        elif do_cap and nund[u] > 1:
            standalone = 0.0
            g0 = a
            for j in range(a + 1, b + 1):
                if j < b and not pstart[j]:
                    continue
                hit = False
                for i in range(g0, j):
                    if dmap[prow[i]] >= 0:
                        hit = True
                if hit:
                    for s in range(n):
                        acc[s] = 0.0
                    for i in range(g0, j):
                        row = pnl[prow[i]]
                        q = psize[i]
                        for s in range(n):
                            acc[s] += q * row[s]
                    gsa[g0] = _measure_into(acc, loss, buf_v, buf_i, meas)
                standalone += gsa[g0]
                g0 = j
            sa[u] = standalone
        val[u] = v
        err[u] = e


_TICK_KERNEL = twins(_tick_kernel)


def _grown(a: np.ndarray, n: int, fill: float | int | bool) -> np.ndarray:
    """``a`` with room for ``n`` entries along its first axis (doubling), new ones ``fill``."""
    if a.shape[0] >= n:
        return a
    out = np.full((max(n, 2 * a.shape[0], 16), *a.shape[1:]), fill, dtype=a.dtype)
    out[: a.shape[0]] = a
    return out


@dataclass
class _Family:
    """Instrument scenario P&L for one scenario set and one currency, and the units measured
    on it: per unit (local index ``li``) its cached total vector, measure, Σ standalone and
    positions ``[pa, pb)`` of the position arrays (grouped by underlying; a re-laid unit's old
    block is garbage until the arrays are compacted)."""

    currency: str
    scen: ScenarioSet
    weights: np.ndarray  # empty: equal weights
    plan: tuple[int, float, int, int]  # k_eq, atom_eq, m, method
    code: int  # _CODE of the measure
    confidence: float
    do_cap: bool  # measure each underlying's standalone (the diversification cap)
    row_of: dict[int, int] = field(default_factory=dict)
    pnl: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))
    lookup: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    slot: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    ok: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.bool_))
    pa: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    pb: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    vec: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))
    val: np.ndarray = field(default_factory=lambda: np.empty(0))
    sa: np.ndarray = field(default_factory=lambda: np.empty(0))
    err: np.ndarray = field(default_factory=lambda: np.empty(0))
    nund: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    free: list[int] = field(default_factory=list)
    version: int = 0  # bumped whenever rows move (what-if group vectors kept until then)
    n_units: int = 0
    prow: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    psize: np.ndarray = field(default_factory=lambda: np.empty(0))
    pstart: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.bool_))
    pund: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    gsa: np.ndarray = field(default_factory=lambda: np.empty(0))
    n_pos: int = 0

    def alloc(self, slots: Sequence[int]) -> np.ndarray:
        """Local indices for new units ``slots`` (not measured yet)."""
        reuse = [self.free.pop() for _ in range(min(len(slots), len(self.free)))]
        fresh = np.arange(self.n_units, self.n_units + len(slots) - len(reuse), dtype=np.int64)
        self.n_units += fresh.size
        n = self.n_units
        self.slot, self.ok = _grown(self.slot, n, -1), _grown(self.ok, n, False)
        self.pa, self.pb = _grown(self.pa, n, 0), _grown(self.pb, n, 0)
        self.val, self.sa, self.err = (_grown(self.val, n, 0.0), _grown(self.sa, n, 0.0),
                                       _grown(self.err, n, 0.0))
        self.nund = _grown(self.nund, n, 0)
        if self.vec.shape[0] < n:
            grown = np.empty((max(n, 2 * self.vec.shape[0], 16), self.scen.n))
            grown[: self.vec.shape[0]] = self.vec
            self.vec = grown
        li = np.concatenate([np.array(reuse, dtype=np.int64), fresh])
        self.slot[li] = slots
        self.ok[li] = False
        self.pa[li] = self.pb[li] = 0
        return li

    def release(self, li: int) -> None:
        self.slot[li] = -1
        self.ok[li] = False
        self.pa[li] = self.pb[li] = 0
        self.free.append(li)

    def lay_out(self, li: np.ndarray, prow: np.ndarray, psize: np.ndarray,
                pstart: np.ndarray, pund: np.ndarray, lens: np.ndarray) -> None:
        """Units ``li``'s positions (concatenated, ``lens`` each) at the end of the arrays,
        compacting them first when the garbage would make them grow."""
        self.pa[li] = self.pb[li] = 0
        total = int(lens.sum())
        if self.n_pos + total > self.prow.shape[0]:
            live = np.flatnonzero(self.pb[: self.n_units] > self.pa[: self.n_units])
            ln = self.pb[live] - self.pa[live]
            keep = int(ln.sum())
            ends = np.cumsum(ln)
            src = np.repeat(self.pa[live] - (ends - ln), ln) + np.arange(keep)
            cap = max(2 * (keep + total), 1024)
            for name in ("prow", "psize", "pstart", "pund", "gsa"):
                old = getattr(self, name)
                new = np.zeros(cap, dtype=old.dtype)
                new[:keep] = old[src]
                setattr(self, name, new)
            self.pa[live] = ends - ln
            self.pb[live] = ends
            self.n_pos = keep
        base = self.n_pos
        ptr = base + np.concatenate([[0], np.cumsum(lens)])
        sl = slice(base, base + total)
        self.prow[sl], self.psize[sl], self.pstart[sl], self.pund[sl] = prow, psize, pstart, pund
        self.pa[li], self.pb[li] = ptr[:-1], ptr[1:]
        self.n_pos += total

    def measure(self) -> Measure:
        k_eq, atom, m, method = self.plan
        return (self.code, 1.0 - self.confidence, TAIL_TOLERANCE, self.weights, k_eq, atom, m,
                method)


class RiskEngine(ReferenceEngine):
    """Cached scenario P&L and unit vectors for a :class:`RiskBasedModel`.

    A market move revalues the moved instruments' rows and, in :meth:`on_market`, updates every
    measured unit holding one incrementally (``_tick_kernel``): its vector by the rows'
    changes, its measure, and the standalone measures of the underlyings it moved, the others
    kept. ``apc = "floor"`` keeps a second family per group on the model's stressed scenario
    set (``stressed_scenario_set``): each unit's stressed vector and measure, updated the same
    way, the floor ``max(0, stressed − market risk)`` taken over arrays.
    """

    def __init__(self, live: LiveBook) -> None:
        super().__init__(live)
        model = live.model
        assert isinstance(model, RiskBasedModel)
        self.model = model
        self._floor = model.params.apc == "floor"
        self._reset()

    # -- families --------------------------------------------------------------------------
    def _reset(self) -> None:
        self._timestamp = self.live.market.timestamp
        self._families: dict[Key, _Family] = {}
        self._stressed: dict[Key, _Family] = {}
        self._fams: list[_Family | None] = []
        self._fid: dict[tuple[bool, Key], int] = {}
        self._s_fid = np.empty(0, dtype=np.int64)  # per slot: its family id (``_UNKNOWN``)
        self._s_li = np.empty(0, dtype=np.int64)
        self._s_sfid = np.empty(0, dtype=np.int64)  # the stressed family (APC floor)
        self._s_sli = np.empty(0, dtype=np.int64)
        self._s_factor = np.empty(0)  # credit factor; NaN: not looked up yet
        self._acct_slots: dict[int, list[int]] = {}
        self._parts: dict[int, tuple[int, list[tuple[int, int]], dict[int, np.ndarray]]] = {}
        self._separable_cache: dict[bool, bool] = {}
        self._books: object = None  # the order books _book_cost was walked on
        self._book_cost = self._book_size = self._mids = np.full(0, np.nan)
        self._book_ins = np.full(0, -1, dtype=np.int64)
        self._same_set: dict[tuple[bool, tuple[str, ...]], bool] = {}
        lv = self.live
        held = {lv.instruments.instruments[int(k)].underlying for k in lv.pos_ins.tolist()}
        self._universe = tuple(sorted(held))
        self.on_units(lv.live_slots())

    def _scenarios(self, stressed: bool, unds: tuple[str, ...]) -> ScenarioSet:
        mk = self.live.market
        if stressed:
            return self.model.stressed_scenario_set(mk, unds)
        return self.model.scenario_set(mk, unds)

    def _family(self, stressed: bool, key: Key) -> tuple[int, _Family]:
        fid = self._fid.get((stressed, key))
        if fid is None:
            ccy, unds = key
            scen = self._scenarios(stressed, unds or self._universe)
            p = self.model.params
            if p.measure == "worst_loss":
                w, plan = None, (0, 0.0, 1, 0)
            else:
                w = normalise_weights(scen.weights, scen.n)
                k_eq, atom, m = tail_plan(scen.n, 1.0 - p.confidence, w)
                plan = (k_eq, atom, m, choose_method(m, w is not None))
            fam = _Family(ccy, scen, w if w is not None else np.empty(0), plan,
                          _CODE[p.measure], p.confidence,
                          not stressed and p.diversification_cap is not None)
            fam.pnl = np.empty((0, scen.n))
            fam.vec = np.empty((0, scen.n))
            fam.lookup = np.full(len(self.live.instruments.instruments), -1, dtype=np.int64)
            (self._stressed if stressed else self._families)[key] = fam
            fid = len(self._fams)
            self._fams.append(fam)
            self._fid[stressed, key] = fid
        fam_ = self._fams[fid]
        assert fam_ is not None
        return fid, fam_

    def _consistent(self, stressed: bool, unds: tuple[str, ...], ccy: str,
                    rows: Sequence[int]) -> bool:
        """Whether the group's scenario set is the universe set restricted to ``unds`` and its
        instruments' P&L reads only their own underlying's column there."""
        mk = self.live.market
        for k in rows:
            ins = self.live.instruments.instruments[k]
            if ins.settle != ins.underlying and ins.settle in mk.index:
                return False
        if ccy in mk.index and ccy in self._universe and ccy not in unds:
            return False
        if self._separable(stressed):
            return True
        if (stressed, unds) not in self._same_set:
            self._same_set[stressed, unds] = self._same_as_universe(stressed, unds)
        return self._same_set[stressed, unds]

    def _same_as_universe(self, stressed: bool, unds: tuple[str, ...]) -> bool:
        try:
            mine = self._scenarios(stressed, unds)
            full = self._scenarios(stressed, self._universe)
        except InputError:
            return False
        if mine.labels != full.labels or mine.horizon_days != full.horizon_days:
            return False
        cols = [full.column(u) for u in unds]
        return (np.array_equal(mine.weights, full.weights)
                and np.array_equal(mine.price_moves, full.price_moves[:, cols])
                and np.array_equal(mine.vol_shifts, full.vol_shifts[:, cols]))

    def _separable(self, stressed: bool) -> bool:
        """Historical and filtered-historical sets (the APC floor's stressed set is historical)
        are built column by column from the rows where every underlying has a return; when the
        universe's window has no gap, every subset keeps the same rows, so its set is the
        universe's restricted (no need to generate each subset's set to compare)."""
        if stressed not in self._separable_cache:
            p = self.model.params
            ok = stressed or self.model.kind in ("historical", "filtered-historical")
            if ok:
                try:
                    r, _ = self.model._returns(
                        self.live.market, self._universe,
                        p.apc_floor_lookback_days if stressed else p.lookback_days)
                    ok = bool(np.isfinite(r).all())
                except InputError:
                    ok = False
            self._separable_cache[stressed] = ok
        return self._separable_cache[stressed]

    def _ensure_rows(self, fam: _Family, rows: Sequence[int]) -> None:
        new = [k for k in dict.fromkeys(rows) if k not in fam.row_of]
        if not new:
            return
        ins = [self.live.instruments.instruments[k] for k in new]
        pnl = instrument_pnl_batch(ins, self.live.market, fam.scen, fam.currency,
                                   vol_tenor_power=self.model.params.vol_tenor_power)
        base = len(fam.row_of)
        if base + len(new) > fam.pnl.shape[0]:  # grow by doubling (rows beyond use unread)
            grown = np.empty((max(2 * fam.pnl.shape[0], base + len(new)), fam.scen.n))
            grown[:base] = fam.pnl[:base]
            fam.pnl = grown
        fam.pnl[base: base + len(new)] = pnl
        for j, k in enumerate(new):
            fam.row_of[k] = base + j
            fam.lookup[k] = base + j

    # -- engine interface ----------------------------------------------------------------------
    def on_market(self, moved: np.ndarray) -> None:
        if self.live.market.timestamp != self._timestamp:
            self._reset()
            return
        mk = self.live.market
        p = self.model.params
        for fam in self._fams:
            if fam is None:
                continue
            ks = moved[fam.lookup[moved] >= 0]
            if not ks.size:
                continue
            rows = fam.lookup[ks]
            new = instrument_pnl_batch([self.live.instruments.instruments[k] for k in ks.tolist()],
                                       mk, fam.scen, fam.currency,
                                       vol_tenor_power=p.vol_tenor_power)
            measured = np.flatnonzero(fam.ok[: fam.n_units])
            fam.version += 1
            if 2 * rows.size > len(fam.row_of) or not measured.size:
                fam.pnl[rows] = new  # most rows moved: re-measure from rows when asked
                fam.ok[:] = False
                continue
            old = fam.pnl[rows]
            delta = new - old
            dmax = np.abs(new).max(axis=1) + np.abs(old).max(axis=1)
            fam.pnl[rows] = new
            dmap = np.full(fam.pnl.shape[0], -1, dtype=np.int64)
            dmap[rows] = np.arange(rows.size)
            tick = _TICK_KERNEL.for_units(measured.size)
            tick(fam.pnl, delta, dmap, dmax, measured, fam.pa, fam.pb, fam.prow, fam.psize,
                 fam.pstart, fam.do_cap, fam.measure(), DRIFT_TOL, fam.vec, fam.val, fam.sa,
                 fam.nund, fam.gsa, fam.err)

    def _grow_slots(self, n: int) -> None:
        if self._s_fid.size >= n:
            return
        self._s_fid = _grown(self._s_fid, n, _UNKNOWN)
        self._s_li = _grown(self._s_li, n, -1)
        self._s_sfid = _grown(self._s_sfid, n, -1)
        self._s_sli = _grown(self._s_sli, n, -1)
        self._s_factor = _grown(self._s_factor, n, np.nan)

    def _drop_universe(self) -> None:
        """The held underlyings grew: the universe families no longer fit; their units are
        placed again when next asked for."""
        for stressed, table in ((False, self._families), (True, self._stressed)):
            for key in [k for k in table if k[1] is None]:
                del table[key]
                fid = self._fid.pop((stressed, key))
                self._fams[fid] = None
                hit = self._s_sfid == fid if stressed else self._s_fid == fid
                self._s_fid[hit] = _UNKNOWN
        self._separable_cache = {}
        self._same_set = {}

    def _release(self, s: int) -> None:
        for fid, li in ((self._s_fid[s], self._s_li[s]), (self._s_sfid[s], self._s_sli[s])):
            fam = self._fams[fid] if fid >= 0 else None
            if fam is not None and fam.slot[li] == s:
                fam.release(int(li))
        self._s_fid[s] = _UNKNOWN
        self._s_sfid[s] = -1
        self._parts.pop(s, None)

    def on_units(self, slots: Sequence[int]) -> None:
        lv = self.live
        arr = lv.instruments
        self._grow_slots(lv.n_units)
        by_acct: dict[int, list[int]] = {}
        for s in slots:
            by_acct.setdefault(lv.unit_account(s), []).append(s)
        for acct, ss in by_acct.items():
            # a slot not seen before: the book re-grouped the account into the batch's slots
            # (slots are never reused), so the account's earlier slots are gone
            mine = self._acct_slots.get(acct, [])
            if any(s not in mine for s in ss):
                for t in mine:
                    if t not in ss:
                        self._release(t)
                self._acct_slots[acct] = list(ss)
        unit_rows = {s: lv.pos_ins[lv.unit_positions(s)].tolist() for s in slots}
        unit_unds = {s: tuple(sorted({arr.instruments[k].underlying for k in rows}))
                     for s, rows in unit_rows.items()}
        held = {u for unds in unit_unds.values() for u in unds}
        if not held <= set(self._universe):
            self._universe = tuple(sorted({*self._universe, *held}))
            self._drop_universe()
        placed: dict[tuple[bool, Key], list[int]] = {}
        need: dict[tuple[bool, Key], set[int]] = {}
        for s in slots:
            self._release(s)
            rows, unds = unit_rows[s], unit_unds[s]
            self._s_factor[s] = np.nan
            if not unds:
                self._s_fid[s] = -1
                continue
            ccy = lv.unit(s).currency
            for stressed in (False, True) if self._floor else (False,):
                key: Key = ((ccy, None) if self._consistent(stressed, unds, ccy, rows)
                            else (ccy, unds))
                placed.setdefault((stressed, key), []).append(s)
                need.setdefault((stressed, key), set()).update(rows)
        for (stressed, key), ss in placed.items():
            fid, fam = self._family(stressed, key)
            self._ensure_rows(fam, sorted(need[stressed, key]))
            li = fam.alloc(ss)
            sa = np.asarray(ss, dtype=np.int64)
            if stressed:
                self._s_sfid[sa], self._s_sli[sa] = fid, li
            else:
                self._s_fid[sa], self._s_li[sa] = fid, li

    def _measure_units(self, fam: _Family, li: np.ndarray) -> None:
        """Measure units ``li`` from their rows, laying out the positions (grouped by
        underlying) of those not laid out yet (a unit's positions are fixed while it lives)."""
        new = li[fam.pb[li] <= fam.pa[li]]
        if new.size:
            self._lay_out(fam, new)
        _FULL_KERNEL.for_units(li.size)(fam.pnl, li, fam.pa, fam.pb, fam.prow, fam.psize,
                                        fam.pstart, fam.do_cap, fam.measure(), fam.vec, fam.val,
                                        fam.sa, fam.nund, fam.gsa, fam.err)
        fam.ok[li] = True

    def _lay_out(self, fam: _Family, li: np.ndarray) -> None:
        lv = self.live
        idx, lens = lv.concat_positions(fam.slot[li].tolist())
        ins = lv.pos_ins[idx]
        if (fam.lookup[ins] < 0).any():
            self._ensure_rows(fam, np.unique(ins[fam.lookup[ins] < 0]).tolist())
        unit = np.repeat(np.arange(li.size), lens)
        und = lv.instruments.underlying[ins]
        order = np.lexsort((und, unit))
        und_o, unit_o = und[order], unit[order]
        starts = np.ones(idx.size, dtype=np.bool_)
        starts[1:] = (und_o[1:] != und_o[:-1]) | (unit_o[1:] != unit_o[:-1])
        fam.lay_out(li, fam.lookup[ins[order]], lv.pos_size[idx][order], starts, und_o, lens)

    def _gather(self, fids: np.ndarray, lis: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(measure, Σ standalone, underlyings) of units (``fids``, ``lis``), measuring those
        not measured since they changed or most of their rows moved."""
        mr = np.zeros(fids.size)
        sa = np.zeros(fids.size)
        nund = np.zeros(fids.size, dtype=np.int64)
        for fid in np.unique(fids[fids >= 0]).tolist():
            fam = self._fams[fid]
            assert fam is not None
            sel = np.flatnonzero(fids == fid)
            li = lis[sel]
            todo = np.unique(li[~fam.ok[li]])
            if todo.size:
                self._measure_units(fam, todo)
            mr[sel], sa[sel], nund[sel] = fam.val[li], fam.sa[li], fam.nund[li]
        return mr, sa, nund

    def margins(self, slots: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        p = self.model.params
        sl = np.asarray(slots, dtype=np.int64)
        self._grow_slots(self.live.n_units)
        missing = sl[self._s_fid[sl] == _UNKNOWN]
        if missing.size:
            self.on_units(missing.tolist())
        mr, standalone, n_unds = self._gather(self._s_fid[sl], self._s_li[sl])
        stressed = None
        if self._floor:
            stressed = self._gather(np.where(self._s_fid[sl] >= 0, self._s_sfid[sl], -1),
                                    self._s_sli[sl])[0]
        im = self._im_many(sl, mr, standalone, n_unds, stressed)
        return im, p.mm_fraction * im

    def _needs_positions(self) -> bool:
        p = self.model.params
        return bool((p.liquidity and self.live.market.order_books) or p.open_interest
                    or p.short_option_min_rate > 0 or p.min_per_contract_usd > 0)

    def _im_many(self, sl: np.ndarray, mr: np.ndarray, standalone: np.ndarray,
                 n_unds: np.ndarray, stressed: np.ndarray | None) -> np.ndarray:
        """``margin_unit``'s sum of components (as :meth:`_im`) over arrays, the per-position
        add-ons included (:meth:`_addons_many`)."""
        p = self.model.params
        cap = np.zeros(sl.size)
        if p.diversification_cap is not None:
            cap = np.where(n_unds > 1, (1.0 - p.diversification_cap)
                           * np.maximum(0.0, standalone - mr), 0.0)
        liq = conc = minimum = np.zeros(sl.size)
        if self._needs_positions():
            liq, conc, minimum = self._addons_many(sl)
        credit = (mr + liq) * self._credit_factors(sl)
        top_up = np.maximum(0.0, minimum - (mr + cap + liq + conc))
        apc = 0.0 * mr
        if p.apc == "buffer" and not p.apc_buffer_released:
            apc = p.apc_buffer * mr
        elif stressed is not None:
            apc = np.maximum(0.0, stressed - mr)
        im = (((((mr + cap) + liq) + conc) + credit) + top_up) + apc
        im[self._s_fid[sl] == -1] = 0.0
        return im

    def _credit_factors(self, sl: np.ndarray) -> np.ndarray:
        """Each slot's credit add-on rate (``addons.credit_addon``'s), looked up once a slot."""
        p = self.model.params
        lv = self.live
        factor = self._s_factor[sl]
        for k in np.flatnonzero(np.isnan(factor)).tolist():
            s = int(sl[k])
            rating = lv.account_object(lv.unit_account(s)).credit_rating
            if rating is None:  # as addons.credit_addon: unrated accounts pay credit_unrated
                factor[k] = p.credit_unrated
            elif rating not in p.credit_table:
                raise InputError("credit_rating", f"unknown rating {rating!r} (known: "
                                 f"{', '.join(p.credit_table)})")
            else:
                factor[k] = p.credit_table[rating]
            self._s_factor[s] = factor[k]
        return factor

    def _addons_many(self, sl: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Liquidity add-on, concentration add-on and minimum charge of units ``sl`` (unit
        currency), as :meth:`_position_addons` and ``addons.minimum_charge`` give them, over
        arrays of the units' positions: the instruments' notional per contract read once per
        call, each position's walk of its order book once while the books stay the same."""
        p = self.model.params
        lv = self.live
        mk: MarketSnapshot = lv.market
        idx, lens = lv.concat_positions(sl)
        unit = np.repeat(np.arange(sl.size), lens)
        ins = lv.pos_ins[idx]
        q = lv.pos_size[idx]
        uniq, inv = np.unique(ins, return_inverse=True)
        per = [self._per_contract(int(k), mk) for k in uniq.tolist()]
        cs, px, quote, face, to_usd, oi, opt = (np.array(c, dtype=float)
                                                for c in zip(*per, strict=True)) if per else (
            np.zeros(0) for _ in range(7))
        rate = {c: mk.convert(1.0, "USD", c)
                for c in {lv.unit(s).currency for s in sl.tolist()}}
        usd_to_slot = np.array([rate[lv.unit(s).currency] for s in sl.tolist()])
        usd_to_unit = usd_to_slot[unit]
        size = np.abs(q) * cs[inv]
        notional = np.where(face[inv] > 0.0, size, size * px[inv] * quote[inv])
        liq = np.zeros(idx.size)
        if p.liquidity and mk.order_books:
            big = np.flatnonzero(notional > p.liquidity_threshold_usd)
            book = self._book_costs(idx[big], ins[big], q[big], mk)  # book units × contracts
            # as RiskBasedModel._close_out_cost: inverse futures face / mid, else × settle USD
            usd = np.where(face[inv[big]] > 0.0, book * cs[inv[big]] / self._mids[idx[big]],
                           book * cs[inv[big]] * to_usd[inv[big]])
            liq[big] = usd * usd_to_unit[big]
        conc = np.zeros(idx.size)
        has_oi = oi[inv] != 0.0
        if has_oi.any():
            share = np.abs(q) / np.where(has_oi, oi[inv], 1.0)
            conc = np.where(has_oi, notional * usd_to_unit * p.concentration_rate
                            * np.maximum(0.0, share - p.concentration_threshold), 0.0)
        short = np.where((opt[inv] > 0.0) & (q < 0), notional * usd_to_unit, 0.0)
        def per_unit(x: np.ndarray) -> np.ndarray:
            return np.bincount(unit, weights=x, minlength=sl.size)

        minimum = (p.short_option_min_rate * per_unit(short)
                   + p.min_per_contract_usd * usd_to_slot * per_unit(np.abs(q)))
        return per_unit(liq), per_unit(conc), minimum

    def _per_contract(self, k: int, mk: MarketSnapshot
                      ) -> tuple[float, float, float, float, float, float, float]:
        """Instrument ``k``'s (contract size, price per underlying unit, quote USD, 1 for an
        inverse future's USD face, settle USD, open interest or 0, 1 for an option): what
        ``notional_usd`` and ``_close_out_cost`` multiply a position's size by."""
        i = self.live.instruments.instruments[k]
        face = i.inverse and not i.is_option
        if face:
            px = quote = 1.0
        else:
            px = mk.index[i.underlying] if i.is_option else float(i.mark_price or 0.0)
            quote = 1.0 if i.inverse else mk.usd_price(i.settle)
        needs_settle = self.model.params.liquidity and i.symbol in mk.order_books
        to_usd = mk.usd_price(i.settle) if needs_settle and not face else 1.0
        oi = self.model.params.open_interest.get(i.symbol) or 0.0
        return (i.contract_size, px, quote, float(face), to_usd, float(oi), float(i.is_option))

    def _book_costs(self, pos: np.ndarray, ins: np.ndarray, q: np.ndarray,
                    mk: MarketSnapshot) -> np.ndarray:
        """``addons.close_out_cost(...).cost`` of positions ``pos`` (global ids) into their
        instruments' order books (0 without a book), each walked once while the books and the
        position's size stay the same; ``self._mids`` gets each book's mid."""
        if self._books is not mk.order_books:
            self._books = mk.order_books
            self._book_cost = np.full(0, np.nan)
            self._book_size = np.full(0, np.nan)
            self._mids = np.full(0, np.nan)
            self._book_ins = np.full(0, -1, dtype=np.int64)
        n = self.live.pos_ins.size
        self._book_cost = _grown(self._book_cost, n, np.nan)
        self._book_size = _grown(self._book_size, n, np.nan)
        self._mids = _grown(self._mids, n, np.nan)
        self._book_ins = _grown(self._book_ins, n, -1)
        todo = np.flatnonzero(~(self._book_size[pos] == q) | (self._book_ins[pos] != ins))
        names = self.live.instruments.instruments
        for t in todo.tolist():
            j, size = int(pos[t]), float(q[t])
            book = mk.order_books.get(names[int(ins[t])].symbol)
            cost, mid = 0.0, 1.0
            if book is not None and book.bids and book.asks and size != 0:
                mid = 0.5 * (book.bids[0][0] + book.asks[0][0])
                side = book.bids if size > 0 else book.asks
                cost = addons.close_out_cost(side, abs(size), mid).cost
            self._book_cost[j], self._book_size[j], self._mids[j] = cost, size, mid
            self._book_ins[j] = int(ins[t])
        return self._book_cost[pos]

    def _im(self, s: int, mr: float, standalone: float, n_unds: int, stressed: float | None,
            idx: np.ndarray, extra: Sequence[tuple[int, float]] | None) -> float:
        """``margin_unit``'s components over a unit's market risk, standalone sum, number of
        underlyings and (APC floor) stressed market risk."""
        p = self.model.params
        lv = self.live
        if self._s_fid[s] == -1 and not extra:
            return 0.0
        cap = 0.0
        if p.diversification_cap is not None and n_unds > 1:
            cap = addons.capped_offset(mr, standalone, p.diversification_cap)
        ins = lv.pos_ins[idx].tolist()
        sizes = lv.pos_size[idx].tolist()
        if extra:
            for k, q in extra:
                j = ins.index(k)
                sizes[j] += q
        liq, conc, short_opt = self._position_addons(lv.unit(s).currency, ins, sizes)
        account = lv.account_object(lv.unit_account(s))
        try:
            credit = addons.credit_addon(mr + liq, account.credit_rating, p.credit_table,
                                         unrated=p.credit_unrated)
        except ValueError as exc:
            raise InputError("credit_rating", str(exc).split(": ", 1)[1]) from None
        usd_to_unit = lv.market.convert(1.0, "USD", lv.unit(s).currency)
        minimum = addons.minimum_charge(short_opt, float(np.abs(np.array(sizes)).sum()),
                                        short_option_rate=p.short_option_min_rate,
                                        per_contract=p.min_per_contract_usd * usd_to_unit)
        top_up = max(0.0, minimum - (mr + cap + liq + conc))
        apc = 0.0
        if p.apc == "buffer" and not p.apc_buffer_released:
            apc = p.apc_buffer * mr
        elif stressed is not None:
            apc = max(0.0, stressed - mr)
        return float(sum((mr, cap, liq, conc, credit, top_up, apc)))

    def _position_addons(self, ccy: str, ins: list[int], sizes: list[float]
                         ) -> tuple[float, float, list[float]]:
        p = self.model.params
        mk: MarketSnapshot = self.live.market
        need_liq = p.liquidity and bool(mk.order_books)
        need_min = p.short_option_min_rate > 0 or p.min_per_contract_usd > 0
        if not (need_liq or p.open_interest or need_min):
            return 0.0, 0.0, []
        usd_to_unit = mk.convert(1.0, "USD", ccy)
        liq = np.zeros(len(ins))
        conc = np.zeros(len(ins))
        short_opt = []
        arr = self.live.instruments
        for k, (row, q) in enumerate(zip(ins, sizes, strict=True)):
            i = arr.instruments[row]
            notional = notional_usd(i, q, mk)
            if p.liquidity and notional > p.liquidity_threshold_usd:
                liq[k] = self.model._close_out_cost(i, q, mk) * usd_to_unit
            oi = p.open_interest.get(i.symbol)
            if oi:
                conc[k] = addons.concentration_charge(
                    notional * usd_to_unit, abs(q) / oi, threshold=p.concentration_threshold,
                    rate=p.concentration_rate)
            if i.is_option and q < 0:
                short_opt.append(notional * usd_to_unit)
        return float(liq.sum()), float(conc.sum()), short_opt

    def _groups(self, slot: int, fam: _Family, li: int
                ) -> tuple[list[tuple[int, int]], dict[int, np.ndarray]]:
        """A measured unit's (underlying, first position) per group and each group's vector,
        kept for repeated what-ifs until the family's rows move (``fam.version``)."""
        got = self._parts.get(slot)
        if got is None or got[0] != fam.version:
            a, b = int(fam.pa[li]), int(fam.pb[li])
            starts = (a + np.flatnonzero(fam.pstart[a:b])).tolist()
            ends = [*starts[1:], b]
            groups = [(int(fam.pund[g]), g) for g in starts]
            subs = {int(fam.pund[g]): fam.psize[g:e] @ fam.pnl[fam.prow[g:e]]
                    for g, e in zip(starts, ends, strict=True)}
            got = (fam.version, groups, subs)
            self._parts[slot] = got
        return got[1], got[2]

    def what_if(self, slot: int, orders: Sequence[tuple[int, float]]
                ) -> tuple[float, float] | None:
        if slot >= self._s_fid.size or self._s_fid[slot] < 0:
            return None
        fam = self._fams[int(self._s_fid[slot])]
        li = int(self._s_li[slot])
        assert fam is not None
        if not fam.ok[li]:
            self._measure_units(fam, np.array([li]))
        lv = self.live
        idx = lv.unit_positions(slot)
        held = lv.pos_ins[idx]
        if any(not (held == k).any() for k, _ in orders):
            return None
        p = self.model.params
        meas = fam.measure()
        total = fam.vec[li].copy()
        for k, q in orders:
            total += q * fam.pnl[fam.row_of[k]]
        mr = _measure_vec(total, meas)
        standalone = 0.0
        n_unds = int(fam.nund[li])
        if p.diversification_cap is not None and n_unds > 1:
            # the ordered underlyings' groups (their vectors kept until the family's rows
            # move) with the orders added; the others' kept standalone measures
            groups, subs = self._groups(slot, fam, li)
            ordered: dict[int, np.ndarray] = {}
            for k, q in orders:
                u = int(lv.instruments.underlying[k])
                ordered[u] = ordered.get(u, subs[u]) + q * fam.pnl[fam.row_of[k]]
            for u, g in groups:
                standalone += (_measure_vec(ordered[u], meas) if u in ordered
                               else float(fam.gsa[g]))
        stressed = None
        if self._floor:
            sfam = self._fams[int(self._s_sfid[slot])]
            sli = int(self._s_sli[slot])
            assert sfam is not None
            if not sfam.ok[sli]:
                self._measure_units(sfam, np.array([sli]))
            svec = sfam.vec[sli].copy()
            for k, q in orders:
                svec += q * sfam.pnl[sfam.row_of[k]]
            stressed = _measure_vec(svec, sfam.measure())
        im = self._im(slot, mr, standalone, n_unds, stressed, idx, orders)
        return im, p.mm_fraction * im
