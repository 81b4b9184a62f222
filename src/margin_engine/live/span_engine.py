"""CME SPAN on the live book's arrays: every unit's requirement at once (``Span.margin_unit``
over arrays, the same arithmetic in the same order).

Cached per instrument (:class:`~margin_engine.live.grid_engine.GridEngine`): one long contract's
16-scenario risk array and composite delta (``Span.contract_risks``: the moved instruments'
arrays valued together over NumPy arrays), its calendar tier and
whether the tier is in its delivery month, revalued only when the instrument moves. A re-margin
of many units is one numba kernel over the units' legs: per combined commodity the portfolio
risk array, scan risk and the time / volatility / price split, calendar spreads between tiers,
the delivery charge, the short option minimum; then the inter-commodity credits in priority
order and ``CCRisk``. Every component of the model is reproduced; none falls back to the
reference path. A what-if re-aggregates the one unit from the cached rows with the orders added
(SPAN reads no collateral, so the order's cash leaves the requirement alone).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numba
import numpy as np
from numba import prange

from margin_engine.live.grid_engine import FloatArray, GridEngine, distinct_sorted
from margin_engine.maths.compiled import twins
from margin_engine.models.venues.span import Span, pair_tiers
from margin_engine.models.venues.span_arrays import N_SCENARIOS

if TYPE_CHECKING:
    from margin_engine.live.book import LiveBook

_pair_tiers = numba.njit(cache=True, nogil=True)(pair_tiers)


@numba.njit(cache=True, nogil=True)
def _unit_span(a, b, ra, cd, tier_ts, deliv, optk, cs, und, rows, sizes, index, intra_pts,
               sp_pts, op_pts, som_pts, sp_a, sp_b, sp_r0, sp_r1, sp_rate):  # pragma: no cover
    """``Span.margin_unit``'s maintenance requirement (USD) of the legs ``a:b``."""
    nccy = index.shape[0]
    seen = np.full(nccy, -1, dtype=np.int64)
    order = np.empty(max(b - a, 1), dtype=np.int64)
    n_cc = 0
    for j in range(a, b):
        c = und[rows[j]]
        if seen[c] < 0:
            seen[c] = n_cc
            order[n_cc] = c
            n_cc += 1
    scan = np.zeros(n_cc)
    intra = np.zeros(n_cc)
    spot = np.zeros(n_cc)
    avail = np.zeros(n_cc)
    wfpr = np.zeros(n_cc)
    som = np.zeros(n_cc)
    credit = np.zeros(n_cc)
    port = np.empty(N_SCENARIOS)
    m = max(b - a, 1)
    tiers = np.empty(m)
    keys = np.empty(m)
    rem = np.empty(m)
    used = np.empty(m)
    flag = np.empty(m, dtype=np.bool_)
    for t in range(n_cc):
        c = order[t]
        for s in range(N_SCENARIOS):
            port[s] = 0.0
        n_leg = 0
        calls = 0.0
        puts = 0.0
        for j in range(a, b):
            r = rows[j]
            if und[r] != c:
                continue
            q = sizes[j]
            for s in range(N_SCENARIOS):
                port[s] += q * ra[r, s]
            tiers[n_leg] = tier_ts[r]
            n_leg += 1
            units = abs(q) * cs[r] if optk[r] > 0 and q < 0 else 0.0
            if optk[r] == 1:
                calls += units
            elif optk[r] == 2:
                puts += units
        k = 0
        for s in range(1, N_SCENARIOS):
            if port[s] > port[k]:
                k = s
        sc = max(port[k], 0.0)
        time = 0.5 * (port[0] + port[1])
        vol = 0.0
        if k < 14:
            first = k if k % 2 == 0 else k - 1
            vol = 0.5 * abs(port[first] - port[first + 1])
        price = sc - time - vol
        nt = distinct_sorted(tiers, n_leg, keys)
        for i in range(nt):
            used[i] = 0.0
            flag[i] = False
            d = 0.0
            for j in range(a, b):
                r = rows[j]
                if und[r] == c and tier_ts[r] == keys[i]:
                    d += sizes[j] * cd[r]
                    flag[i] = deliv[r]
            rem[i] = d
        net = 0.0
        for i in range(nt):
            net += rem[i]
        spreads = _pair_tiers(rem, used, nt)
        ch = 0.0
        outside = 0.0
        for i in range(nt):
            if flag[i]:
                ch += used[i] * sp_pts[c] + abs(rem[i]) * op_pts[c]
            else:
                outside += rem[i]
        net_usd = net * index[c]
        scan[t] = sc
        intra[t] = spreads * intra_pts[c]
        spot[t] = ch
        wfpr[t] = max(price, 0.0) / abs(net_usd) if net_usd != 0.0 else 0.0
        avail[t] = outside * index[c]
        som[t] = som_pts[c] * max(calls, puts)
    for i in range(sp_a.shape[0]):
        ca, cb = sp_a[i], sp_b[i]
        if ca < 0 or cb < 0 or ca == cb or seen[ca] < 0 or seen[cb] < 0:
            continue
        ta, tb = seen[ca], seen[cb]
        da, db = avail[ta], avail[tb]
        if da * db >= 0.0:
            continue
        n = min(abs(da) / sp_r0[i], abs(db) / sp_r1[i])
        credit[ta] += n * sp_r0[i] * wfpr[ta] * sp_rate[i]
        avail[ta] -= math.copysign(n * sp_r0[i], avail[ta])
        credit[tb] += n * sp_r1[i] * wfpr[tb] * sp_rate[i]
        avail[tb] -= math.copysign(n * sp_r1[i], avail[tb])
    mm = 0.0
    for t in range(n_cc):
        mm += max(scan[t] + intra[t] + spot[t] - credit[t], som[t], 0.0)
    return mm


