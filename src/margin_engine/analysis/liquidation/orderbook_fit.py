"""Fits of the order-book model: depth curves, square-root impact, resilience half-life.

Pure numerical functions; ``studies/orderbook_model.py`` applies them to the Bitstamp BTC/USD
L3 capture (docs/liquidation.md §3). Impacts are relative to the mid (a fraction of price),
sizes in base units, times in seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize_scalar


def depth_within(prices: ArrayLike, sizes: ArrayLike, reference: float, bps: float) -> float:
    """Total size of the levels within ``bps`` basis points of ``reference`` (either side)."""
    p, s = np.asarray(prices, float), np.asarray(sizes, float)
    return float(s[np.abs(p - reference) <= reference * bps / 1e4].sum())


def book_impact(prices: ArrayLike, sizes: ArrayLike, mid: float, qty: ArrayLike) -> NDArray:
    """Relative cost ``|VWAP(q) − mid|/mid`` of a market order of each size in ``qty`` walking
    one side (``prices``/``sizes`` best first); NaN where the side is too thin."""
    p, s = np.asarray(prices, float), np.asarray(sizes, float)
    cum_s = np.concatenate([[0.0], np.cumsum(s)])
    cum_v = np.concatenate([[0.0], np.cumsum(s * p)])
    out = []
    for q in np.atleast_1d(np.asarray(qty, float)):
        if q <= 0 or q > cum_s[-1]:
            out.append(math.nan)
            continue
        i = int(np.searchsorted(cum_s, q, side="left"))
        value = cum_v[i - 1] + (q - cum_s[i - 1]) * p[i - 1]
        out.append(abs(value / q - mid) / mid)
    return np.asarray(out)


@dataclass(frozen=True)
class PowerFit:
    """``impact = y·(q/q_ref)^delta`` fitted by least squares; ``r2`` in the fitted space."""

    y: float
    delta: float
    r2: float
    n: int
    q_ref: float = 1.0


def fit_power_law(q: ArrayLike, impact: ArrayLike, q_ref: float = 1.0) -> PowerFit:
    """Log-log OLS of ``impact`` on ``q`` (positive, finite points only)."""
    x, z = np.asarray(q, float), np.asarray(impact, float)
    ok = np.isfinite(x) & np.isfinite(z) & (x > 0) & (z > 0)
    lx, lz = np.log(x[ok] / q_ref), np.log(z[ok])
    if lx.size < 3:
        raise ValueError("need at least 3 positive points to fit")
    slope, icpt = np.polyfit(lx, lz, 1)
    resid = lz - (icpt + slope * lx)
    r2 = 1.0 - float(resid @ resid) / float(((lz - lz.mean()) ** 2).sum())
    return PowerFit(float(math.exp(icpt)), float(slope), r2, int(lx.size), q_ref)


def fit_sqrt(q: ArrayLike, impact: ArrayLike, q_ref: float = 1.0) -> PowerFit:
    """``impact = y·√(q/q_ref)`` by least squares in levels (exponent fixed at ½); ``r2`` is
    ``1 − SSE/SST`` in levels (may be negative when the square root fits worse than a
    constant)."""
    x, z = np.asarray(q, float), np.asarray(impact, float)
    ok = np.isfinite(x) & np.isfinite(z) & (x > 0)
    r = np.sqrt(x[ok] / q_ref)
    zz = z[ok]
    if r.size < 2:
        raise ValueError("need at least 2 points to fit")
    y = float(r @ zz / (r @ r))
    resid = zz - y * r
    sst = float(((zz - zz.mean()) ** 2).sum())
    r2 = 1.0 - float(resid @ resid) / sst if sst > 0 else math.nan
    return PowerFit(y, 0.5, r2, int(r.size), q_ref)


@dataclass(frozen=True)
class HalfLifeFit:
    """Exponential recovery ``R(τ) = 1 − 2^(−τ/half_life)``; ``rmse`` of the fit."""

    half_life: float
    rmse: float
    n: int


def fit_half_life(tau: ArrayLike, recovery: ArrayLike, bounds: tuple[float, float] = (0.01, 3600.0)
                  ) -> HalfLifeFit:
    """Least-squares half-life of a recovery curve (fractions of the depth lost, by delay)."""
    t, r = np.asarray(tau, float), np.asarray(recovery, float)
    ok = np.isfinite(t) & np.isfinite(r)
    t, r = t[ok], r[ok]
    if t.size < 2:
        raise ValueError("need at least 2 points to fit")

    def sse(logh: float) -> float:
        e = r - (1.0 - 2.0 ** (-t / math.exp(logh)))
        return float(e @ e)

    res = minimize_scalar(sse, bounds=(math.log(bounds[0]), math.log(bounds[1])),
                          method="bounded")
    h = math.exp(float(res.x))
    return HalfLifeFit(h, math.sqrt(sse(float(res.x)) / t.size), int(t.size))
