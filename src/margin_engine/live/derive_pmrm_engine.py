"""``derive-pmrm`` on the live book: Derive's PMRM_2 scenario grid over arrays.

The reference (``DerivePmrm.margin_unit``) builds one core portfolio per underlying of a unit
and runs :func:`~margin_engine.models.venues.derive_pmrm_core.compute` on it. Every part of that
computation is either linear in the positions or a function of per-expiry sums, so it runs on
arrays:

- **Instrument rows** (cached, revalued only when the instrument's market moved): per long unit
  of underlying, an option's discounted Black-76 value in each scenario (spot × vol-up/down/none,
  and the linear/abs skew rotations at the unshocked forward), at the mark and at the two basis
  spot moves (``n + 3`` columns); a perpetual's ``(spot_shock − 1)·mark``. The per-expiry
  constants (static discounts, basis factor) and the forward and rate used sit beside them.
- **Bucket vectors**: a unit's positions are sorted by (underlying, perpetuals then expiries in
  order, strike); each (unit, expiry) sums ``amount × row`` into a vector of ``n + 3``.
- **The non-linear parts, per bucket and per underlying**, in one numba kernel over all units:
  the static discount of the sign of each shocked expiry value, the dampening, the skew
  scenarios' ``−|·|``, the forward (basis) contingency ``min(up − mtm, down − mtm, 0)·factor``,
  the naked-short option contingency per strike (calls and puts pooled), the perpetual
  contingency on ``Σ|q|``, risk-cancelling collateral moving with spot, the worst of every
  scenario and the basis contingency, the MM/IM loss factors with the peg-loss add-on.
- **What-if**: a unit's bucket vectors and per-underlying charges are kept (built on the first
  what-if after each market change or fill); an order adds ``amount × row`` to its bucket and
  re-charges that underlying only.
- **Per (unit, underlying) charges** (kept): an underlying's charges are recomputed only when
  its instruments moved since (a tick on BTC re-sums the BTC buckets of the units holding BTC,
  not their other underlyings) or when the unit was rebuilt (a fill, a deposit); a unit's IM
  and MM are the sums of its kept charges. A de-peg of the stablecoin (the IM factor) makes
  every charge stale. (The bucket vectors themselves are re-summed for the stale underlyings:
  every instrument of a moved underlying has a new row, so an in-place update would touch the
  same numbers.)

Falls back to the reference (``margin_unit``) for the units it cannot reproduce exactly:

- a unit holding two options of one expiry whose forwards or rates differ (per-option
  ``underlying_price``, or settlement currencies with different rates): the reference prices
  the whole expiry at the forward and rate of the unit's *first* option of that expiry;
- a unit holding an instrument whose row cannot be built (no vol, a non-positive forward, a
  kind or settlement the model rejects): the reference raises the model's error for it.

Sums are taken in another order than the reference's (by strike within an expiry), so results
agree to rounding (about 1e-15 relative), not bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numba
import numpy as np
from numba import prange

from margin_engine.domain.instruments import Kind
from margin_engine.errors import InputError
from margin_engine.live.arrays import KIND_CODE
from margin_engine.live.engines import ReferenceEngine
from margin_engine.live.revalue import _forward, _forwards
from margin_engine.maths import black76_fast
from margin_engine.maths.compiled import twins
from margin_engine.models.venues import derive_pmrm_core as core
from margin_engine.models.venues.derive_pmrm import DerivePmrm

if TYPE_CHECKING:
    from margin_engine.live.book import LiveBook

FloatArray = np.ndarray


@numba.njit(cache=True, nogil=True)
def _charge_group(vec, b_perp, b_pos, b_neg, b_factor, b_ptr, amount, strike, spot, coll,
                  damp, sm1, skew, consts):  # pragma: no cover - compiled
    """(IM, MM) charge of one underlying from its bucket vectors ``vec[b]`` (``n + 3``:
    scenario values, mark, basis up, basis down) and its positions' amounts (``b_ptr[b]`` ..
    ``b_ptr[b + 1]``, sorted by strike within a bucket), as ``derive_pmrm_core.compute``."""
    im_factor, mm_factor, mm_perp_pct, im_perp_pct, mm_opt_pct, im_opt_pct = consts
    n = damp.shape[0]
    total = np.zeros(n)
    basis = 0.0
    perp_abs = 0.0
    mm_opt = 0.0
    im_opt = 0.0
    for b in range(vec.shape[0]):
        v = vec[b]
        if b_perp[b]:
            for i in range(n):
                total[i] += v[i] * damp[i]
            for j in range(b_ptr[b], b_ptr[b + 1]):
                if amount[j] != 0.0:
                    perp_abs += abs(amount[j])
            continue
        mtm = v[n]
        for i in range(n):
            raw = v[i]
            x = (raw * (b_pos[b] if raw >= 0.0 else b_neg[b]) - mtm) * damp[i]
            total[i] += -abs(x) if skew[i] else x
        basis += min(v[n + 1] - mtm, v[n + 2] - mtm, 0.0) * b_factor[b]
        naked = 0.0
        j = b_ptr[b]
        while j < b_ptr[b + 1]:
            longs = 0.0
            shorts = 0.0
            k = strike[j]
            while j < b_ptr[b + 1] and strike[j] == k:
                if amount[j] > 0.0:
                    longs += amount[j]
                elif amount[j] < 0.0:
                    shorts -= amount[j]
                j += 1
            naked += max(shorts - longs, 0.0)
        mm_opt += naked * spot * mm_opt_pct
        im_opt += naked * spot * im_opt_pct
    if coll != 0.0:
        for i in range(n):
            total[i] += coll * sm1[i] * damp[i]
    worst = basis
    for i in range(n):
        if total[i] < worst:
            worst = total[i]
    notional = perp_abs * spot
    mm_cont = notional * mm_perp_pct + mm_opt
    im_cont = notional * im_perp_pct + im_opt
    return -worst * im_factor + im_cont + mm_cont, -worst * mm_factor + mm_cont


def _units(rows, pos_row, amount, strike, fwd, rate, b_perp, b_pos, b_neg, b_factor, b_ptr,
           g_bptr, g_spot, g_coll, u_gptr, damp, sm1, skew, consts, keep, max_b, out_vec, out_gim,
           out_gmm, out_gbad, out_im, out_mm):  # pragma: no cover - compiled below
    """Per unit: its bucket vectors (kept in ``out_vec`` when ``keep``), each underlying's
    charge and their sums; ``out_gbad`` flags an underlying with one expiry at two forwards or
    rates. Compiled twice: on every core for large calls, on one for small ones."""
    n_units = u_gptr.shape[0] - 1
    width = rows.shape[1]
    for u in prange(n_units):
        buf = np.empty((max_b, width))
        im = 0.0
        mm = 0.0
        for g in range(u_gptr[u], u_gptr[u + 1]):
            bad = False
            b0 = g_bptr[g]
            b1 = g_bptr[g + 1]
            vec = out_vec[b0:b1] if keep else buf[: b1 - b0]
            for b in range(b0, b1):
                v = vec[b - b0]
                for c in range(width):
                    v[c] = 0.0
                first = b_ptr[b]
                for j in range(first, b_ptr[b + 1]):
                    if not b_perp[b] and (fwd[j] != fwd[first] or rate[j] != rate[first]):
                        bad = True
                    r = rows[pos_row[j]]
                    q = amount[j]
                    for c in range(width):
                        v[c] += q * r[c]
            p0 = b_ptr[b0]
            gi, gm = _charge_group(vec, b_perp[b0:b1], b_pos[b0:b1], b_neg[b0:b1],
                                   b_factor[b0:b1], b_ptr[b0:b1 + 1] - p0,
                                   amount[p0:b_ptr[b1]], strike[p0:b_ptr[b1]], g_spot[g],
                                   g_coll[g], damp, sm1, skew, consts)
            out_gim[g] = gi
            out_gmm[g] = gm
            out_gbad[g] = bad
            im += gi
            mm += gm
        out_im[u] = im
        out_mm[u] = mm


@numba.njit(cache=True, nogil=True)
def _sort_within(key, ptr, out):  # pragma: no cover - compiled
    """``out``: the positions' order sorted by ``key`` within each segment ``ptr[u]..ptr[u+1]``
    (insertion sort: a unit holds a few to a few hundred positions)."""
    for u in range(ptr.shape[0] - 1):
        a = ptr[u]
        for j in range(a, ptr[u + 1]):
            x = j
            i = j - 1
            while i >= a and key[out[i]] > key[x]:
                out[i + 1] = out[i]
                i -= 1
            out[i + 1] = x


_UNITS = twins(_units)
_NUMBA_PRICES_FROM = 100_000
"""Black-76 values per revaluation from which the parallel numba pricer is used (a tick's few
hundred instruments price faster in one NumPy pass than the threads start)."""


@dataclass
class _Layout:
    """Positions of some units sorted into (unit, underlying, bucket, strike) segments."""

    ins: np.ndarray  # instrument row of each sorted position
    unit: np.ndarray  # which of the units each sorted position belongs to
    amount: np.ndarray  # size × contract size
    b_ptr: np.ndarray  # bucket segments → positions
    g_bptr: np.ndarray  # underlying groups → bucket segments
    u_gptr: np.ndarray  # units → groups
    g_und: np.ndarray  # currency code of each group's underlying
    b_ins: np.ndarray  # an instrument of each bucket segment (its constants)


@dataclass
class _Cached:
    """One unit's kept state for what-ifs (dropped at the next market update)."""

    lay: _Layout
    vec: np.ndarray  # bucket vectors
    gim: np.ndarray  # per-underlying IM charges
    gmm: np.ndarray
    g_coll: np.ndarray


