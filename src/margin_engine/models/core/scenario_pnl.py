"""Full revaluation: every instrument under every scenario, once (DESIGN §1).

``instrument_pnl`` returns the P&L of ONE contract (long) per scenario, in a target currency:

- linear futures/perpetuals/spot: ``cs·mark·x`` in the settlement (quote) currency;
- inverse futures/perpetuals: ``cs·(1/mark − 1/(mark·(1+x)))`` coin;
- options: Black-76 value at the shocked forward ``F·(1+x)``, shifted vol (tenor-scaled, plus
  the skew move and the sticky-moneyness smile roll when the set carries them, floored at
  ``MIN_VOL``) and ``T − horizon`` minus the value now (model minus model, so the P&L is 0 in
  the null scenario); coin for inverse options (USD value / shocked forward);
- conversion to the target currency: futures' P&L (their value change) at the shocked index of
  the settlement coin; options as the change of their converted value,
  ``V₁·fx₁ − V₀·fx₀``, so a coin-settled option's own coin value moving with the price counts;
  quote currencies at their (unshocked) FX rate.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from margin_engine.domain.instruments import Instrument
from margin_engine.domain.market import USD_NAMES, MarketSnapshot
from margin_engine.errors import InputError
from margin_engine.maths import black76_fast
from margin_engine.maths.scenarios import ScenarioSet, tenor_scaled_shift
from margin_engine.maths.vol_factors import scenario_vols

FloatArray = NDArray[np.float64]
MIN_VOL = 0.01  # vol floor after shifts (annualised decimal)


def _currency_factor(currency: str, target: str, market: MarketSnapshot,
                     scen: ScenarioSet) -> FloatArray:
    """Units of ``target`` per unit of ``currency`` in each scenario (shocked coin prices)."""
    def usd(ccy: str) -> FloatArray:
        if ccy in USD_NAMES or ccy in market.fx:
            return np.full(scen.n, market.usd_price(ccy))
        if ccy in scen.underlyings:
            return market.usd_price(ccy) * (1.0 + scen.price_moves[:, scen.column(ccy)])
        return np.full(scen.n, market.usd_price(ccy))
    if currency == target:
        return np.ones(scen.n)
    return usd(currency) / usd(target)


Smile = tuple[FloatArray, FloatArray]


def expiry_smile(ins: Instrument, market: MarketSnapshot,
                 memo: dict[tuple[str, object], Smile] | None = None) -> Smile:
    """The market's smile of ``ins``'s expiry: sorted log-moneyness ``ln(K/F)`` and implied vols
    of every listed option on the same underlying and expiry (one strike: a flat smile)."""
    key = (ins.underlying, ins.expiry)
    if memo is not None and key in memo:
        return memo[key]
    pts: dict[float, list[float]] = {}
    for o in market.instruments:
        if o.is_option and o.underlying == ins.underlying and o.expiry == ins.expiry:
            assert o.strike is not None
            pts.setdefault(float(np.log(o.strike / market.forward(o))), []).append(
                market.implied_vol(o))
    k = np.array(sorted(pts))
    smile = (k, np.array([float(np.mean(pts[x])) for x in k]))
    if memo is not None:
        memo[key] = smile
    return smile


def option_scenario_vols(ins: Instrument, market: MarketSnapshot, scen: ScenarioSet,
                         forward: float, vol: float, years_after: float, col: int,
                         vol_tenor_power: float,
                         memo: dict[tuple[str, object], Smile] | None = None) -> FloatArray:
    """An option's vol per scenario (before the ``MIN_VOL`` floor) when the set moves skew or
    is sticky-moneyness (:func:`margin_engine.maths.vol_factors.scenario_vols`)."""
    assert ins.strike is not None
    smile = (expiry_smile(ins, market, memo)
             if scen.surface_dynamics == "sticky-moneyness" else None)
    skew = None if scen.skew_shifts is None else scen.skew_shifts[:, col]
    return scenario_vols(vol, ins.strike, forward, years_after, scen.price_moves[:, col],
                         scen.vol_shifts[:, col], skew, smile, vol_tenor_power)


def instrument_pnl(instruments: Sequence[Instrument], market: MarketSnapshot,
                   scen: ScenarioSet, target: str, *, vol_tenor_power: float = 0.0
                   ) -> FloatArray:
    """P&L per long contract [n_instruments, n_scenarios] in ``target`` currency."""
    out = np.empty((len(instruments), scen.n))
    memo: dict[tuple[str, object], Smile] = {}
    for i, ins in enumerate(instruments):
        if ins.underlying not in scen.underlyings:
            raise InputError("symbol", f"{ins.symbol!r}: no scenarios for underlying "
                             f"{ins.underlying!r} (have {', '.join(scen.underlyings)})")
        col = scen.column(ins.underlying)
        x = scen.price_moves[:, col]
        if ins.is_option:
            assert ins.strike is not None
            F = market.forward(ins)
            T = market.years_to_expiry(ins)
            vol = market.implied_vol(ins)
            T1 = max(T - scen.horizon_days / 365.0, 0.0)
            if scen.plain_vol:
                shift = tenor_scaled_shift(scen.vol_shifts[:, col], max(T1, 1e-9),
                                           vol_tenor_power)
                sig = np.maximum(vol + shift, MIN_VOL)
            else:
                sig = np.maximum(option_scenario_vols(ins, market, scen, F, vol, T1, col,
                                                      vol_tenor_power, memo), MIN_VOL)
            F1 = F * (1.0 + x)
            v1 = black76_fast.price_usd(F1, ins.strike, T1, sig, ins.is_call)
            v0 = float(black76_fast.price_usd(F, ins.strike, T, vol, ins.is_call))
            if ins.inverse:  # coin values: convert each at its own (shocked / current) price
                v1, v0 = v1 / F1, v0 / F
            fx1 = _currency_factor(ins.settle, target, market, scen)
            fx0 = market.convert(1.0, ins.settle, target)
            out[i] = ins.contract_size * (v1 * fx1 - v0 * fx0)
            continue
        else:
            assert ins.mark_price is not None
            m = ins.mark_price
            if ins.inverse:
                pnl = ins.contract_size * (1.0 / m - 1.0 / (m * (1.0 + x)))
            else:
                pnl = ins.contract_size * m * x
        out[i] = pnl * _currency_factor(ins.settle, target, market, scen)
    return out
