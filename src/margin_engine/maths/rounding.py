"""Python's ``round(x, ndigits)`` over arrays, to the bit."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


def round_decimals(x: FloatArray, decimals: int | None) -> FloatArray:
    """``[round(v, decimals) for v in x]`` (half to even on the exact binary value), vectorised.

    ``rint(x·10^d) / 10^d`` is Python's result whenever ``x·10^d`` rounds to the same integer
    as the exact product: the division is correctly rounded, as is Python's decimal-to-float
    step. The few values whose product lies within its rounding error of a half-integer, or
    beyond 2^52, are rounded by Python itself.

    Parameters
    ----------
    x : float array
        Values (any unit).
    decimals : int or None
        Digits after the point (≥ 0); ``None``: no rounding (a copy of ``x``).

    Returns
    -------
    float array
        The rounded values, same shape and unit.
    """
    x = np.asarray(x, dtype=np.float64)
    if decimals is None:
        return x.copy()
    scale = 10.0 ** decimals
    t = x * scale
    out: FloatArray = np.rint(t) / scale
    with np.errstate(invalid="ignore"):
        risky = ~(np.abs(t - np.floor(t) - 0.5) > 1e-6 + np.abs(t) * 1e-15) | ~(
            np.abs(t) < 2.0 ** 52)
    flat = out.reshape(-1)
    src = x.reshape(-1)
    for i in np.flatnonzero(risky.reshape(-1)).tolist():
        flat[i] = round(float(src[i]), decimals)
    return out
