"""Scenario valuation in USD and SPAN risk arrays (research/ccp-standards.md §1.2).

Used by the ``span`` and ``okx-pm`` models. Everything is per **one long contract** and in
**USD**, so that linear (USDT/USDC/USD-settled) and inverse (coin-settled) instruments on one
underlying can be netted in one risk unit / combined commodity:

- linear delta-one (futures, perpetuals, spot): ``V = cs·(F₁ − F₀)·fx`` — the P&L against the
  current mark, ``fx`` = USD per unit of the settlement currency (held fixed);
- inverse delta-one (``cs`` USD face value): ``V = cs·(1/F₀ − 1/F₁)·S₁`` — the coin P&L valued at
  the *scenario's* index ``S₁``;
- linear options: ``V = cs·B76(F₁, K, T, σ, r)·fx``;
- inverse options: ``V = cs·B76(F₁, K, T, σ, r)/F₁·S₁`` — the coin value at the scenario's index.

``F`` is the instrument's own forward (a future's or perpetual's mark, an option's forward from
:meth:`MarketSnapshot.forward`, a spot pair's mark) and ``S`` the underlying's index. A scenario
moves both (multiplicatively in ``okx-pm``, by the same number of price points in ``span``).
Options are revalued with the scalar Black-76 reference (:mod:`margin_engine.maths.black76`);
P&L is model minus model, so the null scenario gives exactly 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from margin_engine.domain.instruments import Instrument, Kind
from margin_engine.domain.market import MarketSnapshot
from margin_engine.maths import black76

FloatArray = NDArray[np.float64]
VolMode = Literal["absolute", "relative"]

#: The 16 SPAN scenarios (ccp-standards §1.2): price move in units of the price scan range and
#: volatility move in units of the volatility scan range; 15 and 16 are the extreme moves (their
#: price move is ``±extreme_move`` and their loss is weighted by the cover fraction).
SPAN_PRICE_MOVES: tuple[float, ...] = (
    0.0, 0.0, 1 / 3, 1 / 3, -1 / 3, -1 / 3, 2 / 3, 2 / 3, -2 / 3, -2 / 3, 1.0, 1.0, -1.0, -1.0)
SPAN_VOL_MOVES: tuple[float, ...] = (
    1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0)
N_SCENARIOS = 16


@dataclass(frozen=True)
class Valuation:
    """What scenario revaluation needs about one instrument (per contract).

    Attributes
    ----------
    symbol, kind, inverse, is_call, strike, contract_size
        From the instrument (``contract_size``: base units for linear contracts and options, USD
        face value for inverse futures and perpetuals).
    fx : float
        USD per unit of the settlement currency (linear instruments; 1 for inverse ones, whose
        coin amounts are converted at the scenario index instead).
    spot : float
        Index price ``S₀`` of the underlying, USD.
    forward : float
        ``F₀``, USD per unit of underlying (see the module docstring).
    vol : float
        Implied vol (annualised decimal); 0 for delta-one instruments.
    years : float
        Time to expiry (ACT/365); 0 for perpetuals and spot.
    """

    symbol: str
    kind: Kind
    inverse: bool
    is_call: bool
    strike: float
    contract_size: float
    fx: float
    spot: float
    forward: float
    vol: float
    years: float

    @property
    def is_option(self) -> bool:
        return self.kind is Kind.OPTION


def valuation(ins: Instrument, market: MarketSnapshot) -> Valuation:
    """The :class:`Valuation` of ``ins`` in ``market``."""
    if ins.is_option:
        forward = market.forward(ins)
        vol = market.implied_vol(ins)
    else:
        assert ins.mark_price is not None
        forward, vol = ins.mark_price, 0.0
    return Valuation(symbol=ins.symbol, kind=ins.kind, inverse=ins.inverse,
                     is_call=ins.is_call, strike=float(ins.strike or 0.0),
                     contract_size=ins.contract_size,
                     fx=1.0 if ins.inverse else market.usd_price(ins.settle),
                     spot=market.index[ins.underlying], forward=forward, vol=vol,
                     years=market.years_to_expiry(ins))


def value_usd(v: Valuation, forward: float, spot: float, vol: float | None = None,
              years: float | None = None, rate: float = 0.0) -> float:
    """USD value of one long contract at a scenario's forward ``F₁`` and index ``S₁``.

    Delta-one instruments return their P&L against ``F₀`` (0 when ``forward == v.forward``);
    options return their full Black-76 value. ``vol`` and ``years`` default to the current ones;
    ``rate`` discounts option values only (forwards are held). ``forward`` and ``spot`` must be
    > 0.
    """
    if not (forward > 0.0 and spot > 0.0):
        raise ValueError(f"forward, spot: must be > 0 (got {forward!r}, {spot!r})")
    cs = v.contract_size
    if not v.is_option:
        if v.inverse:
            return cs * (1.0 / v.forward - 1.0 / forward) * spot
        return cs * (forward - v.forward) * v.fx
    sigma = v.vol if vol is None else max(vol, 0.0)
    T = v.years if years is None else years
    usd = black76.price_usd(forward, v.strike, T, sigma, v.is_call, rate)
    if v.inverse:
        return cs * usd / forward * spot
    return cs * usd * v.fx


def partials(v: Valuation, years: float | None = None) -> tuple[float, float]:
    """``(∂V/∂F, ∂V/∂S)`` of :func:`value_usd` at ``(F₀, S₀)``, USD per USD of price.

    Analytic: linear delta-one ``(cs·fx, 0)``; inverse delta-one ``(cs·S₀/F₀², 0)``; linear
    options ``(cs·fx·Δ, 0)``; inverse options ``(cs·S₀·(Δ − P/F₀)/F₀, cs·P/F₀)`` with Black-76
    forward delta ``Δ`` and price ``P`` (USD) at ``years`` (default: now).
    """
    cs = v.contract_size
    if not v.is_option:
        if v.inverse:
            return cs * v.spot / (v.forward * v.forward), 0.0
        return cs * v.fx, 0.0
    T = v.years if years is None else years
    g = black76.greeks_usd(v.forward, v.strike, T, v.vol, v.is_call)
    if v.inverse:
        F = v.forward
        return cs * v.spot * (g.delta - g.price / F) / F, cs * g.price / F
    return cs * v.fx * g.delta, 0.0


def shocked_vol(vol: float, move: float, scan: float, mode: VolMode) -> float:
    """``σ + move·scan`` (absolute) or ``σ·(1 + move·scan)`` (relative), floored at 0."""
    out = vol + move * scan if mode == "absolute" else vol * (1.0 + move * scan)
    return max(out, 0.0)


def span_risk_array(v: Valuation, *, price_scan: float, vol_scan: float, vol_mode: VolMode,
                    extreme_move: float, extreme_cover: float,
                    lookahead_years: float) -> FloatArray:
    """The 16-value SPAN risk array of one long contract, USD, loss positive (§1.2, §1.10).

    ``RA_k = (V(F₀, S₀, σ₀, T) − V(F₀ + m_k·PSR, S₀ + m_k·PSR, σ_k, T − lookahead))·w_k`` with
    the price moves ``m_k`` of :data:`SPAN_PRICE_MOVES` (±``extreme_move`` for k = 15, 16), vol
    moves of :data:`SPAN_VOL_MOVES` (none for 15, 16), ``w_k = 1`` and ``w_15 = w_16 =
    extreme_cover``. ``price_scan`` (PSR) is in USD per unit of underlying; the index moves by the
    same number of points as the forward. A scenario that would take a price to ≤ 0 is
    evaluated at 1e-12·F₀ (the instrument's value at a price of practically zero).

    Returns
    -------
    float array [16]
    """
    if not (price_scan >= 0.0 and vol_scan >= 0.0 and extreme_move >= 0.0
            and 0.0 <= extreme_cover <= 1.0 and lookahead_years >= 0.0):
        raise ValueError("price_scan, vol_scan, extreme_move, lookahead_years: must be >= 0; "
                         "extreme_cover: must be in [0, 1]")
    base = value_usd(v, v.forward, v.spot)
    T1 = max(v.years - lookahead_years, 0.0) if v.is_option else v.years
    out = np.empty(N_SCENARIOS)
    moves = [*SPAN_PRICE_MOVES, extreme_move, -extreme_move]
    vols = [*SPAN_VOL_MOVES, 0.0, 0.0]
    for k in range(N_SCENARIOS):
        d = moves[k] * price_scan
        F1 = max(v.forward + d, 1e-12 * v.forward)
        S1 = max(v.spot + d, 1e-12 * v.spot)
        sig = shocked_vol(v.vol, vols[k], vol_scan, vol_mode) if v.is_option else None
        w = extreme_cover if k >= 14 else 1.0
        out[k] = (base - value_usd(v, F1, S1, sig, T1)) * w
    return out
