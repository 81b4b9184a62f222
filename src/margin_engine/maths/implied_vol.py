"""Black-76 implied volatility: a robust scalar solver and a vectorised (numba parallel) one.

Units as in :mod:`margin_engine.maths.black76`: ``price_usd`` in USD per unit of underlying
(``price_coin`` in coin for inverse options), ``F``/``K`` in USD, ``T`` in years (ACT/365),
``r`` continuously compounded (discounting only). The result is an annualised decimal vol.

Method
------
The discounted price is undiscounted (``p = price/DF``), checked against the no-arbitrage
bounds ``max(ω(F − K), 0) <= p < F`` (call) or ``< K`` (put), and turned into the price ``t`` of
the out-of-the-money option of the same strike by put-call parity (the OTM option carries all
the volatility information without the intrinsic part). The equation
``log b(s) = log t`` in the total standard deviation ``s = sigma·√T`` (``b`` the undiscounted
OTM Black price, increasing in ``s``) is solved by Newton's method started at the inflection
point ``s = √(2|ln(F/K)|)`` and safeguarded by bisection on a bracket ``[lo, hi]`` that always
contains the root, to full double precision.

A price equal to the intrinsic value (within ``8·eps·(F + K)`` for in-the-money options, the
rounding of the parity step) gives volatility 0. A price below the
intrinsic value or at/above the upper bound, or ``T <= 0``, has no implied volatility and raises
``ValueError`` (the array version can return NaN for such elements instead).
"""

from __future__ import annotations

import math
from typing import Literal

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_EPS = 2.220446049250313e-16
_S_HI = 64.0  # b(64) equals its upper bound to far below double precision
_MAX_ITER = 300

# status codes of the solver
_OK = 0
_BELOW = 1
_ABOVE = 2
_EXPIRED = 3
_BAD_INPUT = 4
_UNRESOLVED = 5


@numba.njit(cache=True, error_model="numpy")
def _otm_price(F: float, K: float, s: float, call: bool) -> float:
    """Undiscounted Black price for total standard deviation ``s > 0`` (``K > 0``)."""
    ratio = F / K
    x = -math.inf if ratio == 0.0 else math.log(ratio)
    xs = x / s
    d1 = xs + 0.5 * s
    d2 = xs - 0.5 * s
    if call:
        return F * 0.5 * math.erfc(-d1 * _INV_SQRT2) - K * 0.5 * math.erfc(-d2 * _INV_SQRT2)
    return K * 0.5 * math.erfc(d2 * _INV_SQRT2) - F * 0.5 * math.erfc(d1 * _INV_SQRT2)


