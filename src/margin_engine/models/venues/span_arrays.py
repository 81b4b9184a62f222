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

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from margin_engine.domain.instruments import Instrument, Kind
from margin_engine.domain.market import MarketSnapshot
from margin_engine.maths import black76, black76_fast

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


def valuation(ins: Instrument, market: MarketSnapshot,
              forward: float | None = None) -> Valuation:
    """The :class:`Valuation` of ``ins`` in ``market`` (``forward``: an option's
    ``market.forward(ins)`` when already known)."""
    if ins.is_option:
        forward = market.forward(ins) if forward is None else forward
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


def valuations(instruments: Sequence[Instrument], market: MarketSnapshot) -> list[Valuation]:
    """:func:`valuation` of many instruments, the options' forwards read from one table of
    (underlying, expiry) → the first listed future's mark, as ``MarketSnapshot.forward`` finds
    it by scanning every instrument for each option."""
    futures: dict[tuple[str, datetime], float] = {}
    for other in market.instruments:
        if other.kind is Kind.FUTURE and other.expiry is not None and other.mark_price is not None:
            futures.setdefault((other.underlying, other.expiry), other.mark_price)
    out = []
    for ins in instruments:
        fwd = None
        if ins.is_option:
            fwd = ins.underlying_price
            if fwd is None and ins.expiry is not None:
                fwd = futures.get((ins.underlying, ins.expiry))
            if fwd is None:
                fwd = market.index[ins.underlying]
        out.append(valuation(ins, market, fwd))
    return out


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


# ---------------------------------------------------------------------------------------------
# the same valuation over arrays (many instruments × many scenarios), for the live engines


@dataclass(frozen=True)
class ValuationArrays:
    """Many :class:`Valuation` as columns (one entry per instrument)."""

    inverse: NDArray[np.bool_]
    is_option: NDArray[np.bool_]
    is_call: NDArray[np.bool_]
    strike: FloatArray
    contract_size: FloatArray
    fx: FloatArray
    spot: FloatArray
    forward: FloatArray
    vol: FloatArray
    years: FloatArray

    @classmethod
    def of(cls, vs: Sequence[Valuation]) -> ValuationArrays:
        def col(name: str, dtype: type = np.float64) -> np.ndarray:
            return np.array([getattr(v, name) for v in vs], dtype=dtype)

        return cls(inverse=col("inverse", np.bool_),
                   is_option=np.array([v.is_option for v in vs], dtype=np.bool_),
                   is_call=col("is_call", np.bool_), strike=col("strike"),
                   contract_size=col("contract_size"), fx=col("fx"), spot=col("spot"),
                   forward=col("forward"), vol=col("vol"), years=col("years"))


def value_usd_many(va: ValuationArrays, forward: FloatArray, spot: FloatArray,
                   vol: FloatArray, years: FloatArray, rate: FloatArray) -> FloatArray:
    """:func:`value_usd` of instrument ``i`` (row) in scenario ``j`` (column), USD.

    ``forward``, ``spot``, ``vol``, ``years``, ``rate`` are ``[n, m]`` arrays (``vol`` NaN: the
    instrument's current vol, as ``vol=None``); the same operations in the same order as the
    scalar function, with :func:`margin_engine.maths.black76_fast.price_usd` for options.
    """
    cs = va.contract_size[:, None]
    F0 = va.forward[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(va.inverse[:, None], cs * (1.0 / F0 - 1.0 / forward) * spot,
                       cs * (forward - F0) * va.fx[:, None])
    o = np.flatnonzero(va.is_option)
    if o.size:
        sigma = np.where(np.isnan(vol[o]), va.vol[o, None], np.maximum(vol[o], 0.0))
        F1 = forward[o]
        usd = black76_fast.price_usd(F1, va.strike[o, None], years[o], sigma,
                                     va.is_call[o, None], rate[o])
        out[o] = np.where(va.inverse[o, None], cs[o] * usd / F1 * spot[o],
                          cs[o] * usd * va.fx[o, None])
    return np.asarray(out)


def values_now(va: ValuationArrays) -> FloatArray:
    """``value_usd(v, v.forward, v.spot)`` of each instrument, USD, ``[n, 1]``."""
    zero = np.zeros((va.forward.size, 1))
    return value_usd_many(va, va.forward[:, None] + zero, va.spot[:, None] + zero,
                          zero + np.nan, va.years[:, None] + zero, zero)


def partials_many(va: ValuationArrays, years: FloatArray | None = None
                  ) -> tuple[FloatArray, FloatArray]:
    """:func:`partials` of many instruments (``years``: each option's, default now), with
    :func:`margin_engine.maths.black76_fast.greeks_usd`; arrays ``[n]``."""
    cs, F, S = va.contract_size, va.forward, va.spot
    with np.errstate(divide="ignore", invalid="ignore"):
        d_f = np.where(va.inverse, cs * S / (F * F), cs * va.fx)
    d_s = np.zeros(F.size)
    o = np.flatnonzero(va.is_option)
    if o.size:
        T = va.years[o] if years is None else years[o]
        g = black76_fast.greeks_usd(F[o], va.strike[o], T, va.vol[o], va.is_call[o])
        Fo, co = F[o], cs[o]
        d_f[o] = np.where(va.inverse[o], co * S[o] * (g.delta - g.price / Fo) / Fo,
                          co * va.fx[o] * g.delta)
        d_s[o] = np.where(va.inverse[o], co * g.price / Fo, 0.0)
    return d_f, d_s


def span_risk_arrays(va: ValuationArrays, *, price_scan: FloatArray, vol_scan: FloatArray,
                     relative: NDArray[np.bool_], extreme_move: FloatArray,
                     extreme_cover: FloatArray, lookahead_years: FloatArray) -> FloatArray:
    """:func:`span_risk_array` of many instruments at once (each argument one entry per
    instrument; ``relative``: the vol scan mode is ``"relative"``).

    Returns
    -------
    float array [n, 16]
        USD per long contract, loss positive.
    """
    n = va.forward.size
    moves = np.empty((n, N_SCENARIOS))
    moves[:, :14] = SPAN_PRICE_MOVES
    moves[:, 14], moves[:, 15] = extreme_move, -extreme_move
    vmoves = np.array([*SPAN_VOL_MOVES, 0.0, 0.0])
    d = moves * price_scan[:, None]
    F0, S0 = va.forward[:, None], va.spot[:, None]
    F1 = np.maximum(F0 + d, 1e-12 * F0)
    S1 = np.maximum(S0 + d, 1e-12 * S0)
    vol0 = va.vol[:, None]
    shocked = np.where(relative[:, None], vol0 * (1.0 + vmoves * vol_scan[:, None]),
                       vol0 + vmoves * vol_scan[:, None])
    sig = np.where(va.is_option[:, None], np.maximum(shocked, 0.0), np.nan)
    T1 = np.where(va.is_option, np.maximum(va.years - lookahead_years, 0.0), va.years)
    base = values_now(va)
    shape = (n, N_SCENARIOS)
    value = value_usd_many(va, F1, S1, sig, np.broadcast_to(T1[:, None], shape),
                           np.zeros(shape))
    w = np.ones(shape)
    w[:, 14:] = extreme_cover[:, None]
    return np.asarray((base - value) * w)
