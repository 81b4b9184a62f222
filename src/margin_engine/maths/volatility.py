"""Volatility models for margin: EWMA, GARCH(1,1), filtered historical simulation, horizon scaling.

All functions are pure and work on float64 NumPy arrays of **log returns** (decimal, per day
unless stated: 0.01 = 1%). Variances are in squared return units, volatilities in return units
per period of the input returns.

Timing convention (ccp-standards §5.4, TV-BT-6): a variance series ``sigma2`` computed from ``n``
returns has ``n + 1`` rows. ``sigma2[0]`` is the seed, ``sigma2[t]`` is the variance forecast for
``r[t]`` made with returns up to ``r[t-1]`` only, and ``sigma2[n]`` is the one-step-ahead forecast
after the last return::

    sigma2[0]   = seed
    sigma2[t+1] = lam * sigma2[t] + (1 - lam) * r[t]**2                       (EWMA)
    sigma2[t+1] = omega + alpha * r[t]**2 + gamma * r[t]**2 * 1{r[t] < 0}
                  + beta * sigma2[t]                                          (GARCH / GJR)

Multi-asset input is an ``(n, k)`` array with one column per risk factor; each column is filtered
on its own and scenario rows keep their date alignment, so joint scenarios preserve the
cross-sectional dependence ("VaR without correlations", Barone-Adesi et al. 1999).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]

#: Scale applied to returns before handing them to ``arch`` (percent returns fit more stably).
DEFAULT_GARCH_SCALE = 100.0

__all__ = [
    "DEFAULT_GARCH_SCALE",
    "GarchFit",
    "arch_backcast",
    "ewma_half_life",
    "ewma_variance",
    "ewma_volatility",
    "ewma_weight_horizon",
    "fhs_from_ewma",
    "fhs_scenarios",
    "fit_garch",
    "garch_variance",
    "overlapping_returns",
    "sqrt_time_scale",
    "standardised_residuals",
]


# --------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------


def _as_returns(returns: ArrayLike, name: str = "returns") -> FloatArray:
    arr = np.asarray(returns, dtype=np.float64)
    if arr.ndim not in (1, 2):
        raise ValueError(f"{name}: must be 1-D (n,) or 2-D (n, k), got {arr.ndim}-D")
    if arr.shape[0] == 0:
        raise ValueError(f"{name}: must hold at least one observation")
    if arr.ndim == 2 and arr.shape[1] == 0:
        raise ValueError(f"{name}: must hold at least one column")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: contains a non-finite value")
    return arr


def _check_unit_interval_open(value: float, name: str) -> float:
    v = float(value)
    if not (0.0 < v < 1.0):
        raise ValueError(f"{name}: must lie strictly between 0 and 1, got {value!r}")
    return v


def _positive_per_column(value: ArrayLike, ncols: int | None, name: str) -> FloatArray:
    """A positive finite scalar or one value per column, broadcast to the column shape."""
    arr = np.asarray(value, dtype=np.float64)
    shape: tuple[int, ...] = () if ncols is None else (ncols,)
    if arr.ndim > 1 or (arr.ndim == 1 and arr.shape != shape):
        raise ValueError(f"{name}: must be a scalar or hold one value per column {shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0.0):
        raise ValueError(f"{name}: must be finite and > 0, got {value!r}")
    return np.broadcast_to(arr, shape).astype(np.float64)


# --------------------------------------------------------------------------------------------
# EWMA (RiskMetrics)
# --------------------------------------------------------------------------------------------


def ewma_variance(
    returns: ArrayLike,
    lam: float = 0.94,
    *,
    initial_variance: ArrayLike | None = None,
    seed_window: int = 30,
) -> FloatArray:
    """EWMA (RiskMetrics) variance recursion on zero-mean returns (ccp-standards §5.1, §5.4).

    Parameters
    ----------
    returns : array (n,) or (n, k)
        Log returns per period (decimal).
    lam : float
        Decay factor λ in (0, 1); RiskMetrics uses 0.94 daily, 0.97 monthly.
    initial_variance : float or array (k,), optional
        Seed ``sigma2[0]`` in squared return units. When omitted, the seed is the population
        variance (``ddof=0``, demeaned) of the first ``seed_window`` returns of each column, the
        TV-BT-6 convention ("seeded with the variance of the first 30 returns").
    seed_window : int
        Number of leading returns used for the default seed (>= 2, <= n).

    Returns
    -------
    array (n + 1,) or (n + 1, k)
        ``sigma2[t]`` is the variance forecast for ``r[t]`` using returns up to ``t - 1``;
        ``sigma2[n]`` is the next-period forecast.
    """
    r = _as_returns(returns)
    lam_f = _check_unit_interval_open(lam, "lam")
    ncols = None if r.ndim == 1 else r.shape[1]
    if initial_variance is None:
        if not (2 <= seed_window <= r.shape[0]):
            raise ValueError(
                f"seed_window: must lie in [2, n={r.shape[0]}] when initial_variance is omitted,"
                f" got {seed_window}"
            )
        seed = np.var(r[:seed_window], axis=0)
        if np.any(seed <= 0.0):
            raise ValueError(f"seed_window: the first {seed_window} returns have zero variance "
                             "(a constant price); give a seed")
        seed = np.asarray(seed, dtype=np.float64)
    else:
        seed = _positive_per_column(initial_variance, ncols, "initial_variance")
    out = np.empty((r.shape[0] + 1, *r.shape[1:]), dtype=np.float64)
    out[0] = seed
    one_minus = 1.0 - lam_f
    sq = r * r
    for t in range(r.shape[0]):
        out[t + 1] = lam_f * out[t] + one_minus * sq[t]
    return out


def ewma_volatility(
    returns: ArrayLike,
    lam: float = 0.94,
    *,
    initial_variance: ArrayLike | None = None,
    seed_window: int = 30,
) -> FloatArray:
    """Square root of :func:`ewma_variance` (same shape and timing), in return units."""
    return np.sqrt(
        ewma_variance(returns, lam, initial_variance=initial_variance, seed_window=seed_window)
    )


def ewma_half_life(lam: float) -> float:
    """Half-life of EWMA weights in observations: ``ln 0.5 / ln λ`` (11.20 for 0.94, §5.1)."""
    return math.log(0.5) / math.log(_check_unit_interval_open(lam, "lam"))


def ewma_weight_horizon(lam: float, mass: float = 0.999) -> float:
    """Observations holding ``mass`` of the EWMA weight: ``ln(1 - mass) / ln λ`` (§5.1)."""
    m = _check_unit_interval_open(mass, "mass")
    return math.log(1.0 - m) / math.log(_check_unit_interval_open(lam, "lam"))


# --------------------------------------------------------------------------------------------
# GARCH(1,1)
# --------------------------------------------------------------------------------------------


def garch_variance(
    returns: ArrayLike,
    omega: float,
    alpha: float,
    beta: float,
    *,
    initial_variance: float,
    gamma: float = 0.0,
) -> FloatArray:
    """Plain GARCH(1,1) / GJR-GARCH(1,1,1) variance recursion (reference implementation, §5.2).

    ``sigma2[t+1] = omega + (alpha + gamma * 1{r[t] < 0}) * r[t]**2 + beta * sigma2[t]``.

    Parameters
    ----------
    returns : array (n,)
        Zero-mean returns (residuals), in the units the parameters were estimated in.
    omega : float
        Constant, squared return units (>= 0; ``omega = 0, alpha = 1 - λ, beta = λ`` is EWMA).
    alpha, beta, gamma : float
        ARCH, GARCH and asymmetry (GJR) coefficients (>= 0).
    initial_variance : float
        ``sigma2[0]`` in squared return units (> 0).

    Returns
    -------
    array (n + 1,)
        Same timing as :func:`ewma_variance`; ``sigma2[n]`` is the one-step forecast.
    """
    r = _as_returns(returns)
    if r.ndim != 1:
        raise ValueError("returns: garch_variance takes a 1-D series; apply it per column")
    if not (math.isfinite(omega) and omega >= 0.0):
        raise ValueError(f"omega: must be finite and >= 0, got {omega!r}")
    for name, val in (("alpha", alpha), ("beta", beta), ("gamma", gamma)):
        if not (math.isfinite(val) and val >= 0.0):
            raise ValueError(f"{name}: must be finite and >= 0, got {val!r}")
    if not (math.isfinite(initial_variance) and initial_variance > 0.0):
        raise ValueError(f"initial_variance: must be finite and > 0, got {initial_variance!r}")
    n = r.shape[0]
    out = np.empty(n + 1, dtype=np.float64)
    prev = float(initial_variance)
    out[0] = prev
    for t in range(n):
        x = float(r[t])
        a = alpha + gamma if x < 0.0 else alpha
        prev = omega + a * x * x + beta * prev
        out[t + 1] = prev
    return out


def arch_backcast(residuals: ArrayLike, *, tau: int = 75, lam: float = 0.94) -> float:
    """The ``arch`` package's backcast of the squared residual before the sample.

    ``sum_i w_i r_i**2`` over the first ``min(tau, n)`` residuals with weights ``w_i ∝ lam**i``
    normalised to one. ``arch`` starts its GARCH recursion with
    ``sigma2[0] = omega + (alpha + gamma / 2 + beta) * backcast``, the backcast being taken on
    the residuals at the *starting* mean (``r`` for a zero mean, ``r - mean(r)`` for a constant
    mean), not at the fitted one.
    """
    r = _as_returns(residuals, "residuals")
    if r.ndim != 1:
        raise ValueError("residuals: must be 1-D")
    if tau < 1:
        raise ValueError(f"tau: must be >= 1, got {tau}")
    m = min(tau, r.shape[0])
    w = _check_unit_interval_open(lam, "lam") ** np.arange(m)
    w = w / w.sum()
    return float(np.sum(r[:m] ** 2 * w))


@dataclass(frozen=True, eq=False)
class GarchFit:
    """A GARCH(1,1) (optionally GJR) fit in the **original** return units.

    Attributes
    ----------
    omega : float
        Constant in squared return units (the ``arch`` value divided by ``scale**2``).
    alpha, beta, gamma : float
        ARCH, GARCH and asymmetry coefficients (unit-free; ``gamma = 0`` for plain GARCH).
    nu : float or None
        Student-t degrees of freedom (``None`` for normal innovations).
    mu : float
        Constant mean in return units (0 for ``mean="zero"``).
    persistence : float
        ``alpha + gamma / 2 + beta`` (< 1 for a covariance-stationary model).
    long_run_variance : float
        ``omega / (1 - persistence)``; ``inf`` when persistence >= 1.
    initial_variance : float
        ``sigma2[0]`` used by ``arch`` (backcast-based), original units squared.
    conditional_volatility : array (n,)
        In-sample ``sigma[t]`` for each return, original units.
    forecast_variance : float
        One-step-ahead variance after the last return, original units squared.
    loglikelihood : float
        Log-likelihood of the scaled returns as reported by ``arch``.
    scale : float
        Factor the returns were multiplied by for estimation.
    dist : str
        ``"normal"`` or ``"t"``.
    converged : bool
        ``arch``'s optimiser convergence flag is 0.

    The volatility array is read-only; instances compare by identity (they hold an array).
    """

    omega: float
    alpha: float
    beta: float
    gamma: float
    nu: float | None
    mu: float
    persistence: float
    long_run_variance: float
    initial_variance: float
    conditional_volatility: FloatArray
    forecast_variance: float
    loglikelihood: float
    scale: float
    dist: str
    converged: bool

    @property
    def forecast_volatility(self) -> float:
        """One-step-ahead volatility, original return units."""
        return math.sqrt(self.forecast_variance)

    @property
    def variance_path(self) -> FloatArray:
        """``(n + 1,)`` variance series with the §5.4 timing: in-sample then the forecast."""
        return np.append(self.conditional_volatility**2, self.forecast_variance)


def fit_garch(
    returns: ArrayLike,
    *,
    dist: Literal["normal", "t"] = "normal",
    mean: Literal["zero", "constant"] = "zero",
    asymmetric: bool = False,
    scale: float = DEFAULT_GARCH_SCALE,
) -> GarchFit:
    """Fit GARCH(1,1) (or GJR-GARCH(1,1,1) when ``asymmetric``) by maximum likelihood with ``arch``.

    Parameters
    ----------
    returns : array (n,)
        Daily log returns (decimal); at least 30 observations.
    dist : {"normal", "t"}
        Innovation distribution.
    mean : {"zero", "constant"}
        Mean model; §5.1 assumes zero-mean daily returns.
    asymmetric : bool
        Add the GJR leverage term (Barone-Adesi et al. recommend an asymmetric GARCH, §5.2).
    scale : float
        Returns are multiplied by ``scale`` for estimation (100 = percent returns), then all
        outputs are converted back to the original units.

    Returns
    -------
    GarchFit
    """
    from arch import arch_model

    r = _as_returns(returns)
    if r.ndim != 1:
        raise ValueError("returns: fit_garch takes a 1-D series; fit each column on its own")
    if r.shape[0] < 30:
        raise ValueError(f"returns: need at least 30 observations to fit GARCH, got {r.shape[0]}")
    if dist not in ("normal", "t"):
        raise ValueError(f"dist: must be 'normal' or 't', got {dist!r}")
    if mean not in ("zero", "constant"):
        raise ValueError(f"mean: must be 'zero' or 'constant', got {mean!r}")
    if not (math.isfinite(scale) and scale > 0.0):
        raise ValueError(f"scale: must be finite and > 0, got {scale!r}")

    model = arch_model(
        r * scale,
        mean="Zero" if mean == "zero" else "Constant",
        vol="GARCH",
        p=1,
        o=1 if asymmetric else 0,
        q=1,
        dist="normal" if dist == "normal" else "t",
        rescale=False,
    )
    res = model.fit(disp="off")
    params = res.params
    s2 = scale * scale
    omega = float(params["omega"]) / s2
    alpha = float(params["alpha[1]"])
    beta = float(params["beta[1]"])
    gamma = float(params["gamma[1]"]) if asymmetric else 0.0
    nu = float(params["nu"]) if dist == "t" else None
    mu = float(params["mu"]) / scale if mean == "constant" else 0.0
    persistence = alpha + 0.5 * gamma + beta
    long_run = omega / (1.0 - persistence) if persistence < 1.0 else math.inf
    cond_vol = np.asarray(res.conditional_volatility, dtype=np.float64) / scale
    cond_vol.setflags(write=False)
    fc = res.forecast(horizon=1, reindex=False)
    forecast_variance = float(np.asarray(fc.variance)[-1, 0]) / s2
    return GarchFit(
        omega=omega,
        alpha=alpha,
        beta=beta,
        gamma=gamma,
        nu=nu,
        mu=mu,
        persistence=persistence,
        long_run_variance=long_run,
        initial_variance=float(cond_vol[0] ** 2),
        conditional_volatility=cond_vol,
        forecast_variance=forecast_variance,
        loglikelihood=float(res.loglikelihood),
        scale=float(scale),
        dist=dist,
        converged=int(res.convergence_flag) == 0,
    )


# --------------------------------------------------------------------------------------------
# Filtered historical simulation
# --------------------------------------------------------------------------------------------


def standardised_residuals(returns: ArrayLike, sigma: ArrayLike) -> FloatArray:
    """Devolatilised returns ``z[t] = r[t] / sigma[t]`` (§5.3), elementwise, same shape.

    ``sigma`` must have the shape of ``returns`` and be > 0: pass the forecast made *before*
    each return (``ewma_volatility(r)[:-1]``), not the one updated with it.
    """
    r = _as_returns(returns)
    s = np.asarray(sigma, dtype=np.float64)
    if s.shape != r.shape:
        raise ValueError(f"sigma: shape {s.shape} must equal the returns shape {r.shape}")
    if not np.all(np.isfinite(s)) or np.any(s <= 0.0):
        raise ValueError("sigma: every conditional volatility must be finite and > 0")
    return r / s


def overlapping_returns(returns: ArrayLike, horizon: int) -> FloatArray:
    """Overlapping ``horizon``-period log returns: sums of ``horizon`` consecutive returns.

    Row ``s`` is ``r[s] + ... + r[s + horizon - 1]``; ``n - horizon + 1`` rows, columns kept.
    Log returns add over time, so this is the exact h-day log return of each window. Adjacent
    rows share ``horizon - 1`` days, so they are autocorrelated (about ``n / horizon``
    independent observations).
    """
    r = _as_returns(returns)
    h = int(horizon)
    if h != horizon or h < 1:
        raise ValueError(f"horizon: must be a positive integer, got {horizon!r}")
    n = r.shape[0]
    if h > n:
        raise ValueError(f"horizon: {h} exceeds the number of returns {n}")
    c = np.concatenate([np.zeros((1, *r.shape[1:])), np.cumsum(r, axis=0)], axis=0)
    return np.asarray(c[h:] - c[:-h], dtype=np.float64)


def sqrt_time_scale(value: ArrayLike, horizon: float) -> FloatArray:
    """Square-root-of-time scaling ``value * sqrt(horizon)`` (one-period → horizon-period).

    Valid for i.i.d. zero-mean returns: variances add, so volatilities, and VaR/ES of a normal
    or any scale family, grow with ``sqrt(h)``. It understates risk under volatility clustering
    and fat tails; :func:`overlapping_returns` is the empirical alternative.
    """
    h = float(horizon)
    if not (math.isfinite(h) and h > 0.0):
        raise ValueError(f"horizon: must be finite and > 0, got {horizon!r}")
    v = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(v)):
        raise ValueError("value: contains a non-finite value")
    return v * math.sqrt(h)


def fhs_scenarios(
    returns: ArrayLike,
    sigma: ArrayLike,
    sigma_now: ArrayLike,
    *,
    sigma_floor: ArrayLike = 0.0,
    variant: Literal["current", "max"] = "current",
    horizon: int = 1,
    horizon_method: Literal["sqrt", "overlapping"] = "sqrt",
) -> FloatArray:
    """Filtered historical simulation scenario returns (Barone-Adesi et al. 1999, §5.3).

    ``z[s] = r[s] / sigma[s]`` then ``r~[s] = z[s] * target[s]`` with

    - ``variant="current"``: ``target = max(sigma_now, sigma_floor)`` (the standard FHS);
    - ``variant="max"``: ``target[s] = max(sigma_now, sigma[s], sigma_floor)`` — a historical
      day is never scaled *below* its own volatility (an anti-procyclical variant; not a §5
      formula, documented in docs/backtest-statistics.md).

    Parameters
    ----------
    returns : array (n,) or (n, k)
        Historical one-period log returns; one column per risk factor.
    sigma : array like ``returns``
        Conditional volatility of each return, forecast before it (> 0).
    sigma_now : float or array (k,)
        Current one-period volatility forecast per column (> 0).
    sigma_floor : float or array (k,)
        Lower bound on the revolatilising volatility (>= 0), e.g. a long-run volatility.
    variant : {"current", "max"}
        Revolatilisation rule, see above.
    horizon : int
        Scenario horizon in periods (MPOR).
    horizon_method : {"sqrt", "overlapping"}
        ``"sqrt"`` multiplies the filtered one-period returns by ``sqrt(horizon)`` (``n`` rows);
        ``"overlapping"`` sums ``horizon`` consecutive filtered returns (``n - horizon + 1``
        rows), each row being one joint path across columns.

    Returns
    -------
    array
        Scenario log returns; rows keep the historical date order and alignment across columns.
    """
    r = _as_returns(returns)
    z = standardised_residuals(r, sigma)
    s = np.asarray(sigma, dtype=np.float64)
    ncols = None if r.ndim == 1 else r.shape[1]
    now = _positive_per_column(sigma_now, ncols, "sigma_now")
    floor = np.asarray(sigma_floor, dtype=np.float64)
    if floor.ndim > 1 or (floor.ndim == 1 and floor.shape != ((ncols,) if ncols else ())):
        raise ValueError("sigma_floor: must be a scalar or hold one value per column")
    if not np.all(np.isfinite(floor)) or np.any(floor < 0.0):
        raise ValueError(f"sigma_floor: must be finite and >= 0, got {sigma_floor!r}")
    target_now = np.maximum(now, floor)
    if variant == "current":
        filtered = z * target_now
    elif variant == "max":
        filtered = z * np.maximum(s, target_now)
    else:
        raise ValueError(f"variant: must be 'current' or 'max', got {variant!r}")
    if horizon_method == "sqrt":
        return sqrt_time_scale(filtered, horizon)
    if horizon_method == "overlapping":
        return overlapping_returns(filtered, horizon)
    raise ValueError(f"horizon_method: must be 'sqrt' or 'overlapping', got {horizon_method!r}")


def fhs_from_ewma(
    returns: ArrayLike,
    lam: float = 0.94,
    *,
    initial_variance: ArrayLike | None = None,
    seed_window: int = 30,
    window: int | None = None,
    sigma_floor: ArrayLike = 0.0,
    variant: Literal["current", "max"] = "current",
    horizon: int = 1,
    horizon_method: Literal["sqrt", "overlapping"] = "sqrt",
) -> FloatArray:
    """EWMA-filtered historical scenarios for the period after the last return.

    Runs :func:`ewma_volatility` over all of ``returns``, devolatilises each return with the
    forecast made before it, keeps the last ``window`` days (all when ``None``) and
    revolatilises with the forecast after the last return (``sigma[n]``). See
    :func:`fhs_scenarios` for the other arguments.
    """
    r = _as_returns(returns)
    vol = ewma_volatility(r, lam, initial_variance=initial_variance, seed_window=seed_window)
    start = 0
    if window is not None:
        if not (1 <= window <= r.shape[0]):
            raise ValueError(f"window: must lie in [1, n={r.shape[0]}], got {window}")
        start = r.shape[0] - window
    return fhs_scenarios(
        r[start:],
        vol[start:-1],
        vol[-1],
        sigma_floor=sigma_floor,
        variant=variant,
        horizon=horizon,
        horizon_method=horizon_method,
    )
