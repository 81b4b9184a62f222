"""Black-76 fast path: vectorised NumPy functions and a numba parallel kernel.

Same formulas, units and edge-case conventions as the scalar reference
:mod:`margin_engine.maths.black76` (prices in USD per unit of underlying, ``*_coin`` in coin;
``T`` in years ACT/365; ``sigma`` annualised decimal; ``r`` continuously compounded, used only
for discounting). See ``docs/pricing.md``.

- NumPy functions (:func:`price_usd`, :func:`price_coin`, :func:`greeks_usd`,
  :func:`greeks_coin`) broadcast their arguments and return float64 arrays of the broadcast
  shape (0-d for all-scalar input). ``is_call`` is a boolean array (or 0/1 integers).
- :func:`price_usd_numba` / :func:`price_coin_numba` take 1-D arrays (scalars broadcast) and run a
  ``numba.njit(parallel=True, fastmath=False, cache=True)`` kernel.

Bad input raises ``ValueError`` naming the argument and the index of the first bad element,
e.g. ``"K[3]: strike must be >= 0 (-1.0)"``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import erfc

from margin_engine.maths.black76 import S_MAX

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_INV_SQRT2 = 1.0 / math.sqrt(2.0)


@dataclass(frozen=True, slots=True)
class GreeksArray:
    """Vectorised :class:`margin_engine.maths.black76.Greeks`; each field a float64 array (USD)."""

    price: FloatArray
    delta: FloatArray
    gamma: FloatArray
    vega: FloatArray
    theta: FloatArray


@dataclass(frozen=True, slots=True)
class CoinGreeksArray:
    """Vectorised :class:`margin_engine.maths.black76.CoinGreeks`; each field a float64 array."""

    price: FloatArray
    delta: FloatArray
    gamma: FloatArray
    vega: FloatArray
    theta: FloatArray
    coin_delta: FloatArray
    delta_usd: FloatArray


# --------------------------------------------------------------------------------------------
# input handling


def _where(a: np.ndarray, mask: np.ndarray) -> str:
    if a.ndim == 0:
        return ""
    idx = np.unravel_index(int(np.flatnonzero(mask)[0]), a.shape)
    return "[" + ", ".join(str(int(i)) for i in idx) + "]"


def _first_value(a: np.ndarray, mask: np.ndarray) -> float:
    return float(a.reshape(-1)[int(np.flatnonzero(mask.reshape(-1))[0])])


def _as_float(name: str, x: ArrayLike) -> FloatArray:
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: not a number or array of numbers") from exc
    bad = ~np.isfinite(a)
    if bad.any():
        raise ValueError(f"{name}{_where(a, bad)}: not a finite number ({_first_value(a, bad)!r})")
    return a


def _as_bool(x: ArrayLike) -> BoolArray:
    a = np.asarray(x)
    if a.dtype == np.bool_:
        return a
    if np.issubdtype(a.dtype, np.integer):
        bad = (a != 0) & (a != 1)
        if not bad.any():
            return a.astype(np.bool_)
        raise ValueError(f"is_call{_where(a, bad)}: must be True/False (or 1/0)")
    raise ValueError(f"is_call: must be a boolean array (True for call), got dtype {a.dtype}")


def _prepare(
    F: ArrayLike, K: ArrayLike, T: ArrayLike, sigma: ArrayLike, is_call: ArrayLike, r: ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, BoolArray, FloatArray]:
    """Validate (naming the argument and index) and broadcast the inputs."""
    Fa = _as_float("F", F)
    bad = Fa <= 0.0
    if bad.any():
        raise ValueError(f"F{_where(Fa, bad)}: forward must be > 0 ({_first_value(Fa, bad)!r})")
    Ka = _as_float("K", K)
    bad = Ka < 0.0
    if bad.any():
        raise ValueError(f"K{_where(Ka, bad)}: strike must be >= 0 ({_first_value(Ka, bad)!r})")
    Ta = _as_float("T", T)
    sa = _as_float("sigma", sigma)
    ra = _as_float("r", r)
    ca = _as_bool(is_call)
    try:
        Fb, Kb, Tb, sb, cb, rb = np.broadcast_arrays(Fa, Ka, Ta, sa, ca, ra)
    except ValueError as exc:
        raise ValueError(f"F, K, T, sigma, is_call, r: shapes do not broadcast ({exc})") from exc
    return Fb, Kb, Tb, sb, cb, rb


# --------------------------------------------------------------------------------------------
# NumPy


def _ncdf(x: FloatArray) -> FloatArray:
    """N(x) = erfc(−x/√2)/2, as in the reference (not ``ndtr``, to agree in the tails)."""
    return np.asarray(0.5 * erfc(-x * _INV_SQRT2), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class _Core:
    w: FloatArray  # +1 call, -1 put
    df: FloatArray  # exp(-r max(T, 0))
    live: BoolArray  # T > 0 and sigma > 0
    s: FloatArray  # sigma sqrt(T) where live (1.0 elsewhere, unused)
    sqrt_t: FloatArray
    d1: FloatArray
    d2: FloatArray
    price: FloatArray


def _core(
    F: FloatArray, K: FloatArray, T: FloatArray, sigma: FloatArray, c: BoolArray, r: FloatArray
) -> _Core:
    w = np.where(c, 1.0, -1.0)
    Tp = np.maximum(T, 0.0)
    df = np.exp(-r * Tp)
    live = (T > 0.0) & (sigma > 0.0)
    sqrt_t = np.sqrt(Tp)
    s = np.where(live, sigma * sqrt_t, 1.0)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore", under="ignore"):
        x = np.log(F / K)  # K == 0 -> +inf; over/underflow of F/K -> +-inf
        xs = x / np.minimum(s, S_MAX)
        half = 0.5 * np.minimum(s, S_MAX)
        d1 = xs + half
        d2 = xs - half
        # >= 0 even where two tiny products round the difference below zero
        v = np.maximum(df * w * (F * _ncdf(w * d1) - K * _ncdf(w * d2)), 0.0)
    intrinsic = df * np.maximum(w * (F - K), 0.0)
    price = np.where(live, v, intrinsic)
    return _Core(w, df, live, s, sqrt_t, d1, d2, price)


def _out(a: FloatArray) -> FloatArray:
    """Return a plain float64 ndarray (0-d arrays stay 0-d)."""
    return np.asarray(a, dtype=np.float64)


def price_usd(
    F: ArrayLike,
    K: ArrayLike,
    T: ArrayLike,
    sigma: ArrayLike,
    is_call: ArrayLike,
    r: ArrayLike = 0.0,
) -> FloatArray:
    """Vectorised Black-76 price in USD per unit of underlying.

    Parameters
    ----------
    F, K, T, sigma : array_like
        Forward (USD, > 0), strike (USD, >= 0), years to expiry (ACT/365), annualised vol.
    is_call : array_like of bool
        True for calls, False for puts.
    r : array_like, default 0.0
        Continuously compounded discount rate per year.

    Returns
    -------
    numpy.ndarray
        float64 prices of the broadcast shape; same conventions as
        :func:`margin_engine.maths.black76.price_usd`.
    """
    return _out(_core(*_prepare(F, K, T, sigma, is_call, r)).price)


def price_coin(
    F: ArrayLike,
    K: ArrayLike,
    T: ArrayLike,
    sigma: ArrayLike,
    is_call: ArrayLike,
    r: ArrayLike = 0.0,
) -> FloatArray:
    """Vectorised inverse-option price in coin per unit of underlying: ``price_usd / F``."""
    args = _prepare(F, K, T, sigma, is_call, r)
    return _out(_core(*args).price / args[0])


def _step(F: FloatArray, K: FloatArray, w: FloatArray) -> FloatArray:
    itm = w * (F - K) > 0.0
    return np.where(F == K, 0.5 * w, np.where(itm, w, 0.0))


def _greeks(
    F: FloatArray, K: FloatArray, T: FloatArray, sigma: FloatArray, c: BoolArray, r: FloatArray
) -> GreeksArray:
    k = _core(F, K, T, sigma, c, r)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore", under="ignore"):
        pdf = _INV_SQRT_2PI * np.exp(-0.5 * k.d1 * k.d1)
        delta = np.where(k.live, k.df * k.w * _ncdf(k.w * k.d1), k.df * _step(F, K, k.w))
        gamma = np.where(k.live, k.df * pdf / (F * k.s), 0.0)
        vega = np.where(k.live, k.df * F * pdf * k.sqrt_t, 0.0)
        decay = k.df * F * pdf * sigma / (2.0 * k.sqrt_t)
        theta = np.where(k.live, r * k.price - decay, np.where(T > 0.0, r * k.price, 0.0))
    return GreeksArray(_out(k.price), _out(delta), _out(gamma), _out(vega), _out(theta))


def greeks_usd(
    F: ArrayLike,
    K: ArrayLike,
    T: ArrayLike,
    sigma: ArrayLike,
    is_call: ArrayLike,
    r: ArrayLike = 0.0,
) -> GreeksArray:
    """Vectorised Black-76 price and Greeks in USD (units as on ``black76.Greeks``).

    ``delta`` = dV/dF, ``gamma`` = d²V/dF², ``vega`` = dV/dsigma per 1.00 vol,
    ``theta`` = −dV/dT per year with the forward fixed. Arguments as in :func:`price_usd`.
    """
    return _greeks(*_prepare(F, K, T, sigma, is_call, r))


def greeks_coin(
    F: ArrayLike,
    K: ArrayLike,
    T: ArrayLike,
    sigma: ArrayLike,
    is_call: ArrayLike,
    r: ArrayLike = 0.0,
) -> CoinGreeksArray:
    """Vectorised coin-valued Greeks of inverse options (units as on ``black76.CoinGreeks``)."""
    args = _prepare(F, K, T, sigma, is_call, r)
    Fb = args[0]
    g = _greeks(*args)
    pc = g.price / Fb
    cd = g.delta - pc
    return CoinGreeksArray(
        price=_out(pc),
        delta=_out(cd / Fb),
        gamma=_out((g.gamma - 2.0 * cd / Fb) / Fb),
        vega=_out(g.vega / Fb),
        theta=_out(g.theta / Fb),
        coin_delta=_out(cd),
        delta_usd=g.delta,
    )


# --------------------------------------------------------------------------------------------
# numba


@numba.njit(cache=True, fastmath=False, error_model="numpy")
def _price_one(F: float, K: float, T: float, sigma: float, is_call: bool, r: float) -> float:
    """Scalar kernel mirroring the reference (inputs already validated)."""
    w = 1.0 if is_call else -1.0
    if T <= 0.0:
        return max(w * (F - K), 0.0)
    df = math.exp(-r * T)
    if sigma <= 0.0:
        return df * max(w * (F - K), 0.0)
    s = min(sigma * math.sqrt(T), S_MAX)
    ratio = math.inf if K == 0.0 else F / K
    x = -math.inf if ratio == 0.0 else math.log(ratio)
    xs = x / s
    d1 = xs + 0.5 * s
    d2 = xs - 0.5 * s
    n1 = 0.5 * math.erfc(-(w * d1) * _INV_SQRT2)
    n2 = 0.5 * math.erfc(-(w * d2) * _INV_SQRT2)
    return max(df * w * (F * n1 - K * n2), 0.0)  # >= 0 despite rounding


@numba.njit(parallel=True, fastmath=False, cache=True, error_model="numpy")
def _price_usd_kernel(
    F: FloatArray,
    K: FloatArray,
    T: FloatArray,
    sigma: FloatArray,
    is_call: BoolArray,
    r: FloatArray,
    out: FloatArray,
) -> None:
    for i in numba.prange(F.shape[0]):
        out[i] = _price_one(F[i], K[i], T[i], sigma[i], is_call[i], r[i])


@numba.njit(parallel=True, fastmath=False, cache=True, error_model="numpy")
def _price_coin_kernel(
    F: FloatArray,
    K: FloatArray,
    T: FloatArray,
    sigma: FloatArray,
    is_call: BoolArray,
    r: FloatArray,
    out: FloatArray,
) -> None:
    for i in numba.prange(F.shape[0]):
        out[i] = _price_one(F[i], K[i], T[i], sigma[i], is_call[i], r[i]) / F[i]


@numba.njit(cache=True)
def _first_invalid(
    F: FloatArray, K: FloatArray, T: FloatArray, sigma: FloatArray, r: FloatArray
) -> tuple[int, int]:
    """(code, index) of the first invalid element in one pass; code 0 when all are valid."""
    for i in range(F.shape[0]):
        if not math.isfinite(F[i]):
            return 1, i
        if F[i] <= 0.0:
            return 2, i
        if not math.isfinite(K[i]):
            return 3, i
        if K[i] < 0.0:
            return 4, i
        if not math.isfinite(T[i]):
            return 5, i
        if not math.isfinite(sigma[i]):
            return 6, i
        if not math.isfinite(r[i]):
            return 7, i
    return 0, -1


_INVALID = {
    1: ("F", "not a finite number"),
    2: ("F", "forward must be > 0"),
    3: ("K", "not a finite number"),
    4: ("K", "strike must be >= 0"),
    5: ("T", "not a finite number"),
    6: ("sigma", "not a finite number"),
    7: ("r", "not a finite number"),
}


def _prepare_1d(
    F: ArrayLike,
    K: ArrayLike,
    T: ArrayLike,
    sigma: ArrayLike,
    is_call: ArrayLike,
    r: ArrayLike,
    validate: bool,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, BoolArray, FloatArray]:
    arrays: list[Any] = []
    for name, x in (("F", F), ("K", K), ("T", T), ("sigma", sigma)):
        try:
            arrays.append(np.asarray(x, dtype=np.float64))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name}: not a number or array of numbers") from exc
    arrays.append(_as_bool(is_call))
    try:
        arrays.append(np.asarray(r, dtype=np.float64))
    except (TypeError, ValueError) as exc:
        raise ValueError("r: not a number or array of numbers") from exc
    for name, a in zip(("F", "K", "T", "sigma", "is_call", "r"), arrays, strict=True):
        if a.ndim > 1:
            raise ValueError(f"{name}: must be a scalar or a 1-D array (got shape {a.shape})")
    try:
        b = np.broadcast_arrays(*arrays)
    except ValueError as exc:
        raise ValueError(f"F, K, T, sigma, is_call, r: lengths do not match ({exc})") from exc
    Fb, Kb, Tb, sb, rb = (np.ascontiguousarray(a, dtype=np.float64) for a in (*b[:4], b[5]))
    cb = np.ascontiguousarray(b[4], dtype=np.bool_)
    if Fb.ndim == 0:
        Fb, Kb, Tb, sb, rb = (a.reshape(1) for a in (Fb, Kb, Tb, sb, rb))
        cb = cb.reshape(1)
    if validate:
        code, i = _first_invalid(Fb, Kb, Tb, sb, rb)
        if code:
            name, why = _INVALID[int(code)]
            val = {"F": Fb, "K": Kb, "T": Tb, "sigma": sb, "r": rb}[name][i]
            raise ValueError(f"{name}[{int(i)}]: {why} ({float(val)!r})")
    return Fb, Kb, Tb, sb, cb, rb


def price_usd_numba(
    F: ArrayLike,
    K: ArrayLike,
    T: ArrayLike,
    sigma: ArrayLike,
    is_call: ArrayLike,
    r: ArrayLike = 0.0,
    *,
    validate: bool = True,
) -> FloatArray:
    """Black-76 price in USD per unit of underlying, numba parallel kernel on 1-D float64 arrays.

    Arguments as in :func:`price_usd`, each a scalar or a 1-D array of a common length.
    ``validate=False`` skips the (single-pass) input check for callers that already validated;
    invalid input then gives unspecified numbers. The first call compiles (or loads the on-disk
    cache); call once on a small array to warm up before timing.
    """
    Fb, Kb, Tb, sb, cb, rb = _prepare_1d(F, K, T, sigma, is_call, r, validate)
    out = np.empty(Fb.shape[0], dtype=np.float64)
    _price_usd_kernel(Fb, Kb, Tb, sb, cb, rb, out)
    return out


def price_coin_numba(
    F: ArrayLike,
    K: ArrayLike,
    T: ArrayLike,
    sigma: ArrayLike,
    is_call: ArrayLike,
    r: ArrayLike = 0.0,
    *,
    validate: bool = True,
) -> FloatArray:
    """Inverse-option price in coin (``price_usd / F``), numba parallel kernel; see
    :func:`price_usd_numba`."""
    Fb, Kb, Tb, sb, cb, rb = _prepare_1d(F, K, T, sigma, is_call, r, validate)
    out = np.empty(Fb.shape[0], dtype=np.float64)
    _price_coin_kernel(Fb, Kb, Tb, sb, cb, rb, out)
    return out