@numba.njit(cache=True, error_model="numpy")
def _solve(
    price: float, F: float, K: float, T: float, is_call: bool, r: float
) -> tuple[float, int, float, float]:
    """Return (sigma, status, lower_bound, upper_bound); bounds are on the discounted price."""
    if not (
        math.isfinite(price)
        and math.isfinite(F)
        and math.isfinite(K)
        and math.isfinite(T)
        and math.isfinite(r)
    ):
        return math.nan, _BAD_INPUT, math.nan, math.nan
    if F <= 0.0 or K < 0.0:
        return math.nan, _BAD_INPUT, math.nan, math.nan
    if T <= 0.0:
        return math.nan, _EXPIRED, math.nan, math.nan
    df = math.exp(-r * T)
    if is_call:
        intrinsic = max(F - K, 0.0)
        upper = F
    else:
        intrinsic = max(K - F, 0.0)
        upper = K
    p = price / df
    slack = 8.0 * _EPS * (F + K)
    if p < intrinsic - slack:
        return math.nan, _BELOW, df * intrinsic, df * upper
    if p >= upper:
        return math.nan, _ABOVE, df * intrinsic, df * upper
    # out-of-the-money equivalent (put-call parity on undiscounted prices)
    if is_call and F > K:
        t = p - (F - K)
        otm_call = False
    elif (not is_call) and K > F:
        t = p - (K - F)
        otm_call = True
    else:
        t = p
        otm_call = is_call
    # at the intrinsic value (an in-the-money time value within rounding of the intrinsic
    # value carries no volatility information)
    if t <= 0.0 or (intrinsic > 0.0 and t <= slack):
        return 0.0, _OK, df * intrinsic, df * upper
    log_t = math.log(t)
    # bracket [lo, hi] with b(lo) < t <= b(hi)
    lo = 0.0
    hi = 1.0
    while _otm_price(F, K, hi, otm_call) < t:
        lo = hi
        hi *= 2.0
        if hi > _S_HI:
            return math.nan, _ABOVE, df * intrinsic, df * upper
    x = math.log(F / K)
    # start at the inflection point of b(s), or the ATM approximation b ≈ F·s/√(2π)
    s = math.sqrt(2.0 * abs(x)) if x != 0.0 else math.sqrt(2.0 * math.pi) * t / F
    if not (lo < s < hi):
        s = 0.5 * (lo + hi)
    for _ in range(_MAX_ITER):
        b = _otm_price(F, K, s, otm_call)
        if b <= 0.0:
            lo = s
            s_new = 0.5 * (lo + hi)
        else:
            g = math.log(b) - log_t
            if g == 0.0:
                return s / math.sqrt(T), _OK, df * intrinsic, df * upper
            if g > 0.0:
                hi = s
            else:
                lo = s
            d1 = math.log(F / K) / s + 0.5 * s
            vega = F * _INV_SQRT_2PI * math.exp(-0.5 * d1 * d1)
            s_new = s - g * b / vega if vega > 0.0 else math.nan
            if not (lo < s_new < hi):
                s_new = 0.5 * (lo + hi)
        if abs(s_new - s) <= 4.0 * _EPS * s_new or hi - lo <= 4.0 * _EPS * hi:
            return s_new / math.sqrt(T), _OK, df * intrinsic, df * upper
        s = s_new
    return s / math.sqrt(T), _UNRESOLVED, df * intrinsic, df * upper


def _message(status: int, where: str, price: float, lower: float, upper: float) -> str:
    if status == _BELOW:
        return (
            f"price_usd{where}: {price!r} is below the intrinsic value {lower!r} "
            "(no-arbitrage lower bound DF·max(ω(F − K), 0)); no implied volatility"
        )
    if status == _ABOVE:
        return (
            f"price_usd{where}: {price!r} is at or above the no-arbitrage upper bound {upper!r} "
            "(DF·F for a call, DF·K for a put) or indistinguishable from it; "
            "no finite implied volatility"
        )
    if status == _EXPIRED:
        return f"T{where}: must be > 0 to imply a volatility"
    if status == _UNRESOLVED:
        return f"price_usd{where}: implied volatility solver did not converge ({price!r})"
    return (
        f"price_usd, F, K, T, r{where}: need finite numbers with F > 0 and K >= 0 "
        f"(price_usd={price!r})"
    )


def _check_scalar(name: str, x: float) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: not a number ({x!r})") from exc
    if not math.isfinite(v):
        raise ValueError(f"{name}: not a finite number ({x!r})")
    return v


def implied_vol(
    price_usd: float, F: float, K: float, T: float, is_call: bool, r: float = 0.0
) -> float:
    """Black-76 implied volatility of one option from its price in USD.

    Parameters
    ----------
    price_usd : float
        Option price in USD per unit of underlying (discounted, as from ``black76.price_usd``).
    F, K : float
        Forward (USD, > 0) and strike (USD, >= 0).
    T : float
        Years to expiry (ACT/365), > 0.
    is_call : bool
        True for a call, False for a put.
    r : float, default 0.0
        Continuously compounded discount rate per year.

    Returns
    -------
    float
        Annualised volatility (decimal); 0.0 when the price equals the (discounted) intrinsic
        value.

    Raises
    ------
    ValueError
        Non-finite input, ``F <= 0``, ``K < 0``, ``T <= 0``, or a price outside the no-arbitrage
        bounds ``DF·max(ω(F − K), 0) <= price < DF·F`` (call) / ``< DF·K`` (put).
    """
    p = _check_scalar("price_usd", price_usd)
    Fv = _check_scalar("F", F)
    if Fv <= 0.0:
        raise ValueError(f"F: forward must be > 0 ({F!r})")
    Kv = _check_scalar("K", K)
    if Kv < 0.0:
        raise ValueError(f"K: strike must be >= 0 ({K!r})")
    Tv = _check_scalar("T", T)
    rv = _check_scalar("r", r)
    vol, status, lower, upper = _solve(p, Fv, Kv, Tv, bool(is_call), rv)
    if status != _OK:
        raise ValueError(_message(int(status), "", p, lower, upper))
    return float(vol)


