"""Scenario generators (issue 4: grid, historical, filtered historical, Monte Carlo, stresses)."""

from __future__ import annotations

import numpy as np
import pytest

from margin_engine.maths import scenarios, volatility
from margin_engine.maths.stress_library import get_stress


def _returns(n=400, seed=1):
    rng = np.random.default_rng(seed)
    cov = np.array([[0.03**2, 0.8 * 0.03 * 0.04], [0.8 * 0.03 * 0.04, 0.04**2]])
    r = rng.multivariate_normal([0, 0], cov, size=n)
    return r, [f"d{i}" for i in range(n)]


def test_grid_joint_and_one_at_a_time():
    g = scenarios.grid(("BTC", "ETH"), 0.16, 5, (-0.1, 0.0, 0.1))
    assert g.n == 15 and np.allclose(g.price_moves[:5, 0], [-0.16, -0.08, 0, 0.08, 0.16])
    assert (g.price_moves[:, 0] == g.price_moves[:, 1]).all()
    single = scenarios.grid(("BTC", "ETH"), 0.16, 5, (0.0,), joint=False)
    assert single.n == 10 and (single.price_moves[:5, 1] == 0).all()


def test_historical_h_day_moves_compound_daily_returns():
    r, labels = _returns()
    s = scenarios.historical(("BTC", "ETH"), r, labels, horizon_days=3)
    # plain reference: P(t)/P(t-3) - 1 from the daily log returns
    expected = np.array([np.expm1(r[i - 2:i + 1].sum(axis=0)) for i in range(2, len(r))])
    np.testing.assert_allclose(s.price_moves, expected, rtol=1e-12, atol=1e-15)
    assert s.labels[0] == "d2" and s.labels[-1] == labels[-1]
    non = scenarios.historical(("BTC", "ETH"), r, labels, horizon_days=3, overlapping=False)
    assert non.labels[-1] == labels[-1] and non.n == len(r) // 3


def test_historical_drops_incomplete_rows():
    r, labels = _returns(100)
    r[10, 1] = np.nan
    s = scenarios.historical(("BTC", "ETH"), r, labels)
    assert s.n == 99 and "d10" not in s.labels


def test_filtered_historical_revolatilises_by_todays_sigma():
    r, labels = _returns()
    s = scenarios.filtered_historical(("BTC", "ETH"), r, labels, decay=0.94)
    var = volatility.ewma_variance(r, 0.94)
    expected = np.expm1(r / np.sqrt(var[:-1]) * np.sqrt(var[-1]))
    np.testing.assert_allclose(s.price_moves, expected, rtol=1e-12)
    floored = scenarios.filtered_historical(("BTC", "ETH"), r, labels, vol_floor_ratio=2.0)
    assert np.abs(floored.price_moves).max() > np.abs(s.price_moves).max()


def test_monte_carlo_is_seeded_and_correlated():
    r, _ = _returns(1000)
    a = scenarios.monte_carlo(("BTC", "ETH"), r, n_paths=20000, seed=3)
    b = scenarios.monte_carlo(("BTC", "ETH"), r, n_paths=20000, seed=3)
    c = scenarios.monte_carlo(("BTC", "ETH"), r, n_paths=20000, seed=4)
    assert np.array_equal(a.price_moves, b.price_moves)
    assert not np.array_equal(a.price_moves, c.price_moves)
    rho = np.corrcoef(np.log1p(a.price_moves), rowvar=False)[0, 1]
    assert 0.7 < rho < 0.9  # the inputs' correlation is 0.8
    h4 = scenarios.monte_carlo(("BTC", "ETH"), r, n_paths=20000, seed=3, horizon_days=4)
    np.testing.assert_allclose(np.log1p(h4.price_moves), 2 * np.log1p(a.price_moves),
                               rtol=1e-12)


def test_vol_response_raises_vol_on_falls():
    s = scenarios.grid(("BTC",), 0.2, 3, (0.0,))
    v = scenarios.vol_response(s.price_moves, 1.0)
    assert v[0, 0] > 0 > v[2, 0] and v[1, 0] == 0


def test_from_stresses_uses_measured_moves():
    ftx = get_stress("ftx-2022-11-09")
    s = scenarios.from_stresses(("BTC",), [ftx])
    assert s.price_moves[0, 0] == ftx.price_move("BTC") < 0


def test_concat_gives_the_stressed_share():
    r, labels = _returns()
    base = scenarios.historical(("BTC", "ETH"), r, labels)
    stress = scenarios.grid(("BTC", "ETH"), 0.3, 2, (0.2,))
    both = base.concat(stress, 0.25)
    w = both.weights / both.weights.sum()
    assert np.isclose(w[base.n:].sum(), 0.25) and both.n == base.n + 2


@pytest.mark.parametrize("bad", [
    dict(price_moves=np.array([[-1.0]])), dict(price_moves=np.array([[np.nan]])),
    dict(weights=np.array([-1.0])), dict(weights=np.array([0.0]))])
def test_invalid_sets_are_rejected(bad):
    args = dict(underlyings=("BTC",), price_moves=np.array([[0.1]]),
                vol_shifts=np.array([[0.0]]), horizon_days=1.0, weights=np.array([1.0]),
                labels=("x",), kind="t") | bad
    with pytest.raises(ValueError):
        scenarios.ScenarioSet(**args)


@pytest.mark.parametrize("dof", [2.1, 4.0, 7.3, 100.0])
def test_t_cdf_kernel_equals_scipy_stats_to_the_bit(dof):
    """``monte_carlo``'s empirical marginals call ``scipy.special.stdtr`` (not importing
    ``scipy.stats``, a second of start-up): the same numbers as ``stats.t.cdf``."""
    from scipy import stats
    from scipy.special import stdtr

    rng = np.random.default_rng(int(dof * 10))
    t = rng.standard_normal((2000, 3)) / np.sqrt(rng.chisquare(dof, size=(2000, 1)) / dof)
    t[0] = [np.inf, -np.inf, 0.0]
    t[1] = [1e300, -1e300, -0.0]
    assert np.array_equal(stdtr(dof, t), stats.t.cdf(t, dof))
