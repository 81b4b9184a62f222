"""The risk-based family on the live book: instrument scenario P&L cached per scenario family,
each unit's scenario vector cached, a what-if one row addition and one measure.

A unit on underlyings ``U`` in currency ``c`` gets the model's scenario set for ``U``
(``model.scenario_set``). When that set is the universe set (every held underlying) restricted to
``U`` — same dates, weights and columns, as with complete histories under historical or filtered
simulation — the unit reads the universe family's instrument rows, so each instrument is revalued
once per currency however many underlying combinations the book holds; otherwise (Monte Carlo,
whose copula depends on ``U``, or gaps in a history) the group ``(c, U)`` gets its own family.

The fused kernel measures each unit's total vector and, for the diversification cap, each
underlying's standalone vector in one pass over the unit's positions. The other components are
the model's own arithmetic (``RiskBasedModel.margin_unit``) over arrays; per-position add-ons
(liquidity, concentration, minimum charges) use the model's helpers unit by unit when the model
and market make them non-zero. ``apc = "floor"`` re-runs a second scenario set and is left to
the reference engine.
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
from margin_engine.maths.risk_measures import TAIL_TOLERANCE, normalise_weights
from margin_engine.maths.scenarios import ScenarioSet
from margin_engine.models.core.base import MarginModel
from margin_engine.models.core.valuation import notional_usd
from margin_engine.models.risk_based.model import RiskBasedModel

if TYPE_CHECKING:
    from margin_engine.live.book import LiveBook

_CODE = {"worst_loss": 0, "var": 1, "es": 2}


def supports(model: MarginModel) -> bool:
    """Whether the fast engine reproduces ``model`` (risk-based, APC other than ``floor``)."""
    return isinstance(model, RiskBasedModel) and model.params.apc != "floor"


@numba.njit(cache=True, nogil=True)
def _measure_vec(pnl, code, p, tol, weights, k_eq, atom_eq, m, method):  # pragma: no cover
    n = pnl.shape[0]
    loss = np.empty(n)
    for s in range(n):
        loss[s] = -pnl[s]
    buf_len = n if (method == SELECT_SORT or m > n) else max(m, 1)
    buf_v = np.empty(buf_len)
    buf_i = np.empty(buf_len, dtype=np.int64)
    val, _ = measure_row(loss, code, p, tol, weights, k_eq, atom_eq, m, method, buf_v, buf_i)
    return val if val > 0.0 else 0.0


@numba.njit(parallel=True, cache=True)
def _units_kernel(pnl, unit_ptr, pos_row, pos_size, slot_start, do_cap, code, p, tol,
                  weights, k_eq, atom_eq, m, method, out_vec, out_value,
                  out_standalone):  # pragma: no cover - compiled
    """Per unit: total scenario vector (kept), its measure, and Σ of per-underlying measures
    (positions of a unit come grouped by underlying; ``slot_start`` marks each group's first)."""
    n_units = unit_ptr.shape[0] - 1
    n = pnl.shape[1]
    buf_len = n if (method == SELECT_SORT or m > n) else max(m, 1)
    for u in prange(n_units):
        tot = out_vec[u]
        acc = np.zeros(n)
        loss = np.empty(n)
        buf_v = np.empty(buf_len)
        buf_i = np.empty(buf_len, dtype=np.int64)
        for s in range(n):
            tot[s] = 0.0
        a = unit_ptr[u]
        b = unit_ptr[u + 1]
        standalone = 0.0
        for j in range(a, b):
            if do_cap and slot_start[j] and j > a:
                for s in range(n):
                    loss[s] = -acc[s]
                    acc[s] = 0.0
                v, _ = measure_row(loss, code, p, tol, weights, k_eq, atom_eq, m, method,
                                    buf_v, buf_i)
                standalone += v if v > 0.0 else 0.0
            row = pnl[pos_row[j]]
            q = pos_size[j]
            for s in range(n):
                x = q * row[s]
                tot[s] += x
                acc[s] += x
        if do_cap and b > a:
            for s in range(n):
                loss[s] = -acc[s]
            v, _ = measure_row(loss, code, p, tol, weights, k_eq, atom_eq, m, method,
                                buf_v, buf_i)
            standalone += v if v > 0.0 else 0.0
        for s in range(n):
            loss[s] = -tot[s]
        if b > a:
            v, _ = measure_row(loss, code, p, tol, weights, k_eq, atom_eq, m, method,
                                buf_v, buf_i)
            out_value[u] = v if v > 0.0 else 0.0
        else:
            out_value[u] = 0.0
        out_standalone[u] = standalone


@dataclass
class _Family:
    """Instrument scenario P&L for one scenario set and one currency."""

    currency: str
    scen: ScenarioSet
    weights: np.ndarray  # empty: equal weights
    plan: tuple[int, float, int, int]  # k_eq, atom_eq, m, method
    row_of: dict[int, int] = field(default_factory=dict)
    pnl: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))
    lookup: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))


