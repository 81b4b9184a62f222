"""Backtesting and procyclicality statistics for margin models (ccp-standards §3.4, §4).

Conventions (ccp-standards §0.1):

- An *exception* (breach) on day ``t`` is ``realised_loss[t] > margin[t]`` (strict), where the
  margin was set before the loss was realised; losses and margins are positive amounts in the
  same currency. P&L ``X`` is negative for a loss.
- ``p`` is the target exception probability ``1 - confidence`` (0.01 for 99% VaR).
- Likelihood-ratio statistics use ``0 * ln 0 = 0`` and are clipped at 0 against round-off.
- p-values are upper-tail chi-square probabilities (``scipy.stats.chi2.sf``).

Every function is pure and returns a frozen dataclass; see docs/backtest-statistics.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special, stats

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

#: BCBS (1996) plus factors by number of exceptions in 250 days at 99% (yellow zone 5..9,
#: red zone >= 10 adds 1.00, green adds 0.00). ccp-standards §4.3 (values recalled).
BCBS_PLUS_FACTORS: dict[int, float] = {5: 0.40, 6: 0.50, 7: 0.65, 8: 0.75, 9: 0.85}
#: Acerbi–Szekely Z2 traffic-light thresholds (5% and 0.01% levels), ccp-standards §4.4.
Z2_THRESHOLD_5PCT = -0.70
Z2_THRESHOLD_001PCT = -1.8

Zone = Literal["green", "yellow", "red"]

__all__ = [
    "BCBS_PLUS_FACTORS",
    "Z2_THRESHOLD_001PCT",
    "Z2_THRESHOLD_5PCT",
    "ChristoffersenResult",
    "CoverageResult",
    "KupiecResult",
    "MarginShareResult",
    "NDayIncrease",
    "PeakToTroughResult",
    "ProcyclicalityResult",
    "TrafficLightResult",
    "WorstWindowResult",
    "Z2Result",
    "acerbi_szekely_z2",
    "average_margin_share",
    "basel_normal_plus_factor",
    "basel_traffic_light",
    "basel_zone_bounds",
    "christoffersen",
    "christoffersen_from_counts",
    "coverage",
    "exception_flags",
    "kupiec_pof",
    "kupiec_pof_from_counts",
    "n_day_increase",
    "null_var_es",
    "peak_to_trough",
    "procyclicality",
    "simulate_z2_null",
    "transition_counts",
    "worst_window_traffic_light",
]


# --------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------


def _flags(exceptions: ArrayLike, name: str = "exceptions") -> BoolArray:
    arr = np.asarray(exceptions)
    if arr.ndim != 1:
        raise ValueError(f"{name}: must be a 1-D sequence of 0/1 flags, got {arr.ndim}-D")
    if arr.shape[0] == 0:
        raise ValueError(f"{name}: must hold at least one observation")
    if arr.dtype == np.bool_:
        return arr
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{name}: must be booleans or 0/1 numbers")
    if not np.all((arr == 0) | (arr == 1)):
        raise ValueError(f"{name}: every flag must be 0 or 1 (or a bool)")
    return arr.astype(np.bool_)


def _prob(p: float, name: str = "p") -> float:
    v = float(p)
    if not (0.0 < v < 1.0):
        raise ValueError(f"{name}: must lie strictly between 0 and 1, got {p!r}")
    return v


def _count(value: int, name: str, low: int = 0) -> int:
    if isinstance(value, bool) or int(value) != value:
        raise ValueError(f"{name}: must be an integer, got {value!r}")
    v = int(value)
    if v < low:
        raise ValueError(f"{name}: must be >= {low}, got {value!r}")
    return v


def _finite_1d(values: ArrayLike, name: str) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name}: must be 1-D, got {arr.ndim}-D")
    if arr.shape[0] == 0:
        raise ValueError(f"{name}: must hold at least one observation")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: contains a non-finite value")
    return arr


def _positive_series(values: ArrayLike, name: str) -> FloatArray:
    arr = _finite_1d(values, name)
    if np.any(arr <= 0.0):
        raise ValueError(f"{name}: every value must be > 0")
    return arr


def _broadcast(values: ArrayLike, shape: tuple[int, ...], name: str) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    try:
        return np.broadcast_to(arr, shape)
    except ValueError:
        raise ValueError(
            f"{name}: shape {arr.shape} must be a scalar or match the series shape {shape}"
        ) from None


def _bernoulli_loglik(n0: int, n1: int, prob: float) -> float:
    """``n0 ln(1 - prob) + n1 ln(prob)`` with ``0 ln 0 = 0``."""
    return float(special.xlogy(n0, 1.0 - prob) + special.xlogy(n1, prob))


# --------------------------------------------------------------------------------------------
# exceptions and coverage
# --------------------------------------------------------------------------------------------


def exception_flags(margin: ArrayLike, realised_loss: ArrayLike) -> BoolArray:
    """Exception indicators ``realised_loss[t] > margin[t]`` (strict, §0.1).

    Parameters
    ----------
    margin : array (T,)
        Margin (VaR) held for day ``t``, set before the loss is known; currency units.
    realised_loss : array (T,)
        Realised loss over the backtest horizon, positive for a loss; same units.
    """
    m = _finite_1d(margin, "margin")
    loss = _finite_1d(realised_loss, "realised_loss")
    if m.shape != loss.shape:
        raise ValueError(
            f"realised_loss: length {loss.shape[0]} must equal the margin length {m.shape[0]}"
        )
    return np.asarray(loss > m, dtype=np.bool_)


@dataclass(frozen=True)
class CoverageResult:
    """Observed coverage of a margin series.

    ``exception_rate = n_exceptions / n_obs``; ``coverage = 1 - exception_rate``.
    """

    n_obs: int
    n_exceptions: int
    exception_rate: float
    coverage: float


def coverage(exceptions: ArrayLike) -> CoverageResult:
    """Exception count and coverage fraction from 0/1 exception flags."""
    f = _flags(exceptions)
    n = int(f.shape[0])
    x = int(np.count_nonzero(f))
    rate = x / n
    return CoverageResult(n_obs=n, n_exceptions=x, exception_rate=rate, coverage=1.0 - rate)


# --------------------------------------------------------------------------------------------
# Kupiec POF
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KupiecResult:
    """Kupiec (1995) proportion-of-failures test; ``lr ~ chi2(1)`` under H0 (§4.1)."""

    n_obs: int
    n_exceptions: int
    p: float
    exception_rate: float
    lr: float
    p_value: float

    def reject(self, level: float = 0.05) -> bool:
        """True when H0 (exception probability = ``p``) is rejected at ``level``."""
        return self.p_value < _prob(level, "level")


def kupiec_pof_from_counts(n_exceptions: int, n_obs: int, p: float) -> KupiecResult:
    """Kupiec POF from counts (ccp-standards §4.1, TV-BT-1).

    ``LR = -2 ln[(1-p)^(T-x) p^x] + 2 ln[(1-x/T)^(T-x) (x/T)^x]`` with ``0 ln 0 = 0``, so
    ``x = 0`` gives ``-2 T ln(1-p)``.

    Parameters
    ----------
    n_exceptions : int
        Exceptions ``x`` (0 <= x <= T).
    n_obs : int
        Observations ``T`` (>= 1).
    p : float
        Target exception probability in (0, 1).
    """
    T = _count(n_obs, "n_obs", 1)
    x = _count(n_exceptions, "n_exceptions")
    if x > T:
        raise ValueError(f"n_exceptions: {x} exceeds n_obs {T}")
    pp = _prob(p)
    rate = x / T
    lr = -2.0 * _bernoulli_loglik(T - x, x, pp) + 2.0 * _bernoulli_loglik(T - x, x, rate)
    lr = max(lr, 0.0)
    return KupiecResult(
        n_obs=T,
        n_exceptions=x,
        p=pp,
        exception_rate=rate,
        lr=lr,
        p_value=float(stats.chi2.sf(lr, 1)),
    )


def kupiec_pof(exceptions: ArrayLike, p: float) -> KupiecResult:
    """Kupiec POF from 0/1 exception flags; see :func:`kupiec_pof_from_counts`."""
    f = _flags(exceptions)
    return kupiec_pof_from_counts(int(np.count_nonzero(f)), int(f.shape[0]), p)


# --------------------------------------------------------------------------------------------
# Christoffersen
# --------------------------------------------------------------------------------------------


def transition_counts(exceptions: ArrayLike) -> tuple[int, int, int, int]:
    """``(n00, n01, n10, n11)``: counts of consecutive pairs ``(I[t-1], I[t])``, t = 2..T."""
    f = _flags(exceptions)
    prev, cur = f[:-1], f[1:]
    n00 = int(np.count_nonzero(~prev & ~cur))
    n01 = int(np.count_nonzero(~prev & cur))
    n10 = int(np.count_nonzero(prev & ~cur))
    n11 = int(np.count_nonzero(prev & cur))
    return n00, n01, n10, n11


@dataclass(frozen=True)
class ChristoffersenResult:
    """Christoffersen (1998) independence and conditional-coverage tests (§4.2).

    ``pi01``/``pi11`` are ``nan`` when their denominator is zero (no such transitions); the
    corresponding likelihood terms are then empty and contribute 0.

    ``lr_cc = lr_pof + lr_ind`` (``chi2(2)``; MathWorks ``cc``). ``lr_cc_transition`` is the
    variant that evaluates the H0 likelihood ``L(p)`` on the T - 1 transitions:
    ``-2 ln L(p) + 2 ln L(pi01, pi11)``.
    """

    n_obs: int
    n_exceptions: int
    p: float
    n00: int
    n01: int
    n10: int
    n11: int
    pi01: float
    pi11: float
    pi: float
    lr_ind: float
    p_value_ind: float
    lr_pof: float
    p_value_pof: float
    lr_cc: float
    p_value_cc: float
    lr_cc_transition: float
    p_value_cc_transition: float


def christoffersen_from_counts(
    n00: int, n01: int, n10: int, n11: int, *, n_obs: int, n_exceptions: int, p: float
) -> ChristoffersenResult:
    """Christoffersen tests from transition counts plus the day counts for the POF part.

    ``LR_ind = -2 ln[(1-pi)^(n00+n10) pi^(n01+n11)]
    + 2 ln[(1-pi01)^n00 pi01^n01 (1-pi11)^n10 pi11^n11]``, with
    ``pi`` estimated on the transitions (not on the T days) and ``0 ln 0 = 0``.
    """
    c00, c01, c10, c11 = (
        _count(v, n) for v, n in ((n00, "n00"), (n01, "n01"), (n10, "n10"), (n11, "n11"))
    )
    n_trans = c00 + c01 + c10 + c11
    if n_trans == 0:
        raise ValueError("n00..n11: need at least one transition (two observations)")
    pp = _prob(p)
    pof = kupiec_pof_from_counts(n_exceptions, n_obs, pp)
    if n_trans != pof.n_obs - 1:
        raise ValueError(
            f"n_obs: transitions n00+n01+n10+n11 = {n_trans} must equal n_obs - 1 = {pof.n_obs - 1}"
        )
    d0, d1 = c00 + c01, c10 + c11
    pi01 = c01 / d0 if d0 else math.nan
    pi11 = c11 / d1 if d1 else math.nan
    pi = (c01 + c11) / n_trans
    ll_alt = _bernoulli_loglik(c00, c01, pi01 if d0 else 0.0) + _bernoulli_loglik(
        c10, c11, pi11 if d1 else 0.0
    )
    ll_pi = _bernoulli_loglik(c00 + c10, c01 + c11, pi)
    ll_p = _bernoulli_loglik(c00 + c10, c01 + c11, pp)
    lr_ind = max(-2.0 * ll_pi + 2.0 * ll_alt, 0.0)
    lr_cc = pof.lr + lr_ind
    lr_cc_t = max(-2.0 * ll_p + 2.0 * ll_alt, 0.0)
    return ChristoffersenResult(
        n_obs=pof.n_obs,
        n_exceptions=pof.n_exceptions,
        p=pp,
        n00=c00,
        n01=c01,
        n10=c10,
        n11=c11,
        pi01=pi01,
        pi11=pi11,
        pi=pi,
        lr_ind=lr_ind,
        p_value_ind=float(stats.chi2.sf(lr_ind, 1)),
        lr_pof=pof.lr,
        p_value_pof=pof.p_value,
        lr_cc=lr_cc,
        p_value_cc=float(stats.chi2.sf(lr_cc, 2)),
        lr_cc_transition=lr_cc_t,
        p_value_cc_transition=float(stats.chi2.sf(lr_cc_t, 2)),
    )


def christoffersen(exceptions: ArrayLike, p: float) -> ChristoffersenResult:
    """Christoffersen independence and conditional-coverage tests from 0/1 flags (T >= 2)."""
    f = _flags(exceptions)
    if f.shape[0] < 2:
        raise ValueError("exceptions: need at least two observations for transitions")
    n00, n01, n10, n11 = transition_counts(f)
    return christoffersen_from_counts(
        n00, n01, n10, n11, n_obs=int(f.shape[0]), n_exceptions=int(np.count_nonzero(f)), p=p
    )


# --------------------------------------------------------------------------------------------
# Basel traffic light
# --------------------------------------------------------------------------------------------


def basel_normal_plus_factor(n_exceptions: int, n_obs: int = 250, p: float = 0.01) -> float:
    """Unrounded yellow-zone plus factor ``3 (z_(1-p) / z_(1-x/T) - 1)`` (MathWorks ``tl``).

    Not clipped: it is negative for few exceptions and ``-3`` at ``x = 0`` (limit of an infinite
    quantile). TV-BT-1 column ``3·(z_a/z_o − 1)``.
    """
    T = _count(n_obs, "n_obs", 1)
    x = _count(n_exceptions, "n_exceptions")
    if x > T:
        raise ValueError(f"n_exceptions: {x} exceeds n_obs {T}")
    pp = _prob(p)
    z_a = float(stats.norm.isf(pp))
    z_o = float(stats.norm.isf(x / T))
    return 3.0 * (z_a / z_o - 1.0)


@dataclass(frozen=True)
class TrafficLightResult:
    """Basel traffic light (§4.3).

    ``cumulative_probability = P(X <= x)`` for ``X ~ Binomial(T, p)``. ``plus_factor`` and
    ``multiplier`` (``3 + plus_factor``) are ``None`` when the chosen plus-factor method does
    not apply (the BCBS table is defined for T = 250, p = 0.01 only).
    """

    n_obs: int
    n_exceptions: int
    p: float
    cumulative_probability: float
    zone: Zone
    plus_factor: float | None
    multiplier: float | None


def basel_traffic_light(
    n_exceptions: int,
    n_obs: int = 250,
    p: float = 0.01,
    *,
    green_below: float = 0.95,
    red_from: float = 0.9999,
    plus_factors: Literal["bcbs", "normal"] = "bcbs",
) -> TrafficLightResult:
    """Basel traffic-light zone from the binomial CDF (BCBS 1996, ccp-standards §4.3).

    green if ``F(x) < green_below``; yellow if ``green_below <= F(x) < red_from``; red
    otherwise. With T = 250 and p = 0.01 this gives green 0–4, yellow 5–9, red 10+.

    ``plus_factors="bcbs"``: 0.00 green; 0.40/0.50/0.65/0.75/0.85 for 5..9 exceptions; 1.00 red
    (only for T = 250, p = 0.01, else ``None``). ``"normal"``: 0 green, 1 red and
    :func:`basel_normal_plus_factor` clipped to [0, 1] in the yellow zone (any T, p).
    """
    T = _count(n_obs, "n_obs", 1)
    x = _count(n_exceptions, "n_exceptions")
    if x > T:
        raise ValueError(f"n_exceptions: {x} exceeds n_obs {T}")
    pp = _prob(p)
    g = _prob(green_below, "green_below")
    r = _prob(red_from, "red_from")
    if not g < r:
        raise ValueError(f"red_from: must exceed green_below ({g}), got {red_from!r}")
    cdf = float(stats.binom.cdf(x, T, pp))
    zone: Zone = "green" if cdf < g else ("yellow" if cdf < r else "red")
    plus: float | None
    if plus_factors == "bcbs":
        if T == 250 and pp == 0.01:
            plus = 0.0 if zone == "green" else (1.0 if zone == "red" else BCBS_PLUS_FACTORS[x])
        else:
            plus = None
    elif plus_factors == "normal":
        if zone == "green":
            plus = 0.0
        elif zone == "red":
            plus = 1.0
        else:
            plus = min(max(basel_normal_plus_factor(x, T, pp), 0.0), 1.0)
    else:
        raise ValueError(f"plus_factors: must be 'bcbs' or 'normal', got {plus_factors!r}")
    return TrafficLightResult(
        n_obs=T,
        n_exceptions=x,
        p=pp,
        cumulative_probability=cdf,
        zone=zone,
        plus_factor=plus,
        multiplier=None if plus is None else 3.0 + plus,
    )


@dataclass(frozen=True)
class WorstWindowResult:
    """The traffic light of the rolling window with the most exceptions.

    ``first`` and ``last`` index the window's first and last day (inclusive); among windows
    with the same count, the earliest. ``n_windows`` is the number of windows compared.
    """

    window: int
    first: int
    last: int
    n_windows: int
    traffic_light: TrafficLightResult


def worst_window_traffic_light(exceptions: ArrayLike, p: float = 0.01, window: int = 250, *,
                               plus_factors: Literal["bcbs", "normal"] = "bcbs"
                               ) -> WorstWindowResult | None:
    """Basel traffic light of the worst rolling ``window``-day window of an exception series.

    Every run of ``window`` consecutive days is a window (``T − window + 1`` of them); the
    worst has the most exceptions (the earliest of equals). ``None`` when the series is
    shorter than one window: no light rests on fewer days than the window.

    Parameters
    ----------
    exceptions : bool [T], one flag per backtested day, in date order
    p : target exception probability (0.01 for 99%)
    window : days per window (250: BCBS 1996)
    plus_factors : as in :func:`basel_traffic_light`
    """
    flags = _flags(exceptions)
    w = _count(window, "window", 1)
    if flags.size < w:
        return None
    counts = np.convolve(flags.astype(np.int64), np.ones(w, dtype=np.int64), mode="valid")
    first = int(np.argmax(counts))
    light = basel_traffic_light(int(counts[first]), w, p, plus_factors=plus_factors)
    return WorstWindowResult(w, first, first + w - 1, int(counts.size), light)


def basel_zone_bounds(
    n_obs: int = 250, p: float = 0.01, *, green_below: float = 0.95, red_from: float = 0.9999
) -> tuple[int, int]:
    """``(last green count, last yellow count)``; (4, 9) for T = 250, p = 0.01."""
    T = _count(n_obs, "n_obs", 1)
    pp = _prob(p)
    cdf = stats.binom.cdf(np.arange(T + 1), T, pp)
    last_green = int(np.count_nonzero(cdf < _prob(green_below, "green_below"))) - 1
    last_yellow = int(np.count_nonzero(cdf < _prob(red_from, "red_from"))) - 1
    return last_green, last_yellow


# --------------------------------------------------------------------------------------------
# Acerbi–Szekely Z2
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Z2Result:
    """Acerbi–Szekely (2014) Z2 expected-shortfall backtest (§4.4).

    ``zone`` uses the thresholds −0.70 (5%) and −1.8 (0.01%): green above −0.70, red at or below
    −1.8, yellow in between. ``p_value = P(Z2_null <= z2)`` from the simulated null when one is
    supplied, else ``None``.
    """

    z2: float
    n_obs: int
    n_exceptions: int
    alpha: float
    zone: Zone
    p_value: float | None


def acerbi_szekely_z2(
    pnl: ArrayLike,
    var: ArrayLike,
    es: ArrayLike,
    alpha: float = 0.025,
    *,
    null_z2: ArrayLike | None = None,
) -> Z2Result:
    """Z2 statistic ``sum_t X_t I_t / (T alpha ES_t) + 1`` with ``I_t = 1{X_t + VaR_t < 0}``.

    Parameters
    ----------
    pnl : array (T,)
        Realised P&L ``X_t`` (negative = loss), currency units.
    var, es : float or array (T,)
        VaR and ES at tail probability ``alpha`` for each day, positive amounts, same units
        (``es > 0``).
    alpha : float
        Tail probability (0.025 for ES 97.5%).
    null_z2 : array, optional
        Simulated Z2 values under H0 (see :func:`simulate_z2_null`) for the p-value.
    """
    x = _finite_1d(pnl, "pnl")
    T = int(x.shape[0])
    v = _broadcast(var, x.shape, "var")
    e = _broadcast(es, x.shape, "es")
    if not np.all(np.isfinite(v)):
        raise ValueError("var: contains a non-finite value")
    if not np.all(np.isfinite(e)) or np.any(e <= 0.0):
        raise ValueError("es: every value must be finite and > 0")
    a = _prob(alpha, "alpha")
    hit = (x + v) < 0.0
    z2 = float(np.sum(np.where(hit, x / e, 0.0)) / (T * a) + 1.0)
    if z2 <= Z2_THRESHOLD_001PCT:
        zone: Zone = "red"
    elif z2 <= Z2_THRESHOLD_5PCT:
        zone = "yellow"
    else:
        zone = "green"
    p_value = None
    if null_z2 is not None:
        sims = _finite_1d(null_z2, "null_z2")
        p_value = float(np.count_nonzero(sims <= z2) / sims.shape[0])
    return Z2Result(
        z2=z2,
        n_obs=T,
        n_exceptions=int(np.count_nonzero(hit)),
        alpha=a,
        zone=zone,
        p_value=p_value,
    )


def null_var_es(
    alpha: float = 0.025, dist: Literal["normal", "t"] = "normal", df: float | None = None
) -> tuple[float, float]:
    """``(VaR, ES)`` at tail probability ``alpha`` of a standard normal or unscaled Student-t.

    Normal: ``VaR = z_(1-alpha)``, ``ES = phi(VaR) / alpha``. Student-t(nu):
    ``VaR = t_nu^-1(1-alpha)``, ``ES = f_nu(VaR) (nu + VaR^2) / ((nu - 1) alpha)`` (nu > 1).
    """
    a = _prob(alpha, "alpha")
    if dist == "normal":
        q = float(stats.norm.isf(a))
        return q, float(stats.norm.pdf(q)) / a
    if dist == "t":
        if df is None or not (math.isfinite(df) and df > 1.0):
            raise ValueError(f"df: Student-t needs finite degrees of freedom > 1, got {df!r}")
        q = float(stats.t.isf(a, df))
        return q, float(stats.t.pdf(q, df)) * (df + q * q) / ((df - 1.0) * a)
    raise ValueError(f"dist: must be 'normal' or 't', got {dist!r}")


def simulate_z2_null(
    n_obs: int = 250,
    alpha: float = 0.025,
    *,
    n_sims: int = 100_000,
    dist: Literal["normal", "t"] = "normal",
    df: float | None = None,
    rng: int | np.random.Generator = 12345,
    chunk: int = 10_000,
) -> FloatArray:
    """Z2 under H0: P&L drawn i.i.d. from the model distribution with its exact VaR and ES.

    Z2 is invariant to a common scale, so this null also holds for a model whose forecasts are
    ``sigma_t`` times a fixed normal or Student-t. Draws are generated row by row
    (``rng.standard_normal((n_sims, n_obs))`` order, in chunks), so the result does not depend
    on ``chunk``. TV-BT-5: ``default_rng(12345)``, normal then t(3) on the same generator.

    Returns
    -------
    array (n_sims,)
    """
    T = _count(n_obs, "n_obs", 1)
    n = _count(n_sims, "n_sims", 1)
    c = _count(chunk, "chunk", 1)
    a = _prob(alpha, "alpha")
    var, es = null_var_es(a, dist, df)
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    out = np.empty(n, dtype=np.float64)
    denom = T * a * es
    nu = 0.0 if df is None else float(df)  # validated by null_var_es when dist == "t"
    for start in range(0, n, c):
        m = min(c, n - start)
        x = gen.standard_normal((m, T)) if dist == "normal" else gen.standard_t(nu, (m, T))
        out[start : start + m] = np.where(x + var < 0.0, x, 0.0).sum(axis=1) / denom + 1.0
    return out


# --------------------------------------------------------------------------------------------
# Procyclicality
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PeakToTroughResult:
    """``ratio = max(IM) / min(IM)`` over the window (§3.4), with where each was reached."""

    ratio: float
    peak: float
    trough: float
    peak_index: int
    trough_index: int


def peak_to_trough(margin: ArrayLike) -> PeakToTroughResult:
    """Peak-to-trough ratio of a positive margin series (Murphy, Vasios & Vause 2014, §3.4).

    Defined as in ccp-standards §3.4 as ``max(IM) / min(IM)`` over the whole window, regardless
    of which comes first. First occurrence indices are reported.
    """
    m = _positive_series(margin, "margin")
    i_max, i_min = int(np.argmax(m)), int(np.argmin(m))
    return PeakToTroughResult(
        ratio=float(m[i_max] / m[i_min]),
        peak=float(m[i_max]),
        trough=float(m[i_min]),
        peak_index=i_max,
        trough_index=i_min,
    )


@dataclass(frozen=True)
class NDayIncrease:
    """Largest n-day margin increase ``ratio = max_t IM[t+n] / IM[t]`` (§3.4).

    ``increase = ratio - 1`` (a fraction: 0.53 = +53%); ``start_index`` is the first ``t``
    attaining the maximum. The ratio is below 1 when the margin never rose over ``n`` days.
    """

    horizon: int
    ratio: float
    increase: float
    start_index: int


def n_day_increase(margin: ArrayLike, horizon: int) -> NDayIncrease:
    """Largest ``horizon``-day margin increase of a positive margin series (§3.4)."""
    m = _positive_series(margin, "margin")
    h = _count(horizon, "horizon", 1)
    if h >= m.shape[0]:
        raise ValueError(f"horizon: {h} must be shorter than the margin series ({m.shape[0]})")
    ratios = m[h:] / m[:-h]
    i = int(np.argmax(ratios))
    r = float(ratios[i])
    return NDayIncrease(horizon=h, ratio=r, increase=r - 1.0, start_index=i)


@dataclass(frozen=True)
class ProcyclicalityResult:
    """Peak-to-trough ratio and the largest n-day increases of a margin series."""

    peak_to_trough: PeakToTroughResult
    n_day: tuple[NDayIncrease, ...]

    def ratio(self, horizon: int) -> float:
        """The n-day ratio for ``horizon``; ``KeyError`` when it was not computed."""
        for item in self.n_day:
            if item.horizon == horizon:
                return item.ratio
        raise KeyError(horizon)


def procyclicality(
    margin: ArrayLike, horizons: tuple[int, ...] = (1, 5, 30)
) -> ProcyclicalityResult:
    """Procyclicality summary: :func:`peak_to_trough` and :func:`n_day_increase` per horizon.

    Every horizon must be shorter than the series (n = 1, 5, 30 are the usual choices).
    """
    if len(horizons) == 0:
        raise ValueError("horizons: give at least one horizon")
    return ProcyclicalityResult(
        peak_to_trough=peak_to_trough(margin),
        n_day=tuple(n_day_increase(margin, h) for h in horizons),
    )


@dataclass(frozen=True)
class MarginShareResult:
    """Margin as a share of notional.

    ``mean_share = mean_t(IM_t / N_t)`` (the headline figure); ``pooled_share =
    sum(IM) / sum(N)`` weights days by notional.
    """

    n_obs: int
    mean_share: float
    pooled_share: float
    mean_margin: float
    mean_notional: float


def average_margin_share(margin: ArrayLike, notional: ArrayLike) -> MarginShareResult:
    """Average margin as a share of notional (capital-efficiency measure).

    Parameters
    ----------
    margin : array (T,)
        Margin per day (>= 0), currency units.
    notional : array (T,) or float
        Gross notional per day (> 0), same units.
    """
    m = _finite_1d(margin, "margin")
    if np.any(m < 0.0):
        raise ValueError("margin: every value must be >= 0")
    n = _broadcast(notional, m.shape, "notional")
    if not np.all(np.isfinite(n)) or np.any(n <= 0.0):
        raise ValueError("notional: every value must be finite and > 0")
    return MarginShareResult(
        n_obs=int(m.shape[0]),
        mean_share=float(np.mean(m / n)),
        pooled_share=float(m.sum() / n.sum()),
        mean_margin=float(m.mean()),
        mean_notional=float(n.mean()),
    )
