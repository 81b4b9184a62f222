"""OKX portfolio margin on the live book's arrays: every unit's requirement at once
(``OkxPm.margin_unit`` over arrays, the same arithmetic in the same order).

Cached per instrument (:class:`~margin_engine.live.grid_engine.GridEngine`): one long contract's
P&L in every stress scenario (:func:`~margin_engine.models.venues.okx_pm.contract_scenarios_many`:
MR1's price × vol grid, MR2's decayed clock, MR6's extreme moves, MR3's vol shocks, MR5's rate
shocks) and its deltas, tenor, quote currency and minimum-charge inputs, revalued only when the
instrument moves; one extra row per coin values a coin balance (spot hedging). A re-margin of
many units is one numba kernel over the units' legs: per risk unit the spot offset, MR1, MR2,
MR6, MR3 per expiry, MR4 per tenor bucket, MR5, MR9's stablecoin matching and MR7's tiered
minimum charge; then MR8 on the unit's negative balances and IMR/MMR. Every component of the
model is reproduced; none falls back to the reference path.

A what-if re-aggregates the one unit from the cached rows with the orders added and the unit's
collateral as the orders leave it (their cash; :meth:`OkxPmEngine.what_if_with`, which the live
book calls), since the requirement reads collateral: MR8 on negative balances, coin balances
offsetting spot.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import numba
import numpy as np
from numba import prange

from margin_engine.domain.instruments import Kind
from margin_engine.domain.market import MarketSnapshot
from margin_engine.live.grid_engine import FloatArray, GridEngine, distinct_sorted
from margin_engine.live.span_engine import usd_to, usd_to_one
from margin_engine.maths.compiled import twins
from margin_engine.models.core.valuation import mark
from margin_engine.models.venues.okx_pm import (
    DAYS_PER_YEAR,
    MR9_ORDER,
    OkxPm,
    contract_scenarios_many,
    price_grid,
)
from margin_engine.models.venues.span_arrays import (
    Valuation,
    ValuationArrays,
    partials_many,
    valuations,
    values_now,
)
from margin_engine.policy.health import unit_equity
from margin_engine.policy.liquidation import UnitShifter

if TYPE_CHECKING:
    from margin_engine.live.book import LiveBook

_QUOTES = ("USDT", "USDC", "USD")
#: What a unit's requirement reads of its collateral: (currency code, balance rows, balance
#: amounts, debt currency codes, debt amounts).
_Info = tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]
_PAIRS = np.array([[_QUOTES.index(a), _QUOTES.index(b)] for a, b in MR9_ORDER], dtype=np.int64)


def _tiers(rows: Sequence[tuple[float | None, float]]) -> np.ndarray:
    """A tier table as ``[upper (inf: unbounded), factor]`` rows."""
    return np.array([[math.inf if u is None else u, f] for u, f in rows])


@numba.njit(cache=True, nogil=True)
def _tiered(amount, tiers):  # pragma: no cover - compiled
    """``okx_pm.tiered_sum`` (``amount`` >= 0; the last bound is inf)."""
    total = 0.0
    lower = 0.0
    for i in range(tiers.shape[0]):
        upper = tiers[i, 0]
        top = amount if upper == math.inf else min(amount, upper)
        if top > lower:
            total += (top - lower) * tiers[i, 1]
        if upper == math.inf or amount <= upper:
            return total
        lower = upper
    return total


@numba.njit(cache=True, nogil=True)
def _worst_loss(down, up):  # pragma: no cover - compiled
    """The larger of the losses ``-down`` and ``-up`` (two scenarios' P&L, USD), at least 0
    (MR3 per expiry, MR5)."""
    loss = 0.0
    if -down > loss:
        loss = -down
    if -up > loss:
        loss = -up
    return loss


@numba.njit(cache=True, nogil=True)
def _risk_unit(g, legs, qs, nl, pnl, spot, opt, years, tenor, fwd, dfw, td, quote, raw,
               grid_w, basis, tiers7, tiers9, pairs, f3, f6):  # pragma: no cover - compiled
    """``okx_pm._risk_unit(...).mmr`` of the legs of group ``g`` (``legs[:nl]`` rows, ``qs``
    sizes, ``raw`` their MR7 raw charges)."""
    d_spot = 0.0
    d_der = 0.0
    has_spot = False
    for i in range(nl):
        r = legs[i]
        if spot[r]:
            has_spot = True
            d_spot += qs[i] * td[r]
        else:
            d_der += qs[i] * td[r]
    frac = 1.0
    if has_spot:
        frac = min(1.0, abs(d_der) / abs(d_spot)) if d_spot * d_der < 0.0 else 0.0
    q = np.empty(nl)
    for i in range(nl):
        q[i] = qs[i] * frac if spot[legs[i]] else qs[i]
    w = 4 * grid_w
    mr1 = 0.0
    mr2 = 0.0
    mr6 = 0.0
    for s in range(w + 2):
        tot = 0.0
        for i in range(nl):
            tot += q[i] * pnl[legs[i], s]
        loss = -tot
        if s < 3 * grid_w:
            if loss > mr1:
                mr1 = loss
        elif s < w:
            if loss > mr2:
                mr2 = loss
        elif loss > mr6:
            mr6 = loss
    mr6 = f6 * mr6
    # MR3: options by expiry, ascending
    n_opt = 0
    ys = np.empty(max(nl, 1))
    keys = np.empty(max(nl, 1))
    for i in range(nl):
        if opt[legs[i]]:
            ys[n_opt] = years[legs[i]]
            n_opt += 1
    mr3 = 0.0
    for k in range(distinct_sorted(ys, n_opt, keys)):
        y = keys[k]
        dn = 0.0
        up = 0.0
        for i in range(nl):
            r = legs[i]
            if opt[r] and years[r] == y:
                dn += q[i] * pnl[r, w + 2]
                up += q[i] * pnl[r, w + 3]
        mr3 += f3 * _worst_loss(dn, up)
    # MR4: forward deltas per tenor bucket (spot excluded), ascending
    n_der = 0
    ts = np.empty(max(nl, 1))
    for i in range(nl):
        if not spot[legs[i]]:
            ts[n_der] = tenor[legs[i]]
            n_der += 1
    mr4 = 0.0
    for k in range(distinct_sorted(ts, n_der, keys)):
        t = keys[k]
        d = 0.0
        for i in range(nl):
            r = legs[i]
            if not spot[r] and tenor[r] == t:
                d += q[i] * fwd[r] * dfw[r]
        mr4 += basis[g] * t * abs(d)
    # MR5: options at the discount rate ± shock
    a5 = 0.0
    b5 = 0.0
    for i in range(nl):
        r = legs[i]
        if opt[r]:
            a5 += q[i] * pnl[r, w + 4]
            b5 += q[i] * pnl[r, w + 5]
    mr5 = _worst_loss(a5, b5)
    # MR9: stablecoin cash deltas matched pair by pair
    cash = np.zeros(3)
    for i in range(nl):
        r = legs[i]
        if quote[r] >= 0:
            cash[quote[r]] = cash[quote[r]] - q[i] * td[r]
    mr9 = 0.0
    for p in range(pairs.shape[0]):
        a, b = pairs[p, 0], pairs[p, 1]
        ca, cb = cash[a], cash[b]
        if ca * cb < 0.0:
            h = min(abs(ca), abs(cb))
            cash[a] = ca - math.copysign(h, ca)
            cash[b] = cb - math.copysign(h, cb)
            mr9 += _tiered(h, tiers9)
    # MR7
    raw_sum = 0.0
    for i in range(nl):
        raw_sum += raw[i]
    adj = _tiered(raw_sum, tiers7[g])
    return max(max(mr1, mr2, mr6) + mr3 + mr4 + mr5 + mr9, adj)


@numba.njit(cache=True, nogil=True)
def _unit_okx(a, b, ba, bb, rows, sizes, brow, bsize, da, db, dccy, damt, usd, pnl, group,
              in_unit, spot, opt, years, tenor, fwd, dfw, td, quote, rawk, cs, px_s, bv, npx,
              nq, opt_rate, d1_rate, grid_w, basis, tiers7, tiers9, pairs, f3, f6, n_groups,
              borrow, imr, init8):  # pragma: no cover - compiled
    """``(IMR, MMR)`` in USD of one unit: positions ``a:b``, balances ``ba:bb``, debts
    ``da:db``."""
    seen = np.zeros(n_groups, dtype=np.bool_)
    order = np.empty(max(b - a, 1), dtype=np.int64)
    n_g = 0
    for j in range(a, b):
        r = rows[j]
        if in_unit[r] and not seen[group[r]]:
            seen[group[r]] = True
            order[n_g] = group[r]
            n_g += 1
    n_max = b - a + bb - ba
    legs = np.empty(max(n_max, 1), dtype=np.int64)
    qs = np.empty(max(n_max, 1))
    raw = np.empty(max(n_max, 1))
    deriv = 0.0
    for t in range(n_g):
        g = order[t]
        nl = 0
        for j in range(a, b):
            r = rows[j]
            if not in_unit[r] or group[r] != g:
                continue
            q = sizes[j]
            legs[nl] = r
            qs[nl] = q
            x = 0.0
            if rawk[r] == 1:
                x = opt_rate * abs(q) * cs[r] * px_s[r]
                if q > 0:
                    x = min(x, q * bv[r])
            elif rawk[r] == 2:
                x = d1_rate * (abs(q) * cs[r] * npx[r] * nq[r])
            raw[nl] = x
            nl += 1
        for j in range(ba, bb):
            if group[brow[j]] == g:
                legs[nl] = brow[j]
                qs[nl] = bsize[j]
                raw[nl] = 0.0
                nl += 1
        deriv += _risk_unit(g, legs, qs, nl, pnl, spot, opt, years, tenor, fwd, dfw, td,
                            quote, raw, grid_w, basis, tiers7, tiers9, pairs, f3, f6)
    debt = 0.0
    for j in range(da, db):
        debt += -damt[j] * usd[dccy[j]]
    mr8 = borrow * debt
    return imr * deriv + init8 * mr8, deriv + mr8


def _okx_units(ptr, bptr, dptr, rows, sizes, brow, bsize, dccy, damt, usd, pnl, group,
               in_unit, spot, opt, years, tenor, fwd, dfw, td, quote, rawk, cs, px_s, bv, npx,
               nq, opt_rate, d1_rate, grid_w, basis, tiers7, tiers9, pairs, f3, f6, n_groups,
               borrow, imr, init8, out_im, out_mm):  # pragma: no cover - compiled
    for u in prange(ptr.shape[0] - 1):
        out_im[u], out_mm[u] = _unit_okx(
            ptr[u], ptr[u + 1], bptr[u], bptr[u + 1], rows, sizes, brow, bsize, dptr[u],
            dptr[u + 1], dccy, damt, usd, pnl, group, in_unit, spot, opt, years, tenor, fwd,
            dfw, td, quote, rawk, cs, px_s, bv, npx, nq, opt_rate, d1_rate, grid_w, basis,
            tiers7, tiers9, pairs, f3, f6, n_groups, borrow, imr, init8)


_OKX_UNITS = twins(_okx_units)


class OkxPmEngine(GridEngine):
    """``okx-pm`` over arrays (module docstring)."""

    def __init__(self, live: LiveBook) -> None:
        model = live.model
        assert isinstance(model, OkxPm)
        self.model = model
        p = model.params
        self.grid_w = max(len(price_grid(u)) for u in p.underlyings.values())
        self.width = 4 * self.grid_w + 6
        arr = live.instruments
        self._coins = [c for c in arr.currencies if c in live.market.index]
        self._group_code: dict[str, int] = {}
        names = [model.risk_unit_name(i) for i in arr.instruments]
        unds = [i.underlying for i in arr.instruments]
        balance_names = [c if p.risk_unit_merge else f"{c}-USDT" for c in arr.currencies]
        und_of: dict[int, str] = {}  # group code -> its underlying
        for name, und in [*zip(names, unds, strict=True),
                          *zip(balance_names, arr.currencies, strict=True)]:
            g = self._group_code.setdefault(name, len(self._group_code))
            und_of.setdefault(g, und)
        self.group = np.array([self._group_code[n] for n in [*names, *balance_names]],
                              dtype=np.int64)
        params = [model.underlying_params(und_of[g]) for g in range(len(self._group_code))]
        self.basis = np.array([u.mr4_annual_basis for u in params])
        width7 = max(len(u.mr7_tiers) for u in params)
        self.tiers7 = np.zeros((len(params), width7, 2))
        for g, u in enumerate(params):
            t = _tiers(u.mr7_tiers)
            self.tiers7[g, : len(t)] = t
        self.tiers9 = _tiers(p.mr9_tiers)
        self._und_params = params
        self._slot: dict[int, _Info] = {}
        self._slot_version = 0  # bumped whenever a slot's _Info changes
        # the concatenated _Info of a set of slots (a tick's 65,000), by the slots' bytes
        self._layouts: dict[bytes, tuple[int, tuple[np.ndarray, ...]]] = {}
        super().__init__(live)
        self._market_moved()

    def _extra_rows(self) -> int:
        return len(self.live.instruments.currencies)

    def _allocate(self, n: int) -> None:
        arr = self.live.instruments
        p = self.model.params
        kinds = [i.kind for i in arr.instruments] + [Kind.SPOT] * (n - self._n_ins)
        self.spot = np.array([k is Kind.SPOT for k in kinds], dtype=np.bool_)
        self.opt = np.array([k is Kind.OPTION for k in kinds], dtype=np.bool_)
        self.in_unit = ~self.spot | p.spot_hedging
        self.in_unit[self._n_ins:] = True
        self.quote = np.full(n, -1, dtype=np.int64)
        for k, i in enumerate(arr.instruments):
            q = "USD" if i.inverse else i.settle
            self.quote[k] = _QUOTES.index(q) if q in _QUOTES else -1
        self.rawk = np.where(self.opt, 1, np.where(self.spot, 0, 2)).astype(np.int64)
        self.cs = np.ones(n)
        self.cs[: self._n_ins] = arr.contract_size
        self.years, self.tenor = np.zeros(n), np.zeros(n)     # expiry, MR4 bucket (years)
        self.fwd, self.dfw, self.td = np.zeros(n), np.zeros(n), np.zeros(n)  # F, ∂V/∂F, Δ_USD
        self.px_s, self.bv = np.zeros(n), np.zeros(n)         # index, option value (USD)
        self.npx, self.nq = np.zeros(n), np.zeros(n)          # notional price and USD per quote

    def _set_rows(self, rows: np.ndarray, vs: list[Valuation], n_px: list[float],
                  n_q: list[float]) -> None:
        """Rows ``rows`` valued at ``vs`` (``n_px × n_q``: USD notional per contract and size,
        as ``notional_usd``)."""
        p = self.model.params
        unds = [self._und_params[g] for g in self.group[rows].tolist()]
        va = ValuationArrays.of(vs)
        self.rows[rows] = contract_scenarios_many(va, unds, p, self.grid_w)
        d_f, d_s = partials_many(va)
        self.years[rows] = va.years
        self.tenor[rows] = np.maximum(va.years, p.mr4_min_tenor_days / DAYS_PER_YEAR)
        self.fwd[rows], self.dfw[rows] = va.forward, d_f
        self.td[rows] = va.forward * d_f + va.spot * d_s
        self.px_s[rows] = va.spot
        self.bv[rows] = np.where(va.is_option, values_now(va)[:, 0], 0.0)
        self.npx[rows], self.nq[rows] = n_px, n_q

    def _revalue(self, rows: np.ndarray) -> None:
        self._revalue_at(rows, self.live.market)

    def _revalue_at(self, rows: np.ndarray, mk: MarketSnapshot) -> None:
        """Instrument rows ``rows`` valued at market ``mk`` (which lists the book's
        instruments in its order)."""
        instruments = [mk.instruments[k] for k in rows.tolist()]
        n_px, n_q = [], []
        for ins in instruments:
            if ins.inverse and not ins.is_option:  # notional_usd: |size| × contract size
                n_px.append(1.0)
                n_q.append(1.0)
            elif ins.is_option:
                n_px.append(0.0)
                n_q.append(0.0)
            else:
                n_px.append(mark(ins, mk))
                n_q.append(mk.usd_price(ins.settle))
        self._set_rows(rows, valuations(instruments, mk), n_px, n_q)

    def _market_moved(self) -> None:
        """The coin-balance rows (as ``OkxPm._add_balances`` values a balance)."""
        rows = self._coin_rows(self._coins, self.live.market)
        self.have[rows] = True

    def _coin_rows(self, coins: Sequence[str], mk: MarketSnapshot) -> np.ndarray:
        """The balance rows of ``coins`` valued at market ``mk``; returns the rows."""
        arr = self.live.instruments
        rows = np.array([self._n_ins + arr.ccy[c] for c in coins], dtype=np.int64)
        vs = [Valuation(symbol=f"{c} balance", kind=Kind.SPOT, inverse=False, is_call=False,
                        strike=0.0, contract_size=1.0, fx=1.0, spot=mk.index[c],
                        forward=mk.index[c], vol=0.0, years=0.0) for c in coins]
        if vs:
            self._set_rows(rows, vs, [0.0] * len(vs), [0.0] * len(vs))
        return rows

    def surplus_function(self, slot: int, underlying: str) -> Callable[[float], float]:
        """Equity − MM of unit ``slot`` against a factor on ``underlying``'s price, as the
        per-unit solver's (on its :class:`~margin_engine.policy.liquidation.UnitShifter`
        market), the requirement from the engine's kernel: the rows of the unit's instruments
        on ``underlying`` (and of its coin balance) are valued at the moved market in place of
        the cached ones for the one evaluation, then put back."""
        lv = self.live
        unit, account = lv.unit(slot), lv.account_object(lv.unit_account(slot))
        shifter = UnitShifter(lv.market, underlying,
                              {account.positions[j].symbol for j in unit.position_indices})
        arr = lv.instruments
        idx = lv.unit_positions(slot)
        held = lv.pos_ins[idx]
        self.ensure(held)
        code = arr.ccy[underlying]
        ks = np.unique(held[arr.underlying[held] == code])
        info = self._slot_info(unit.currency, unit.collateral)
        # the coin's balance row, where the unit holds a balance of it that may offset
        coins = [underlying] if (self._n_ins + code) in info[1].tolist() else []
        rows = np.concatenate([ks, np.array([self._n_ins + code] if coins else [],
                                            dtype=np.int64)])
        lens = np.array([idx.size], dtype=np.int64)
        sizes = lv.pos_size[idx].copy()
        cols = [self.rows, self.years, self.tenor, self.fwd, self.dfw, self.td, self.px_s,
                self.bv, self.npx, self.nq]

        def f(factor: float) -> float:
            moved = shifter.at(factor)
            eq = unit_equity(unit, account, moved, lv.policy)
            if factor == 1.0:
                return eq - float(self._kernel(idx, lens, [slot], sizes, [info])[1][0])
            saved = [c[rows].copy() for c in cols]
            try:
                if ks.size:
                    self._revalue_at(ks, moved)
                if coins:
                    self._coin_rows(coins, moved)
                usd = np.array([moved.usd_price(c) if moved.is_priced(c) else np.nan
                                for c in arr.currencies])
                mm = float(self._kernel(idx, lens, [slot], sizes, [info], usd=usd)[1][0])
            finally:
                for c, v in zip(cols, saved, strict=True):
                    c[rows] = v
            return eq - mm
        return f

    def on_units(self, slots: Sequence[int]) -> None:
        lv = self.live
        self._slot_version += 1
        for s in slots:
            unit = lv.unit(s)
            self._slot[s] = self._slot_info(unit.currency, unit.collateral)

    def _slot_info(self, currency: str, collateral: Mapping[str, float]) -> _Info:
        """What a unit's requirement reads of its currency and collateral: coin balances that
        may offset (spot hedging; sorted by currency, as ``OkxPm._add_balances``) and debts
        (MR8), as currency codes and amounts."""
        arr = self.live.instruments
        index = self.live.market.index
        hedge = self.model.params.spot_hedging
        bal = [(self._n_ins + arr.ccy[c], a) for c, a in sorted(collateral.items())
               if hedge and a > 0 and c in index]
        debt = [(arr.ccy[c], a) for c, a in collateral.items() if a < 0]
        return (arr.ccy[currency], np.array([b[0] for b in bal], dtype=np.int64),
                np.array([b[1] for b in bal], dtype=np.float64),
                np.array([d[0] for d in debt], dtype=np.int64),
                np.array([d[1] for d in debt], dtype=np.float64))

    def _kernel(self, idx: np.ndarray, lens: np.ndarray, slots: Sequence[int],
                sizes: np.ndarray, infos: Sequence[_Info] | None = None,
                usd: np.ndarray | None = None) -> tuple[FloatArray, FloatArray]:
        """``usd``: each currency's USD price (default: the live book's)."""
        lv = self.live
        arr = lv.instruments
        usd = arr.usd if usd is None else usd
        p = self.model.params
        key = layout = None
        if infos is None and len(slots) > 1:
            key = np.asarray(slots, dtype=np.int64).tobytes()
            got = self._layouts.get(key)
            if got is not None and got[0] == self._slot_version:
                layout = got[1]
        if infos is None and layout is None:
            missing = [s for s in slots if s not in self._slot]
            if missing:
                self.on_units(missing)
            infos = [self._slot[s] for s in slots]
        args = (usd, self.rows, self.group, self.in_unit, self.spot, self.opt, self.years,
                self.tenor, self.fwd, self.dfw, self.td, self.quote, self.rawk, self.cs,
                self.px_s, self.bv, self.npx, self.nq, p.mr7_option_rate,
                p.mr7_delta_one_rate, self.grid_w, self.basis, self.tiers7, self.tiers9, _PAIRS,
                p.mr3_fraction, p.mr6_fraction, len(self._group_code), p.mr8_borrow_rate,
                p.imr_factor, p.mr8_initial_factor)
        rows = lv.pos_ins[idx]
        if len(slots) == 1:  # a what-if: the unit's own arrays, no loop to enter
            assert infos is not None
            ccy1, brow, bsize, dccy, damt = infos[0]
            im1, mm1 = _unit_okx(0, idx.size, 0, brow.size, rows, sizes, brow, bsize, 0,
                                 dccy.size, dccy, damt, *args)
            conv1 = usd_to_one(usd, ccy1, arr.ccy["USD"])
            return np.array([im1 * conv1]), np.array([mm1 * conv1])
        ptr = np.zeros(len(slots) + 1, dtype=np.int64)
        np.cumsum(lens, out=ptr[1:])
        if layout is None:
            assert infos is not None
            layout = (*_ragged([x[1] for x in infos], [x[2] for x in infos]),
                      *_ragged([x[3] for x in infos], [x[4] for x in infos]),
                      np.fromiter((x[0] for x in infos), dtype=np.int64, count=len(slots)))
            if key is not None:
                if len(self._layouts) >= 8:
                    self._layouts.clear()
                self._layouts[key] = (self._slot_version, layout)
        bptr, brow, bsize, dptr, dccy, damt, ccy = layout
        im = np.empty(len(slots))
        mm = np.empty(len(slots))
        _OKX_UNITS.for_units(len(slots))(ptr, bptr, dptr, rows, sizes, brow, bsize, dccy,
                                         damt, *args, im, mm)
        conv = usd_to(usd, ccy, arr.ccy["USD"])
        return im * conv, mm * conv

    def what_if(self, slot: int, orders: Sequence[tuple[int, float]]
                ) -> tuple[float, float] | None:
        """``None``: the orders' cash may move collateral the requirement reads, and the
        book's :meth:`what_if_with` path says where it lands."""
        return None

    def what_if_with(self, slot: int, orders: Sequence[tuple[int, float]],
                     collateral: Mapping[str, float]) -> tuple[float, float] | None:
        """(IM, MM) of ``slot`` with the orders added and its collateral then ``collateral``:
        the unit's legs re-aggregated from the cached rows (no revaluation, no rebuild)."""
        got = self.legs_after(slot, orders)
        if got is None:
            return None
        idx, sizes = got
        info = self._slot_info(self.live.unit(slot).currency, collateral)
        im, mm = self._kernel(idx, np.array([idx.size], dtype=np.int64), [slot], sizes, [info])
        return float(im[0]), float(mm[0])


def _ragged(rows: Sequence[np.ndarray], vals: Sequence[np.ndarray]
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-unit arrays concatenated: ``(ptr, rows, values)``."""
    lens = np.fromiter((r.size for r in rows), dtype=np.int64, count=len(rows))
    ptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lens, out=ptr[1:])
    if not ptr[-1]:
        return ptr, np.zeros(0, dtype=np.int64), np.zeros(0)
    return ptr, np.concatenate(list(rows)), np.concatenate(list(vals))