class RiskEngine(ReferenceEngine):
    """Cached scenario P&L and unit vectors for a :class:`RiskBasedModel`."""

    def __init__(self, live: LiveBook) -> None:
        super().__init__(live)
        model = live.model
        assert isinstance(model, RiskBasedModel)
        self.model = model
        self._reset()

    # -- families --------------------------------------------------------------------------
    def _reset(self) -> None:
        self._timestamp = self.live.market.timestamp
        self._families: dict[tuple[str, tuple[str, ...] | None], _Family] = {}
        self._slot_family: dict[int, tuple[str, tuple[str, ...] | None]] = {}
        self._slot_unds: dict[int, int] = {}
        self._vec: dict[int, np.ndarray] = {}
        self._separable_cache: bool | None = None
        self._parts: dict[int, dict[int, tuple[np.ndarray, float]]] = {}
        self._same_set: dict[tuple[str, ...], bool] = {}
        lv = self.live
        held = {lv.instruments.instruments[int(k)].underlying for k in lv.pos_ins.tolist()}
        self._universe = tuple(sorted(held))
        self.on_units(lv.live_slots())

    def _family(self, key: tuple[str, tuple[str, ...] | None]) -> _Family:
        fam = self._families.get(key)
        if fam is None:
            ccy, unds = key
            scen = self.model.scenario_set(self.live.market, unds or self._universe)
            p = self.model.params
            if p.measure == "worst_loss":
                w, plan = None, (0, 0.0, 1, 0)
            else:
                w = normalise_weights(scen.weights, scen.n)
                k_eq, atom, m = tail_plan(scen.n, 1.0 - p.confidence, w)
                plan = (k_eq, atom, m, choose_method(m, w is not None))
            fam = _Family(ccy, scen, w if w is not None else np.empty(0), plan)
            fam.pnl = np.empty((0, scen.n))
            fam.lookup = np.full(len(self.live.instruments.instruments), -1, dtype=np.int64)
            self._families[key] = fam
        return fam

    def _consistent(self, unds: tuple[str, ...], ccy: str, rows: Sequence[int]) -> bool:
        """Whether the group's scenario set is the universe set restricted to ``unds`` and its
        instruments' P&L reads only their own underlying's column there."""
        mk = self.live.market
        for k in rows:
            ins = self.live.instruments.instruments[k]
            if ins.settle != ins.underlying and ins.settle in mk.index:
                return False
        if ccy in mk.index and ccy in self._universe and ccy not in unds:
            return False
        if self._separable():
            return True
        if unds not in self._same_set:
            self._same_set[unds] = self._same_as_universe(unds)
        return self._same_set[unds]

    def _same_as_universe(self, unds: tuple[str, ...]) -> bool:
        mk = self.live.market
        try:
            mine = self.model.scenario_set(mk, unds)
            full = self.model.scenario_set(mk, self._universe)
        except InputError:
            return False
        if mine.labels != full.labels or mine.horizon_days != full.horizon_days:
            return False
        cols = [full.column(u) for u in unds]
        return (np.array_equal(mine.weights, full.weights)
                and np.array_equal(mine.price_moves, full.price_moves[:, cols])
                and np.array_equal(mine.vol_shifts, full.vol_shifts[:, cols]))

    def _separable(self) -> bool:
        """Historical and filtered-historical sets are built column by column from the rows
        where every underlying has a return; when the universe's window has no gap, every
        subset keeps the same rows, so its set is the universe's restricted (no need to
        generate each subset's set to compare)."""
        if self._separable_cache is None:
            ok = self.model.kind in ("historical", "filtered-historical")
            if ok:
                try:
                    r, _ = self.model._returns(self.live.market, self._universe,
                                               self.model.params.lookback_days)
                    ok = bool(np.isfinite(r).all())
                except InputError:
                    ok = False
            self._separable_cache = ok
        return self._separable_cache

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
        moved_set = set(moved.tolist())
        mk = self.live.market
        for fam in self._families.values():
            hit = [(k, r) for k, r in fam.row_of.items() if k in moved_set]
            if not hit:
                continue
            ins = [self.live.instruments.instruments[k] for k, _ in hit]
            fam.pnl[[r for _, r in hit]] = instrument_pnl_batch(
                ins, mk, fam.scen, fam.currency,
                vol_tenor_power=self.model.params.vol_tenor_power)

    def on_units(self, slots: Sequence[int]) -> None:
        lv = self.live
        arr = lv.instruments
        need: dict[tuple[str, tuple[str, ...] | None], set[int]] = {}
        for s in slots:
            rows = lv.pos_ins[lv.unit_positions(s)].tolist()
            unds = tuple(sorted({arr.instruments[k].underlying for k in rows}))
            for u in unds:
                if u not in self._universe:
                    self._universe = tuple(sorted({*self._universe, u}))
                    self._families = {k: f for k, f in self._families.items() if k[1]}
                    self._separable_cache = None
                    self._same_set = {}
                    for t, fkey in list(self._slot_family.items()):
                        if fkey[1] is None:
                            del self._slot_family[t]
            ccy = lv.unit(s).currency
            self._slot_unds[s] = len(unds)
            if not unds:
                self._slot_family[s] = (ccy, ())
                continue
            key: tuple[str, tuple[str, ...] | None] = (
                (ccy, None) if self._consistent(unds, ccy, rows) else (ccy, unds))
            self._slot_family[s] = key
            need.setdefault(key, set()).update(rows)
        for key, held in need.items():
            self._ensure_rows(self._family(key), sorted(held))

    def margins(self, slots: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        p = self.model.params
        lv = self.live
        missing = [s for s in slots if s not in self._slot_family]
        if missing:
            self.on_units(missing)
        by_fam: dict[tuple[str, tuple[str, ...] | None], list[int]] = {}
        for k, s in enumerate(slots):
            by_fam.setdefault(self._slot_family[s], []).append(k)
        mr = np.zeros(len(slots))
        standalone = np.zeros(len(slots))
        n_unds = np.zeros(len(slots), dtype=np.int64)
        for key, ks in by_fam.items():
            if key[1] == ():
                continue
            fam = self._family(key)
            idx, lens = lv.concat_positions([slots[k] for k in ks])
            ins = lv.pos_ins[idx]
            if (fam.lookup[ins] < 0).any():
                self._ensure_rows(fam, np.unique(ins[fam.lookup[ins] < 0]).tolist())
            unit = np.repeat(np.arange(len(ks)), lens)
            und = lv.instruments.underlying[ins]
            order = np.lexsort((und, unit))
            und_o, unit_o = und[order], unit[order]
            starts = np.ones(idx.size, dtype=np.bool_)
            starts[1:] = (und_o[1:] != und_o[:-1]) | (unit_o[1:] != unit_o[:-1])
            ptr = np.zeros(len(ks) + 1, dtype=np.int64)
            np.cumsum(lens, out=ptr[1:])
            vec = np.empty((len(ks), fam.scen.n))
            val = np.empty(len(ks))
            sa = np.empty(len(ks))
            k_eq, atom, m, method = fam.plan
            _units_kernel(fam.pnl, ptr, fam.lookup[ins[order]], lv.pos_size[idx][order],
                          starts, p.diversification_cap is not None, _CODE[p.measure],
                          1.0 - p.confidence, TAIL_TOLERANCE, fam.weights, k_eq, atom, m,
                          method, vec, val, sa)
            ka = np.asarray(ks)
            mr[ka], standalone[ka] = val, sa
            n_unds[ka] = np.bincount(unit_o[starts], minlength=len(ks))
            for j, k in enumerate(ks):
                self._parts.pop(slots[k], None)
                self._vec[slots[k]] = vec[j]
                self._slot_unds[slots[k]] = int(n_unds[k])
        im = self._im_many(slots, mr, standalone, n_unds)
        return im, p.mm_fraction * im

    def _needs_positions(self) -> bool:
        p = self.model.params
        return bool((p.liquidity and self.live.market.order_books) or p.open_interest
                    or p.short_option_min_rate > 0 or p.min_per_contract_usd > 0)

    def _im_many(self, slots: Sequence[int], mr: np.ndarray, standalone: np.ndarray,
                 n_unds: np.ndarray) -> np.ndarray:
        """``margin_unit``'s sum of components, over arrays when no per-position add-on
        applies (unit by unit otherwise)."""
        lv = self.live
        if self._needs_positions():
            return np.array([self._im(s, float(mr[k]), float(standalone[k]),
                                      lv.unit_positions(s), None)
                             for k, s in enumerate(slots)])
        p = self.model.params
        cap = np.zeros(len(slots))
        if p.diversification_cap is not None:
            cap = np.where(n_unds > 1, (1.0 - p.diversification_cap)
                           * np.maximum(0.0, standalone - mr), 0.0)
        factor = np.empty(len(slots))
        for k, s in enumerate(slots):
            rating = lv.account_object(lv.unit_account(s)).credit_rating
            if rating is None:  # addons.credit_addon's rule: the credit_unrated fraction
                factor[k] = p.credit_unrated
                continue
            if rating not in p.credit_table:
                raise InputError("credit_rating", f"unknown rating {rating!r} (known: "
                                 f"{', '.join(p.credit_table)})")
            factor[k] = p.credit_table[rating]
        credit = (mr + 0.0) * factor
        top_up = np.maximum(0.0, 0.0 - (mr + cap + 0.0 + 0.0))
        apc = p.apc_buffer * mr if p.apc == "buffer" and not p.apc_buffer_released else 0.0 * mr
        im = (((((mr + cap) + 0.0) + 0.0) + credit) + top_up) + apc
        empty = np.array([self._slot_family[s][1] == () for s in slots], dtype=bool)
        im[empty] = 0.0
        return im

    def _im(self, s: int, mr: float, standalone: float, idx: np.ndarray,
            extra: Sequence[tuple[int, float]] | None) -> float:
        """``margin_unit``'s components over a unit's market risk and standalone sum."""
        p = self.model.params
        lv = self.live
        if self._slot_family[s][1] == () and not extra:
            return 0.0
        cap = 0.0
        if p.diversification_cap is not None and self._slot_unds[s] > 1:
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
        apc = p.apc_buffer * mr if p.apc == "buffer" and not p.apc_buffer_released else 0.0
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

    def what_if(self, slot: int, orders: Sequence[tuple[int, float]]
                ) -> tuple[float, float] | None:
        key = self._slot_family.get(slot)
        vec = self._vec.get(slot)
        if key is None or vec is None or key[1] == ():
            return None
        fam = self._family(key)
        lv = self.live
        idx = lv.unit_positions(slot)
        held = lv.pos_ins[idx]
        if any(not (held == k).any() for k, _ in orders):
            return None
        p = self.model.params
        k_eq, atom, m, method = fam.plan
        code = _CODE[p.measure]
        total = vec.copy()
        for k, q in orders:
            total += q * fam.pnl[fam.row_of[k]]
        args = (code, 1.0 - p.confidence, TAIL_TOLERANCE, fam.weights, k_eq, atom, m, method)
        mr = _measure_vec(total, *args)
        standalone = 0.0
        if p.diversification_cap is not None and self._slot_unds[slot] > 1:
            parts = self._parts.get(slot)
            if parts is None:  # per underlying: its sub-vector and standalone measure
                und = lv.instruments.underlying[held]
                sizes = lv.pos_size[idx]
                parts = {}
                for u in np.unique(und).tolist():
                    sub = np.zeros(fam.scen.n)
                    for j in np.flatnonzero(und == u).tolist():
                        sub += sizes[j] * fam.pnl[fam.row_of[int(held[j])]]
                    parts[u] = (sub, _measure_vec(sub, *args))
                self._parts[slot] = parts
            moved: dict[int, np.ndarray] = {}
            for k, q in orders:
                u = int(lv.instruments.underlying[k])
                base = moved.get(u, parts[u][0])
                moved[u] = base + q * fam.pnl[fam.row_of[k]]
            standalone = sum(_measure_vec(moved[u], *args) if u in moved else v
                             for u, (_, v) in parts.items())
        im = self._im(slot, mr, standalone, idx, orders)
        return im, p.mm_fraction * im
