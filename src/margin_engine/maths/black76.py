"""Black-76 on the forward: the plain scalar reference implementation.

Prices are in USD (quote currency) per unit of underlying unless named ``*_coin``; an inverse
(coin-settled) option's price in coin is the USD price divided by the forward ``F``.
``T`` is years (ACT/365), ``sigma`` an annualised decimal, ``r`` a continuously compounded rate
used only for discounting (crypto venues use r = 0).

This module uses the ``math`` module only. It is the reference that the vectorised and numba
kernels in :mod:`margin_engine.maths.black76_fast` are tested against; see ``docs/pricing.md``
for the formulas, units and edge-case conventions.

Edge-case conventions (shared with the fast path):

- ``T <= 0``: the option has expired; price = intrinsic value ``max(ω(F − K), 0)`` with no
  discounting, delta = the step ``ω·1[ω(F − K) > 0]`` (``ω/2`` at ``F == K``), gamma = vega =
  theta = 0.
- ``sigma <= 0`` with ``T > 0``: price = ``DF·max(ω(F − K), 0)``, delta = ``DF·`` the same step,
  gamma = vega = 0, theta = ``r·price``.
- ``K == 0``: a call is worth ``DF·F`` (delta ``DF``), a put is worth 0.
- Deep in/out of the money and very large ``sigma`` give finite numbers (no NaN, no overflow):
  a call tends to ``DF·F`` and a put to ``DF·K`` as ``sigma·√T → ∞``.

Bad input raises ``ValueError`` naming the argument: ``F`` must be finite and > 0, ``K`` finite
and >= 0, ``T``, ``sigma`` and ``r`` finite.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_INV_SQRT2 = 1.0 / math.sqrt(2.0)
S_MAX = 1e100
"""Cap on the total standard deviation ``sigma·√T`` used in d1/d2 (prices are at their limits)."""


@dataclass(frozen=True, slots=True)
class Greeks:
    """Black-76 value and sensitivities of one linear (USD-valued) option.

    Attributes
    ----------
    price : float
        Value in USD per unit of underlying.
    delta : float
        dV/dF, USD per USD of forward (dimensionless).
    gamma : float
        d²V/dF², per USD of forward.
    vega : float
        dV/dsigma in USD per 1.00 (100 vol points) of volatility; divide by 100 for per vol point.
    theta : float
        dV/dt = −dV/dT in USD per year with the forward held fixed; divide by 365 for per day.
    """

    price: float
    delta: float
    gamma: float
    vega: float
    theta: float


@dataclass(frozen=True, slots=True)
class CoinGreeks:
    """Value and sensitivities of one inverse (coin-settled) option, valued in coin.

    The coin value is ``V_coin = V_usd / F`` (``F`` is the forward in USD per coin).

    Attributes
    ----------
    price : float
        Value in coin per option on one coin of underlying.
    delta : float
        dV_coin/dF, coin per USD of forward: ``(delta_usd − price) / F``.
    gamma : float
        d²V_coin/dF², coin per USD² of forward:
        ``gamma_usd/F − 2·delta_usd/F² + 2·V_usd/F³``.
    vega : float
        dV_coin/dsigma, coin per 1.00 of volatility: ``vega_usd / F``.
    theta : float
        dV_coin/dt, coin per year with the forward held fixed: ``theta_usd / F``.
    coin_delta : float
        ``F·dV_coin/dF = delta_usd − price``: the option's exposure in coins of underlying
        equivalent, i.e. the size (in coin) of an inverse future that hedges its coin P&L to
        first order. This is the per-option contribution to Deribit's "Delta Total"
        (Deribit FAQ: a call of delta 0.50 bought for 0.10 BTC adds 0.40).
    delta_usd : float
        The Black-76 forward delta ``dV_usd/dF`` (what a linear option of the same terms has).
    """

    price: float
    delta: float
    gamma: float
    vega: float
    theta: float
    coin_delta: float
    delta_usd: float


def norm_cdf(x: float) -> float:
    """Standard normal cumulative distribution."""
    return 0.5 * math.erfc(-x * _INV_SQRT2)


def norm_pdf(x: float) -> float:
    """Standard normal density (0 for |x| so large that x² overflows)."""
    return _INV_SQRT_2PI * math.exp(-0.5 * x * x)


def _is_finite_number(x: float) -> bool:
    try:
        return math.isfinite(x)
    except TypeError:
        return False


def check_inputs(F: float, K: float, T: float, sigma: float, r: float) -> None:
    """Raise ``ValueError`` naming the first bad argument; return ``None`` when all are valid."""
    if not _is_finite_number(F):
        raise ValueError(f"F: not a finite number ({F!r})")
    if F <= 0.0:
        raise ValueError(f"F: forward must be > 0 ({F!r})")
    if not _is_finite_number(K):
        raise ValueError(f"K: not a finite number ({K!r})")
    if K < 0.0:
        raise ValueError(f"K: strike must be >= 0 ({K!r})")
    if not _is_finite_number(T):
        raise ValueError(f"T: not a finite number ({T!r})")
    if not _is_finite_number(sigma):
        raise ValueError(f"sigma: not a finite number ({sigma!r})")
    if not _is_finite_number(r):
        raise ValueError(f"r: not a finite number ({r!r})")


def _d1_d2(F: float, K: float, s: float) -> tuple[float, float]:
    """d1, d2 for total standard deviation ``s > 0``; written so that huge ``s`` cannot overflow.

    ``s`` is capped at ``S_MAX`` (far beyond where N(d1) = 1 and N(d2) = 0 in float64) so that
    ``sigma·√T`` overflowing to inf cannot produce ``inf/inf``.
    """
    s = min(s, S_MAX)
    ratio = math.inf if K == 0.0 else F / K  # F / K may overflow to inf or underflow to 0
    x = -math.inf if ratio == 0.0 else math.log(ratio)
    xs = x / s
    return xs + 0.5 * s, xs - 0.5 * s


def _step(F: float, K: float, is_call: bool) -> float:
    """Expiry delta: 1 (call) / −1 (put) in the money, 0 out of it, ±1/2 at the money."""
    if F == K:
        return 0.5 if is_call else -0.5
    if is_call:
        return 1.0 if F > K else 0.0
    return -1.0 if F < K else 0.0


def price_usd(F: float, K: float, T: float, sigma: float, is_call: bool, r: float = 0.0) -> float:
    """Black-76 price in USD per unit of underlying.

    Parameters
    ----------
    F : float
        Forward price of the underlying, USD (> 0).
    K : float
        Strike, USD (>= 0).
    T : float
        Time to expiry in years (ACT/365); ``T <= 0`` gives the intrinsic value.
    sigma : float
        Annualised volatility (decimal); ``sigma <= 0`` gives the discounted intrinsic value.
    is_call : bool
        True for a call, False for a put.
    r : float, default 0.0
        Continuously compounded discount rate per year; discount factor ``exp(−r·max(T, 0))``.

    Returns
    -------
    float
        ``DF·(F·N(d1) − K·N(d2))`` for a call, ``DF·(K·N(−d2) − F·N(−d1))`` for a put, USD.
    """
    check_inputs(F, K, T, sigma, r)
    w = 1.0 if is_call else -1.0
    if T <= 0.0:
        return max(w * (F - K), 0.0)
    df = math.exp(-r * T)
    if sigma <= 0.0:
        return df * max(w * (F - K), 0.0)
    s = sigma * math.sqrt(T)
    d1, d2 = _d1_d2(F, K, s)
    # the difference of two tiny products can round below zero (e.g. -3e-321): a price is >= 0
    return max(df * w * (F * norm_cdf(w * d1) - K * norm_cdf(w * d2)), 0.0)


def price_coin(F: float, K: float, T: float, sigma: float, is_call: bool, r: float = 0.0) -> float:
    """Inverse-option price in coin per unit of underlying: ``price_usd(...) / F``.

    Arguments as in :func:`price_usd`; the result is in coin (e.g. BTC per 1-BTC option).
    """
    return price_usd(F, K, T, sigma, is_call, r) / F


def greeks_usd(F: float, K: float, T: float, sigma: float, is_call: bool, r: float = 0.0) -> Greeks:
    """Black-76 price and Greeks of a linear option, in USD per unit of underlying.

    Arguments as in :func:`price_usd`. With ``s = sigma·√T``, ``DF = exp(−r·T)``, ``ω = ±1``:
    ``delta = DF·ω·N(ω·d1)``, ``gamma = DF·φ(d1)/(F·s)``, ``vega = DF·F·φ(d1)·√T``,
    ``theta = r·V − DF·F·φ(d1)·sigma/(2√T)`` (forward held fixed). Units are on :class:`Greeks`.
    """
    check_inputs(F, K, T, sigma, r)
    w = 1.0 if is_call else -1.0
    if T <= 0.0:
        return Greeks(max(w * (F - K), 0.0), _step(F, K, is_call), 0.0, 0.0, 0.0)
    df = math.exp(-r * T)
    if sigma <= 0.0:
        v = df * max(w * (F - K), 0.0)
        return Greeks(v, df * _step(F, K, is_call), 0.0, 0.0, r * v)
    sqrt_t = math.sqrt(T)
    s = sigma * sqrt_t
    d1, d2 = _d1_d2(F, K, s)
    v = df * w * (F * norm_cdf(w * d1) - K * norm_cdf(w * d2))
    pdf = norm_pdf(d1)
    delta = df * w * norm_cdf(w * d1)
    gamma = df * pdf / (F * s)
    vega = df * F * pdf * sqrt_t
    theta = r * v - df * F * pdf * sigma / (2.0 * sqrt_t)
    return Greeks(v, delta, gamma, vega, theta)


def greeks_coin(
    F: float, K: float, T: float, sigma: float, is_call: bool, r: float = 0.0
) -> CoinGreeks:
    """Price and Greeks of an inverse (coin-settled) option valued in coin, ``V_coin = V_usd/F``.

    Arguments as in :func:`price_usd`. Units and the Deribit-style ``coin_delta`` are described on
    :class:`CoinGreeks`.
    """
    g = greeks_usd(F, K, T, sigma, is_call, r)
    pc = g.price / F
    return CoinGreeks(
        price=pc,
        delta=(g.delta - pc) / F,
        gamma=(g.gamma - 2.0 * (g.delta - pc) / F) / F,
        vega=g.vega / F,
        theta=g.theta / F,
        coin_delta=g.delta - pc,
        delta_usd=g.delta,
    )
