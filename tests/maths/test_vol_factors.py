"""The implied-vol factor maths (docs/vol-factors.md): every number here is derived by hand or
by an independent formula in the test, not by the module's own code."""

from __future__ import annotations

import math

import numpy as np
import pytest

from margin_engine.maths import vol_factors as vf


def _expiry(atm: float, slope: float, years: float, fwd: float = 100.0):
    """Options of one expiry on an exactly linear smile σ = atm + slope·z, z = k/(atm√T)."""
    z = np.linspace(-1.5, 1.5, 13)
    k = z * atm * math.sqrt(years)
    return fwd * np.exp(k), np.full(z.size, fwd), np.full(z.size, years), atm + slope * z


def test_surface_factors_reads_atm_term_and_skew():
    # derived: two expiries, 14 and 60 days, ATM 0.50 / 0.40, slopes −0.04 / −0.02
    t1, t2 = 14 / 365, 60 / 365
    a = _expiry(0.50, -0.04, t1)
    b = _expiry(0.40, -0.02, t2)
    f = vf.surface_factors(*(np.concatenate([x, y]) for x, y in zip(a, b, strict=True)))
    # 30 d: total variance linear in T between the expiries
    w1, w2 = 0.5 ** 2 * t1, 0.4 ** 2 * t2
    t30 = 30 / 365
    w30 = w1 + (w2 - w1) * (t30 - t1) / (t2 - t1)
    assert f.atm[1] == pytest.approx(math.sqrt(w30 / t30), rel=1e-9)
    assert math.isnan(f.atm[0])                     # 7 d is before the first expiry
    assert math.isnan(f.atm[2])                     # 90 d after the last
    skew30 = -0.04 + (-0.02 + 0.04) * (t30 - t1) / (t2 - t1)
    assert f.skew30 == pytest.approx(skew30, rel=1e-6)


def test_fit_tenor_power_recovers_a_known_exponent():
    rng = np.random.default_rng(1)
    d30 = rng.normal(0, 0.02, 300)
    p = 0.37
    d = np.column_stack([d30 * (30 / t) ** p for t in vf.ATM_TENORS_DAYS])
    assert vf.fit_tenor_power(d) == pytest.approx(p, abs=1e-3)


def test_fit_skew_loading_through_the_origin():
    x = np.array([0.1, -0.05, 0.2, 0.0])
    y = -0.14 * x
    b, r2 = vf.fit_skew_loading(y, x)
    assert b == pytest.approx(-0.14) and r2 == pytest.approx(1.0)


def test_ewma_vol_and_the_proxy_changes():
    r = np.array([0.01, -0.02, 0.03, np.nan, 0.05])
    var = ((0.01 ** 2 + 0.02 ** 2 + 0.03 ** 2 + 0.05 ** 2) / 4)  # seed: mean square
    want = []
    for x in r:
        if np.isfinite(x):
            var = 0.94 * var + 0.06 * x * x
        want.append(math.sqrt(var * 365))
    np.testing.assert_allclose(vf.ewma_vol(r), want, rtol=1e-12)
    # index on the closes: missing for the first three closes, then 0.5, 0.55, 0.6
    lv = np.array([np.nan, np.nan, np.nan, 0.5, 0.55, 0.6])
    ch, prox = vf.vol_log_changes(r, lv)
    assert ch[4] == pytest.approx(math.log(0.6 / 0.55))        # from the index
    assert math.isnan(ch[3])                                    # no price return: no change
    assert ch[1] == pytest.approx(math.log(want[1] / want[0]))  # the proxy before the index
    assert math.isnan(ch[0])                                    # nothing before the first σ
    assert prox.tolist() == [False, True, True, False, False]
    with pytest.raises(ValueError, match="index_levels"):
        vf.vol_log_changes(r, lv[:-1])


def test_proxy_error_of_a_perfect_and_a_doubled_proxy():
    x = np.exp(np.cumsum(np.random.default_rng(3).normal(0, 0.05, 200)))
    e = vf.proxy_error(x * 1.1, x)
    assert e.corr == pytest.approx(1.0) and e.rmse == pytest.approx(0.0, abs=1e-12)
    assert e.level_mape == pytest.approx(0.1)
    e2 = vf.proxy_error(x ** 2, x)          # log-changes doubled
    assert e2.std_ratio == pytest.approx(2.0) and e2.up99_ratio == pytest.approx(2.0)
    assert vf.proxy_scale(x, 2 * x) == pytest.approx(2.0)


def test_scenario_vols_sticky_strike_moneyness_and_skew():
    x = np.array([-0.2, 0.0, 0.1])
    level = np.array([0.1, 0.0, -0.05])
    t = 60 / 365
    # sticky strike, no skew: own vol + level·(30/60)^0.5
    got = vf.scenario_vols(0.5, 90.0, 100.0, t, x, level, None, None, 0.5)
    np.testing.assert_allclose(got, 0.5 + level * math.sqrt(0.5))
    # sticky moneyness on a linear smile σ(k) = 0.5 − 0.3k: read at k − ln(1+x)
    ks = np.linspace(-1, 1, 21)
    smile = (ks, 0.5 - 0.3 * ks)
    k0 = math.log(90 / 100)
    got = vf.scenario_vols(0.5 - 0.3 * k0, 90.0, 100.0, t, x, level, None, smile, 0.0)
    np.testing.assert_allclose(got, 0.5 - 0.3 * (k0 - np.log1p(x)) + level, rtol=1e-12)
    # skew move: + skew·clip(z, ±3), z = ln(K/F') / (σ√T)
    skew = np.array([-0.02, 0.01, 0.0])
    got = vf.scenario_vols(0.5, 90.0, 100.0, t, x, level, skew, None, 0.0)
    z = np.clip(np.log(90 / (100 * (1 + x))) / (0.5 * math.sqrt(t)), -3, 3)
    np.testing.assert_allclose(got, 0.5 + level + skew * z, rtol=1e-12)
