"""Black-76 on the forward: the plain scalar reference implementation.

Prices are in USD (quote currency) per unit of underlying unless named ``*_coin``; an inverse
(coin-settled) option's price in coin is the USD price divided by the forward ``F``.
``T`` is years (ACT/365), ``sigma`` an annualised decimal, ``r`` a continuously compounded rate
used only for discounting (crypto venues use r = 0).
"""

from __future__ import annotations

import math


def norm_cdf(x: float) -> float:
    """Standard normal cumulative distribution."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def price_usd(F: float, K: float, T: float, sigma: float, is_call: bool, r: float = 0.0) -> float:
    """Black-76 price in USD per unit of underlying; intrinsic value at or after expiry."""
    df = math.exp(-r * max(T, 0.0))
    if T <= 0.0 or sigma <= 0.0:
        intrinsic = max(F - K, 0.0) if is_call else max(K - F, 0.0)
        return df * intrinsic
    s = sigma * math.sqrt(T)
    d1 = (math.log(F / K) + 0.5 * s * s) / s
    d2 = d1 - s
    if is_call:
        return df * (F * norm_cdf(d1) - K * norm_cdf(d2))
    return df * (K * norm_cdf(-d2) - F * norm_cdf(-d1))


def price_coin(F: float, K: float, T: float, sigma: float, is_call: bool, r: float = 0.0) -> float:
    """Inverse-option price in coin per unit of underlying: USD price / F."""
    return price_usd(F, K, T, sigma, is_call, r) / F
