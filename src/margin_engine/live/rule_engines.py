"""Rule-based venues over arrays in the live book: Hyperliquid margin tiers, dYdX v4 margin
fractions and Deribit standard margin, each a :class:`~margin_engine.live.engines.
PositionCacheEngine` (per-position figures cached, re-priced when the mark moved or the unit
changed; a unit's requirement the sum of its positions' figures).

Each engine reproduces its model's ``margin_unit`` (IM and MM) to 1e-9 and sends the units it
cannot reproduce on arrays through the reference path (``model.margin_unit``), as its docstring
lists: that path also raises the model's own errors for them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from margin_engine.domain.instruments import Instrument
from margin_engine.live.engines import FloatArray, PositionCacheEngine
from margin_engine.models.venues.deribit_common import collateral_haircut_usd
from margin_engine.models.venues.deribit_standard import (
    DeribitStandard,
    FuturesRates,
    short_option_per_unit,
)
from margin_engine.models.venues.dydx_v4 import (
    PPM,
    QUOTE_QUANTUMS,
    DydxV4,
    LiquidityTier,
    adjusted_initial_margin_ppm,
    exact,
    initial_margin_qq,
    leverage_to_imf_ppm,
    maintenance_margin_qq,
    quote_quantums,
)
from margin_engine.models.venues.hyperliquid import Hyperliquid

if TYPE_CHECKING:
    from margin_engine.live.book import LiveBook

#: Largest decimal mantissa :func:`_decimals` reads (2⁵⁰: a float's rounding interval is then
#: narrower than a quarter of the last decimal digit, so the decimal is unique).
_MANTISSA_MAX = float(2**50)
#: Products kept in int64 stay below this (2⁶²).
_INT_MAX = float(2**62)
#: Quote quantums below this (2⁵³) convert to floats exactly.
_EXACT_INT = 2**53
_POW10 = 10 ** np.arange(19, dtype=np.int64)


def _decimals(v: FloatArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The exact decimal each non-negative float stands for (its shortest representation, as
    ``dydx_v4.exact`` reads it) as ``m·10⁻ᵈ``: the smallest ``d ≤ 15`` with an integer
    ``m < 2⁵⁰`` and ``m/10ᵈ == v`` (the float division is correctly rounded and ``m``, ``10ᵈ``
    exact, so this is the round trip); ``ok`` False where there is none."""
    m = np.zeros(v.shape, dtype=np.int64)
    d = np.zeros(v.shape, dtype=np.int64)
    ok = np.zeros(v.shape, dtype=bool)
    for k in range(16):
        scale = float(_POW10[k])
        cand = np.round(v * scale)  # within 1/4 of the true m·10ᵈ where d is the right one
        hit = ~ok & (cand < _MANTISSA_MAX) & (cand / scale == v)
        m[hit] = cand[hit].astype(np.int64)
        d[hit] = k
        ok |= hit
        if ok.all():
            break
    return m, d, ok


