"""Tests for margin_engine.maths.volatility.

Published vectors: ccp-standards §5.1 (EWMA half-lives), §5.4 (EWMA/GARCH recursion table, FHS toy
vector), §5.5 (square-root-of-time constants). Real data: Binance spot daily BTCUSDT closes from
../shared/data/real (skipped when absent).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from margin_engine.maths import volatility as vol

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "real"
BTC_DAILY = DATA / "binance_spot_daily_BTCUSDT_cdd.csv"

# ccp-standards §5.4 inputs
R54 = [0.01, -0.02, 0.015, -0.03, 0.005]
SEED54 = 1e-4

returns_1d = arrays(
    np.float64,
    st.integers(1, 60),
    elements=st.floats(-0.5, 0.5, allow_nan=False, allow_infinity=False, allow_subnormal=False),
)


# ------------------------------------------------------------------------------------------
# §5.4 recursion vectors
# ------------------------------------------------------------------------------------------


def test_ewma_094_table_ccp_standards_5_4() -> None:
    """ccp-standards §5.4 table, EWMA λ = 0.94 column (σ² to 1e-10, σ to 1e-8)."""
    var = [0.0001000000, 0.0001000000, 0.0001180000, 0.0001244200, 0.0001709548, 0.0001621975]
    sig = [0.01000000, 0.01000000, 0.01086278, 0.01115437, 0.01307497, 0.01273568]
    s2 = vol.ewma_variance(R54, 0.94, initial_variance=SEED54)
    assert s2.shape == (6,)
    np.testing.assert_allclose(s2, var, rtol=0, atol=0.6e-10)
    np.testing.assert_allclose(
        vol.ewma_volatility(R54, 0.94, initial_variance=SEED54), sig, rtol=0, atol=0.6e-8
    )


def test_ewma_097_final_ccp_standards_5_4() -> None:
    """ccp-standards §5.4: EWMA λ = 0.97 final σ² = 0.0001327724 (σ = 0.01152269)."""
    s2 = vol.ewma_variance(R54, 0.97, initial_variance=SEED54)
    assert s2[-1] == pytest.approx(0.0001327724, abs=0.6e-10)
    assert math.sqrt(s2[-1]) == pytest.approx(0.01152269, abs=0.6e-8)


def test_garch_table_ccp_standards_5_4() -> None:
    """ccp-standards §5.4 table, GARCH(ω=1e-6, α=0.08, β=0.90) column."""
    var = [0.0001000000, 0.0000990000, 0.0001221000, 0.0001288900, 0.0001890010, 0.0001731009]
    sig = [0.01000000, 0.00994987, 0.01104989, 0.01135297, 0.01374776, 0.01315678]
    s2 = vol.garch_variance(R54, 1e-6, 0.08, 0.90, initial_variance=SEED54)
    np.testing.assert_allclose(s2, var, rtol=0, atol=0.6e-10)
    np.testing.assert_allclose(np.sqrt(s2), sig, rtol=0, atol=0.6e-8)


def test_garch_long_run_variance_fixed_point_ccp_standards_5_4() -> None:
    """ccp-standards §5.4: long-run variance ω/(1−α−β) = 5e-5 (σ = 0.0070711) is a fixed point:
    returns whose square equals it keep the recursion there."""
    lr = 1e-6 / (1 - 0.08 - 0.90)
    assert lr == pytest.approx(5e-5, rel=1e-12)
    assert math.sqrt(lr) == pytest.approx(0.0070711, abs=5e-8)
    s2 = vol.garch_variance(np.full(50, math.sqrt(lr)), 1e-6, 0.08, 0.90, initial_variance=lr)
    np.testing.assert_allclose(s2, lr, rtol=1e-12)


def test_ewma_half_life_and_weight_horizon_ccp_standards_5_1() -> None:
    """ccp-standards §5.1: half-life 11.20 (0.94) / 22.76 (0.97); 99.9% weight 111.6 / 226.8."""
    assert vol.ewma_half_life(0.94) == pytest.approx(11.20, abs=0.005)
    assert vol.ewma_half_life(0.97) == pytest.approx(22.76, abs=0.005)
    assert vol.ewma_weight_horizon(0.94) == pytest.approx(111.6, abs=0.05)
    assert vol.ewma_weight_horizon(0.97) == pytest.approx(226.8, abs=0.05)


def test_ewma_default_seed_is_population_variance_of_first_window() -> None:
    """Default seed (TV-BT-6 convention): np.var (ddof=0) of the first seed_window returns."""
    r = np.random.default_rng(3).normal(0, 0.02, 100)
    s2 = vol.ewma_variance(r, 0.94, seed_window=30)
    mean = sum(r[:30]) / 30
    manual = sum((x - mean) ** 2 for x in r[:30]) / 30
    assert s2[0] == pytest.approx(manual, rel=1e-12)


# ------------------------------------------------------------------------------------------
# FHS vector
# ------------------------------------------------------------------------------------------

FHS_R = [-0.030, 0.012, -0.008, 0.020, -0.045, 0.005, -0.015, 0.010, -0.025, 0.002]
FHS_S = [0.015, 0.010, 0.010, 0.012, 0.030, 0.011, 0.012, 0.010, 0.020, 0.010]


def test_fhs_toy_vector_ccp_standards_5_4() -> None:
    """ccp-standards §5.4 FHS toy vector: z, revolatilised returns (σ_now = 0.02), worst loss
    0.04, sorted losses, mean of the 2 worst = 0.035."""
    z = vol.standardised_residuals(FHS_R, FHS_S)
    np.testing.assert_allclose(
        z, [-2.0, 1.2, -0.8, 1.666667, -1.5, 0.454545, -1.25, 1.0, -1.25, 0.2], atol=5e-7
    )
    scen = vol.fhs_scenarios(FHS_R, FHS_S, 0.02)
    np.testing.assert_allclose(
        scen,
        [-0.04, 0.024, -0.016, 0.033333, -0.03, 0.009091, -0.025, 0.02, -0.025, 0.004],
        atol=5e-7,
    )
    losses = np.sort(-scen)[::-1]
    np.testing.assert_allclose(losses[:5], [0.04, 0.03, 0.025, 0.025, 0.016], atol=1e-15)
    assert losses[0] == pytest.approx(0.04, abs=1e-15)
    assert losses[:2].mean() == pytest.approx(0.035, abs=1e-15)


def test_fhs_multi_asset_keeps_rows_and_matches_columns() -> None:
    """Joint scenarios: each column filtered on its own, rows (dates) kept aligned."""
    rng = np.random.default_rng(7)
    r = rng.normal(0, 0.02, (40, 3))
    s = rng.uniform(0.01, 0.04, (40, 3))
    now = np.array([0.02, 0.03, 0.015])
    joint = vol.fhs_scenarios(r, s, now)
    for j in range(3):
        np.testing.assert_array_equal(joint[:, j], vol.fhs_scenarios(r[:, j], s[:, j], now[j]))
        for t in range(40):
            assert joint[t, j] == pytest.approx(r[t, j] / s[t, j] * now[j], rel=1e-15)


def test_fhs_variants_floor_max_and_horizon() -> None:
    """Vol floor lifts σ_now; "max" never scales a day below its own σ; horizon rules."""
    base = np.array(vol.fhs_scenarios(FHS_R, FHS_S, 0.02))
    floored = vol.fhs_scenarios(FHS_R, FHS_S, 0.02, sigma_floor=0.025)
    np.testing.assert_allclose(floored, base * 0.025 / 0.02, rtol=1e-14)
    mx = vol.fhs_scenarios(FHS_R, FHS_S, 0.02, variant="max")
    expected = [r / s * max(s, 0.02) for r, s in zip(FHS_R, FHS_S, strict=True)]
    np.testing.assert_allclose(mx, expected, rtol=1e-14)
    assert mx[4] == pytest.approx(-0.045)  # σ = 0.03 > 0.02: the day keeps its own size
    sq = vol.fhs_scenarios(FHS_R, FHS_S, 0.02, horizon=5)
    np.testing.assert_allclose(sq, base * math.sqrt(5), rtol=1e-14)
    ov = vol.fhs_scenarios(FHS_R, FHS_S, 0.02, horizon=3, horizon_method="overlapping")
    assert ov.shape == (8,)
    np.testing.assert_allclose(ov, [sum(base[s : s + 3]) for s in range(8)], atol=1e-15)


def test_fhs_from_ewma_matches_manual_pipeline() -> None:
    """fhs_from_ewma = devolatilise with σ before each day, revolatilise with σ after the last."""
    rng = np.random.default_rng(11)
    r = rng.standard_t(4, 300) * 0.02
    out = vol.fhs_from_ewma(r, 0.94, initial_variance=4e-4, window=250)
    s2 = 4e-4
    sig = []
    for x in r:
        sig.append(math.sqrt(s2))
        s2 = 0.94 * s2 + 0.06 * x * x
    now = math.sqrt(s2)
    manual = [r[t] / sig[t] * now for t in range(50, 300)]
    np.testing.assert_allclose(out, manual, rtol=1e-12)


# ------------------------------------------------------------------------------------------
# horizon scaling
# ------------------------------------------------------------------------------------------


def test_sqrt_time_constants_ccp_standards_5_5_and_tv_bt_6() -> None:
    """§5.5 MPOR constants √2, √5, √7; TV-BT-6: 1-day VaR99 7.21% → 2-day 10.20% by √2."""
    for h, c in ((2, 1.414214), (5, 2.236068), (7, 2.645751)):
        assert float(vol.sqrt_time_scale(1.0, h)) == pytest.approx(c, abs=5e-7)
    one_day = 2.326348 * 0.03101  # σ_EWMA entering 2020-03-12 (TV-BT-6)
    assert round(one_day * 100, 2) == 7.21
    assert round(float(vol.sqrt_time_scale(one_day, 2)) * 100, 2) == 10.20


def test_overlapping_returns_equal_log_price_ratios() -> None:
    """h-day overlapping log returns equal log(P[s+h] / P[s]) of the price path."""
    rng = np.random.default_rng(5)
    prices = 100 * np.exp(np.cumsum(rng.normal(0, 0.03, 101)))
    r = np.diff(np.log(prices))
    for h in (1, 2, 5, 30):
        ov = vol.overlapping_returns(r, h)
        ref = np.log(prices[h:] / prices[:-h])
        assert ov.shape == (100 - h + 1,)
        np.testing.assert_allclose(ov, ref, atol=1e-12)
    two = vol.overlapping_returns(np.column_stack([r, 2 * r]), 5)
    np.testing.assert_allclose(two[:, 1], 2 * two[:, 0], atol=1e-12)


# ------------------------------------------------------------------------------------------
# properties
# ------------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    r=returns_1d,
    lam=st.floats(0.5, 0.999),
    seed=st.floats(1e-8, 1e-1),
)
def test_ewma_is_convex_combination_and_equals_igarch(
    r: np.ndarray, lam: float, seed: float
) -> None:
    """EWMA stays within [min, max] of the seed and past squared returns, and equals the GARCH
    reference recursion with ω = 0, α = 1 − λ, β = λ."""
    s2 = vol.ewma_variance(r, lam, initial_variance=seed)
    assert s2.shape == (r.shape[0] + 1,)
    pool = np.concatenate([[seed], r * r])
    for t in range(s2.shape[0]):
        lo, hi = pool[: t + 1].min(), pool[: t + 1].max()
        assert lo * (1 - 1e-12) <= s2[t] <= hi * (1 + 1e-12)
    g = vol.garch_variance(r, 0.0, 1.0 - lam, lam, initial_variance=seed)
    np.testing.assert_allclose(g, s2, rtol=1e-12, atol=1e-300)


@settings(max_examples=40, deadline=None)
@given(
    r=arrays(
        np.float64, st.tuples(st.integers(1, 30), st.integers(1, 4)), elements=st.floats(-0.3, 0.3)
    ),
    lam=st.floats(0.8, 0.99),
)
def test_ewma_2d_equals_per_column(r: np.ndarray, lam: float) -> None:
    """Multi-asset EWMA is the 1-D recursion applied to each column."""
    seeds = np.linspace(1e-4, 4e-4, r.shape[1])
    joint = vol.ewma_variance(r, lam, initial_variance=seeds)
    for j in range(r.shape[1]):
        np.testing.assert_array_equal(
            joint[:, j], vol.ewma_variance(r[:, j], lam, initial_variance=seeds[j])
        )


@settings(max_examples=60, deadline=None)
@given(
    r=returns_1d,
    c=st.floats(0.1, 10.0),
    now=st.floats(1e-3, 0.2),
)
def test_fhs_scales_linearly_and_preserves_signs(r: np.ndarray, c: float, now: float) -> None:
    """FHS scenarios scale with σ_now, keep the sign of each return, and "max" dominates."""
    s = np.full(r.shape, 0.02) + np.abs(r)
    a = vol.fhs_scenarios(r, s, now)
    b = vol.fhs_scenarios(r, s, now * c)
    np.testing.assert_allclose(b, a * c, rtol=1e-12, atol=1e-300)
    assert np.all(np.sign(a) == np.sign(r))
    m = vol.fhs_scenarios(r, s, now, variant="max")
    assert np.all(np.abs(m) >= np.abs(a) * (1 - 1e-12))


# ------------------------------------------------------------------------------------------
# input errors
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: vol.ewma_variance([0.01, np.nan], initial_variance=1e-4), "returns"),
        (lambda: vol.ewma_variance([0.01], 1.0, initial_variance=1e-4), "lam"),
        (lambda: vol.ewma_variance([0.01], 0.94, initial_variance=-1.0), "initial_variance"),
        (lambda: vol.ewma_variance([0.01, 0.02], 0.94), "seed_window"),
        (lambda: vol.ewma_variance(np.zeros((2, 2, 2)), initial_variance=1e-4), "returns"),
        (lambda: vol.garch_variance([0.01], -1e-6, 0.1, 0.8, initial_variance=1e-4), "omega"),
        (lambda: vol.garch_variance([0.01], 1e-6, -0.1, 0.8, initial_variance=1e-4), "alpha"),
        (lambda: vol.standardised_residuals([0.01, 0.02], [0.01, 0.0]), "sigma"),
        (lambda: vol.standardised_residuals([0.01, 0.02], [0.01]), "sigma"),
        (lambda: vol.fhs_scenarios([0.01], [0.01], 0.0), "sigma_now"),
        (lambda: vol.fhs_scenarios([0.01], [0.01], 0.02, sigma_floor=-1.0), "sigma_floor"),
        (lambda: vol.fhs_scenarios([0.01], [0.01], 0.02, variant="min"), "variant"),  # type: ignore[arg-type]
        (lambda: vol.overlapping_returns([0.01, 0.02], 3), "horizon"),
        (lambda: vol.sqrt_time_scale(1.0, 0.0), "horizon"),
        (lambda: vol.fit_garch(np.full(10, 0.01)), "returns"),
    ],
)
def test_bad_input_names_the_argument(call: object, match: str) -> None:
    """Bad input raises ValueError naming the argument."""
    with pytest.raises(ValueError, match=match):
        call()  # type: ignore[operator]


# ------------------------------------------------------------------------------------------
# GARCH fit on real BTC data
# ------------------------------------------------------------------------------------------


def _btc_log_returns() -> np.ndarray:
    if not BTC_DAILY.exists():
        pytest.skip(f"real data absent: {BTC_DAILY}")
    rows = []
    with BTC_DAILY.open() as fh:
        lines = fh.read().splitlines()
    header = lines[1].split(",")  # first line is the CryptoDataDownload URL
    i_unix, i_close = header.index("Unix"), header.index("Close")
    for line in lines[2:]:
        parts = line.split(",")
        rows.append((int(parts[i_unix]), float(parts[i_close])))
    rows.sort()  # file is newest first
    closes = np.array([c for _, c in rows])
    return np.diff(np.log(closes))


def _arch_start(r: np.ndarray, omega: float, persistence: float) -> float:
    """arch's σ²_0 = ω + (α + γ/2 + β)·backcast, backcast = 0.94-weighted mean of the first 75
    squared residuals at the *starting values* (r itself for a zero mean, r − mean(r) for a
    constant mean); reimplemented here, independent of vol.arch_backcast."""
    w = [0.94**i for i in range(75)]
    bc = sum(wi * x * x for wi, x in zip(w, r[:75], strict=False)) / sum(w)
    assert vol.arch_backcast(r) == pytest.approx(bc, rel=1e-12)
    return omega + persistence * bc


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("dist", "asymmetric"), [("normal", False), ("t", False), ("normal", True)]
)
def test_garch_fit_btc_reference_recursion_matches_arch(dist: str, asymmetric: bool) -> None:
    """GARCH(1,1) fit on Binance BTCUSDT daily log returns: the plain reference recursion with the
    fitted parameters reproduces arch's conditional volatility and forecast to 1e-8 relative."""
    r = _btc_log_returns()
    fit = vol.fit_garch(r, dist=dist, asymmetric=asymmetric)  # type: ignore[arg-type]
    assert fit.converged
    assert fit.conditional_volatility.shape == r.shape
    init = _arch_start(r, fit.omega, fit.alpha + fit.gamma / 2 + fit.beta)
    ref = vol.garch_variance(
        r, fit.omega, fit.alpha, fit.beta, gamma=fit.gamma, initial_variance=init
    )
    np.testing.assert_allclose(np.sqrt(ref[:-1]), fit.conditional_volatility, rtol=1e-8)
    assert ref[-1] == pytest.approx(fit.forecast_variance, rel=1e-8)
    np.testing.assert_allclose(fit.variance_path, ref, rtol=1e-8)
    # stationarity and sane units: BTC daily vol of a few percent
    assert 0.0 < fit.alpha < 1.0 and 0.0 < fit.beta < 1.0
    assert fit.persistence <= 1.0 + 1e-9
    assert 0.01 < fit.forecast_volatility < 0.2
    if dist == "t":
        assert fit.nu is not None and 2.0 < fit.nu < 30.0