class DerivePmrmEngine(ReferenceEngine):
    """Cached instrument rows and per-unit bucket vectors for :class:`DerivePmrm`."""

    def __init__(self, live: LiveBook) -> None:
        super().__init__(live)
        model = live.model
        assert isinstance(model, DerivePmrm)
        self.model = model
        p = model.params
        self.core_params = p.core_params()
        scen = p.core_scenarios()
        self.n = len(scen)
        self.damp = np.array([s.dampening for s in scen])
        self.sm1 = np.array([s.spot_shock - 1.0 for s in scen])
        self.shock = np.array([s.spot_shock for s in scen])
        self.skew = np.array([s.kind == "skew" for s in scen])
        self.vol_kind = np.array([("up", "down", "none", "linear", "abs").index(s.vol_shock)
                                  for s in scen], dtype=np.int64)
        arr = live.instruments
        n_ins = len(arr.instruments)
        width = self.n + 3
        self.rows = np.zeros((n_ins, width))
        self.fresh = np.zeros(n_ins, dtype=bool)
        self.bad = np.zeros(n_ins, dtype=bool)
        self.fwd = np.zeros(n_ins)
        self.rate = np.zeros(n_ins)
        self.pos = np.ones(n_ins)
        self.neg = np.ones(n_ins)
        self.factor = np.zeros(n_ins)
        self.strike = np.array([i.strike or 0.0 for i in arr.instruments])
        self.supported = np.array([model.check_instrument(i) is None for i in arr.instruments],
                                  dtype=bool)
        self.is_perp = arr.kind == KIND_CODE[Kind.PERPETUAL]
        # buckets: (underlying, perpetuals first then expiries in time order)
        key = [(int(arr.underlying[k]), i.expiry is not None, i.expiry or 0)
               for k, i in enumerate(arr.instruments)]
        of = {t: b for b, t in enumerate(sorted(set(key)))}  # (und, False, 0) sorts first
        self.bucket = np.array([of[t] for t in key], dtype=np.int64)
        self.bucket_expiry = [t[2] for t in sorted(of)]
        """Each bucket's expiry (``0`` for the perpetuals' bucket)."""
        self.is_call = np.array([i.is_call for i in arr.instruments], dtype=bool)
        strike_rank = np.unique(self.strike, return_inverse=True)[1].reshape(-1)
        self.sort_key = self.bucket * (int(strike_rank.max(initial=0)) + 1) + strike_rank
        """Positions of a unit are laid out by bucket, then strike."""
        self._cache: dict[int, _Cached] = {}
        self._coin: dict[int, tuple[tuple[str, float], ...]] = {}
        self._has_coin = np.zeros(0, dtype=np.int8)
        """Per slot: 1 holds coin collateral, 0 none, −1 not looked at yet."""
        # each (unit slot, underlying)'s charges, and the clock tick they were computed at;
        # an underlying's version is the tick its instruments last moved
        n_ccy = len(arr.currencies)
        self._clock = 0
        self._ver = np.zeros(n_ccy, dtype=np.int64)
        self._stamp = np.full((0, n_ccy), -1, dtype=np.int64)
        self._gim = np.zeros((0, n_ccy))
        self._gmm = np.zeros((0, n_ccy))
        self._gbad = np.zeros((0, n_ccy), dtype=bool)
        self._last_consts = np.empty(0)

    # -- instrument rows ---------------------------------------------------------------------
    def _revalue(self, rows: np.ndarray) -> None:
        """Rows, forwards, rates and expiry constants of instruments ``rows`` at the market."""
        lv = self.live
        mk = lv.market
        p = self.model.params
        cp = self.core_params
        n = self.n
        arr = lv.instruments
        self.fresh[rows] = True
        self.bad[rows] = ~self.supported[rows]
        ok = rows[self.supported[rows]]
        perps = ok[self.is_perp[ok]]
        marks = np.array([arr.instruments[k].mark_price or math.nan for k in perps.tolist()])
        self.bad[perps[np.isnan(marks)]] = True
        self.rows[perps, :n] = self.sm1[None, :] * marks[:, None]
        self.rows[perps, n:] = 0.0
        opt = ok[~self.is_perp[ok]]
        if not opt.size:
            return
        table = _forwards(mk)
        rate_of: dict[str, float] = {}
        fwd = np.empty(opt.size)
        vol = np.empty(opt.size)
        rate = np.empty(opt.size)
        for j, k in enumerate(opt.tolist()):
            ins = arr.instruments[k]
            fwd[j] = _forward(ins, mk, table)
            try:
                vol[j] = mk.implied_vol(ins)
            except InputError:
                vol[j] = math.nan
            if ins.settle not in rate_of:
                rate_of[ins.settle] = p.rate if p.rate is not None else mk.rates.get(
                    ins.settle, mk.rates.get("USD", 0.0))
            rate[j] = rate_of[ins.settle]
        strike = self.strike[opt]
        good = (np.isfinite(fwd) & (fwd > 0.0) & np.isfinite(vol) & (vol >= 0.0)
                & np.isfinite(strike) & (strike > 0.0))
        self.bad[opt[~good]] = True
        opt, fwd, vol, rate, strike = opt[good], fwd[good], vol[good], rate[good], strike[good]
        # per (expiry, rate): Derive's vol shocks, discounts and basis factor (core scalars)
        keys = list(zip(self.bucket[opt].tolist(), rate.tolist(), strict=True))
        per: dict[tuple[int, float], tuple[float, ...] | None] = {}
        for b, r in dict.fromkeys(keys):
            sec = max((self.bucket_expiry[b] - mk.timestamp).total_seconds(), 0.0)
            try:
                up, down = core.vol_shock_multipliers(sec, cp)
            except ValueError:
                per[b, r] = None
                continue
            r0 = max(r, 0.0)
            discount = math.exp(-r0 * sec / core.SECONDS_PER_YEAR)
            tau = sec / core.SECONDS_PER_YEAR
            pos, neg = core.static_discounts(tau, r0, discount, cp)
            factor = cp.basis_cont_add_factor + cp.basis_cont_mult_factor * tau
            per[b, r] = (tau, discount, up, down, pos, neg, factor)
        consts = np.array([per[t] or (math.nan,) * 7 for t in keys]).reshape(-1, 7)
        good = ~np.isnan(consts[:, 0])
        self.bad[opt[~good]] = True
        opt, fwd, vol, rate, strike = opt[good], fwd[good], vol[good], rate[good], strike[good]
        tau, discount, up, down, pos, neg, factor = consts[good].T
        skew = np.array([core.skew_terms(k, f, t, cp)[4:] for k, f, t in zip(
            strike.tolist(), fwd.tolist(), tau.tolist(), strict=True)]).reshape(-1, 2)
        self.fwd[opt], self.rate[opt], self.pos[opt], self.neg[opt] = fwd, rate, pos, neg
        self.factor[opt] = factor
        # the scenario vols: up, down, none, linear skew, abs skew (as derive_pmrm_core._expiry)
        vols = np.stack([np.maximum(cp.min_vol_up_shock, vol * up), vol * down, vol,
                         vol * np.maximum(skew[:, 0], 0.0), vol * np.maximum(skew[:, 1], 0.0)],
                        axis=1)
        f = fwd[:, None]
        mark_vol = vol[:, None]
        spot_col = np.where(self.vol_kind >= 3, 1.0, self.shock)  # skews: unshocked forward
        fg = np.concatenate([f * spot_col + 0.0, f, f * cp.basis_spot_up + 0.0,
                             f * cp.basis_spot_down + 0.0], axis=1)
        vg = np.concatenate([vols[:, self.vol_kind], mark_vol, mark_vol, mark_vol], axis=1)
        shape = fg.shape
        args = (strike[:, None], tau[:, None], self.is_call[opt][:, None])
        if fg.size < _NUMBA_PRICES_FROM:
            price = black76_fast.price_usd(fg, args[0], args[1], vg, args[2], 0.0)
        else:
            flat = [np.ascontiguousarray(np.broadcast_to(x, shape)).ravel() for x in args]
            price = black76_fast.price_usd_numba(fg.ravel(), flat[0], flat[1], vg.ravel(),
                                                 flat[2], 0.0, validate=False).reshape(shape)
        self.rows[opt] = discount[:, None] * price

    def _ensure(self, ins: np.ndarray) -> None:
        if not self.fresh[ins].all():
            need = np.zeros(self.fresh.size, dtype=bool)
            need[ins] = True
            self._revalue(np.flatnonzero(need & ~self.fresh))

    # -- engine interface ----------------------------------------------------------------------
    def on_market(self, moved: np.ndarray) -> None:
        self._cache.clear()
        self.fresh[moved] = False
        if moved.size:
            self._clock += 1
            self._ver[np.unique(self.live.instruments.underlying[moved])] = self._clock

    def on_units(self, slots: Sequence[int]) -> None:
        for s in slots:
            self._cache.pop(s, None)
            self._coin.pop(s, None)
            if s < self._has_coin.size:
                self._has_coin[s] = -1

    def _layout(self, slots: Sequence[int], idx: np.ndarray, lens: np.ndarray) -> _Layout:
        lv = self.live
        ins = lv.pos_ins[idx]
        self._ensure(ins)
        unit = np.repeat(np.arange(len(slots)), lens)
        ptr = np.zeros(len(slots) + 1, dtype=np.int64)
        np.cumsum(lens, out=ptr[1:])
        order = np.empty(ins.size, dtype=np.int64)
        _sort_within(self.sort_key[ins], ptr, order)
        ins = ins[order]
        bkt = self.bucket[ins]
        amount = lv.pos_size[idx][order] * lv.instruments.contract_size[ins]
        und = lv.instruments.underlying[ins]
        m = ins.size
        new_b = np.ones(m, dtype=bool)
        new_b[1:] = (bkt[1:] != bkt[:-1]) | (unit[1:] != unit[:-1])
        new_g = np.ones(m, dtype=bool)
        new_g[1:] = (und[1:] != und[:-1]) | (unit[1:] != unit[:-1])
        b_start = np.flatnonzero(new_b)
        g_start = np.flatnonzero(new_g)
        b_ptr = np.append(b_start, m)
        g_bptr = np.append(np.searchsorted(b_start, g_start), b_start.size)
        u_gptr = np.zeros(len(slots) + 1, dtype=np.int64)
        np.cumsum(np.bincount(unit[g_start], minlength=len(slots)), out=u_gptr[1:])
        return _Layout(ins, unit, amount, b_ptr.astype(np.int64), g_bptr.astype(np.int64), u_gptr,
                       und[g_start], ins[b_start])

    def _coins(self, s: int) -> tuple[tuple[str, float], ...]:
        """Unit ``s``'s positive balances in priced coins (kept until its unit is rebuilt)."""
        got = self._coin.get(s)
        if got is None:
            index = self.live.market.index
            got = tuple((c, a) for c, a in self.live.unit(s).collateral.items()
                        if a > 0.0 and c in index)
            self._coin[s] = got
        return got

    def _collateral(self, slots: Sequence[int], lay: _Layout) -> FloatArray:
        """Each group's risk-cancelling collateral value (USD; 0 when none)."""
        lv = self.live
        mk = lv.market
        out = np.zeros(lay.g_und.size)
        if not self.model.params.risk_cancelling_collateral:
            return out
        sl = np.asarray(slots, dtype=np.int64)
        if self._has_coin.size < lv.n_units:
            self._has_coin = np.concatenate([self._has_coin, np.full(
                max(lv.n_units, 2 * self._has_coin.size) - self._has_coin.size, -1,
                dtype=np.int8)])
        for s in sl[self._has_coin[sl] < 0].tolist():
            self._has_coin[s] = 1 if self._coins(s) else 0
        stable = mk.fx.get(self.model.params.stablecoin, 1.0)
        codes = lv.instruments.ccy
        for k in np.flatnonzero(self._has_coin[sl] == 1).tolist():
            g0, g1 = int(lay.u_gptr[k]), int(lay.u_gptr[k + 1])
            for c, a in self._coins(slots[k]):
                hit = np.flatnonzero(lay.g_und[g0:g1] == codes[c])
                if hit.size:
                    out[g0 + int(hit[0])] = a * (mk.index[c] * stable) / stable
        return out

    def _run(self, slots: Sequence[int], keep: bool,
             positions: tuple[np.ndarray, np.ndarray] | None = None
             ) -> tuple[_Layout, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray,
                        FloatArray, np.ndarray]:
        """The kernel over ``slots`` (or over ``positions``: some of their positions, and how
        many each unit has): the layout, bucket vectors (when ``keep``), each group's IM and MM
        charge, each unit's IM and MM, each group's collateral value and whether the reference
        must margin the group (two forwards in one expiry, an instrument without a row)."""
        idx, lens = positions if positions is not None else self.live.concat_positions(slots)
        lay = self._layout(slots, idx, lens)
        mk = self.live.market
        arr = self.live.instruments
        spot = np.array([mk.index.get(c, math.nan) for c in arr.currencies])[lay.g_und]
        coll = self._collateral(slots, lay)
        n_b = lay.b_ins.size
        n_g = lay.g_und.size
        vec = np.empty((n_b if keep else 0, self.n + 3))
        gim = np.empty(n_g)
        gmm = np.empty(n_g)
        gbad = np.empty(n_g, dtype=np.bool_)
        im = np.empty(len(slots))
        mm = np.empty(len(slots))
        b = lay.b_ins
        kernel = _UNITS.for_units(len(slots))
        kernel(self.rows, lay.ins, lay.amount, self.strike[lay.ins], self.fwd[lay.ins],
               self.rate[lay.ins], self.is_perp[b], self.pos[b], self.neg[b], self.factor[b],
               lay.b_ptr, lay.g_bptr, spot, coll, lay.u_gptr, self.damp, self.sm1, self.skew,
               self._consts(), keep, max(int(np.diff(lay.g_bptr).max(initial=0)), 1), vec,
               gim, gmm, gbad, im, mm)
        hit = self.bad[lay.ins]
        if hit.any():  # an instrument without a row: the reference raises its error
            per_group = np.diff(lay.b_ptr[lay.g_bptr])
            gbad[np.repeat(np.arange(n_g), per_group)[hit]] = True
        return lay, vec, gim, gmm, im, mm, coll, gbad

    def _consts(self) -> np.ndarray:
        p = self.model.params
        stable = self.live.market.fx.get(p.stablecoin, 1.0)
        peg = max(p.peg_loss_threshold - stable, 0.0) * p.peg_loss_factor
        return np.array([p.im_factor + peg, p.mm_factor, p.mm_perp_percent,
                         p.im_perp_percent, p.mm_option_percent, p.im_option_percent])

    def margins(self, slots: Sequence[int]) -> tuple[FloatArray, FloatArray]:
        if not len(slots):
            return np.empty(0), np.empty(0)
        lv = self.live
        sl = np.asarray(slots, dtype=np.int64)
        self._grow(int(sl.max()) + 1)
        consts = self._consts()
        if not np.array_equal(consts, self._last_consts):  # the peg moved: every group
            self._clock += 1
            self._ver[:] = self._clock
            self._last_consts = consts
        idx, lens = lv.concat_positions(slots)
        und = lv.instruments.underlying[lv.pos_ins[idx]]
        unit = np.repeat(np.arange(len(slots)), lens)
        stale = self._stamp[sl[unit], und] < self._ver[und]
        if stale.any():
            if not stale.all():
                idx, lens = idx[stale], np.bincount(unit[stale], minlength=len(slots))
            lay, _, gim, gmm, _, _, _, gbad = self._run(slots, False, (idx, lens))
            gs = sl[np.repeat(np.arange(len(slots)), np.diff(lay.u_gptr))]
            self._gim[gs, lay.g_und] = gim
            self._gmm[gs, lay.g_und] = gmm
            self._gbad[gs, lay.g_und] = gbad
            self._stamp[gs, lay.g_und] = self._clock
        im = self._gim[sl].sum(axis=1)
        mm = self._gmm[sl].sum(axis=1)
        bad = self._gbad[sl].any(axis=1)
        if bad.any():
            worse = [slots[k] for k in np.flatnonzero(bad).tolist()]
            im[bad], mm[bad] = super().margins(worse)
        return im, mm

    def _grow(self, n: int) -> None:
        """Room for unit slots ``0 .. n−1`` in the per-(unit, underlying) store."""
        have = self._stamp.shape[0]
        if n <= have:
            return
        size = max(n, 2 * have)
        width = self._stamp.shape[1]

        def grown(a: np.ndarray, fill: float) -> np.ndarray:
            out = np.full((size, width), fill, dtype=a.dtype)
            out[:have] = a
            return out

        self._stamp = grown(self._stamp, -1)
        self._gim = grown(self._gim, 0.0)
        self._gmm = grown(self._gmm, 0.0)
        self._gbad = grown(self._gbad, False)

    def _kept(self, slot: int) -> _Cached | None:
        got = self._cache.get(slot)
        if got is not None:
            return got
        lay, vec, gim, gmm, _, _, coll, bad = self._run([slot], keep=True)
        if bad.any():
            return None
        got = _Cached(lay, vec, gim, gmm, coll)
        self._cache[slot] = got
        return got

    def what_if(self, slot: int, orders: Sequence[tuple[int, float]]
                ) -> tuple[float, float] | None:
        c = self._kept(slot)
        if c is None:
            return None
        lay = c.lay
        cs = self.live.instruments.contract_size
        amount = lay.amount.copy()
        vec = c.vec.copy()
        groups: set[int] = set()
        for k, q in orders:
            hit = np.flatnonzero(lay.ins == k)
            if not hit.size:
                return None
            j = int(hit[0])
            a = q * float(cs[k])
            amount[j] += a
            b = int(np.searchsorted(lay.b_ptr, j, side="right")) - 1
            vec[b] += a * self.rows[k]
            groups.add(int(np.searchsorted(lay.g_bptr, b, side="right")) - 1)
        gim, gmm = c.gim.copy(), c.gmm.copy()
        consts = self._consts()
        spot_of = self.live.market.index
        names = self.live.instruments.currencies
        for g in groups:
            b0, b1 = int(lay.g_bptr[g]), int(lay.g_bptr[g + 1])
            p0, p1 = int(lay.b_ptr[b0]), int(lay.b_ptr[b1])
            bi = lay.b_ins[b0:b1]
            gim[g], gmm[g] = _charge_group(
                vec[b0:b1], self.is_perp[bi], self.pos[bi], self.neg[bi], self.factor[bi],
                lay.b_ptr[b0:b1 + 1] - p0, amount[p0:p1], self.strike[lay.ins[p0:p1]],
                spot_of[names[int(lay.g_und[g])]], float(c.g_coll[g]), self.damp, self.sm1,
                self.skew, consts)
        return float(sum(gim.tolist())), float(sum(gmm.tolist()))
