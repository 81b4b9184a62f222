"""Calibration of margin-model parameters to a target coverage, and the trade-off frontier.

A calibration scans a parameter grid with a user-supplied ``evaluate(params)`` callable that
returns ``(coverage, average_margin, procyclicality)`` — typically a backtest over real history —
and reports

- the *feasible* points: ``coverage >= target_coverage - tolerance``;
- the *frontier*: the feasible points not Pareto-dominated in (average margin, procyclicality),
  both minimised (a point dominates another when it is no worse in every objective and better in
  one); the 3-objective frontier over all points (coverage maximised) is given too;
- the *chosen* point: the frontier point minimising
  ``weight · m̂ + (1 - weight) · p̂``, with ``m̂``, ``p̂`` the average margin and procyclicality
  rescaled to [0, 1] over the feasible points; ties go to the lower margin, then procyclicality,
  then grid order. A minimiser of a positive weighted sum is Pareto-optimal; restricting the
  choice to the frontier keeps that true at ``weight`` 0 or 1.

Everything is pure: :func:`calibrate` only calls ``evaluate``; :func:`pareto_front` works on an
objective matrix. A fast built-in evaluator, :class:`FhsEvaluator`, backtests a long position in
one underlying with filtered historical VaR/ES computed directly on its returns
(:func:`fhs_margin_series`; ccp-standards §5.3), so the calibration runs on ten years of daily
data in well under a second per grid point. See docs/calibration.md.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike, NDArray

from margin_engine.analysis import backtest_stats as bt
from margin_engine.maths.volatility import ewma_variance
from margin_engine.policy.dynamic import daily_log_returns

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
Measure = Literal["var", "es"]
Procyclicality = Literal["n_day", "peak_to_trough"]

#: Tail-probability tolerance, as in ``margin_engine.maths.risk_measures.TAIL_TOLERANCE``.
TAIL_TOLERANCE = 1e-12

__all__ = [
    "CalibrationPoint",
    "CalibrationResult",
    "Evaluation",
    "FhsEvaluator",
    "FhsMarginSeries",
    "calibrate",
    "fhs_margin_series",
    "parameter_grid",
    "pareto_front",
]


# --------------------------------------------------------------------------------------------
# generic calibration
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Evaluation:
    """What ``evaluate(params)`` reports for one parameter set.

    Attributes
    ----------
    coverage : float
        Share of backtest days without an exception, in [0, 1].
    average_margin : float
        Average margin (any unit, e.g. share of notional); lower is cheaper.
    procyclicality : float
        A procyclicality figure (e.g. the largest 5-day increase ratio); lower is better.
    """

    coverage: float
    average_margin: float
    procyclicality: float

    def __post_init__(self) -> None:
        for name in ("coverage", "average_margin", "procyclicality"):
            v = float(getattr(self, name))
            if not math.isfinite(v):
                raise ValueError(f"{name}: must be finite, got {v!r}")
            object.__setattr__(self, name, v)
        if not 0.0 <= self.coverage <= 1.0:
            raise ValueError(f"coverage: must lie in [0, 1], got {self.coverage}")


@dataclass(frozen=True, eq=False)
class CalibrationPoint:
    """One evaluated parameter set.

    ``params`` is a read-only mapping; ``index`` is the position in the grid order.
    """

    index: int
    params: Mapping[str, Any]
    coverage: float
    average_margin: float
    procyclicality: float
    feasible: bool


@dataclass(frozen=True, eq=False)
class CalibrationResult:
    """The outcome of :func:`calibrate`.

    Attributes
    ----------
    points : tuple of CalibrationPoint
        Every evaluated point, in grid order.
    frontier : tuple of CalibrationPoint
        Feasible points not dominated in (average_margin, procyclicality), by increasing margin.
    frontier_all : tuple of CalibrationPoint
        Points of the whole grid not dominated in (coverage ↑, average_margin ↓,
        procyclicality ↓), in grid order.
    chosen : CalibrationPoint or None
        The selected frontier point; None when no point meets the target.
    target_coverage, tolerance, weight : float
        The settings used.
    """

    points: tuple[CalibrationPoint, ...]
    frontier: tuple[CalibrationPoint, ...]
    frontier_all: tuple[CalibrationPoint, ...]
    chosen: CalibrationPoint | None
    target_coverage: float
    tolerance: float
    weight: float

    @property
    def feasible(self) -> tuple[CalibrationPoint, ...]:
        """The points meeting the target coverage."""
        return tuple(p for p in self.points if p.feasible)


def parameter_grid(grid: Mapping[str, Sequence[Any]]) -> tuple[dict[str, Any], ...]:
    """The Cartesian product of a parameter grid, the last key varying fastest.

    ``{"decay": [0.94, 0.97], "confidence": [0.99]}`` gives
    ``({"decay": 0.94, "confidence": 0.99}, {"decay": 0.97, "confidence": 0.99})``.
    """
    if not isinstance(grid, Mapping) or not grid:
        raise ValueError("grid: must be a non-empty mapping of parameter name -> values")
    keys = list(grid)
    values: list[list[Any]] = []
    for k in keys:
        v = grid[k]
        if isinstance(v, str | bytes) or not isinstance(v, Sequence | np.ndarray):
            raise ValueError(f"grid[{k!r}]: must be a sequence of values")
        if len(v) == 0:
            raise ValueError(f"grid[{k!r}]: holds no values")
        values.append(list(v))
    return tuple(dict(zip(keys, combo, strict=True)) for combo in itertools.product(*values))


def pareto_front(objectives: ArrayLike, *, rtol: float = 0.0) -> IntArray:
    """Indices of the non-dominated rows of an objective matrix, every column minimised.

    Row ``a`` dominates row ``b`` when ``a <= b + e`` in every column and ``a < b - e`` in at
    least one, with ``e = rtol × |b|`` per column (``rtol = 0``: exact comparisons). Identical
    rows (within ``e``) do not dominate each other: all are kept. A tolerance lets figures that
    are equal in exact arithmetic (a proportional buffer leaves every margin *ratio* unchanged)
    compare equal despite rounding.

    Parameters
    ----------
    objectives : array (n, k)
        Finite objective values (negate a column to maximise it).
    rtol : float
        Relative tolerance (>= 0).

    Returns
    -------
    int array
        Sorted row indices of the frontier.
    """
    x = np.asarray(objectives, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"objectives: must be a non-empty 2-D array (n, k), got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("objectives: contains a non-finite value")
    if not (math.isfinite(rtol) and rtol >= 0.0):
        raise ValueError(f"rtol: must be finite and >= 0, got {rtol!r}")
    keep = np.ones(x.shape[0], dtype=bool)
    for i in range(x.shape[0]):
        e = rtol * np.abs(x[i])
        le = np.all(x <= x[i] + e, axis=1)
        lt = np.any(x < x[i] - e, axis=1)
        if np.any(le & lt):
            keep[i] = False
    return np.flatnonzero(keep).astype(np.int64)


def _as_evaluation(value: object, params: Mapping[str, Any]) -> Evaluation:
    if isinstance(value, Evaluation):
        return value
    items: tuple[Any, ...] = ()
    if isinstance(value, Sequence | np.ndarray) and not isinstance(value, str | bytes):
        items = tuple(value)
    if len(items) != 3:
        raise ValueError(
            f"evaluate: must return an Evaluation or (coverage, average_margin, "
            f"procyclicality), got {value!r} for {dict(params)}"
        )
    return Evaluation(float(items[0]), float(items[1]), float(items[2]))


def calibrate(
    evaluate: Callable[[Mapping[str, Any]], Evaluation | tuple[float, float, float]],
    grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]],
    *,
    target_coverage: float = 0.99,
    tolerance: float = 0.0,
    weight: float = 0.5,
    rtol: float = 1e-9,
) -> CalibrationResult:
    """Scan a parameter grid, keep the points meeting the coverage target, return the frontier.

    Parameters
    ----------
    evaluate : callable
        ``evaluate(params) -> Evaluation`` or a ``(coverage, average_margin, procyclicality)``
        tuple; called once per point, in grid order.
    grid : mapping name -> values, or a sequence of parameter mappings
        A mapping is expanded with :func:`parameter_grid`.
    target_coverage : float
        Required coverage in (0, 1), e.g. 0.99.
    tolerance : float
        A point is feasible when ``coverage >= target_coverage - tolerance`` (>= 0).
    weight : float
        In [0, 1]: the weight of average margin against procyclicality in the choice.
    rtol : float
        Relative tolerance of the dominance comparisons (:func:`pareto_front`).

    Returns
    -------
    CalibrationResult
    """
    if not 0.0 < target_coverage < 1.0:
        raise ValueError(f"target_coverage: must lie in (0, 1), got {target_coverage!r}")
    if not (math.isfinite(tolerance) and tolerance >= 0.0):
        raise ValueError(f"tolerance: must be finite and >= 0, got {tolerance!r}")
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight: must lie in [0, 1], got {weight!r}")
    if isinstance(grid, Mapping):
        combos: Sequence[Mapping[str, Any]] = parameter_grid(grid)
    else:
        combos = list(grid)
        if not combos:
            raise ValueError("grid: holds no parameter sets")
        for i, c in enumerate(combos):
            if not isinstance(c, Mapping):
                raise ValueError(f"grid[{i}]: must be a mapping of parameter name -> value")
    points: list[CalibrationPoint] = []
    for i, params in enumerate(combos):
        frozen = MappingProxyType(dict(params))
        ev = _as_evaluation(evaluate(frozen), params)
        points.append(
            CalibrationPoint(
                index=i, params=frozen, coverage=ev.coverage, average_margin=ev.average_margin,
                procyclicality=ev.procyclicality,
                feasible=ev.coverage >= target_coverage - tolerance,
            )
        )
    allobj = np.array([[-p.coverage, p.average_margin, p.procyclicality] for p in points])
    frontier_all = tuple(points[i] for i in pareto_front(allobj, rtol=rtol))
    feas = [p for p in points if p.feasible]
    frontier: tuple[CalibrationPoint, ...] = ()
    chosen: CalibrationPoint | None = None
    if feas:
        obj = np.array([[p.average_margin, p.procyclicality] for p in feas])
        front = [feas[i] for i in pareto_front(obj, rtol=rtol)]
        front.sort(key=lambda p: (p.average_margin, p.procyclicality, p.index))
        frontier = tuple(front)
        lo, hi = obj.min(axis=0), obj.max(axis=0)
        span = np.where(hi > lo, hi - lo, 1.0)

        def score(p: CalibrationPoint) -> tuple[float, float, float, int]:
            m = (p.average_margin - lo[0]) / span[0]
            q = (p.procyclicality - lo[1]) / span[1]
            return (weight * m + (1.0 - weight) * q, p.average_margin, p.procyclicality, p.index)

        chosen = min(frontier, key=score)
    return CalibrationResult(
        points=tuple(points), frontier=frontier, frontier_all=frontier_all, chosen=chosen,
        target_coverage=float(target_coverage), tolerance=float(tolerance), weight=float(weight),
    )


# --------------------------------------------------------------------------------------------
# built-in evaluator: filtered historical VaR / ES on one underlying
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class FhsMarginSeries:
    """Daily FHS margin of a long position of one unit, as a share of its notional.

    Row ``i`` is the margin set at the close of day ``i`` (data up to day ``i`` only) for the
    loss from day ``i`` to day ``i + horizon``. Arrays are read-only and aligned with ``dates``.

    Attributes
    ----------
    dates : datetime64[D] (n,)
    prices : (n,)
        Closes, quote currency per unit.
    margin_rate : (n,)
        Margin / notional (``price``); NaN before ``first``.
    realised_loss_rate : (n,)
        ``1 - P[day + horizon] / P[day]`` (positive for a loss of the long); NaN where the close
        ``horizon`` calendar days later is absent.
    sigma : (n,)
        Revolatilising volatility used (daily, after any ``vol_floor_ratio`` floor); NaN before
        ``first``.
    first : int
        First row with a margin.
    """

    dates: NDArray[np.datetime64]
    prices: FloatArray
    margin_rate: FloatArray
    realised_loss_rate: FloatArray
    sigma: FloatArray
    first: int
    horizon: int

    @property
    def evaluated(self) -> NDArray[np.bool_]:
        """Rows with both a margin and a realised loss (the backtest days)."""
        return np.isfinite(self.margin_rate) & np.isfinite(self.realised_loss_rate)

    @property
    def margin(self) -> FloatArray:
        """Margin in quote currency per unit (``margin_rate × price``)."""
        out: FloatArray = self.margin_rate * self.prices
        return out


class _FhsData:
    """Returns, realised losses and cached sorted tails of the standardised residuals."""

    def __init__(
        self, prices: ArrayLike, dates: ArrayLike | None, *, horizon: int, min_window: int,
        seed_window: int,
    ) -> None:
        p = np.asarray(prices, dtype=np.float64)
        if p.ndim != 1:
            raise ValueError(f"prices: must be 1-D, got {p.ndim}-D")
        if dates is None:
            d = np.arange(p.shape[0]).astype("datetime64[D]")
        else:
            d = np.asarray(dates).astype("datetime64[D]")
        r, _ = daily_log_returns(d, p)
        if isinstance(horizon, bool) or int(horizon) != horizon or horizon < 1:
            raise ValueError(f"horizon: must be an integer >= 1, got {horizon!r}")
        if isinstance(min_window, bool) or int(min_window) != min_window or min_window < 1:
            raise ValueError(f"min_window: must be an integer >= 1, got {min_window!r}")
        if not 2 <= seed_window <= r.shape[0]:
            raise ValueError(f"seed_window: must lie in [2, {r.shape[0]}], got {seed_window}")
        self.dates = d
        self.prices = p
        self.returns = r
        self.horizon = int(horizon)
        self.min_window = int(min_window)
        self.seed_window = int(seed_window)
        self.n = p.shape[0]
        # the margin at row i uses z[seed_window .. i-1] (seed-free residuals); need min_window
        self.first = self.seed_window + self.min_window
        if self.first >= self.n:
            raise ValueError(
                f"prices: {self.n} closes are too few for seed_window + min_window = {self.first}"
            )
        days = d.astype(np.int64)
        j = np.searchsorted(days, days + self.horizon)
        ok = (j < self.n) & (days[np.minimum(j, self.n - 1)] == days + self.horizon)
        loss = np.full(self.n, np.nan)
        loss[ok] = 1.0 - p[j[ok]] / p[ok]
        self.loss = loss
        self._sigma: dict[float, FloatArray] = {}
        self._tails: dict[tuple[float, int], tuple[FloatArray, IntArray, FloatArray]] = {}

    def sigma(self, decay: float) -> FloatArray:
        """EWMA volatility, ``(n,)``: row i is the forecast made after the return ending day i."""
        s = self._sigma.get(decay)
        if s is None:
            s = np.sqrt(ewma_variance(self.returns, decay, seed_window=self.seed_window))
            self._sigma[decay] = s
        return s

    def tails(self, decay: float, window: int, m: int) -> tuple[FloatArray, IntArray, FloatArray]:
        """For rows ``first..n-1``: the ``m`` smallest residuals of the window, ascending
        (+inf padded), the window sizes, and the mean conditional volatility of the window."""
        key = (decay, window)
        hit = self._tails.get(key)
        if hit is not None and hit[0].shape[1] >= m:
            return hit[0][:, :m], hit[1], hit[2]
        sig = self.sigma(decay)
        z = self.returns / sig[:-1]
        sw = self.seed_window
        zs = z.copy()
        zs[:sw] = np.inf  # residuals whose scale used the seed (look-ahead inside the seed)
        pad = np.concatenate([np.full(window, np.inf), zs])
        rows = np.arange(self.first, self.n)
        win = sliding_window_view(pad, window)[rows]  # row i -> z[i - window .. i - 1]
        cap = min(max(m, 1), window)
        part = np.partition(win, cap - 1, axis=1)[:, :cap] if cap < window else win.copy()
        part.sort(axis=1)
        count = np.minimum(window, rows - sw).astype(np.int64)
        sc = np.concatenate([[0.0], np.cumsum(sig[:-1])])
        lo = np.maximum(rows - window, sw)
        mean_sig = (sc[rows] - sc[lo]) / (rows - lo)
        self._tails[key] = (part, count, mean_sig)
        return part[:, :m], count, mean_sig


def _check_prob(value: float, name: str) -> float:
    v = float(value)
    if not 0.0 < v < 1.0:
        raise ValueError(f"{name}: must lie strictly between 0 and 1, got {value!r}")
    return v


def _series(
    data: _FhsData, *, confidence: float, decay: float, window: int, measure: Measure,
    buffer: float, scan_range: float, vol_floor_ratio: float,
) -> FhsMarginSeries:
    c = _check_prob(confidence, "confidence")
    lam = _check_prob(decay, "decay")
    if isinstance(window, bool) or int(window) != window or window < data.min_window:
        raise ValueError(
            f"window: must be an integer >= min_window {data.min_window}, got {window!r}"
        )
    if measure not in ("var", "es"):
        raise ValueError(f"measure: must be 'var' or 'es', got {measure!r}")
    for name, v in (("buffer", buffer), ("scan_range", scan_range),
                    ("vol_floor_ratio", vol_floor_ratio)):
        if not (math.isfinite(v) and v >= 0.0):
            raise ValueError(f"{name}: must be finite and >= 0, got {v!r}")
    if scan_range >= 1.0:
        raise ValueError(f"scan_range: must be < 1 (a share of notional), got {scan_range!r}")
    p = 1.0 - c
    w = int(window)
    m = min(math.floor(w * p + TAIL_TOLERANCE * w) + 1, w)
    tail, count, mean_sig = data.tails(lam, w, m)
    rows = np.arange(data.first, data.n)
    sig = data.sigma(lam)[rows]
    sig_eff = np.maximum(sig, vol_floor_ratio * mean_sig)
    # VaR position (0-based, worst first) as in maths.risk_measures: k = floor(n p), capped
    n_t = count.astype(np.float64)
    k = np.minimum(np.floor(n_t * p + TAIL_TOLERANCE * n_t).astype(np.int64), count - 1)
    scale = sig_eff * math.sqrt(data.horizon)
    with np.errstate(invalid="ignore"):
        losses = -np.expm1(scale[:, None] * tail)  # descending along the row (worst first)
    idx = np.arange(rows.size)
    var = losses[idx, k]
    if measure == "var":
        risk = var
    else:
        atom = n_t * p - k
        atom = np.where((k > 0) & (atom < TAIL_TOLERANCE * n_t), 0.0, atom)
        atom = np.clip(atom, 0.0, 1.0)
        csum = np.cumsum(np.where(np.isfinite(losses), losses, 0.0), axis=1)
        head = np.where(k > 0, csum[idx, np.maximum(k - 1, 0)], 0.0)
        es = (head + atom * var) / (k + atom)
        risk = np.minimum(np.maximum(es, var), losses[:, 0])
    rate = np.full(data.n, np.nan)
    rate[rows] = np.maximum(np.maximum(risk, 0.0) * (1.0 + buffer), scan_range)
    sigma_out = np.full(data.n, np.nan)
    sigma_out[rows] = sig_eff
    arrays = (data.dates.copy(), data.prices.copy(), rate, data.loss.copy(), sigma_out)
    for a in arrays:
        a.setflags(write=False)
    return FhsMarginSeries(
        dates=arrays[0], prices=arrays[1], margin_rate=arrays[2], realised_loss_rate=arrays[3],
        sigma=arrays[4], first=data.first, horizon=data.horizon,
    )


def fhs_margin_series(
    prices: ArrayLike,
    dates: ArrayLike | None = None,
    *,
    confidence: float = 0.99,
    decay: float = 0.94,
    window: int = 1000,
    min_window: int = 365,
    horizon: int = 1,
    measure: Measure = "var",
    buffer: float = 0.0,
    scan_range: float = 0.0,
    vol_floor_ratio: float = 0.0,
    seed_window: int = 30,
) -> FhsMarginSeries:
    """Filtered-historical VaR/ES margin of a long position, per day, without look-ahead.

    At the close of day ``i`` (ccp-standards §5.3):

    1. per-day log returns ``r`` (:func:`margin_engine.policy.dynamic.daily_log_returns`) and
       their EWMA volatility ``σ`` (λ = ``decay``, seeded on the first ``seed_window`` returns);
    2. residuals ``z_s = r_s / σ_s`` of the last ``min(window, i - seed_window)`` returns (the
       seed's own returns are never used; the window grows from ``min_window``);
    3. scenario returns ``z_s · σ_eff · sqrt(horizon)`` with ``σ_eff = max(σ_i,
       vol_floor_ratio × mean σ over the window)``; scenario loss rate ``1 - exp(·)``;
    4. VaR (or ES) at ``confidence`` of the scenario losses with the conventions of
       :mod:`margin_engine.maths.risk_measures` (VaR is the ``floor(n p) + 1``-th worst loss);
    5. ``margin_rate = max(risk × (1 + buffer), scan_range)``.

    Parameters
    ----------
    prices : array (n,)
        Closes > 0 of the underlying (quote currency per unit).
    dates : array (n,), optional
        Strictly increasing days; consecutive days when omitted.
    confidence : float
        In (0, 1).
    decay : float
        EWMA λ in (0, 1).
    window : int
        Most residuals in the scenario set (days), >= ``min_window``.
    min_window : int
        Residuals needed before the first margin.
    horizon : int
        Margin period of risk in days (square-root-of-time scaling of one-day scenarios).
    measure : {"var", "es"}
    buffer : float
        Proportional add-on (0.25 = the EMIR Art. 28(a) buffer).
    scan_range : float
        Minimum margin rate (share of notional), in [0, 1).
    vol_floor_ratio : float
        Floor on the revolatilising volatility, × the window's mean conditional volatility.
    seed_window : int
        Returns used to seed the EWMA.

    Returns
    -------
    FhsMarginSeries
    """
    data = _FhsData(prices, dates, horizon=horizon, min_window=min_window,
                    seed_window=seed_window)
    return _series(data, confidence=confidence, decay=decay, window=window, measure=measure,
                   buffer=buffer, scan_range=scan_range, vol_floor_ratio=vol_floor_ratio)


_PARAMS = ("confidence", "decay", "window", "measure", "buffer", "scan_range", "vol_floor_ratio")


class FhsEvaluator:
    """``evaluate(params)`` for :func:`calibrate`: an FHS backtest of a long position.

    Parameters named in the grid override the defaults given here: ``confidence``, ``decay``,
    ``window``, ``measure``, ``buffer``, ``scan_range``, ``vol_floor_ratio`` (see
    :func:`fhs_margin_series`). All points are backtested on the same days (the rows from
    ``seed_window + min_window`` with a realised loss), so their figures are comparable.

    The evaluation is

    - ``coverage``: share of days with ``realised_loss_rate <= margin_rate``
      (:func:`margin_engine.analysis.backtest_stats.exception_flags`);
    - ``average_margin``: mean margin rate (share of notional);
    - ``procyclicality``: on the margin rate, the largest ``procyclicality_horizon``-day increase
      ratio (``"n_day"``, default 5 days) or the peak-to-trough ratio (``"peak_to_trough"``),
      from :mod:`margin_engine.analysis.backtest_stats`.

    Residual tails are cached per (decay, window), so scanning confidences and buffers is cheap.
    """

    def __init__(
        self,
        prices: ArrayLike,
        dates: ArrayLike | None = None,
        *,
        horizon: int = 1,
        min_window: int = 365,
        seed_window: int = 30,
        procyclicality: Procyclicality = "n_day",
        procyclicality_horizon: int = 5,
        defaults: Mapping[str, Any] | None = None,
    ) -> None:
        if procyclicality not in ("n_day", "peak_to_trough"):
            raise ValueError(
                f"procyclicality: must be 'n_day' or 'peak_to_trough', got {procyclicality!r}"
            )
        if int(procyclicality_horizon) != procyclicality_horizon or procyclicality_horizon < 1:
            raise ValueError(
                f"procyclicality_horizon: must be an integer >= 1, got {procyclicality_horizon!r}"
            )
        self._data = _FhsData(prices, dates, horizon=horizon, min_window=min_window,
                              seed_window=seed_window)
        self.procyclicality = procyclicality
        self.procyclicality_horizon = int(procyclicality_horizon)
        base: dict[str, Any] = {
            "confidence": 0.99, "decay": 0.94, "window": 1000, "measure": "var",
            "buffer": 0.0, "scan_range": 0.0, "vol_floor_ratio": 0.0,
        }
        if defaults:
            self._check_keys(defaults, "defaults")
            base.update(defaults)
        self.defaults = MappingProxyType(base)

    @staticmethod
    def _check_keys(params: Mapping[str, Any], name: str) -> None:
        unknown = sorted(set(params) - set(_PARAMS))
        if unknown:
            raise ValueError(f"{name}: unknown parameter(s) {unknown}; known: {list(_PARAMS)}")

    def series(self, params: Mapping[str, Any] | None = None) -> FhsMarginSeries:
        """The margin series for ``params`` (over the defaults)."""
        p = dict(self.defaults)
        if params:
            self._check_keys(params, "params")
            p.update(params)
        return _series(
            self._data, confidence=p["confidence"], decay=p["decay"], window=p["window"],
            measure=p["measure"], buffer=float(p["buffer"]), scan_range=float(p["scan_range"]),
            vol_floor_ratio=float(p["vol_floor_ratio"]),
        )

    def __call__(self, params: Mapping[str, Any]) -> Evaluation:
        s = self.series(params)
        use = s.evaluated
        rate = s.margin_rate[use]
        if rate.size <= self.procyclicality_horizon:
            raise ValueError("prices: too few backtest days for the procyclicality horizon")
        flags = bt.exception_flags(rate, s.realised_loss_rate[use])
        cov = bt.coverage(flags).coverage
        if self.procyclicality == "n_day":
            pro = bt.n_day_increase(rate, self.procyclicality_horizon).ratio
        else:
            pro = bt.peak_to_trough(rate).ratio
        return Evaluation(coverage=cov, average_margin=float(rate.mean()), procyclicality=pro)
