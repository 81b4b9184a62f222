"""Tests for margin_engine.analysis.calibration.

- The Pareto frontier against a brute-force pairwise-dominance reference (hypothesis, with ties).
- The calibration's frontier and chosen point against a brute-force reference over the grid.
- The fast FHS margin series against a plain per-day loop that uses
  ``margin_engine.maths.risk_measures`` on explicit scenario P&L vectors (ccp-standards §5.3;
  VaR/ES conventions of that module).
- On real BTC history (skipped when absent): the calibrated decay/confidence meets 99 % coverage,
  re-checked with the plain loop.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from margin_engine.analysis.calibration import (
    Evaluation,
    FhsEvaluator,
    calibrate,
    fhs_margin_series,
    parameter_grid,
    pareto_front,
)
from margin_engine.maths.risk_measures import expected_shortfall, value_at_risk

REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "real"
BTC = REAL / "binance_spot_daily_BTCUSDT_cdd.csv"


# ------------------------------------------------------------------------------------------
# Pareto frontier
# ------------------------------------------------------------------------------------------


def brute_front(x: list[list[float]]) -> list[int]:
    """Row i is kept unless some row j is <= in every column and < in one (plain loops)."""
    keep = []
    for i, a in enumerate(x):
        dominated = False
        for j, b in enumerate(x):
            if j != i and all(bb <= aa for aa, bb in zip(a, b, strict=True)) and any(
                bb < aa for aa, bb in zip(a, b, strict=True)
            ):
                dominated = True
                break
        if not dominated:
            keep.append(i)
    return keep


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 3).flatmap(
        lambda k: st.lists(st.lists(st.integers(0, 6), min_size=k, max_size=k), min_size=1,
                           max_size=40)
    )
)
def test_pareto_front_matches_brute_force(rows: list[list[int]]) -> None:
    x = [[float(v) for v in r] for r in rows]
    assert list(pareto_front(np.array(x))) == brute_front(x)
    assert list(pareto_front(np.array(x), rtol=1e-9)) == brute_front(x)  # integers: no change


def test_pareto_front_small_example() -> None:
    # (margin, procyclicality): (1,5) (2,2) (3,1) are the frontier; (3,3) is dominated by (2,2);
    # the duplicate (2,2) is kept
    x = np.array([[1, 5], [2, 2], [3, 3], [3, 1], [2, 2], [4, 4]], dtype=float)
    assert list(pareto_front(x)) == [0, 1, 3, 4]


def test_pareto_front_tolerance_merges_rounding_ties() -> None:
    """A 10 % buffer scales the margin series, so its n-day ratio is the same in exact
    arithmetic; rounding makes it differ in the last bits. With a tolerance the buffered point
    (more margin, 'equal' procyclicality) is dominated; without one it can survive."""
    rate = np.array([0.03, 0.05, 0.11, 0.07, 0.2, 0.04])
    pro = float(np.max(rate[1:] / rate[:-1]))
    pro_b = float(np.max((rate[1:] * 1.1) / (rate[:-1] * 1.1)))
    x = np.array([[rate.mean(), pro], [rate.mean() * 1.1, pro_b]])
    assert list(pareto_front(x, rtol=1e-9)) == [0]
    x_tied = np.array([[1.0, 2.0], [1.0, 2.0 * (1 + 1e-12)]])
    assert list(pareto_front(x_tied, rtol=1e-9)) == [0, 1]
    assert list(pareto_front(x_tied)) == [0]
    with pytest.raises(ValueError, match="rtol"):
        pareto_front(x, rtol=-1.0)


@pytest.mark.parametrize("bad", [np.zeros((0, 2)), np.zeros(3), np.array([[1.0, math.nan]])])
def test_pareto_front_rejects_bad_input(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="objectives"):
        pareto_front(bad)


# ------------------------------------------------------------------------------------------
# grid and calibrate
# ------------------------------------------------------------------------------------------


def test_parameter_grid_order_and_validation() -> None:
    g = parameter_grid({"decay": [0.94, 0.97], "confidence": [0.99, 0.995]})
    assert g == (
        {"decay": 0.94, "confidence": 0.99}, {"decay": 0.94, "confidence": 0.995},
        {"decay": 0.97, "confidence": 0.99}, {"decay": 0.97, "confidence": 0.995},
    )
    with pytest.raises(ValueError, match="grid"):
        parameter_grid({})
    with pytest.raises(ValueError, match="decay"):
        parameter_grid({"decay": []})
    with pytest.raises(ValueError, match="decay"):
        parameter_grid({"decay": "0.94"})


def toy_evaluate(params: Mapping[str, Any]) -> tuple[float, float, float]:
    """A smooth synthetic trade-off: coverage rises with confidence and buffer; margin rises
    with both; procyclicality falls with decay and rises with confidence."""
    c, b, lam = params["confidence"], params["buffer"], params["decay"]
    cov = min(1.0, 0.97 + 2.0 * (c - 0.98) + 0.02 * b)
    margin = 0.05 * (1 + b) * (1 + 20 * (c - 0.98))
    pro = 1.0 + 10 * (1 - lam) + 5 * (c - 0.98)
    return cov, margin, pro


GRID = {"confidence": [0.98, 0.985, 0.99, 0.995], "buffer": [0.0, 0.25, 0.5],
        "decay": [0.9, 0.94, 0.97, 0.99]}


@pytest.mark.parametrize("weight", [0.0, 0.3, 0.5, 1.0])
def test_calibrate_matches_a_brute_force_reference(weight: float) -> None:
    res = calibrate(toy_evaluate, GRID, target_coverage=0.99, weight=weight)
    combos = parameter_grid(GRID)
    evals = [toy_evaluate(p) for p in combos]
    feas = [i for i, e in enumerate(evals) if e[0] >= 0.99]
    assert [p.index for p in res.points if p.feasible] == feas
    front = [feas[i] for i in brute_front([[evals[i][1], evals[i][2]] for i in feas])]
    assert sorted(p.index for p in res.frontier) == front
    # frontier ordered by margin
    margins = [p.average_margin for p in res.frontier]
    assert margins == sorted(margins)
    # chosen: minimum of the scaled weighted score over the frontier, by brute force
    ms = [evals[i][1] for i in feas]
    ps = [evals[i][2] for i in feas]

    def score(i: int) -> tuple[float, float, float, int]:
        m = (evals[i][1] - min(ms)) / (max(ms) - min(ms))
        q = (evals[i][2] - min(ps)) / (max(ps) - min(ps))
        return (weight * m + (1 - weight) * q, evals[i][1], evals[i][2], i)

    assert res.chosen is not None
    assert res.chosen.index == min(front, key=score)
    assert res.chosen.coverage >= 0.99
    assert dict(res.chosen.params) == combos[res.chosen.index]
    # the 3-objective frontier over the whole grid
    allf = brute_front([[-e[0], e[1], e[2]] for e in evals])
    assert [p.index for p in res.frontier_all] == allf


def test_calibrate_without_a_feasible_point_chooses_nothing() -> None:
    def capped(params: Mapping[str, Any]) -> tuple[float, float, float]:
        cov, m, q = toy_evaluate(params)
        return min(cov, 0.995), m, q

    res = calibrate(capped, GRID, target_coverage=0.999)
    assert res.chosen is None and res.frontier == () and res.feasible == ()
    assert len(res.points) == 48 and len(res.frontier_all) > 0
    tol = calibrate(capped, GRID, target_coverage=0.999, tolerance=0.01)
    assert tol.chosen is not None and tol.chosen.coverage >= 0.989


def test_calibrate_accepts_a_list_and_evaluations_and_rejects_bad_returns() -> None:
    pts = [{"a": 1}, {"a": 2}]
    res = calibrate(lambda p: Evaluation(0.995, float(p["a"]), 3.0 - p["a"]), pts)
    assert [p.index for p in res.frontier] == [0, 1]
    with pytest.raises(ValueError, match="evaluate"):
        calibrate(lambda p: (0.99, 1.0), pts)  # type: ignore[arg-type, return-value]
    with pytest.raises(ValueError, match="coverage"):
        calibrate(lambda p: (1.5, 1.0, 1.0), pts)
    with pytest.raises(ValueError, match="target_coverage"):
        calibrate(toy_evaluate, GRID, target_coverage=1.0)
    with pytest.raises(ValueError, match="weight"):
        calibrate(toy_evaluate, GRID, weight=2.0)


# ------------------------------------------------------------------------------------------
# FHS margin series against a plain loop
# ------------------------------------------------------------------------------------------


def plain_fhs(
    prices: np.ndarray, *, confidence: float, decay: float, window: int, min_window: int,
    horizon: int, measure: str, buffer: float = 0.0, scan_range: float = 0.0,
    vol_floor_ratio: float = 0.0, seed_window: int = 30,
) -> np.ndarray:
    """Per-day loop: EWMA by hand, explicit scenario P&L of a long unit, risk_measures VaR/ES."""
    r = [math.log(prices[i + 1] / prices[i]) for i in range(len(prices) - 1)]
    mean = sum(r[:seed_window]) / seed_window
    s2 = [sum((x - mean) ** 2 for x in r[:seed_window]) / seed_window]
    for x in r:
        s2.append(decay * s2[-1] + (1 - decay) * x * x)
    sig = [math.sqrt(v) for v in s2]  # sig[i]: forecast for r[i] (after r[i-1])
    out = np.full(len(prices), np.nan)
    for i in range(seed_window + min_window, len(prices)):
        lo = max(seed_window, i - window)
        z = [r[j] / sig[j] for j in range(lo, i)]
        mean_sig = sum(sig[lo:i]) / (i - lo)
        s_eff = max(sig[i], vol_floor_ratio * mean_sig)
        pnl = [math.expm1(s_eff * math.sqrt(horizon) * zz) for zz in z]
        if measure == "var":
            risk = value_at_risk(pnl, confidence)
        else:
            risk = expected_shortfall(pnl, confidence)
        out[i] = max(risk * (1 + buffer), scan_range)
    return out


def synthetic_prices(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    vol = 0.02 * np.exp(np.cumsum(rng.normal(0, 0.05, n)))  # clustering
    return 100.0 * np.exp(np.cumsum(rng.standard_t(3, n) * vol * 0.6))


@pytest.mark.parametrize(
    "kw",
    [
        {"confidence": 0.99, "decay": 0.94, "window": 120, "measure": "var", "horizon": 1},
        {"confidence": 0.975, "decay": 0.97, "window": 100, "measure": "es", "horizon": 1},
        {"confidence": 0.99, "decay": 0.9, "window": 150, "measure": "es", "horizon": 2,
         "buffer": 0.25},
        {"confidence": 0.95, "decay": 0.94, "window": 80, "measure": "var", "horizon": 5,
         "scan_range": 0.05, "vol_floor_ratio": 1.0},
        {"confidence": 0.9, "decay": 0.99, "window": 60, "measure": "var", "horizon": 1},
    ],
)
def test_fhs_margin_series_matches_a_plain_loop(kw: dict[str, Any]) -> None:
    """ccp-standards §5.3 FHS, checked day by day against risk_measures on explicit P&L."""
    prices = synthetic_prices(330, 5)
    got = fhs_margin_series(prices, min_window=50, **kw)
    want = plain_fhs(prices, min_window=50, **kw)
    assert got.first == 80
    np.testing.assert_allclose(got.margin_rate, want, rtol=1e-10, atol=1e-14, equal_nan=True)
    # realised loss of the long over the horizon, and the same backtest days for every setting
    h = kw["horizon"]
    np.testing.assert_allclose(got.realised_loss_rate[:-h], 1 - prices[h:] / prices[:-h])
    assert np.all(np.isnan(got.realised_loss_rate[-h:]))
    assert got.margin == pytest.approx(got.margin_rate * prices, nan_ok=True)


def test_fhs_margin_series_skips_missing_days_in_the_realised_loss() -> None:
    prices = synthetic_prices(120, 2)
    dates = np.datetime64("2024-01-01") + np.arange(120)
    dates[60:] += 1  # one missing day between rows 59 and 60
    s = fhs_margin_series(prices, dates, min_window=40, window=60, horizon=1)
    assert math.isnan(s.realised_loss_rate[59])  # no close exactly one day later
    assert s.realised_loss_rate[60] == pytest.approx(1 - prices[61] / prices[60])


def test_evaluator_rejects_unknown_parameters_and_matches_the_series() -> None:
    prices = synthetic_prices(400, 9)
    ev = FhsEvaluator(prices, min_window=100, procyclicality="peak_to_trough")
    with pytest.raises(ValueError, match="lambda"):
        ev({"lambda": 0.94})
    with pytest.raises(ValueError, match="window"):
        ev({"window": 50})
    e = ev({"decay": 0.97, "window": 200})
    s = fhs_margin_series(prices, min_window=100, decay=0.97, window=200)
    use = s.evaluated
    rate, loss = s.margin_rate[use], s.realised_loss_rate[use]
    assert e.coverage == pytest.approx(np.mean(loss <= rate))
    assert e.average_margin == pytest.approx(rate.mean())
    assert e.procyclicality == pytest.approx(rate.max() / rate.min())


# ------------------------------------------------------------------------------------------
# real BTC history
# ------------------------------------------------------------------------------------------


@pytest.mark.realdata
@pytest.mark.skipif(not BTC.exists(), reason=f"real data absent: {BTC}")
def test_calibrated_decay_and_confidence_meet_99pct_coverage_on_real_btc() -> None:
    """Binance BTCUSDT daily 2017-08..2026-03: scan decay × confidence × buffer for 99 %
    coverage (1-day, long 1 BTC); the chosen point's coverage is recomputed with the plain
    loop above and must be >= 99 %."""
    from margin_engine.io.history import load_history

    px = load_history(BTC)
    dates, price = px.dates, px.column("BTC")
    ev = FhsEvaluator(price, dates, min_window=365)
    grid: dict[str, list[Any]] = {"decay": [0.90, 0.94, 0.97, 0.99], "confidence": [0.99, 0.995],
            "buffer": [0.0, 0.1, 0.25], "window": [1000]}
    res = calibrate(ev, grid, target_coverage=0.99)
    assert res.chosen is not None
    assert len(res.frontier) >= 1 and res.chosen in res.frontier
    p = res.chosen.params
    days = dates.astype("datetime64[D]").astype(np.int64)
    assert np.all(np.diff(days)[: 3000] == 1)  # 2017-2025 has no gap: the loop can assume it
    n = 3000
    want = plain_fhs(price[:n], confidence=p["confidence"], decay=p["decay"],
                     window=p["window"], min_window=365, horizon=1, measure="var",
                     buffer=p["buffer"])
    rows = np.flatnonzero(np.isfinite(want[:-1]))
    loss = 1 - price[rows + 1] / price[rows]
    assert np.mean(loss <= want[rows]) >= 0.99
    # and the fast path agrees with the loop on those days
    s = ev.series(p)
    np.testing.assert_allclose(s.margin_rate[rows], want[rows], rtol=1e-10)
