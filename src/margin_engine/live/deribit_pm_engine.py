"""deribit-pm (S:PM) on the live book: instrument risk vectors cached on their pair's grid, each
unit's pre-aggregated risk vectors cached, IM/MM of many units at once, a what-if one row
addition.

What ``DeribitPm.margin_unit`` does for a per-currency unit, over arrays:

- **instrument rows** (``revalue``, the model's own function): the P&L per unit of base size of
  each held instrument on its pair's grid (standard buckets × vol scenarios, then the extended
  moves), revalued only when its market moved (:meth:`DeribitPmEngine.on_market`);
- **pre-aggregated vectors**, one per (underlying, settlement currency) of a unit, as the
  model's ``vkey``: ``Σ q·row`` over the unit's positions in the unit's order, ``q`` the base
  size (``size·contract_size/mark`` for inverse futures); with each vector its roll shock
  ``Σ |q|·P·max(min_annualised_move, annualised_move_risk·g(T))`` over futures. A vector is
  re-gathered (numba, in the model's order of additions, so to the bit) only when one of its
  instruments moved or its unit changed. A vector holds one underlying's positions and a market
  update moves whole underlyings (``InstrumentArrays.refresh``), so re-gathering a moved vector
  reads the same rows as adding ``Σ q·Δrow`` would, without the drift of incremental sums;
  vectors on other underlyings (a stablecoin unit's ETH vector on a BTC tick) are untouched;
- **aggregation** per vector (numba): extended entries reduced by the dampener (USD at the edge
  price for coins), gains times ``pnl_offset`` capped at ``max_offsetable_pnl``; the worst case
  ``max(0, −min)``, rounded as the model rounds it (Python's ``round`` to the bit,
  :func:`~margin_engine.maths.rounding.round_decimals`);
- **per unit**: ``risk_matrix_margin = Σ (worst_case + roll_shock)`` over its vectors in order,
  ``MM = mm_factor·rmm``, ``IM = max(round(rmm + order margins), MM)``.

A what-if adds ``Δq·row`` to the cached vector of each ordered instrument (and the change of
its roll shock) and re-aggregates the unit's few vectors. A fill gives the account's units new
slots, laid out and gathered afresh (a unit's few rows); the vectors of the replaced slots are
dropped once they outnumber the live ones.

Falls back to the reference (``margin_unit``) for X:PM units (``collateral='cross'``: one USD
unit over the account, coin collateral revalued in the scenarios,
:mod:`~margin_engine.models.venues.deribit_pm_cross`); their what-if is rebuilt by the book.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numba
import numpy as np
from numba import prange

from margin_engine.domain.market import MarketSnapshot
from margin_engine.live.arrays import Column
from margin_engine.live.engines import ReferenceEngine
from margin_engine.maths.compiled import twins
from margin_engine.maths.rounding import round_decimals
from margin_engine.models.venues.deribit_common import currency_key, pair_key
from margin_engine.models.venues.deribit_pm import (
    DeribitPm,
    _amount,
    _linear_ref,
    _years_move,
    revalue,
)
from margin_engine.policy.health import unit_equity
from margin_engine.policy.liquidation import UnitShifter

if TYPE_CHECKING:
    from margin_engine.live.book import LiveBook

FloatArray = np.ndarray


@numba.njit(cache=True, nogil=True)
def _worst_row(row, ns, deductible, ratio, damp, offset, max_off):  # pragma: no cover
    """``aggregate`` of one pre-aggregated vector, then ``max(0, −min)``."""
    low = np.inf
    for s in range(row.shape[0]):
        a = row[s]
        if deductible and s >= ns:
            adj = min(ratio[s - ns] * damp[s - ns], abs(a))
            sign = 1.0 if a > 0.0 else (-1.0 if a < 0.0 else 0.0)
            a = a - sign * adj
        if a > 0.0:
            a = min(a * offset, max_off)
        if a < low:
            low = a
    w = -low
    return w if w > 0.0 else 0.0


def _worst_many(V, vids, kidx, ns, deductible, ratio, damp, offset, max_off,
                out):  # pragma: no cover - compiled below
    """``_worst_row`` of vectors ``vids`` of ``V`` (``kidx``: each one's table row)."""
    for t in prange(vids.shape[0]):
        k = kidx[t]
        out[t] = _worst_row(V[vids[t]], ns, deductible, ratio[k], damp[k], offset[k],
                            max_off[k])


def _gather(rows, V, roll, vids, v_start, v_end, vpos, pos_ins, pos_size, inv_fut, is_opt, cs,
            mark, ref, years_move):  # pragma: no cover - compiled below
    """Each vector ``Σ q·row`` over its positions in order (the model's ``np.sum`` over the
    stacked rows adds them one after the other), and its roll shock."""
    n = V.shape[1]
    for t in prange(vids.shape[0]):
        v = vids[t]
        out = V[v]
        for s in range(n):
            out[s] = 0.0
        r = 0.0
        for j in range(v_start[v], v_end[v]):
            g = vpos[j]
            k = pos_ins[g]
            q = pos_size[g] * cs[k] / mark[k] if inv_fut[k] else pos_size[g] * cs[k]
            row = rows[k]
            for s in range(n):
                out[s] += q * row[s]
            if not is_opt[k]:
                r += abs(q) * ref[k] * years_move[k]
        roll[v] = r


# each vector on its own: on every core for a tick's tens of thousands (twins: serial below)
_WORST_MANY = twins(_worst_many)
_GATHER = twins(_gather)


@numba.njit(cache=True, nogil=True)
def _unit_sums(worst, roll, nv, out):  # pragma: no cover - compiled
    """Per unit, ``Σ (worst_case + roll_shock)`` over its vectors in order."""
    t = 0
    for u in range(nv.shape[0]):
        acc = 0.0
        for _ in range(nv[u]):
            acc += worst[t] + roll[t]
            t += 1
        out[u] = acc


def _ranges(start: np.ndarray, count: np.ndarray) -> np.ndarray:
    """``concatenate([arange(a, a + n) for a, n in zip(start, count)])`` without the loop."""
    total = int(count.sum())
    if not total:
        return np.empty(0, dtype=np.int64)
    ends = np.cumsum(count)
    return np.arange(total, dtype=np.int64) + np.repeat(start - (ends - count), count)


class DeribitPmEngine(ReferenceEngine):
    """Cached risk vectors and per-unit aggregation for :class:`DeribitPm` (S:PM units)."""

    def __init__(self, live: LiveBook) -> None:
        super().__init__(live)
        model = live.model
        assert isinstance(model, DeribitPm)
        self.model = model
        p = model.params
        arr = live.instruments
        n = len(arr.instruments)
        self._nc = len(arr.currencies)
        self._ns = 3 * (2 * p.buckets_count + 1)
        self._S = self._ns + len(p.extended_moves)
        self._grids = {c: model.grid(arr.currencies[c]) for c in np.unique(arr.underlying).tolist()
                       if pair_key(arr.currencies[c]) in p.currency_pair}
        # instruments: rows on their grid and the scalars of base size and roll shock
        self._rows = np.zeros((n, self._S))
        self._valued = np.zeros(n, dtype=bool)  # rows and scalars current
        self._held = np.zeros(n, dtype=bool)  # read by a vector: revalued when it moves
        self._is_opt = np.array([i.is_option for i in arr.instruments], dtype=bool)
        self._inv_fut = arr.inverse & ~self._is_opt
        self._cs = arr.contract_size.copy()
        self._mark = np.full(n, math.nan)
        self._ref = np.zeros(n)
        self._years_move = np.zeros(n)
        self._clear_vectors()
        self.compact_min = 4096
        """Vectors kept before :meth:`on_units` looks for those of replaced units."""
        self._compact_at = 0  # vectors beyond which on_units looks for replaced units' ones
        self._keys: set[int] = set()  # (underlying, settle) keys of every vector
        self._tab: tuple[object, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                         np.ndarray] | None = None

    def _clear_vectors(self) -> None:
        """No vectors, every slot unknown."""
        # vectors: pre-aggregated P&L, roll shock, key (underlying, settle), positions
        self._V = np.empty((1024, self._S))
        self._roll = np.empty(1024)
        self._nv = 0
        self._v_key = Column(np.int64)
        self._v_start = Column(np.int64)
        self._v_end = Column(np.int64)
        self._fresh = Column(np.bool_)
        self._vpos = Column(np.int64)
        # slots: first vector, vector count (-1 unknown, -2 the reference's), order margins
        self._slot_v0 = np.zeros(0, dtype=np.int64)
        self._slot_nv = np.zeros(0, dtype=np.int64)
        self._slot_extra = np.zeros(0)
        self._lookup: dict[int, dict[int, tuple[int, int]]] = {}

    def _compact(self) -> None:
        """Drop the vectors of units the book has replaced (a fill or deposit gives the
        account's units new slots) once they outnumber the live ones: the live units are laid
        out again and re-gathered when next read."""
        slots = self.live.live_slots()
        live = int(np.maximum(self._slot_nv[slots], 0).sum())
        if self._nv > 2 * live:
            self._clear_vectors()
            self._layout(slots)
        self._compact_at = max(2 * self._nv, self.compact_min)

    # -- instruments ---------------------------------------------------------------------------
    def _value(self, ks: np.ndarray, mk: MarketSnapshot | None = None) -> None:
        """Revalue instruments ``ks`` on their pair's grid (``revalue``, per underlying) at
        market ``mk`` (default: the live book's; it lists the book's instruments in order)."""
        lv = self.live
        mk = lv.market if mk is None else mk
        p = self.model.params
        arr = lv.instruments
        und = arr.underlying[ks]
        for c in np.unique(und).tolist():
            group = ks[und == c]
            ins = [mk.instruments[k] for k in group.tolist()]
            name = arr.currencies[c]
            rv = revalue(ins, mk, self._grids[c], p.currency_pair[pair_key(name)], p)
            self._rows[group] = rv.pnl
            for k, i in zip(group.tolist(), ins, strict=True):
                self._mark[k] = math.nan if i.mark_price is None else i.mark_price
                if not i.is_option:
                    self._ref[k] = _linear_ref(i, mk, p)
                    self._years_move[k] = _years_move(
                        mk.years_to_expiry(i), p.currency[currency_key(i.settle)],
                        p.roll_shock_term)
        self._valued[ks] = True

    # -- layout ----------------------------------------------------------------------------------
    def _grow_slots(self) -> None:
        n = self.live.n_units
        have = self._slot_nv.size
        if n > have:
            size = max(n, 2 * have)
            self._slot_v0 = np.concatenate([self._slot_v0, np.zeros(size - have, np.int64)])
            self._slot_nv = np.concatenate([self._slot_nv, np.full(size - have, -1, np.int64)])
            self._slot_extra = np.concatenate([self._slot_extra, np.zeros(size - have)])

    def _layout(self, slots: Sequence[int]) -> None:
        """Group each unit's positions into its vectors (first appearance of each (underlying,
        settle) in the unit's order; positions in order inside a vector)."""
        lv = self.live
        self._grow_slots()
        p = self.model.params
        arr = lv.instruments
        ref = [s for s in slots if lv.unit(s).scope != "currency"]
        if ref:
            self._slot_nv[ref] = -2
        cur = np.array([s for s in slots if lv.unit(s).scope == "currency"], dtype=np.int64)
        if not cur.size:
            return
        if p.order_margins:
            for s in cur.tolist():
                acct = lv.account_object(lv.unit_account(s))
                orders = {c.upper(): m for c, m in p.order_margins.get(acct.id, {}).items()}
                om = orders.get(lv.unit(s).currency.upper())
                self._slot_extra[s] = 0.0 if om is None else (
                    om.open_orders_margin + om.mmp_margin + om.spot_margin)
        else:
            self._slot_extra[cur] = 0.0
        idx, lens = lv.concat_positions(cur.tolist())
        m = idx.size
        unit = np.repeat(np.arange(cur.size, dtype=np.int64), lens)
        k = lv.pos_ins[idx]
        key = arr.underlying[k] * self._nc + arr.settle[k]
        o1 = np.lexsort((key, unit))  # stable: positions stay in order inside a group
        ku, kk = unit[o1], key[o1]
        start = np.ones(m, dtype=bool)
        start[1:] = (ku[1:] != ku[:-1]) | (kk[1:] != kk[:-1])
        gid = np.cumsum(start) - 1
        ng = int(start.sum())
        g_unit = ku[start]
        g_order = np.lexsort((o1[start], g_unit))  # in a unit, by first appearance
        rank = np.empty(ng, dtype=np.int64)
        rank[g_order] = np.arange(ng)
        pos_rank = np.empty(m, dtype=np.int64)
        pos_rank[o1] = rank[gid]
        vpos = idx[np.lexsort((np.arange(m), pos_rank))]
        counts = np.bincount(pos_rank, minlength=ng)
        base_v, base_p = self._nv, self._vpos.n
        self._vpos.extend(vpos)
        ends = np.cumsum(counts) + base_p
        self._v_start.extend(ends - counts)
        self._v_end.extend(ends)
        self._v_key.extend(kk[start][g_order])
        self._keys.update(np.unique(kk[start]).tolist())
        self._fresh.extend(np.zeros(ng, dtype=bool))
        self._grow_vectors(base_v + ng)
        nv = np.bincount(g_unit, minlength=cur.size)
        self._slot_nv[cur] = nv
        self._slot_v0[cur] = base_v + np.cumsum(nv) - nv
        self._nv = base_v + ng
        self._held[k] = True

    def _grow_vectors(self, n: int) -> None:
        if n > self._V.shape[0]:
            size = max(n, 2 * self._V.shape[0])
            grown = np.empty((size, self._S))
            grown[: self._nv] = self._V[: self._nv]
            self._V = grown
            roll = np.empty(size)
            roll[: self._nv] = self._roll[: self._nv]
            self._roll = roll

    def _refresh(self, vids: np.ndarray) -> None:
        """Re-gather the vectors ``vids`` that are not current."""
        fresh = self._fresh.a
        stale = vids[~fresh[vids]]
        if not stale.size:
            return
        lv = self.live
        start, end = self._v_start.a, self._v_end.a
        pos = self._vpos.a[_ranges(start[stale], end[stale] - start[stale])]
        ks = lv.pos_ins[pos]
        if not self._valued[ks].all():  # rows never valued, or moved while no vector read them
            ks = np.unique(ks)
            self._value(ks[~self._valued[ks]])
        _GATHER.for_units(stale.size)(
            self._rows, self._V, self._roll, stale, start, end, self._vpos.a, lv.pos_ins,
            lv.pos_size, self._inv_fut, self._is_opt, self._cs, self._mark, self._ref,
            self._years_move)
        fresh[stale] = True

    def _tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per (underlying, settle) key at the current market: the extended entries' ratio
        ``max(|x|/price_range − 1, 0)`` and dampener, ``pnl_offset``, ``max_offsetable_pnl``
        (``DeribitPm._aggregate``'s inputs); and key → table row."""
        mk = self.live.market
        if self._tab is not None and self._tab[0] is mk and self._tab[1].size == len(self._keys):
            return self._tab[2:]
        keys = np.array(sorted(self._keys), dtype=np.int64)
        got = self._tables_at(keys, mk)
        self._tab = (mk, keys, *got)
        return got

    def _tables_at(self, keys: np.ndarray, mk: MarketSnapshot
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`_tables` of ``keys`` at market ``mk``."""
        p = self.model.params
        names = self.live.instruments.currencies
        ns, n_ext = self._ns, self._S - self._ns
        row_of = np.full(self._nc ** 2, -1, dtype=np.int64)
        ratio = np.zeros((keys.size, n_ext))
        damp = np.zeros((keys.size, n_ext))
        offset = np.zeros(keys.size)
        max_off = np.zeros(keys.size)
        usd = p.currency_amounts_in_usd
        for j, key in enumerate(keys.tolist()):
            row_of[key] = j
            g = self._grids[key // self._nc]
            settle = names[key % self._nc]
            cp = p.currency[currency_key(settle)]
            ratio[j] = np.maximum(np.abs(g.moves[ns:]) / g.price_range - 1.0, 0.0)
            d = np.full(n_ext, _amount(cp.extended_dampener, settle, usd, mk))
            if usd and currency_key(settle) != "usd":
                d = d / (1.0 + g.edge[ns:])
            damp[j] = d
            offset[j] = cp.pnl_offset
            max_off[j] = _amount(cp.max_offsetable_pnl, settle, usd, mk)
        return row_of, ratio, damp, offset, max_off

    # -- engine interface ----------------------------------------------------------------------
    def on_market(self, moved: np.ndarray) -> None:
        if not moved.size:
            return
        self._valued[moved] = False
        redo = moved[self._held[moved]]
        if redo.size:
            self._value(redo)
        arr = self.live.instruments
        keys = np.unique(arr.underlying[moved] * self._nc + arr.settle[moved])
        if self._nv:
            fresh = self._fresh.a
            fresh &= ~np.isin(self._v_key.a, keys)

    def on_units(self, slots: Sequence[int]) -> None:
        self._layout(slots)
        if self._nv > self._compact_at:
            self._compact()

    def margins(self, slots: Sequence[int]) -> tuple[FloatArray, FloatArray]:
        sl = np.asarray(slots, dtype=np.int64)
        self._grow_slots()
        unknown = sl[self._slot_nv[sl] == -1]
        if unknown.size:
            self._layout(unknown.tolist())
        im = np.empty(sl.size)
        mm = np.empty(sl.size)
        ref = self._slot_nv[sl] == -2
        if ref.any():
            im[ref], mm[ref] = super().margins(sl[ref].tolist())
        cur = sl[~ref]
        if not cur.size:
            return im, mm
        p = self.model.params
        nv = self._slot_nv[cur]
        vids = _ranges(self._slot_v0[cur], nv)
        self._refresh(vids)
        row_of, ratio, damp, offset, max_off = self._tables()
        worst = np.empty(vids.size)
        _WORST_MANY.for_units(vids.size)(
            self._V, vids, row_of[self._v_key.a[vids]], self._ns,
            p.extended_dampener_rule == "deductible", ratio, damp, offset, max_off, worst)
        rmm = np.empty(cur.size)
        _unit_sums(round_decimals(worst, p.worst_case_decimals), self._roll[vids], nv, rmm)
        m = p.mm_factor * rmm
        im[~ref] = np.maximum(round_decimals(rmm + self._slot_extra[cur],
                                             p.initial_margin_decimals), m)
        mm[~ref] = m
        return im, mm

    def surplus_function(self, slot: int, underlying: str) -> Callable[[float], float]:
        """Equity − MM of unit ``slot`` against a factor on ``underlying``'s price, as the
        per-unit solver's (on its :class:`~margin_engine.policy.liquidation.UnitShifter`
        market), the requirement from the engine's arrays: the unit's instruments on
        ``underlying`` revalued at the moved market and its vectors on it re-gathered for the
        one evaluation (then the cached ones put back), every vector aggregated as
        :meth:`margins` does. X:PM units: the reference's."""
        lv = self.live
        self.margins([slot])  # laid out, vectors current
        v0, nv = int(self._slot_v0[slot]), int(self._slot_nv[slot])
        if nv < 0:
            return super().surplus_function(slot, underlying)
        unit, account = lv.unit(slot), lv.account_object(lv.unit_account(slot))
        shifter = UnitShifter(lv.market, underlying,
                              {account.positions[j].symbol for j in unit.position_indices})
        arr = lv.instruments
        code = arr.ccy[underlying]
        vids = np.arange(v0, v0 + nv, dtype=np.int64)
        on_und = vids[self._v_key.a[vids] // self._nc == code]
        start, end = self._v_start.a, self._v_end.a
        ks = np.unique(lv.pos_ins[self._vpos.a[_ranges(start[on_und],
                                                       end[on_und] - start[on_und])]])
        kidx_of = self._v_key.a[vids]
        keys = np.unique(kidx_of)  # the unit's own: the tables at a moved market per call
        p = self.model.params
        cols = [self._rows, self._mark, self._ref, self._years_move]

        def f(factor: float) -> float:
            moved = shifter.at(factor)
            eq = unit_equity(unit, account, moved, lv.policy)
            saved = [c[ks].copy() for c in cols]
            V, roll = self._V[on_und].copy(), self._roll[on_und].copy()
            try:
                self._value(ks, moved)
                _GATHER.for_units(on_und.size)(
                    self._rows, self._V, self._roll, on_und, start, end, self._vpos.a,
                    lv.pos_ins, lv.pos_size, self._inv_fut, self._is_opt, self._cs,
                    self._mark, self._ref, self._years_move)
                row_of, ratio, damp, offset, max_off = self._tables_at(keys, moved)
                worst = np.empty(nv)
                _WORST_MANY.for_units(vids.size)(
                    self._V, vids, row_of[kidx_of], self._ns,
                    p.extended_dampener_rule == "deductible", ratio, damp, offset, max_off,
                    worst)
                unit_roll = self._roll[vids].copy()
            finally:
                for c, v in zip(cols, saved, strict=True):
                    c[ks] = v
                self._V[on_und], self._roll[on_und] = V, roll
            rmm = np.empty(1)
            _unit_sums(round_decimals(worst, p.worst_case_decimals), unit_roll,
                       np.array([nv], dtype=np.int64), rmm)
            return eq - p.mm_factor * float(rmm[0])
        return f

    def _positions_of(self, slot: int, v0: int, nv: int) -> dict[int, tuple[int, int]]:
        """Instrument row → (vector of the unit, global position id)."""
        got = self._lookup.get(slot)
        if got is None:
            got = {}
            ins = self.live.pos_ins
            for j in range(nv):
                a, b = int(self._v_start.a[v0 + j]), int(self._v_end.a[v0 + j])
                for g in self._vpos.a[a:b].tolist():
                    got.setdefault(int(ins[g]), (j, g))
            if len(self._lookup) > 4096:
                self._lookup.clear()
            self._lookup[slot] = got
        return got

    def _base(self, k: int, size: float) -> float:
        """``base_size`` in plain floats."""
        if self._inv_fut[k]:
            return size * float(self._cs[k]) / float(self._mark[k])
        return size * float(self._cs[k])

    def what_if(self, slot: int, orders: Sequence[tuple[int, float]]
                ) -> tuple[float, float] | None:
        if slot >= self._slot_nv.size or self._slot_nv[slot] < 0:
            return None
        v0, nv = int(self._slot_v0[slot]), int(self._slot_nv[slot])
        if not self._fresh.a[v0: v0 + nv].all():
            self._refresh(np.arange(v0, v0 + nv, dtype=np.int64))
        look = self._positions_of(slot, v0, nv)
        P = self._V[v0: v0 + nv].copy()
        roll = self._roll[v0: v0 + nv].tolist()
        sizes: dict[int, float] = {}
        lv = self.live
        for k, q in orders:
            hit = look.get(k)
            if hit is None:
                return None
            j, g = hit
            old = sizes.get(k, float(lv.pos_size[g]))
            new = old + q
            sizes[k] = new
            q0, q1 = self._base(k, old), self._base(k, new)
            P[j] += (q1 - q0) * self._rows[k]
            if not self._is_opt[k]:
                per = float(self._ref[k]) * float(self._years_move[k])
                roll[j] += abs(q1) * per - abs(q0) * per
        row_of, ratio, damp, offset, max_off = self._tables()
        p = self.model.params
        worst = np.empty(nv)
        _WORST_MANY.serial(P, np.arange(nv), row_of[self._v_key.a[v0: v0 + nv]], self._ns,
                           p.extended_dampener_rule == "deductible", ratio, damp, offset,
                           max_off, worst)
        dec = p.worst_case_decimals
        rmm = 0.0
        for w, r in zip(worst.tolist(), roll, strict=True):
            rmm += (w if dec is None else round(w, dec)) + r
        m = p.mm_factor * rmm
        total = rmm + float(self._slot_extra[slot])
        im = total if p.initial_margin_decimals is None else round(
            total, p.initial_margin_decimals)
        return max(im, m), m