def _shift(p: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``trunc(p·10ᵉ)`` for ``0 ≤ p < 2⁶²``, and whether it is below 2⁵³ (exact in floats)."""
    up = e >= 0
    ok = ~up | (p.astype(float) * 10.0 ** np.clip(e, 0, 18) < _INT_MAX)
    out = np.where(up, p * _POW10[np.clip(e, 0, 18)], p // _POW10[np.clip(-e, 0, 18)])
    out = np.where(~up & (-e > 18), 0, out)  # p < 2⁶² < 10¹⁹
    return out, ok & (out < _EXACT_INT)


class _NettedEngine(PositionCacheEngine):
    """Venues that net positions per symbol in a unit and margin each net position in its unit's
    currency (the settlement currency): a unit holding one symbol twice (possible in a loaded
    book, never after fills) goes through the reference path."""

    def __init__(self, live: LiveBook) -> None:
        super().__init__(live)
        self._lev = np.zeros(0)

    def needs_reference(self, slot: int) -> bool:
        lv = self.live
        ins = lv.pos_ins[lv.unit_positions(slot)]
        settle = lv.instruments.ccy[lv.unit(slot).currency]
        return bool(np.unique(ins).size < ins.size
                    or (lv.instruments.settle[ins] != settle).any())

    def _leverage(self, g: np.ndarray) -> FloatArray:
        """The account's leverage of positions ``g`` (the model's default where it sets one;
        NaN: none), kept per position (a position's leverage is fixed when it opens)."""
        n = self.live.pos_ins.size
        if self._lev.size < n:
            new = np.arange(self._lev.size, n, dtype=np.int64)
            self._lev = np.concatenate([self._lev, np.asarray(self.live.pos_leverage(new),
                                                              dtype=float)])
        return self._lev[g]

    def _leverage_one(self, g: int) -> float:
        """:meth:`_leverage` of one position."""
        return self._lev.item(g) if g < self._lev.size else float(
            self._leverage(np.array([g]))[0])


class TierEngine(_NettedEngine):
    """Hyperliquid margin tiers over arrays (``hyperliquid.tier_margin`` vectorised):
    ``N = |size|·(contract_size·mark)``, the tier holding ``N``, ``MM = max(N·mmr − deduction,
    0)``, ``IM = N / min(leverage, tier max leverage)``.

    Through the reference path: units holding one symbol twice, and units with a leverage the
    model refuses (not an integer from 1 to the asset's maximum) or a default leverage above
    the asset's maximum (the model caps it; an account's own such leverage is an error).
    """

    def __init__(self, live: LiveBook) -> None:
        super().__init__(live)
        model = live.model
        assert isinstance(model, Hyperliquid)
        arr = live.instruments
        tables = [model.params.margin_tables.get(ins.underlying) for ins in arr.instruments]
        n = len(tables)
        width = max((len(t.tiers) for t in tables if t is not None), default=1)
        self.bound = np.full((n, width), np.inf)
        self.rate = np.zeros((n, width))
        self.deduction = np.zeros((n, width))
        self.tier_leverage = np.ones((n, width))
        self.top = np.ones(n)
        self._tables: dict[int, tuple[list[float], list[float], list[float], list[float]]] = {}
        for k, t in enumerate(tables):
            if t is None:
                continue
            m = len(t.tiers)
            self.bound[k, :m] = [x.lower_bound for x in t.tiers]
            self.rate[k, :m] = t.rates()
            self.deduction[k, :m] = t.deductions()
            self.tier_leverage[k, :m] = [float(x.max_leverage) for x in t.tiers]
            self.top[k] = t.max_leverage

    def _chosen(self, g: np.ndarray) -> tuple[FloatArray, np.ndarray]:
        """Leverage per position (the asset's maximum where none is set) and whether the model
        takes it as it is."""
        lev = self._leverage(g)
        top = self.top[self.live.pos_ins[g]]
        unset = np.isnan(lev)
        ok = unset | ((lev == np.floor(lev)) & (lev >= 1.0) & (lev <= top))
        return np.where(unset | ~ok, top, lev), ok

    def needs_reference(self, slot: int) -> bool:
        return super().needs_reference(slot) or not self._chosen(
            self.live.unit_positions(slot))[1].all()

    def price_one(self, g: int, size: float) -> tuple[float, float]:
        """:meth:`price` of one position in plain floats (the same operations in the same
        order: ``hyperliquid.tier_margin``'s)."""
        arr = self.live.instruments
        k = self.live.pos_ins.item(g)
        n = abs(size) * (arr.contract_size.item(k) * arr.mark.item(k))
        bounds, rates, deductions, levs = self._table(k)
        tier = sum(1 for b in bounds if n >= b) - 1
        chosen = self._leverage_one(g)  # valid: the unit is not one for the reference
        lev = min(self.top.item(k) if math.isnan(chosen) else chosen, levs[tier])
        return n / lev, max(n * rates[tier] - deductions[tier], 0.0)

    def _table(self, k: int) -> tuple[list[float], list[float], list[float], list[float]]:
        got = self._tables.get(k)
        if got is None:
            got = self._tables[k] = (self.bound[k].tolist(), self.rate[k].tolist(),
                                     self.deduction[k].tolist(), self.tier_leverage[k].tolist())
        return got

    def price(self, g: np.ndarray, size: FloatArray) -> tuple[FloatArray, FloatArray]:
        arr = self.live.instruments
        ins = self.live.pos_ins[g]
        n = np.abs(size) * (arr.contract_size[ins] * arr.mark[ins])
        tier = (n[:, None] >= self.bound[ins]).sum(axis=1) - 1  # the last bound <= N
        lev = np.minimum(self._chosen(g)[0], self.tier_leverage[ins, tier])
        mm = np.maximum(n * self.rate[ins, tier] - self.deduction[ins, tier], 0.0)
        return n / lev, mm


def _mul_ppm_round_up(value: np.ndarray, ppm: np.ndarray) -> np.ndarray:
    """``ceil(value·ppm/10⁶)`` in int64 without overflow (``value`` < 2⁵³, ``ppm`` ≤ 10⁶)."""
    whole, part = np.divmod(value, PPM)
    return whole * ppm + (part * ppm + (PPM - 1)) // PPM


class FractionEngine(_NettedEngine):
    """dYdX v4 margin fractions over arrays, in the protocol's integer quote quantums.

    ``notional = trunc(|size|·contract_size·mark·10⁶)`` of the exact decimals the model reads
    is computed in int64 from the decimal mantissas of the size (:func:`_decimals`, up to 15
    decimals) and of ``contract_size·mark`` (per instrument, when its mark moves); in Python
    integers where those do not fit in int64 (e.g. a mark with 17 digits), and in fractions, as
    the model does, for sizes with more than 15 decimals;
    ``IMR = ceil(notional·max(IMF_oi, custom IMF)/10⁶)`` and ``MMR =
    ceil(ceil(notional·base IMF/10⁶)·fraction/10⁶)`` in int64; the OI-scaled IMF per market
    is recomputed (exactly) when its oracle price moves.

    Through the reference path: units holding one symbol twice, units with a leverage the model
    refuses (below 1 or above the market's maximum), and cross units holding an isolated market
    beside another market (the model refuses those).
    """

    def __init__(self, live: LiveBook) -> None:
        super().__init__(live)
        model = live.model
        assert isinstance(model, DydxV4)
        self.model = model
        ins = live.instruments.instruments
        none = LiquidityTier(initial_margin_ppm=0, maintenance_fraction_ppm=0)
        self.accepted = np.array([model.check_instrument(i) is None for i in ins], dtype=bool)
        self.tiers = [model.tier_of(i)[1] if ok else none
                      for i, ok in zip(ins, self.accepted.tolist(), strict=True)]
        self.base = np.array([t.initial_margin_ppm for t in self.tiers], dtype=np.int64)
        self.fraction = np.array([t.maintenance_fraction_ppm for t in self.tiers],
                                 dtype=np.int64)
        self.isolated = np.array([model.is_isolated_market(i) for i in ins], dtype=bool)
        self.oi = [0] * len(ins)
        """Open interest valued at the oracle price, quote quantums, per instrument."""
        self.imf_oi = self.base.copy()
        self._custom: dict[float, int] = {}
        self.exact_mantissa = [0] * len(ins)
        """``contract_size·mark`` per instrument: ``exact_mantissa·10^-digits`` exactly."""
        self.mantissa = np.zeros(len(ins), dtype=np.int64)  # the same where it fits in int64
        self.digits = np.zeros(len(ins), dtype=np.int64)
        self.fits = np.zeros(len(ins), dtype=bool)
        everything = np.arange(len(ins), dtype=np.int64)
        self._update_prices(everything)
        self._update_open_interest(everything)

    def _oi_base(self, ins: Instrument) -> float | None:
        oi = self.model.params.open_interest
        return oi.get(ins.symbol, oi.get(ins.underlying))

    def _update_prices(self, rows: np.ndarray) -> None:
        """``contract_size·mark`` of instruments ``rows`` as the exact decimal ``m·10⁻ᵈ`` the
        model reads (``m`` also in int64 where it fits)."""
        arr = self.live.instruments
        for k in rows[self.accepted[rows]].tolist():
            f = exact(arr.contract_size.item(k)) * exact(arr.mark.item(k))
            d = 0
            while (10**d) % f.denominator:  # a decimal's denominator divides some 10^d
                d += 1
            m = f.numerator * (10**d // f.denominator)
            self.exact_mantissa[k], self.digits[k] = m, d
            self.fits[k] = m < _INT_MAX
            self.mantissa[k] = m if self.fits[k] else 0

    def _update_open_interest(self, rows: np.ndarray) -> None:
        instruments = self.live.instruments.instruments
        for k in rows.tolist():
            oi_base = self._oi_base(instruments[k])
            if oi_base is None or instruments[k].mark_price is None:
                continue
            self.oi[k] = quote_quantums(exact(oi_base) * exact(instruments[k].mark_price))
            self.imf_oi[k] = adjusted_initial_margin_ppm(self.tiers[k], self.oi[k])

    def refresh_instruments(self, moved: np.ndarray) -> None:
        self._update_prices(moved)
        if self.model.params.open_interest:
            self._update_open_interest(moved)

    def _custom_imf(self, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Custom IMF (ppm; 0: none) per position and whether the model accepts its leverage."""
        lev = self._leverage(g)
        out = np.zeros(g.size, dtype=np.int64)
        ok = np.ones(g.size, dtype=bool)
        for j in np.flatnonzero(~np.isnan(lev)).tolist():
            v = float(lev[j])
            if v < 1.0:
                ok[j] = False
                continue
            imf = self._custom.get(v)
            if imf is None:
                imf = self._custom[v] = leverage_to_imf_ppm(v)
            out[j] = imf
        ok &= (out == 0) | (out >= self.base[self.live.pos_ins[g]])
        return out, ok

    def needs_reference(self, slot: int) -> bool:
        lv = self.live
        g = lv.unit_positions(slot)
        mixed = lv.unit(slot).scope != "position" and np.unique(lv.pos_ins[g]).size > 1 \
            and bool(self.isolated[lv.pos_ins[g]].any())
        return super().needs_reference(slot) or mixed or not self._custom_imf(g)[1].all()

    def _notional(self, k: int, size: float) -> int:
        """``trunc(|size|·contract_size·mark·10⁶)`` of instrument ``k`` in fractions (the
        model's ``quote_quantums`` of the same exact decimals), in Python integers: the exact
        quotient of two non-negative integers, floored (truncated, as ``int`` of the fraction
        is), without the fraction arithmetic."""
        f = exact(size)
        num, den = abs(f.numerator) * self.exact_mantissa[k], f.denominator
        e = 6 - self.digits.item(k)
        if e >= 0:
            num *= 10**e
        else:
            den *= 10**-e
        return num // den

    def price_one(self, g: int, size: float) -> tuple[float, float]:
        """:meth:`price` of one position, in fractions: the model's own arithmetic."""
        k = self.live.pos_ins.item(g)
        qq = self._notional(k, size)
        lev = self._leverage_one(g)  # valid: the unit is not one for the reference
        custom = 0 if math.isnan(lev) else self._custom.get(lev) or leverage_to_imf_ppm(lev)
        return (initial_margin_qq(qq, self.tiers[k], self.oi[k], custom) / QUOTE_QUANTUMS,
                maintenance_margin_qq(qq, self.tiers[k]) / QUOTE_QUANTUMS)

    def price(self, g: np.ndarray, size: FloatArray) -> tuple[FloatArray, FloatArray]:
        ins = self.live.pos_ins[g]
        ms, ds, decimal = _decimals(np.abs(size))
        ci = self.mantissa[ins]
        fast = decimal & self.fits[ins] & (ms.astype(float) * ci.astype(float) < _INT_MAX)
        notional, small = _shift(np.where(fast, ms * ci, 0), 6 - ds - self.digits[ins])
        fast &= small
        notional = np.where(fast, notional, 0)
        custom = self._custom_imf(g)[0]
        imr = _mul_ppm_round_up(notional, np.maximum(self.imf_oi[ins], custom))
        mmr = _mul_ppm_round_up(_mul_ppm_round_up(notional, self.base[ins]), self.fraction[ins])
        im = imr / float(QUOTE_QUANTUMS)
        mm = mmr / float(QUOTE_QUANTUMS)
        for j in np.flatnonzero(~fast).tolist():  # in Python integers or fractions
            k = int(ins[j])
            if decimal[j]:
                e = 6 - int(ds[j]) - self.digits.item(k)
                p = int(ms[j]) * self.exact_mantissa[k]
                qq = p * 10**e if e >= 0 else p // 10**-e
            else:
                qq = self._notional(k, float(size[j]))
            im[j] = initial_margin_qq(qq, self.tiers[k], self.oi[k], int(custom[j])) \
                / QUOTE_QUANTUMS
            mm[j] = maintenance_margin_qq(qq, self.tiers[k]) / QUOTE_QUANTUMS
        return im, mm


class StandardEngine(PositionCacheEngine):
    """Deribit standard margin over arrays (``deribit_standard._position`` vectorised): futures
    ``s·(base + s·increase)`` on the size ``s`` in base currency (times the index for linear
    contracts), short options ``|q|`` times the per-unit figures of their instrument
    (``short_option_per_unit``, computed once per instrument when its underlying moves), each
    converted to the unit's currency; cross collateral (X:SM) adds the unit's collateral
    haircut.

    A what-if on a unit with a collateral haircut is left to the rebuild (an option order moves
    the premium, hence the collateral and its haircut). Every unit is computed on arrays.
    """

    def __init__(self, live: LiveBook) -> None:
        super().__init__(live)
        model = live.model
        assert isinstance(model, DeribitStandard)
        self.model = model
        p = model.params
        arr = live.instruments
        ins = arr.instruments
        n = len(ins)
        self.option = np.array([i.is_option for i in ins], dtype=bool)
        self.linear_future = np.array([not i.is_option and not i.inverse for i in ins])
        self.inverse_future = np.array([not i.is_option and i.inverse for i in ins])
        zero = FuturesRates(im_base=0.0, mm_base=0.0, increase=0.0)
        rates = [p.futures.get(i.underlying, zero) for i in ins]
        self.im_base = np.array([r.im_base for r in rates])
        self.mm_base = np.array([r.mm_base for r in rates])
        self.increase = np.array([r.increase for r in rates])
        self.index_px = np.ones(n)  # linear futures: index in the settlement currency
        self.opt_im = np.zeros(n)  # short options: (IM, MM) per unit of underlying, settle ccy
        self.opt_mm = np.zeros(n)
        self.fx = np.ones(n)  # settlement currency -> the unit's currency
        self.haircut = p.collateral == "cross" and bool(p.collateral_haircuts)
        self._update_instruments(np.arange(n, dtype=np.int64))

    def _update_instruments(self, rows: np.ndarray) -> None:
        p = self.model.params
        mk = self.live.market
        arr = self.live.instruments
        forwards: dict[tuple[object, ...], float] = {}  # market.forward scans the instruments
        for k in rows.tolist():
            ins = arr.instruments[k]
            if self.model.check_instrument(ins) is not None:
                continue
            self.fx[k] = mk.convert(1.0, ins.settle,
                                    "USD" if p.collateral == "cross" else ins.settle)
            if not ins.is_option:
                if not ins.inverse:
                    self.index_px[k] = mk.index[ins.underlying] / mk.usd_price(ins.settle)
                continue
            assert ins.strike is not None
            mark = arr.mark.item(k)
            if p.option_otm_reference == "index":
                s = mk.index[ins.underlying]
            else:  # what market.forward reads of the option
                key = (ins.underlying_price, ins.underlying, ins.expiry)
                if key not in forwards:
                    forwards[key] = mk.forward(ins)
                s = forwards[key]
            otm = max(ins.strike - s, 0.0) if ins.is_call else max(s - ins.strike, 0.0)
            self.opt_im[k], self.opt_mm[k] = short_option_per_unit(ins, otm, s, mark, mk, p)

    def refresh_instruments(self, moved: np.ndarray) -> None:
        self._update_instruments(moved)

    def price_one(self, g: int, size: float) -> tuple[float, float]:
        """:meth:`price` of one position in plain floats (the same operations in the same
        order)."""
        arr = self.live.instruments
        k = self.live.pos_ins.item(g)
        q = size * arr.contract_size.item(k)
        if self.inverse_future[k]:
            q = q / arr.mark.item(k)
        s = abs(q)
        if self.option[k]:
            im, mm = (s * self.opt_im.item(k), s * self.opt_mm.item(k)) if q < 0.0 \
                else (0.0, 0.0)
        else:
            inc = self.increase.item(k)
            im = s * (self.im_base.item(k) + s * inc)
            mm = s * (self.mm_base.item(k) + s * inc)
            if self.linear_future[k]:
                im, mm = im * self.index_px.item(k), mm * self.index_px.item(k)
        fx = self.fx.item(k)
        return im * fx, mm * fx

    def price(self, g: np.ndarray, size: FloatArray) -> tuple[FloatArray, FloatArray]:
        arr = self.live.instruments
        ins = self.live.pos_ins[g]
        q = size * arr.contract_size[ins]
        inv = self.inverse_future[ins]
        q[inv] = q[inv] / arr.mark[ins[inv]]
        s = np.abs(q)
        im = s * (self.im_base[ins] + s * self.increase[ins])
        mm = s * (self.mm_base[ins] + s * self.increase[ins])
        lin = self.linear_future[ins]
        im[lin] = im[lin] * self.index_px[ins[lin]]
        mm[lin] = mm[lin] * self.index_px[ins[lin]]
        opt = self.option[ins]
        short = opt & (q < 0.0)
        im[opt] = np.where(short[opt], s[opt] * self.opt_im[ins[opt]], 0.0)
        mm[opt] = np.where(short[opt], s[opt] * self.opt_mm[ins[opt]], 0.0)
        fx = self.fx[ins]
        return im * fx, mm * fx

    def unit_terms(self, slots: Sequence[int]) -> tuple[FloatArray, FloatArray] | None:
        if not self.haircut:
            return None
        lv = self.live
        p = self.model.params
        im = np.zeros(len(slots))
        for k, s in enumerate(slots):
            unit = lv.unit(s)
            if unit.scope == "account" and unit.position_indices:
                usd = collateral_haircut_usd(unit.collateral, p.collateral_haircuts, lv.market)[0]
                im[k] = lv.market.convert(usd, "USD", unit.currency)
        return im, (im if p.haircut_applies_to_mm else np.zeros(len(slots)))

    def what_if(self, slot: int, orders: Sequence[tuple[int, float]]
                ) -> tuple[float, float] | None:
        if self.haircut:
            return None
        return super().what_if(slot, orders)