def _span_units(ptr, ra, cd, tier_ts, deliv, optk, cs, und, rows, sizes, index, intra_pts,
                sp_pts, op_pts, som_pts, sp_a, sp_b, sp_r0, sp_r1, sp_rate,
                out):  # pragma: no cover - compiled
    for u in prange(ptr.shape[0] - 1):
        out[u] = _unit_span(ptr[u], ptr[u + 1], ra, cd, tier_ts, deliv, optk, cs, und, rows,
                            sizes, index, intra_pts, sp_pts, op_pts, som_pts, sp_a, sp_b,
                            sp_r0, sp_r1, sp_rate)


_SPAN_UNITS = twins(_span_units)


class SpanEngine(GridEngine):
    """``span`` over arrays (module docstring)."""

    width = N_SCENARIOS

    def __init__(self, live: LiveBook) -> None:
        model = live.model
        assert isinstance(model, Span)
        self.model = model
        self._ccy_of = np.full(0, -1, dtype=np.int64)  # each unit slot's currency code
        super().__init__(live)
        self._market_moved()

    def _allocate(self, n: int) -> None:
        arr = self.live.instruments
        self.cd = np.zeros(n)
        self.tier_ts = np.zeros(n)
        self.deliv = np.zeros(n, dtype=np.bool_)
        self.optk = np.array([0 if not i.is_option else 1 if i.is_call else 2
                              for i in arr.instruments], dtype=np.int64)
        self.cs = arr.contract_size.copy()

    def _revalue(self, rows: np.ndarray) -> None:
        lv = self.live
        mk = lv.market
        instruments = [lv.instruments.instruments[k] for k in rows.tolist()]
        self.rows[rows], self.cd[rows] = self.model.contract_risks(instruments, mk)
        for k, ins in zip(rows.tolist(), instruments, strict=True):
            key, _, delivery = self.model.tier(ins, mk)
            self.tier_ts[k] = -math.inf if key[0] == 0 else key[1]
            self.deliv[k] = delivery

    def _market_moved(self) -> None:
        """Each combined commodity's charges per unit at its index (few: one per coin)."""
        arr = self.live.instruments
        mk = self.live.market
        n = len(arr.currencies)
        self.index = np.full(n, np.nan)
        self.intra_pts = np.full(n, np.nan)
        self.sp_pts = np.full(n, np.nan)
        self.op_pts = np.full(n, np.nan)
        self.som_pts = np.full(n, np.nan)
        for name, px in mk.index.items():
            cc = self.model.combined_commodity(name)
            c = arr.ccy.get(name)
            if cc is None or c is None:
                continue
            self.index[c] = px
            self.intra_pts[c] = cc.intra_points(px)
            self.sp_pts[c], self.op_pts[c] = cc.spot_points(px)
            self.som_pts[c] = cc.som_points(px)
        spreads = self.model.params.inter_spreads
        self.sp_a = np.full(len(spreads), -1, dtype=np.int64)
        self.sp_b = np.full(len(spreads), -1, dtype=np.int64)
        self.sp_r0 = np.ones(len(spreads))
        self.sp_r1 = np.ones(len(spreads))
        self.sp_rate = np.array([s.rate for s in spreads])
        for i, s in enumerate(spreads):
            a, b = s.legs
            if a in mk.index and b in mk.index and a in arr.ccy and b in arr.ccy:
                self.sp_a[i], self.sp_b[i] = arr.ccy[a], arr.ccy[b]
                self.sp_r0[i], self.sp_r1[i] = s.usd_ratios(mk.index[a], mk.index[b])

    def on_units(self, slots: Sequence[int]) -> None:
        lv = self.live
        for s in slots:
            self._ccy_slots(s + 1)[s] = lv.instruments.ccy[lv.unit(s).currency]

    def _ccy_slots(self, n: int) -> np.ndarray:
        """The slots' currency codes (-1: not seen yet), with room for ``n`` slots."""
        if self._ccy_of.size < n:
            grown = np.full(max(n, 2 * self._ccy_of.size), -1, dtype=np.int64)
            grown[: self._ccy_of.size] = self._ccy_of
            self._ccy_of = grown
        return self._ccy_of

    def _kernel(self, idx: np.ndarray, lens: np.ndarray, slots: Sequence[int],
                sizes: np.ndarray) -> tuple[FloatArray, FloatArray]:
        lv = self.live
        arr = lv.instruments
        args = (self.rows, self.cd, self.tier_ts, self.deliv, self.optk, self.cs,
                arr.underlying, lv.pos_ins[idx], sizes, self.index, self.intra_pts, self.sp_pts,
                self.op_pts, self.som_pts, self.sp_a, self.sp_b, self.sp_r0, self.sp_r1,
                self.sp_rate)
        f = self.model.params.initial_factor
        if len(slots) == 1:  # a what-if: no loop to enter, usd_to's arithmetic on a scalar
            s = int(slots[0])
            mm1 = _unit_span(0, idx.size, *args)
            if self._ccy_slots(s + 1)[s] < 0:
                self.on_units([s])
            conv1 = usd_to_one(arr.usd, int(self._ccy_of[s]), arr.ccy["USD"])
            return np.array([f * mm1 * conv1]), np.array([mm1 * conv1])
        ptr = np.zeros(len(slots) + 1, dtype=np.int64)
        np.cumsum(lens, out=ptr[1:])
        mm = np.empty(len(slots))
        _SPAN_UNITS.for_units(len(slots))(ptr, *args, mm)
        sl = np.asarray(slots, dtype=np.int64)  # a tick's 65,000 slots: no Python loop
        missing = sl[self._ccy_slots(int(sl.max()) + 1)[sl] < 0]
        if missing.size:
            self.on_units(missing.tolist())
        ccy = self._ccy_of[sl]
        conv = usd_to(arr.usd, ccy, arr.ccy["USD"])
        return f * mm * conv, mm * conv


def usd_to(usd: FloatArray, ccy: np.ndarray, usd_code: int) -> FloatArray:
    """``market.convert(1.0, "USD", c)`` for currency codes ``ccy`` (1 for USD itself)."""
    return np.where(ccy == usd_code, 1.0, 1.0 * usd[usd_code] / usd[ccy])


def usd_to_one(usd: FloatArray, ccy: int, usd_code: int) -> float:
    """:func:`usd_to` of one currency code, on scalars (the same arithmetic: a what-if's)."""
    return 1.0 if ccy == usd_code else float(1.0 * usd[usd_code] / usd[ccy])