def implied_vol_coin(
    price_coin: float, F: float, K: float, T: float, is_call: bool, r: float = 0.0
) -> float:
    """Implied volatility of an inverse option from its price in coin (``price_usd = coin·F``).

    Arguments and errors as in :func:`implied_vol`; ``price_coin`` is in coin per option on one
    coin of underlying.
    """
    pc = _check_scalar("price_coin", price_coin)
    Fv = _check_scalar("F", F)
    if Fv <= 0.0:
        raise ValueError(f"F: forward must be > 0 ({F!r})")
    return implied_vol(pc * Fv, Fv, K, T, is_call, r)


@numba.njit(parallel=True, cache=True, error_model="numpy")
def _solve_kernel(
    price: FloatArray,
    F: FloatArray,
    K: FloatArray,
    T: FloatArray,
    is_call: NDArray[np.bool_],
    r: FloatArray,
    out: FloatArray,
    status: NDArray[np.int64],
) -> None:
    for i in numba.prange(price.shape[0]):
        vol, st, _, _ = _solve(price[i], F[i], K[i], T[i], is_call[i], r[i])
        out[i] = vol
        status[i] = st


def implied_vol_array(
    price_usd: ArrayLike,
    F: ArrayLike,
    K: ArrayLike,
    T: ArrayLike,
    is_call: ArrayLike,
    r: ArrayLike = 0.0,
    *,
    errors: Literal["raise", "nan"] = "raise",
) -> FloatArray:
    """Vectorised :func:`implied_vol` (numba parallel over elements).

    Arguments broadcast to a common shape; ``is_call`` is a boolean array. With
    ``errors="raise"`` (default) the first element without an implied volatility raises
    ``ValueError`` naming its index; with ``errors="nan"`` such elements are NaN.

    Returns
    -------
    numpy.ndarray
        float64 annualised volatilities of the broadcast shape.
    """
    if errors not in ("raise", "nan"):
        raise ValueError(f"errors: must be 'raise' or 'nan' (got {errors!r})")
    arrays = []
    for name, x in (("price_usd", price_usd), ("F", F), ("K", K), ("T", T), ("r", r)):
        try:
            arrays.append(np.asarray(x, dtype=np.float64))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name}: not a number or array of numbers") from exc
    c = np.asarray(is_call)
    if c.dtype != np.bool_:
        raise ValueError(f"is_call: must be a boolean array (True for call), got dtype {c.dtype}")
    try:
        pb, Fb, Kb, Tb, rb, cb = np.broadcast_arrays(*arrays, c)
    except ValueError as exc:
        raise ValueError(
            f"price_usd, F, K, T, is_call, r: shapes do not broadcast ({exc})"
        ) from exc
    shape = pb.shape
    flat = [np.ascontiguousarray(a, dtype=np.float64).reshape(-1) for a in (pb, Fb, Kb, Tb, rb)]
    cf = np.ascontiguousarray(cb, dtype=np.bool_).reshape(-1)
    n = flat[0].shape[0]
    out = np.empty(n, dtype=np.float64)
    status = np.empty(n, dtype=np.int64)
    _solve_kernel(flat[0], flat[1], flat[2], flat[3], cf, flat[4], out, status)
    bad = status != _OK
    if bad.any():
        if errors == "raise":
            i = int(np.flatnonzero(bad)[0])
            idx = np.unravel_index(i, shape) if shape else ()
            where = "[" + ", ".join(str(int(j)) for j in idx) + "]" if shape else ""
            _, _, lower, upper = _solve(
                flat[0][i], flat[1][i], flat[2][i], flat[3][i], bool(cf[i]), flat[4][i]
            )
            raise ValueError(_message(int(status[i]), where, float(flat[0][i]), lower, upper))
        out[bad] = np.nan
    return out.reshape(shape)
