"""Scenario sets as data, and the generators that make them.

A scenario moves each underlying's price by a relative amount (``P' = P·(1 + x)``), shifts its
implied vols by an absolute amount (annualised decimal; scaled by tenor, see
:func:`tenor_scaled_shift`) and lets ``horizon_days`` pass (the margin period of risk). Each
scenario carries a weight (normalised where used) and a label.

Generators: :func:`grid` (price × vol, SPAN/Deribit style), :func:`historical` (joint h-day
returns over a lookback), :func:`filtered_historical` (EWMA- or GARCH-filtered, revolatilised by
today's vol), :func:`monte_carlo` (Student-t copula, t or empirical marginals) and
:func:`from_stresses` (named stresses). Pure functions: arrays in, :class:`ScenarioSet` out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from margin_engine.maths import volatility
from margin_engine.maths.stress_library import StressScenario

FloatArray = NDArray[np.float64]
#: How an option's implied vol responds to a price move (docs/vol-factors.md).
SURFACE_DYNAMICS = ("sticky-strike", "sticky-moneyness")


@dataclass(frozen=True, eq=False)
class ScenarioSet:
    """Joint scenarios over ``underlyings``.

    Attributes
    ----------
    underlyings : tuple of str
    price_moves : float64 [n_scenarios, n_underlyings]
        Relative price moves, each > −1.
    vol_shifts : float64 [n_scenarios, n_underlyings]
        Absolute implied-vol shifts at the 30-day reference tenor (annualised decimal).
    horizon_days : float
        Days that pass in every scenario (options lose that much time value).
    weights : float64 [n_scenarios]
        Non-negative scenario weights (equal unless stressed periods are weighted).
    labels : tuple of str
        A label per scenario (a date, a grid point, a stress name, a path number).
    kind : str
        Which generator made it.
    skew_shifts : float64 [n_scenarios, n_underlyings] or None
        Change of the 30-day skew ``dσ/dz`` (``z = ln(K/F)/(σ√T)``, clipped to ±3), added to an
        option's vol as ``skew_shift·z`` (implied-vol factor scenarios; None: no skew move).
    surface_dynamics : str
        ``'sticky-strike'`` (an option keeps its own vol, plus the shifts) or
        ``'sticky-moneyness'`` (it takes the vol the market's smile of its expiry has at its
        new log-moneyness ``ln(K/F') = ln(K/F) − ln(1+x)``, plus the shifts).
        See docs/vol-factors.md.
    """

    underlyings: tuple[str, ...]
    price_moves: FloatArray
    vol_shifts: FloatArray
    horizon_days: float
    weights: FloatArray
    labels: tuple[str, ...]
    kind: str
    skew_shifts: FloatArray | None = None
    surface_dynamics: str = "sticky-strike"

    def __post_init__(self) -> None:
        n, m = self.price_moves.shape
        if m != len(self.underlyings):
            raise ValueError(f"price_moves: {m} columns for {len(self.underlyings)} underlyings")
        if self.vol_shifts.shape != (n, m):
            raise ValueError(f"vol_shifts: shape {self.vol_shifts.shape}, expected {(n, m)}")
        if self.weights.shape != (n,) or len(self.labels) != n:
            raise ValueError("weights/labels: one per scenario")
        if n == 0:
            raise ValueError("scenarios: the set is empty")
        if not (np.isfinite(self.price_moves).all() and np.isfinite(self.vol_shifts).all()):
            raise ValueError("price_moves/vol_shifts: not finite")
        if (self.price_moves <= -1.0).any():
            raise ValueError("price_moves: a move of −100% or worse")
        if (self.weights < 0).any() or not self.weights.sum() > 0:
            raise ValueError("weights: must be non-negative and not all zero")
        if not self.horizon_days >= 0:
            raise ValueError("horizon_days: must be ≥ 0")
        if self.skew_shifts is not None and (self.skew_shifts.shape != (n, m)
                                             or not np.isfinite(self.skew_shifts).all()):
            raise ValueError(f"skew_shifts: shape {self.skew_shifts.shape} or not finite, "
                             f"expected finite {(n, m)}")
        if self.surface_dynamics not in SURFACE_DYNAMICS:
            raise ValueError(f"surface_dynamics: {self.surface_dynamics!r} (known: "
                             f"{', '.join(SURFACE_DYNAMICS)})")
        for a in (self.price_moves, self.vol_shifts, self.weights, self.skew_shifts):
            if a is not None:
                a.setflags(write=False)

    def with_kind(self, kind: str) -> ScenarioSet:
        return ScenarioSet(self.underlyings, self.price_moves, self.vol_shifts,
                           self.horizon_days, self.weights, self.labels, kind,
                           self.skew_shifts, self.surface_dynamics)

    @property
    def plain_vol(self) -> bool:
        """True when an option's scenario vol is its own vol plus the tenor-scaled shift only
        (no skew move, sticky strike): the original revaluation, bit for bit."""
        return self.skew_shifts is None and self.surface_dynamics == "sticky-strike"

    @property
    def n(self) -> int:
        return int(self.price_moves.shape[0])

    def column(self, underlying: str) -> int:
        try:
            return self.underlyings.index(underlying)
        except ValueError:
            raise KeyError(underlying) from None

    def concat(self, other: ScenarioSet, other_weight_share: float | None = None) -> ScenarioSet:
        """Both sets; ``other_weight_share`` gives the appended scenarios that share of the total
        weight (e.g. 0.25 on stressed observations, EMIR Art. 28)."""
        if other.underlyings != self.underlyings:
            raise ValueError("concat: the sets cover different underlyings")
        w_self, w_other = self.weights / self.weights.sum(), other.weights / other.weights.sum()
        if other_weight_share is None:
            w = np.concatenate([self.weights, other.weights])
        else:
            if not 0.0 <= other_weight_share < 1.0:
                raise ValueError("other_weight_share: must be in [0, 1)")
            w = np.concatenate([w_self * (1 - other_weight_share),
                                w_other * other_weight_share])
        skew = None
        if self.skew_shifts is not None or other.skew_shifts is not None:
            skew = np.vstack([np.zeros_like(a.price_moves) if a.skew_shifts is None
                              else a.skew_shifts for a in (self, other)])
        return ScenarioSet(self.underlyings, np.vstack([self.price_moves, other.price_moves]),
                           np.vstack([self.vol_shifts, other.vol_shifts]),
                           max(self.horizon_days, other.horizon_days), w,
                           self.labels + other.labels, f"{self.kind}+{other.kind}",
                           skew, self.surface_dynamics)


def tenor_scaled_shift(shift: FloatArray | float, years: FloatArray | float,
                       power: float) -> FloatArray:
    """A vol shift quoted at 30 days applied at tenor ``years``: ``shift·(30d / T)^power``,
    with ``T`` floored at 1 day (``power = 0``: parallel; 0.5: square-root term structure)."""
    t = np.maximum(np.asarray(years, dtype=np.float64), 1.0 / 365.0)
    return np.asarray(shift, dtype=np.float64) * (30.0 / 365.0 / t) ** power


def vol_response(price_moves: FloatArray, beta: float) -> FloatArray:
    """Vol shifts tied to price moves: ``Δσ = −beta·ln(1 + x)`` (falls raise vol)."""
    return -beta * np.log1p(price_moves)


def grid(underlyings: Sequence[str], price_range: float, n_price: int,
         vol_shifts: Sequence[float] = (0.0,), *, horizon_days: float = 0.0,
         joint: bool = True) -> ScenarioSet:
    """Price × vol grid: ``n_price`` moves evenly over ±``price_range`` × each vol shift.

    ``joint=True`` moves every underlying together (the account-level grid);
    ``joint=False`` moves one underlying at a time, the others unchanged.
    """
    if not 0 < price_range < 1:
        raise ValueError("price_range: must be in (0, 1)")
    if n_price < 1:
        raise ValueError("n_price: must be ≥ 1")
    moves = np.linspace(-price_range, price_range, n_price) if n_price > 1 else np.zeros(1)
    m = len(underlyings)
    rows_p, rows_v, labels = [], [], []
    targets: list[int | None] = [None] if joint else list(range(m))
    for tgt in targets:
        for v in vol_shifts:
            for x in moves:
                p = np.full(m, x) if tgt is None else np.where(np.arange(m) == tgt, x, 0.0)
                rows_p.append(p)
                rows_v.append(np.full(m, v) if tgt is None else np.where(np.arange(m) == tgt,
                                                                         v, 0.0))
                who = "all" if tgt is None else underlyings[tgt]
                labels.append(f"{who} {x:+.2%} vol {v:+.2f}")
    n = len(labels)
    return ScenarioSet(tuple(underlyings), np.array(rows_p), np.array(rows_v), horizon_days,
                       np.ones(n), tuple(labels), "grid")


def _h_day(log_returns: FloatArray, horizon: int, overlapping: bool) -> FloatArray:
    """Sum of ``horizon`` consecutive daily log returns (rows with any NaN dropped first)."""
    if horizon == 1:
        return log_returns
    c = np.cumsum(np.vstack([np.zeros((1, log_returns.shape[1])), log_returns]), axis=0)
    sums = c[horizon:] - c[:-horizon]
    if not overlapping:
        sums = sums[::-1][::horizon][::-1]
    return sums


def historical(underlyings: Sequence[str], log_returns: FloatArray, labels: Sequence[str], *,
               horizon_days: int = 1, overlapping: bool = True, vol_beta: float = 0.0,
               weights: FloatArray | None = None) -> ScenarioSet:
    """Joint h-day moves from daily log returns [n_days, n_underlyings] (one row per date).

    Rows with a missing return are dropped; ``labels`` are the end dates of each window.
    """
    r = np.asarray(log_returns, dtype=np.float64)
    keep = np.isfinite(r).all(axis=1)
    r, lab = r[keep], [str(labels[int(i)]) for i in np.flatnonzero(keep)]
    if r.shape[0] < horizon_days:
        raise ValueError(f"history: {r.shape[0]} complete returns, fewer than the horizon")
    sums = _h_day(r, horizon_days, overlapping)
    ends = lab[horizon_days - 1:]
    if not overlapping:
        ends = ends[::-1][::horizon_days][::-1]
    moves = np.expm1(sums)
    w = np.ones(len(ends)) if weights is None else np.asarray(weights)[keep][horizon_days - 1:]
    return ScenarioSet(tuple(underlyings), moves, vol_response(moves, vol_beta),
                       float(horizon_days), w.astype(np.float64), tuple(ends), "historical")


VolModel = Literal["ewma", "garch"]


def current_and_past_vol(log_returns: FloatArray, model: VolModel,
                         decay: float) -> tuple[FloatArray, FloatArray]:
    """Per column: σ_t for each past return [n, m] and today's forecast σ_T [m]."""
    r = np.asarray(log_returns, dtype=np.float64)
    if model == "ewma":
        var = volatility.ewma_variance(r, decay)
        var2 = var if var.ndim == 2 else var[:, None]
        return np.sqrt(var2[:-1]), np.sqrt(var2[-1])
    sig_past, sig_now = np.empty_like(r), np.empty(r.shape[1])
    for j in range(r.shape[1]):
        fit = volatility.fit_garch(r[:, j])
        sig_past[:, j] = fit.conditional_volatility
        sig_now[j] = fit.forecast_volatility
    return sig_past, sig_now


def filtered_historical(underlyings: Sequence[str], log_returns: FloatArray,
                        labels: Sequence[str], *, horizon_days: int = 1,
                        vol_model: VolModel = "ewma", decay: float = 0.94,
                        vol_floor_ratio: float = 0.0, vol_beta: float = 0.0) -> ScenarioSet:
    """Filtered historical simulation: each daily return divided by its own σ_t and multiplied
    by today's σ_T (floored at ``vol_floor_ratio`` × the lookback's average σ, an
    anti-procyclicality option), then summed over ``horizon_days`` (overlapping)."""
    r = np.asarray(log_returns, dtype=np.float64)
    keep = np.isfinite(r).all(axis=1)
    r, lab = r[keep], [str(labels[int(i)]) for i in np.flatnonzero(keep)]
    sig_past, sig_now = current_and_past_vol(r, vol_model, decay)
    sig_now = np.maximum(sig_now, vol_floor_ratio * sig_past.mean(axis=0))
    z = r / np.where(sig_past > 0, sig_past, np.nan)
    daily = np.nan_to_num(z * sig_now)
    return historical(underlyings, daily, lab, horizon_days=horizon_days, overlapping=True,
                      vol_beta=vol_beta).with_kind("filtered-historical")


def monte_carlo(underlyings: Sequence[str], log_returns: FloatArray, *, n_paths: int,
                seed: int, horizon_days: int = 1, dof: float = 4.0,
                marginals: Literal["t", "empirical"] = "t", decay: float = 0.94,
                vol_beta: float = 0.0) -> ScenarioSet:
    """Correlated h-day moves: a Student-t copula (``dof``) with the correlation of the
    EWMA-devolatilised returns; marginals Student-t scaled to today's EWMA σ (unit variance) or
    the empirical distribution of the standardised residuals, rescaled by today's σ; h-day moves
    by √h scaling of the daily standardised draw. Seeded: same inputs, same scenarios."""
    if n_paths < 10:
        raise ValueError("n_paths: at least 10")
    if not dof > 2:
        raise ValueError("dof: must be > 2 (finite variance)")
    r = np.asarray(log_returns, dtype=np.float64)
    r = r[np.isfinite(r).all(axis=1)]
    sig_past, sig_now = current_and_past_vol(r, "ewma", decay)
    z_hist = r / sig_past
    corr = np.corrcoef(z_hist, rowvar=False) if r.shape[1] > 1 else np.ones((1, 1))
    corr = np.atleast_2d(corr)
    chol = np.linalg.cholesky(corr + 1e-12 * np.eye(corr.shape[0]))
    rng = np.random.default_rng(seed)
    g = rng.standard_normal((n_paths, r.shape[1])) @ chol.T
    w = rng.chisquare(dof, size=(n_paths, 1)) / dof
    t = g / np.sqrt(w)
    if marginals == "t":
        z = t * np.sqrt((dof - 2.0) / dof)
    else:
        from scipy.special import stdtr  # scipy.stats.t.cdf's own kernel, without the
        # second-long import of scipy.stats (tests/maths check they agree to the bit)

        u = stdtr(dof, t)
        z = np.column_stack([np.quantile(z_hist[:, j], u[:, j]) for j in range(r.shape[1])])
    moves = np.expm1(z * sig_now * np.sqrt(horizon_days))
    labels = tuple(f"path {i}" for i in range(n_paths))
    return ScenarioSet(tuple(underlyings), moves, vol_response(moves, vol_beta),
                       float(horizon_days), np.ones(n_paths), labels, "monte-carlo")


def from_stresses(underlyings: Sequence[str], stresses: Sequence[StressScenario], *,
                  horizon_days: float = 0.0) -> ScenarioSet:
    """Named stresses as scenarios; an underlying a stress does not name moves by its ``'*'``
    default (an error where there is none)."""
    p = np.array([[s.price_move(u) for u in underlyings] for s in stresses], dtype=np.float64)
    v = np.array([[s.vol_move(u) for u in underlyings] for s in stresses], dtype=np.float64)
    return ScenarioSet(tuple(underlyings), p.reshape(len(stresses), len(underlyings)),
                       v.reshape(len(stresses), len(underlyings)), horizon_days,
                       np.ones(len(stresses)), tuple(s.name for s in stresses), "stress")
