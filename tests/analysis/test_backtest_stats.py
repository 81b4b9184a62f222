"""Tests for margin_engine.analysis.backtest_stats.

Published vectors: ccp-standards §4.5 (TV-BT-1 … TV-BT-6) and §3.4 (procyclicality toy series).
Independent references: Kupiec through scipy.stats.binom log-pmfs, Christoffersen and Z2 through
plain Python loops, the traffic light through exact binomial sums with math.comb.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from margin_engine.analysis import backtest_stats as bt
from margin_engine.maths import volatility as vol

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "real"
BTC_LUKMOL = DATA / "btcusd_daily_close_volume_2015-01-01_2026-02-13_lukmol.csv"


def _flags_from_days(days: list[int], n: int) -> np.ndarray:
    f = np.zeros(n, dtype=bool)
    f[np.asarray(days) - 1] = True  # 1-indexed days
    return f


# ------------------------------------------------------------------------------------------
# TV-BT-1: Kupiec and Basel traffic light, T = 250, p = 0.01
# ------------------------------------------------------------------------------------------

# x, LR_POF, p-value, F(x), zone, 3·(z_a/z_o − 1) (None = "—")
TV_BT_1 = [
    (0, 5.025168, 2.498150e-02, 0.081059, "green", None),
    (1, 1.176491, 2.780715e-01, 0.285752, "green", -0.3685),
    (2, 0.108435, 7.419327e-01, 0.543169, "green", -0.1028),
    (3, 0.094940, 7.579883e-01, 0.758117, "green", 0.0920),
    (4, 0.769138, 3.804837e-01, 0.892188, "green", 0.2545),
    (5, 1.956810, 1.618549e-01, 0.958817, "yellow", 0.3982),
    (6, 3.555355, 5.935362e-02, 0.986299, "yellow", 0.5295),
    (7, 5.496990, 1.904923e-02, 0.995975, "yellow", 0.6520),
    (8, 7.733551, 5.420405e-03, 0.998943, "yellow", 0.7680),
    (9, 10.229031, 1.382473e-03, 0.999750, "yellow", 0.8791),
    (10, 12.955491, 3.189845e-04, 0.999946, "red", 0.9865),
    (11, 15.890620, 6.711052e-05, 0.999989, "red", 1.0908),
    (12, 19.016186, 1.296143e-05, 0.999998, "red", 1.1927),
]
# BCBS plus factors, ccp-standards §4.3
PLUS = {5: 0.40, 6: 0.50, 7: 0.65, 8: 0.75, 9: 0.85}


@pytest.mark.parametrize(("x", "lr", "pval", "cdf", "zone", "formula"), TV_BT_1)
def test_tv_bt_1_kupiec_and_traffic_light(
    x: int, lr: float, pval: float, cdf: float, zone: str, formula: float | None
) -> None:
    """TV-BT-1 (ccp-standards §4.5): Kupiec LR/p-value, binomial CDF, zone, normal plus factor,
    and the BCBS plus factor of §4.3."""
    k = bt.kupiec_pof_from_counts(x, 250, 0.01)
    assert k.lr == pytest.approx(lr, abs=5e-7)
    assert k.p_value == pytest.approx(pval, rel=5e-7)
    tl = bt.basel_traffic_light(x, 250, 0.01)
    assert tl.cumulative_probability == pytest.approx(cdf, abs=5e-7)
    assert tl.zone == zone
    expected_plus = 0.0 if zone == "green" else (1.0 if zone == "red" else PLUS[x])
    assert tl.plus_factor == expected_plus
    assert tl.multiplier == pytest.approx(3.0 + expected_plus)
    if formula is not None:
        assert bt.basel_normal_plus_factor(x, 250, 0.01) == pytest.approx(formula, abs=5e-5)


@pytest.mark.parametrize(
    ("p", "x", "lr", "pval", "pval_tol"),
    [
        (0.005, 0, 2.506271, 0.113394, 5e-7),
        (0.005, 3, 1.765153, 0.183983, 5e-7),
        (0.005, 5, 6.419763, 0.011286, 5e-7),
        (0.005, 8, 16.385613, 5.1676e-05, 5e-10),
        (0.025, 0, 12.658904, None, 0.0),
        (0.025, 2, 4.015938, 0.045072, 5e-7),
        (0.025, 5, 0.274964, 0.600021, 5e-7),
        (0.025, 10, 1.958063, 0.161721, 5e-7),
        (0.025, 15, 9.081992, 0.002581, 5e-7),
    ],
)
def test_tv_bt_1_extra_kupiec_values(
    p: float, x: int, lr: float, pval: float | None, pval_tol: float
) -> None:
    """TV-BT-1 "Extra Kupiec values, T = 250" for p = 0.005 (EMIR OTC 99.5%) and p = 0.025,
    to the published precision."""
    k = bt.kupiec_pof_from_counts(x, 250, p)
    assert k.lr == pytest.approx(lr, abs=5e-7)
    if pval is not None:
        assert k.p_value == pytest.approx(pval, abs=pval_tol)


def test_tv_bt_1_zone_bounds_and_normal_plus_factors() -> None:
    """§4.3: green 0–4, yellow 5–9, red 10+; the "normal" plus-factor method clips the TV-BT-1
    formula column to [0, 1] in the yellow zone."""
    assert bt.basel_zone_bounds(250, 0.01) == (4, 9)
    for x, formula in ((5, 0.3982), (7, 0.6520), (9, 0.8791)):
        plus = bt.basel_traffic_light(x, plus_factors="normal").plus_factor
        assert plus == pytest.approx(formula, abs=5e-5)
    assert bt.basel_traffic_light(3, plus_factors="normal").plus_factor == 0.0
    assert bt.basel_traffic_light(12, plus_factors="normal").plus_factor == 1.0
    # BCBS table undefined away from T = 250, p = 0.01
    other = bt.basel_traffic_light(7, 365, 0.01)
    assert other.plus_factor is None and other.multiplier is None


# ------------------------------------------------------------------------------------------
# TV-BT-2 … TV-BT-4: Christoffersen
# ------------------------------------------------------------------------------------------


def test_tv_bt_2_christoffersen_sequence_a() -> None:
    """TV-BT-2 (ccp-standards §4.5): sequence A, T = 20, p = 0.05."""
    seq = [0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0]
    c = bt.christoffersen(seq, 0.05)
    assert c.n_exceptions == 6
    assert (c.n00, c.n01, c.n10, c.n11) == (10, 3, 3, 3)
    assert c.pi01 == pytest.approx(0.230769, abs=5e-7)
    assert c.pi11 == pytest.approx(0.5, abs=5e-7)
    assert c.pi == pytest.approx(0.315789, abs=5e-7)
    assert c.lr_ind == pytest.approx(1.335810, abs=5e-7)
    assert c.p_value_ind == pytest.approx(0.247774, abs=5e-7)
    assert c.lr_pof == pytest.approx(12.950427, abs=5e-7)
    assert c.p_value_pof == pytest.approx(0.000320, abs=5e-7)
    assert c.lr_cc == pytest.approx(14.286238, abs=5e-7)
    assert c.p_value_cc == pytest.approx(0.000790, abs=5e-7)
    assert c.lr_cc_transition == pytest.approx(14.919339, abs=5e-7)
    assert c.p_value_cc_transition == pytest.approx(0.000576, abs=5e-7)


def test_tv_bt_3_christoffersen_sequence_b_clustered() -> None:
    """TV-BT-3: clustered exceptions on days 10, 11, 50, 120, 121, 122, 200 (T = 250)."""
    c = bt.christoffersen(_flags_from_days([10, 11, 50, 120, 121, 122, 200], 250), 0.01)
    assert c.n_exceptions == 7
    assert (c.n00, c.n01, c.n10, c.n11) == (238, 4, 4, 3)
    assert c.pi01 == pytest.approx(0.016529, abs=5e-7)
    assert c.pi11 == pytest.approx(0.428571, abs=5e-7)
    assert c.pi == pytest.approx(0.028112, abs=5e-7)
    assert c.lr_ind == pytest.approx(13.487564, abs=5e-7)
    assert c.p_value_ind == pytest.approx(0.000240, abs=5e-7)
    assert c.lr_pof == pytest.approx(5.496990, abs=5e-7)
    assert c.p_value_pof == pytest.approx(0.019049, abs=5e-7)
    assert c.lr_cc == pytest.approx(18.984554, abs=5e-7)
    assert c.p_value_cc == pytest.approx(7.5e-05, abs=5e-7)
    assert c.lr_cc_transition == pytest.approx(19.021368, abs=5e-7)


def test_tv_bt_4_christoffersen_sequence_c_isolated() -> None:
    """TV-BT-4: isolated exceptions (days 10, 45, …, 220): same POF as B, passes independence."""
    c = bt.christoffersen(_flags_from_days([10, 45, 80, 115, 150, 185, 220], 250), 0.01)
    assert (c.n00, c.n01, c.n10, c.n11) == (235, 7, 7, 0)
    assert c.lr_ind == pytest.approx(0.405015, abs=5e-7)
    assert c.p_value_ind == pytest.approx(0.524511, abs=5e-7)
    assert c.lr_cc == pytest.approx(5.902006, abs=5e-7)
    assert c.p_value_cc == pytest.approx(0.052287, abs=5e-7)
    b = bt.christoffersen(_flags_from_days([10, 11, 50, 120, 121, 122, 200], 250), 0.01)
    assert c.lr_pof == b.lr_pof
    assert b.p_value_ind < 0.05 < c.p_value_ind


# ------------------------------------------------------------------------------------------
# TV-BT-5: Acerbi–Szekely Z2
# ------------------------------------------------------------------------------------------


def test_tv_bt_5_z2_null_var_es_constants() -> None:
    """TV-BT-5: normal VaR 1.959964 / ES 2.337803; Student-t(3) VaR 3.182446 / ES 5.039583."""
    v, e = bt.null_var_es(0.025)
    assert v == pytest.approx(1.959964, abs=5e-7)
    assert e == pytest.approx(2.337803, abs=5e-7)
    vt, et = bt.null_var_es(0.025, "t", 3)
    assert vt == pytest.approx(3.182446, abs=5e-7)
    assert et == pytest.approx(5.039583, abs=5e-7)


def test_tv_bt_5_z2_six_exceptions() -> None:
    """TV-BT-5: six exceptions {2.1, 2.5, 3.0, 2.2, 2.8, 4.0} on days 10..240 → Z2 = −0.136110."""
    v, e = bt.null_var_es(0.025)
    x = np.zeros(250)
    for d, loss in zip([10, 50, 100, 150, 200, 240], [2.1, 2.5, 3.0, 2.2, 2.8, 4.0], strict=True):
        x[d - 1] = -loss
    res = bt.acerbi_szekely_z2(x, v, e, 0.025)
    assert res.z2 == pytest.approx(-0.136110, abs=5e-7)
    assert res.n_exceptions == 6
    assert res.zone == "green"


def test_tv_bt_5_z2_ten_exceptions() -> None:
    """TV-BT-5: ten exceptions each of loss 3.0 → Z2 = −1.053210 (yellow: below −0.70)."""
    v, e = bt.null_var_es(0.025)
    x = np.zeros(250)
    x[::25] = -3.0
    res = bt.acerbi_szekely_z2(x, np.full(250, v), np.full(250, e))
    assert res.z2 == pytest.approx(-1.053210, abs=5e-7)
    assert res.n_exceptions == 10
    assert res.zone == "yellow"


def test_tv_bt_5_z2_monte_carlo_null_seed_12345() -> None:
    """TV-BT-5 Monte Carlo under H0, 100,000 paths, default_rng(12345): normal mean −0.0020,
    quantiles 5% −0.7067, 1% −1.0443, 0.01% −1.8062; then t(3) on the same generator: 5% −0.8093,
    1% −1.3284. The thresholds −0.70 and −1.8 of §4.4 sit next to the normal quantiles."""
    rng = np.random.default_rng(12345)
    norm = bt.simulate_z2_null(250, 0.025, n_sims=100_000, rng=rng)
    t3 = bt.simulate_z2_null(250, 0.025, n_sims=100_000, dist="t", df=3, rng=rng)
    assert norm.mean() == pytest.approx(-0.0020, abs=5e-5)
    q = np.quantile(norm, [0.05, 0.01, 0.0001])
    np.testing.assert_allclose(q, [-0.7067, -1.0443, -1.8062], atol=5e-5)
    np.testing.assert_allclose(np.quantile(t3, [0.05, 0.01]), [-0.8093, -1.3284], atol=5e-5)
    assert abs(q[0] - bt.Z2_THRESHOLD_5PCT) < 0.01
    assert abs(q[2] - bt.Z2_THRESHOLD_001PCT) < 0.01
    # p-value from the simulated null: Z2 = -1.053210 (10 losses of 3.0) lies between the
    # published 0.01% and 1% quantiles, so 0.0001 < p < 0.01
    x = np.zeros(250)
    x[::25] = -3.0
    v, e = bt.null_var_es(0.025)
    res = bt.acerbi_szekely_z2(x, v, e, null_z2=norm)
    assert res.p_value is not None and 0.0001 < res.p_value < 0.01
    assert res.p_value == pytest.approx(float(np.mean(norm <= res.z2)))


def test_z2_null_independent_of_chunking() -> None:
    """The simulated null is the row-major stream of the generator, whatever the chunk size."""
    a = bt.simulate_z2_null(50, n_sims=1_000, rng=9, chunk=1_000)
    b = bt.simulate_z2_null(50, n_sims=1_000, rng=9, chunk=37)
    np.testing.assert_array_equal(a, b)
    x = np.random.default_rng(9).standard_normal((1_000, 50))
    v, e = bt.null_var_es(0.025)
    ref = [1.0 + sum(xi for xi in row if xi + v < 0) / (50 * 0.025 * e) for row in x]
    np.testing.assert_allclose(a, ref, rtol=1e-12)


# ------------------------------------------------------------------------------------------
# TV-BT-6: real-data backtest statistics
# ------------------------------------------------------------------------------------------

# year, T, exceptions, LR_POF, p, Binom CDF, (n00, n01, n10, n11), LR_ind, FHS-500d exceptions
TV_BT_6 = [
    (2020, 366, 4, 0.0310, 0.8603, 0.695260, (357, 4, 4, 0), 0.0886, 4),
    (2021, 365, 8, 3.9080, 0.04806, 0.987783, (348, 8, 8, 0), 0.3596, 5),
    (2022, 365, 11, 9.7202, 0.001823, 0.999618, (343, 10, 10, 1), 0.9542, 6),
    (2023, 365, 6, 1.2797, 0.2580, 0.923536, (352, 6, 6, 0), 0.2011, 1),
    (2024, 366, 7, 2.4291, 0.1191, 0.967340, (351, 7, 7, 0), 0.2738, 5),
]


@pytest.mark.parametrize("row", TV_BT_6, ids=[str(r[0]) for r in TV_BT_6])
def test_tv_bt_6_statistics_from_published_counts(row: tuple) -> None:
    """TV-BT-6: LR_POF, its p-value, the binomial CDF and LR_ind from the published counts."""
    _, T, x, lr, pval, cdf, counts, lr_ind, _ = row
    k = bt.kupiec_pof_from_counts(x, T, 0.01)
    assert k.lr == pytest.approx(lr, abs=5e-5)
    assert k.p_value == pytest.approx(pval, rel=5e-4)
    tl = bt.basel_traffic_light(x, T, 0.01)
    assert tl.cumulative_probability == pytest.approx(cdf, abs=5e-7)
    c = bt.christoffersen_from_counts(*counts, n_obs=T, n_exceptions=x, p=0.01)
    assert c.lr_ind == pytest.approx(lr_ind, abs=5e-5)
    assert c.lr_pof == k.lr


def _lukmol_series() -> tuple[np.ndarray, np.ndarray]:
    if not BTC_LUKMOL.exists():
        pytest.skip(f"real data absent: {BTC_LUKMOL}")
    dates, prices = [], []
    with BTC_LUKMOL.open() as fh:
        next(fh)
        for line in fh:
            d, p, _ = line.strip().split(",")
            dates.append(np.datetime64(d))
            prices.append(float(p))
    return np.array(dates), np.array(prices)


@pytest.mark.realdata
def test_tv_bt_6_real_data_ewma_and_fhs_backtest() -> None:
    """TV-BT-6 end to end on BTC-USD daily closes (lukmol file, Yahoo/CoinMarketCap-style, the
    same values as source S41; it starts 2015-01-01 rather than 2014-09-18, which only moves the
    EWMA seed, forgotten long before 2020). EWMA λ = 0.94 seeded with the variance of the first 30
    returns, VaR99 = 2.326348·σ_t, FHS over 500 days of standardised residuals. Checks the yearly
    exception counts, transitions, FHS exceptions and the 2020-03-12 figures."""
    dates, prices = _lukmol_series()
    r = np.diff(np.log(prices))
    d = dates[1:]
    sigma = vol.ewma_volatility(r, 0.94, seed_window=30)
    var99 = 2.326348 * sigma[:-1]
    exc = bt.exception_flags(var99, -r)
    z = vol.standardised_residuals(r, sigma[:-1])
    fhs_exc = np.zeros(r.shape[0], dtype=bool)
    start = int(np.searchsorted(d, np.datetime64("2020-01-01")))
    for t in range(start, r.shape[0]):
        scen = vol.fhs_scenarios(r[t - 500 : t], sigma[t - 500 : t], sigma[t])
        fhs_exc[t] = -r[t] > -np.quantile(scen, 0.01)
        assert np.allclose(scen, z[t - 500 : t] * sigma[t])
    years = d.astype("datetime64[Y]").astype(int) + 1970
    for year, T, x, lr, _, _, counts, lr_ind, n_fhs in TV_BT_6:
        m = years == year
        assert int(m.sum()) == T
        c = bt.christoffersen(exc[m], 0.01)
        assert c.n_exceptions == x
        assert (c.n00, c.n01, c.n10, c.n11) == counts
        assert c.lr_pof == pytest.approx(lr, abs=5e-5)
        assert c.lr_ind == pytest.approx(lr_ind, abs=5e-5)
        assert bt.coverage(fhs_exc[m]).n_exceptions == n_fhs
    i = int(np.searchsorted(d, np.datetime64("2020-03-12")))
    assert sigma[i] == pytest.approx(0.03101, abs=5e-6)
    assert var99[i] == pytest.approx(0.0721, abs=5e-5)
    assert float(vol.sqrt_time_scale(var99[i], 2)) == pytest.approx(0.1020, abs=5e-5)
    assert r[i] == pytest.approx(-0.4647, abs=5e-5)
    scen = vol.fhs_scenarios(r[i - 500 : i], sigma[i - 500 : i], sigma[i])
    assert -np.quantile(scen, 0.01) == pytest.approx(0.1053, abs=5e-5)
    tail = scen[scen <= np.quantile(scen, 0.025)]
    assert -tail.mean() == pytest.approx(0.1149, abs=5e-5)


# ------------------------------------------------------------------------------------------
# §3.4 procyclicality vector
# ------------------------------------------------------------------------------------------

IM_34 = [100, 102, 98, 150, 180, 170, 120, 110]


def test_procyclicality_toy_series_ccp_standards_3_4() -> None:
    """ccp-standards §3.4: peak-to-trough 1.836735 (180/98); 1-, 2-, 3-day procyclicality
    1.530612 (150/98), 1.836735 (180/98), 1.764706 (180/102)."""
    p2t = bt.peak_to_trough(IM_34)
    assert p2t.ratio == pytest.approx(1.836735, abs=5e-7)
    assert (p2t.peak, p2t.trough, p2t.peak_index, p2t.trough_index) == (180.0, 98.0, 4, 2)
    res = bt.procyclicality(IM_34, (1, 2, 3))
    assert res.peak_to_trough == p2t
    assert res.ratio(1) == pytest.approx(1.530612, abs=5e-7)
    assert res.ratio(2) == pytest.approx(1.836735, abs=5e-7)
    assert res.ratio(3) == pytest.approx(1.764706, abs=5e-7)
    one = bt.n_day_increase(IM_34, 1)
    assert one.start_index == 2 and one.increase == pytest.approx(0.530612, abs=5e-7)
    assert bt.n_day_increase(IM_34, 3).start_index == 1
    with pytest.raises(KeyError):
        res.ratio(5)


def test_procyclicality_default_horizons_and_reference_loop() -> None:
    """n = 1, 5, 30 on a long series equal a brute-force double loop."""
    m = 100 * np.exp(np.cumsum(np.random.default_rng(2).normal(0, 0.05, 400)))
    res = bt.procyclicality(m)
    assert [n.horizon for n in res.n_day] == [1, 5, 30]
    for n in res.n_day:
        ref = max(m[t + n.horizon] / m[t] for t in range(len(m) - n.horizon))
        assert n.ratio == pytest.approx(ref, rel=1e-14)
    assert res.peak_to_trough.ratio == pytest.approx(max(m) / min(m), rel=1e-14)


def test_average_margin_share() -> None:
    """Mean of daily IM/N and the pooled ratio sum(IM)/sum(N)."""
    res = bt.average_margin_share([10.0, 30.0], [100.0, 200.0])
    assert res.mean_share == pytest.approx((0.10 + 0.15) / 2)
    assert res.pooled_share == pytest.approx(40.0 / 300.0)
    assert res.mean_margin == 20.0 and res.mean_notional == 150.0
    assert bt.average_margin_share([5.0, 15.0], 100.0).mean_share == pytest.approx(0.10)


# ------------------------------------------------------------------------------------------
# independent references
# ------------------------------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(
    T=st.integers(1, 600),
    frac=st.floats(0.0, 1.0),
    p=st.floats(0.001, 0.5),
)
def test_kupiec_matches_binomial_likelihood_ratio(T: int, frac: float, p: float) -> None:
    """Kupiec LR = 2[log binom.pmf(x; T, x/T) − log binom.pmf(x; T, p)] (the binomial
    coefficient cancels), computed with scipy.stats.binom."""
    x = round(frac * T)
    k = bt.kupiec_pof_from_counts(x, T, p)
    ref = 2.0 * (stats.binom.logpmf(x, T, x / T) - stats.binom.logpmf(x, T, p))
    assert k.lr == pytest.approx(max(ref, 0.0), rel=1e-9, abs=1e-9)
    assert k.p_value == pytest.approx(stats.chi2.sf(k.lr, 1), rel=1e-12)
    assert k.lr >= 0.0 and 0.0 <= k.p_value <= 1.0


def _ll(n0: int, n1: int, q: float) -> float:
    out = 0.0
    if n0:
        out += n0 * math.log(1 - q)
    if n1:
        out += n1 * math.log(q)
    return out


@settings(max_examples=80, deadline=None)
@given(
    seq=st.lists(st.booleans(), min_size=2, max_size=120),
    p=st.floats(0.005, 0.3),
)
def test_christoffersen_matches_plain_loop(seq: list[bool], p: float) -> None:
    """Transition counts and LR_ind / LR_cc from a plain Python loop (0·ln 0 = 0)."""
    c = bt.christoffersen(seq, p)
    n = [[0, 0], [0, 0]]
    for a, b in itertools.pairwise(seq):
        n[int(a)][int(b)] += 1
    assert (c.n00, c.n01, c.n10, c.n11) == (n[0][0], n[0][1], n[1][0], n[1][1])
    assert c.n00 + c.n01 + c.n10 + c.n11 == len(seq) - 1
    assert abs(c.n01 - c.n10) <= 1
    pi01 = n[0][1] / (n[0][0] + n[0][1]) if n[0][0] + n[0][1] else 0.0
    pi11 = n[1][1] / (n[1][0] + n[1][1]) if n[1][0] + n[1][1] else 0.0
    pi = (n[0][1] + n[1][1]) / (len(seq) - 1)
    alt = _ll(n[0][0], n[0][1], pi01) + _ll(n[1][0], n[1][1], pi11)
    null = _ll(n[0][0] + n[1][0], n[0][1] + n[1][1], pi)
    assert c.lr_ind == pytest.approx(max(2 * (alt - null), 0.0), abs=1e-9)
    x, T = sum(seq), len(seq)
    pof = -2 * _ll(T - x, x, p) + 2 * _ll(T - x, x, x / T)
    assert c.lr_cc == pytest.approx(max(pof, 0.0) + c.lr_ind, abs=1e-9)
    for v in (c.lr_ind, c.lr_cc, c.lr_cc_transition):
        assert v >= 0.0
    for q in (c.p_value_ind, c.p_value_cc, c.p_value_cc_transition):
        assert 0.0 <= q <= 1.0


@settings(max_examples=60, deadline=None)
@given(
    x=st.lists(st.floats(-10, 10), min_size=1, max_size=80),
    var=st.floats(0.1, 5.0),
    ratio=st.floats(1.0, 2.0),
)
def test_z2_matches_plain_loop(x: list[float], var: float, ratio: float) -> None:
    """Z2 from a plain Python loop; Z2 <= 1 with equality exactly when there is no exception."""
    es = var * ratio
    res = bt.acerbi_szekely_z2(x, var, es, 0.025)
    total = 0.0
    hits = 0
    for xt in x:
        if xt + var < 0:
            total += xt / (len(x) * 0.025 * es)
            hits += 1
    assert res.z2 == pytest.approx(total + 1.0, rel=1e-12, abs=1e-12)
    assert res.n_exceptions == hits
    assert res.z2 <= 1.0
    assert (res.z2 == 1.0) == (hits == 0)


@pytest.mark.parametrize(("T", "p"), [(250, 0.01), (500, 0.01), (250, 0.005), (365, 0.025)])
def test_traffic_light_cdf_matches_exact_binomial_sum(T: int, p: float) -> None:
    """F(x) from math.comb sums; zones follow the 95% / 99.99% cut-offs."""
    acc = 0.0
    for x in range(0, 25):
        acc += math.comb(T, x) * p**x * (1 - p) ** (T - x)
        tl = bt.basel_traffic_light(x, T, p, plus_factors="normal")
        assert tl.cumulative_probability == pytest.approx(acc, rel=1e-9, abs=1e-12)
        expected = "green" if acc < 0.95 else ("yellow" if acc < 0.9999 else "red")
        assert tl.zone == expected


# ------------------------------------------------------------------------------------------
# properties
# ------------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=300))
def test_coverage_fraction_in_unit_interval(seq: list[bool]) -> None:
    """Coverage and exception rate are complementary fractions in [0, 1]."""
    c = bt.coverage(seq)
    assert c.n_obs == len(seq) and c.n_exceptions == sum(seq)
    assert 0.0 <= c.coverage <= 1.0 and 0.0 <= c.exception_rate <= 1.0
    assert c.coverage + c.exception_rate == pytest.approx(1.0)


@settings(max_examples=40, deadline=None)
@given(T=st.integers(20, 1000), p=st.floats(0.001, 0.1))
def test_basel_zone_monotone_in_exceptions(T: int, p: float) -> None:
    """Zones never move back (green → yellow → red) as exceptions rise; plus factors too."""
    order = {"green": 0, "yellow": 1, "red": 2}
    prev_zone, prev_plus = -1, -1.0
    for x in range(0, min(T, 40) + 1):
        tl = bt.basel_traffic_light(x, T, p, plus_factors="normal")
        assert order[tl.zone] >= prev_zone
        assert tl.plus_factor is not None and tl.plus_factor >= prev_plus - 1e-12
        prev_zone, prev_plus = order[tl.zone], tl.plus_factor


def test_bcbs_plus_factors_monotone() -> None:
    """BCBS multiplier rises 3.00 → 4.00 monotonically over 0..12 exceptions."""
    mult = [bt.basel_traffic_light(x).multiplier for x in range(13)]
    assert all(m is not None for m in mult)
    assert mult == sorted(mult)  # type: ignore[type-var]
    assert mult[0] == 3.0 and mult[-1] == 4.0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(1.0, 1e6), min_size=2, max_size=100),
    st.integers(1, 50),
)
def test_peak_to_trough_bounds_n_day_increase(margin: list[float], n: int) -> None:
    """max_t IM[t+n]/IM[t] <= max/min, and max/min >= 1."""
    p2t = bt.peak_to_trough(margin)
    assert p2t.ratio >= 1.0
    if n < len(margin):
        assert bt.n_day_increase(margin, n).ratio <= p2t.ratio * (1 + 1e-12)


def test_exception_flags_are_strict() -> None:
    """§0.1: an exception is loss > margin, strictly; equality is covered."""
    f = bt.exception_flags([1.0, 1.0, 1.0], [0.5, 1.0, 1.5])
    assert f.tolist() == [False, False, True]


# ------------------------------------------------------------------------------------------
# input errors
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: bt.kupiec_pof_from_counts(5, 4, 0.01), "n_exceptions"),
        (lambda: bt.kupiec_pof_from_counts(1, 0, 0.01), "n_obs"),
        (lambda: bt.kupiec_pof_from_counts(1, 10, 1.0), "p"),
        (lambda: bt.kupiec_pof([0, 2, 1], 0.01), "exceptions"),
        (lambda: bt.kupiec_pof([], 0.01), "exceptions"),
        (lambda: bt.christoffersen([1], 0.01), "exceptions"),
        (
            lambda: bt.christoffersen_from_counts(1, 1, 1, 1, n_obs=9, n_exceptions=2, p=0.01),
            "n_obs",
        ),
        (lambda: bt.basel_traffic_light(3, plus_factors="x"), "plus_factors"),  # type: ignore[arg-type]
        (lambda: bt.basel_traffic_light(3, green_below=0.99, red_from=0.95), "red_from"),
        (lambda: bt.exception_flags([1.0, 2.0], [1.0]), "realised_loss"),
        (lambda: bt.acerbi_szekely_z2([0.0, -1.0], 1.0, 0.0), "es"),
        (lambda: bt.acerbi_szekely_z2([0.0, -1.0], [1.0, 1.0, 1.0], 1.0), "var"),
        (lambda: bt.null_var_es(0.025, "t", 1.0), "df"),
        (lambda: bt.peak_to_trough([1.0, 0.0]), "margin"),
        (lambda: bt.n_day_increase([1.0, 2.0], 2), "horizon"),
        (lambda: bt.procyclicality([1.0, 2.0], ()), "horizons"),
        (lambda: bt.average_margin_share([1.0, 2.0], [1.0, 0.0]), "notional"),
        (lambda: bt.average_margin_share([1.0, 2.0], [1.0, 1.0, 1.0]), "notional"),
    ],
)
def test_bad_input_names_the_argument(call: object, match: str) -> None:
    """Bad input raises ValueError naming the argument."""
    with pytest.raises(ValueError, match=match):
        call()  # type: ignore[operator]