@pytest.mark.realdata
def test_garch_normal_fit_btc_is_stationary() -> None:
    """Normal GARCH(1,1) on BTC daily returns: α + β < 1 and the long-run daily vol is 2–6%."""
    r = _btc_log_returns()
    fit = vol.fit_garch(r)
    assert fit.alpha + fit.beta < 1.0
    assert fit.long_run_variance == pytest.approx(fit.omega / (1 - fit.alpha - fit.beta))
    assert 0.02 < math.sqrt(fit.long_run_variance) < 0.06
    # the fit in percent units and the rescaled parameters agree: ω scales with scale².
    fit_pct = vol.fit_garch(r * 100.0, scale=1.0)
    assert fit_pct.omega == pytest.approx(fit.omega * 1e4, rel=1e-4)
    assert fit_pct.alpha == pytest.approx(fit.alpha, rel=1e-4)


def _simulate_garch(n: int, omega: float, alpha: float, beta: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    s2 = omega / (1 - alpha - beta)
    out = np.empty(n)
    for t in range(n):
        out[t] = math.sqrt(s2) * rng.standard_normal()
        s2 = omega + alpha * out[t] ** 2 + beta * s2
    return out


@pytest.mark.parametrize("mean", ["zero", "constant"])
def test_garch_fit_synthetic_recovers_parameters_and_matches_recursion(mean: str) -> None:
    """GARCH(1,1) fit on a simulated GARCH(ω=2e-5, α=0.10, β=0.85) path (daily-crypto-like
    units): parameters recovered within sampling error, and the plain reference recursion on the
    residuals r − μ reproduces arch's conditional volatility to 1e-8 relative."""
    r = _simulate_garch(4000, 2e-5, 0.10, 0.85, seed=21) + (0.001 if mean == "constant" else 0.0)
    fit = vol.fit_garch(r, mean=mean)  # type: ignore[arg-type]
    assert fit.converged
    assert fit.alpha == pytest.approx(0.10, abs=0.04)
    assert fit.beta == pytest.approx(0.85, abs=0.06)
    assert fit.long_run_variance == pytest.approx(2e-5 / 0.05, rel=0.35)
    if mean == "constant":
        assert fit.mu == pytest.approx(0.001, abs=0.0015)
    else:
        assert fit.mu == 0.0
    resid = r - fit.mu
    init = _arch_start(r - r.mean() if mean == "constant" else r, fit.omega, fit.persistence)
    ref = vol.garch_variance(resid, fit.omega, fit.alpha, fit.beta, initial_variance=init)
    np.testing.assert_allclose(np.sqrt(ref[:-1]), fit.conditional_volatility, rtol=1e-8)
    assert ref[-1] == pytest.approx(fit.forecast_variance, rel=1e-8)
    assert fit.forecast_volatility == pytest.approx(math.sqrt(ref[-1]), rel=1e-8)
    with pytest.raises(ValueError):
        fit.conditional_volatility[0] = 1.0
