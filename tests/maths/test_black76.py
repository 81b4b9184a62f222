"""Black-76 reference (scalar) and fast path (NumPy, numba): vectors, cross-checks, properties.

Independent checks used here:
- TV-SPAN-3 (research/ccp-standards.md, synthetic vector): Black-76, F = 100, sigma = 0.30,
  T = 30/365, r = 0: call 105 = 1.56644, put 95 = 1.42160 per unit of price.
- numerical integration of the payoff against the lognormal density (scipy.integrate.quad),
  which shares no code with the closed form;
- finite differences for the Greeks;
- the Deribit "Delta Total" rule (Deribit FAQ, quoted via greekslive.medium.com and
  cryptochase.ai): a bought call of delta 0.50 costing 0.10 BTC adds 0.40 to Delta Total; a
  strike-0 call has net coin delta 0.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy import integrate

from margin_engine.maths import black76 as ref
from margin_engine.maths import black76_fast as fast

# --------------------------------------------------------------------------------------------
# helpers


def random_cases(n: int, seed: int) -> dict[str, np.ndarray]:
    """Random cases across deep ITM/OTM, hours to 3 years, vols 0.05..3, some rates."""
    rng = np.random.default_rng(seed)
    F = 10.0 ** rng.uniform(0.0, 5.0, n)
    K = F * np.exp(rng.uniform(-2.5, 2.5, n))
    T = 10.0 ** rng.uniform(math.log10(1.0 / 8760.0), math.log10(3.0), n)
    sigma = rng.uniform(0.05, 3.0, n)
    is_call = rng.random(n) < 0.5
    r = np.where(rng.random(n) < 0.5, 0.0, rng.uniform(-0.02, 0.1, n))
    return {"F": F, "K": K, "T": T, "sigma": sigma, "is_call": is_call, "r": r}


def ref_prices(c: dict[str, np.ndarray]) -> np.ndarray:
    return np.array(
        [
            ref.price_usd(float(f), float(k), float(t), float(s), bool(ic), float(rr))
            for f, k, t, s, ic, rr in zip(
                c["F"], c["K"], c["T"], c["sigma"], c["is_call"], c["r"], strict=True
            )
        ]
    )


def rel_err(a: np.ndarray, b: np.ndarray, floor: np.ndarray) -> np.ndarray:
    return np.abs(a - b) / np.maximum(np.abs(b), floor)


def quad_price(F: float, K: float, T: float, sigma: float, is_call: bool, r: float) -> float:
    """E[payoff(F_T)]·DF with ln F_T ~ N(ln F − s²/2, s²), by numerical integration over z."""
    s = sigma * math.sqrt(T)

    def integrand(z: float) -> float:
        fT = F * math.exp(-0.5 * s * s + s * z)
        pay = max(fT - K, 0.0) if is_call else max(K - fT, 0.0)
        return pay * math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)

    z_k = (math.log(K / F) + 0.5 * s * s) / s  # kink of the payoff
    total = 0.0
    for a, b in ((-40.0, z_k), (z_k, 40.0)):
        val, _ = integrate.quad(integrand, a, b, epsabs=0.0, epsrel=1e-13, limit=200)
        total += val
    return math.exp(-r * T) * total


# --------------------------------------------------------------------------------------------
# published / independent vectors


def test_tv_span_3_black76_values() -> None:
    """TV-SPAN-3 (ccp-standards.md): call 105 = 1.56644, put 95 = 1.42160 (F=100, 30/365, 30%)."""
    T = 30.0 / 365.0
    assert ref.price_usd(100.0, 105.0, T, 0.30, True) == pytest.approx(1.56644, abs=5e-6)
    assert ref.price_usd(100.0, 95.0, T, 0.30, False) == pytest.approx(1.42160, abs=5e-6)
    v = fast.price_usd(100.0, [105.0, 95.0], T, 0.30, np.array([True, False]))
    np.testing.assert_allclose(v, [1.56644, 1.42160], atol=5e-6)
    v = fast.price_usd_numba(100.0, [105.0, 95.0], T, 0.30, np.array([True, False]))
    np.testing.assert_allclose(v, [1.56644, 1.42160], atol=5e-6)


@pytest.mark.parametrize(
    ("F", "K", "T", "sigma", "is_call", "r"),
    [
        (100.0, 105.0, 30 / 365, 0.30, True, 0.0),
        (100.0, 95.0, 30 / 365, 0.30, False, 0.0),
        (73500.0, 80000.0, 0.14, 0.55, True, 0.0),
        (73500.0, 60000.0, 0.5, 0.8, False, 0.05),
        (2100.0, 1500.0, 2.0, 1.2, True, 0.03),
        (1.0, 3.0, 1.0 / 365, 2.5, True, 0.0),
    ],
)
def test_closed_form_matches_numerical_integration(
    F: float, K: float, T: float, sigma: float, is_call: bool, r: float
) -> None:
    """The closed form equals the discounted expected payoff under the lognormal forward."""
    expected = quad_price(F, K, T, sigma, is_call, r)
    assert ref.price_usd(F, K, T, sigma, is_call, r) == pytest.approx(expected, rel=1e-9)


# --------------------------------------------------------------------------------------------
# reference vs fast


def test_numpy_and_numba_match_reference_on_random_cases() -> None:
    c = random_cases(20_000, seed=20260204)
    expected = ref_prices(c)
    floor = 1e-12 * c["F"]
    got_np = fast.price_usd(c["F"], c["K"], c["T"], c["sigma"], c["is_call"], c["r"])
    got_nb = fast.price_usd_numba(c["F"], c["K"], c["T"], c["sigma"], c["is_call"], c["r"])
    assert got_np.shape == expected.shape
    assert np.all(np.isfinite(got_np))
    assert rel_err(got_np, expected, floor).max() <= 1e-12
    assert rel_err(got_nb, expected, floor).max() <= 1e-12
    coin_np = fast.price_coin(c["F"], c["K"], c["T"], c["sigma"], c["is_call"], c["r"])
    coin_nb = fast.price_coin_numba(c["F"], c["K"], c["T"], c["sigma"], c["is_call"], c["r"])
    assert rel_err(coin_np, expected / c["F"], np.full_like(floor, 1e-12)).max() <= 1e-12
    assert rel_err(coin_nb, expected / c["F"], np.full_like(floor, 1e-12)).max() <= 1e-12


def test_vectorised_greeks_match_reference() -> None:
    c = random_cases(3_000, seed=7)
    g = fast.greeks_usd(c["F"], c["K"], c["T"], c["sigma"], c["is_call"], c["r"])
    gc = fast.greeks_coin(c["F"], c["K"], c["T"], c["sigma"], c["is_call"], c["r"])
    for i in range(len(c["F"])):
        args = (
            float(c["F"][i]),
            float(c["K"][i]),
            float(c["T"][i]),
            float(c["sigma"][i]),
            bool(c["is_call"][i]),
            float(c["r"][i]),
        )
        e = ref.greeks_usd(*args)
        ec = ref.greeks_coin(*args)
        F = args[0]
        for name, scale in (("price", F), ("delta", 1.0), ("vega", F), ("theta", F)):
            assert getattr(g, name)[i] == pytest.approx(
                getattr(e, name), rel=1e-12, abs=1e-13 * scale
            ), name
        assert g.gamma[i] == pytest.approx(e.gamma, rel=1e-11, abs=1e-300)
        for name in ("price", "coin_delta", "delta_usd", "vega", "theta"):
            assert getattr(gc, name)[i] == pytest.approx(getattr(ec, name), rel=1e-12, abs=1e-13)
        assert gc.delta[i] == pytest.approx(ec.delta, rel=1e-11, abs=1e-13 / F)
        assert gc.gamma[i] == pytest.approx(ec.gamma, rel=1e-10, abs=1e-13 / F**2)


def test_broadcasting_shapes_and_scalars() -> None:
    F = np.array([[90.0], [100.0], [110.0]])
    K = np.array([95.0, 100.0, 105.0, 110.0])
    out = fast.price_usd(F, K, 0.5, 0.6, True)
    assert out.shape == (3, 4)
    for i in range(3):
        for j in range(4):
            assert out[i, j] == pytest.approx(
                ref.price_usd(float(F[i, 0]), float(K[j]), 0.5, 0.6, True), rel=1e-13
            )
    scalar = fast.price_usd(100.0, 100.0, 1.0, 0.5, True)
    assert scalar.shape == ()
    assert float(scalar) == pytest.approx(ref.price_usd(100.0, 100.0, 1.0, 0.5, True), rel=1e-14)
    one = fast.price_usd_numba(100.0, 100.0, 1.0, 0.5, True)
    assert one.shape == (1,)
    assert float(one[0]) == pytest.approx(float(scalar), rel=1e-14)


# --------------------------------------------------------------------------------------------
# edge cases (reference and both fast paths)


def _all_paths(F: float, K: float, T: float, sigma: float, is_call: bool, r: float = 0.0):
    return (
        ref.price_usd(F, K, T, sigma, is_call, r),
        float(fast.price_usd(F, K, T, sigma, is_call, r)),
        float(fast.price_usd_numba(F, K, T, sigma, is_call, r)[0]),
    )


@pytest.mark.parametrize("T", [0.0, -0.5])
def test_expired_option_is_intrinsic_with_step_delta(T: float) -> None:
    for F, K, call, intrinsic, delta in [
        (110.0, 100.0, True, 10.0, 1.0),
        (90.0, 100.0, True, 0.0, 0.0),
        (90.0, 100.0, False, 10.0, -1.0),
        (110.0, 100.0, False, 0.0, 0.0),
        (100.0, 100.0, True, 0.0, 0.5),
        (100.0, 100.0, False, 0.0, -0.5),
    ]:
        for v in _all_paths(F, K, T, 0.5, call, r=0.05):
            assert v == intrinsic  # no discounting after expiry
        g = ref.greeks_usd(F, K, T, 0.5, call, 0.05)
        ga = fast.greeks_usd(F, K, T, 0.5, call, 0.05)
        assert (g.delta, g.gamma, g.vega, g.theta) == (delta, 0.0, 0.0, 0.0)
        assert (float(ga.delta), float(ga.gamma), float(ga.vega), float(ga.theta)) == (
            delta,
            0.0,
            0.0,
            0.0,
        )


@pytest.mark.parametrize("sigma", [0.0, -0.2])
def test_zero_vol_is_discounted_intrinsic(sigma: float) -> None:
    T, r = 0.75, 0.04
    df = math.exp(-r * T)
    for F, K, call in [(120.0, 100.0, True), (80.0, 100.0, False), (80.0, 100.0, True)]:
        intrinsic = max(F - K, 0.0) if call else max(K - F, 0.0)
        for v in _all_paths(F, K, T, sigma, call, r):
            assert v == pytest.approx(df * intrinsic, rel=1e-15, abs=0.0)
        g = ref.greeks_usd(F, K, T, sigma, call, r)
        step = (1.0 if F > K else 0.0) if call else (-1.0 if F < K else 0.0)
        assert g.delta == pytest.approx(df * step)
        assert (g.gamma, g.vega) == (0.0, 0.0)
        assert g.theta == pytest.approx(r * g.price)


def test_limits_tiny_vol_and_tiny_time_approach_intrinsic() -> None:
    """Continuity: sigma -> 0 and T -> 0 approach the edge-case values."""
    for call, F, K in [(True, 120.0, 100.0), (False, 80.0, 100.0), (True, 80.0, 100.0)]:
        intrinsic = max(F - K, 0.0) if call else max(K - F, 0.0)
        assert ref.price_usd(F, K, 1.0, 1e-6, call) == pytest.approx(intrinsic, abs=1e-10)
        assert ref.price_usd(F, K, 1e-12, 0.5, call) == pytest.approx(intrinsic, abs=1e-10)


def test_zero_strike() -> None:
    """K = 0: a call is the forward (DF·F), a put is worthless; Deribit: coin delta of a
    strike-0 call is 0 (it is worth exactly 1 coin whatever F does)."""
    T, r = 0.5, 0.02
    for v in _all_paths(100.0, 0.0, T, 0.6, True, r):
        assert v == pytest.approx(100.0 * math.exp(-r * T), rel=1e-15)
    for v in _all_paths(100.0, 0.0, T, 0.6, False, r):
        assert v == 0.0
    gc = ref.greeks_coin(100.0, 0.0, T, 0.6, True)
    assert gc.price == pytest.approx(1.0, rel=1e-15)
    assert gc.coin_delta == pytest.approx(0.0, abs=1e-15)
    assert gc.delta_usd == pytest.approx(1.0, rel=1e-15)


@pytest.mark.parametrize(
    ("F", "K", "T", "sigma"),
    [
        (1e5, 1.0, 1.0, 0.05),  # deep ITM call / deep OTM put
        (1.0, 1e5, 1.0, 0.05),  # deep OTM call
        (1e-300, 1e300, 1.0, 0.5),  # F/K underflows
        (1e300, 1e-300, 1.0, 0.5),  # F/K overflows
        (100.0, 100.0, 1e-30, 1e-30),  # s underflows towards 0
        (100.0, 105.0, 3.0, 1e200),  # huge vol
        (100.0, 105.0, 1e10, 1e300),  # sigma·sqrt(T) overflows
    ],
)
def test_extremes_are_finite(F: float, K: float, T: float, sigma: float) -> None:
    for call in (True, False):
        vals = _all_paths(F, K, T, sigma, call)
        assert all(math.isfinite(v) for v in vals)
        assert vals[1] == pytest.approx(vals[0], rel=1e-12, abs=1e-300)
        assert vals[2] == pytest.approx(vals[0], rel=1e-12, abs=1e-300)
        g = ref.greeks_usd(F, K, T, sigma, call)
        ga = fast.greeks_usd(F, K, T, sigma, call)
        for name in ("price", "delta", "gamma", "vega", "theta"):
            assert math.isfinite(getattr(g, name)), name
            assert math.isfinite(float(getattr(ga, name))), name


def test_huge_vol_limits() -> None:
    """sigma·√T -> ∞: call -> DF·F, put -> DF·K, delta -> DF (call) / 0 (put), vega -> 0."""
    F, K, T, r = 100.0, 105.0, 1.0, 0.03
    df = math.exp(-r * T)
    for sigma in (80.0, 1e3, 1e200):
        c, cn, cb = _all_paths(F, K, T, sigma, True, r)
        p, _, _ = _all_paths(F, K, T, sigma, False, r)
        assert c == pytest.approx(df * F, rel=1e-14)
        assert cn == pytest.approx(df * F, rel=1e-14)
        assert cb == pytest.approx(df * F, rel=1e-14)
        assert p == pytest.approx(df * K, rel=1e-14)
        g = ref.greeks_usd(F, K, T, sigma, True, r)
        assert g.delta == pytest.approx(df, rel=1e-14)
        assert g.vega == pytest.approx(0.0, abs=1e-12)


# --------------------------------------------------------------------------------------------
# input validation


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"F": math.nan}, "F: not a finite number"),
        ({"F": -1.0}, "F: forward must be > 0"),
        ({"F": 0.0}, "F: forward must be > 0"),
        ({"K": math.nan}, "K: not a finite number"),
        ({"K": -5.0}, "K: strike must be >= 0"),
        ({"T": math.inf}, "T: not a finite number"),
        ({"sigma": math.nan}, "sigma: not a finite number"),
        ({"r": math.nan}, "r: not a finite number"),
    ],
)
def test_bad_scalar_input_raises(kwargs: dict[str, float], match: str) -> None:
    args: dict[str, float] = {"F": 100.0, "K": 100.0, "T": 1.0, "sigma": 0.5, "r": 0.0}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        ref.price_usd(args["F"], args["K"], args["T"], args["sigma"], True, args["r"])
    with pytest.raises(ValueError, match=match):
        ref.greeks_coin(args["F"], args["K"], args["T"], args["sigma"], True, args["r"])
    with pytest.raises(ValueError, match=match):
        fast.price_usd(args["F"], args["K"], args["T"], args["sigma"], True, args["r"])


def test_bad_array_input_names_argument_and_index() -> None:
    F = np.array([100.0, 100.0, -3.0, 100.0])
    with pytest.raises(ValueError, match=r"^F\[2\]: forward must be > 0"):
        fast.price_usd(F, 100.0, 1.0, 0.5, True)
    with pytest.raises(ValueError, match=r"^F\[2\]: forward must be > 0"):
        fast.price_usd_numba(F, 100.0, 1.0, 0.5, True)
    K = np.array([100.0, np.nan])
    with pytest.raises(ValueError, match=r"^K\[1\]: not a finite number"):
        fast.greeks_usd(100.0, K, 1.0, 0.5, True)
    with pytest.raises(ValueError, match=r"^K\[1\]: not a finite number"):
        fast.price_coin_numba(100.0, K, 1.0, 0.5, True)
    with pytest.raises(ValueError, match=r"^sigma\[0, 1\]: not a finite number"):
        fast.price_usd(100.0, 100.0, 1.0, np.array([[0.5, np.inf]]), True)
    with pytest.raises(ValueError, match="is_call"):
        fast.price_usd(100.0, 100.0, 1.0, 0.5, np.array(["call"]))
    with pytest.raises(ValueError, match="do not"):
        fast.price_usd(np.ones(3), np.ones(2), 1.0, 0.5, True)
    with pytest.raises(ValueError, match="1-D"):
        fast.price_usd_numba(np.ones((2, 2)), 1.0, 1.0, 0.5, True)


# --------------------------------------------------------------------------------------------
# Greeks vs finite differences


def _fd_greeks(F: float, K: float, T: float, sigma: float, call: bool, r: float):
    p = ref.price_usd
    hF = 1e-4 * F
    hs = 1e-5
    hT = 1e-6 * T
    delta = (p(F + hF, K, T, sigma, call, r) - p(F - hF, K, T, sigma, call, r)) / (2 * hF)
    gamma = (
        p(F + hF, K, T, sigma, call, r)
        - 2 * p(F, K, T, sigma, call, r)
        + p(F - hF, K, T, sigma, call, r)
    ) / hF**2
    vega = (p(F, K, T, sigma + hs, call, r) - p(F, K, T, sigma - hs, call, r)) / (2 * hs)
    theta = -(p(F, K, T + hT, sigma, call, r) - p(F, K, T - hT, sigma, call, r)) / (2 * hT)
    return delta, gamma, vega, theta


def test_greeks_match_finite_differences() -> None:
    rng = np.random.default_rng(11)
    for _ in range(300):
        F = float(10.0 ** rng.uniform(1.0, 5.0))
        K = float(F * math.exp(rng.uniform(-0.6, 0.6)))
        T = float(rng.uniform(0.02, 3.0))
        sigma = float(rng.uniform(0.1, 1.5))
        call = bool(rng.random() < 0.5)
        r = float(rng.choice([0.0, 0.05]))
        g = ref.greeks_usd(F, K, T, sigma, call, r)
        d, gm, v, th = _fd_greeks(F, K, T, sigma, call, r)
        assert g.delta == pytest.approx(d, rel=1e-6, abs=1e-8)
        assert g.gamma == pytest.approx(gm, rel=2e-3, abs=1e-7 / F)
        assert g.vega == pytest.approx(v, rel=1e-6, abs=1e-8 * F)
        assert g.theta == pytest.approx(th, rel=1e-5, abs=1e-7 * F)


def test_coin_greeks_match_finite_differences_of_coin_price() -> None:
    rng = np.random.default_rng(12)
    pc = ref.price_coin
    for _ in range(200):
        F = float(rng.uniform(1000.0, 100000.0))
        K = float(F * math.exp(rng.uniform(-0.5, 0.5)))
        T = float(rng.uniform(0.02, 2.0))
        sigma = float(rng.uniform(0.2, 1.5))
        call = bool(rng.random() < 0.5)
        g = ref.greeks_coin(F, K, T, sigma, call)
        h = 1e-4 * F
        up, mid, dn = (
            pc(F + h, K, T, sigma, call),
            pc(F, K, T, sigma, call),
            pc(F - h, K, T, sigma, call),
        )
        assert g.price == pytest.approx(ref.price_usd(F, K, T, sigma, call) / F, rel=1e-15)
        assert g.delta == pytest.approx((up - dn) / (2 * h), rel=1e-6, abs=1e-12 / F)
        assert g.gamma == pytest.approx((up - 2 * mid + dn) / h**2, rel=5e-3, abs=1e-9 / F**2)
        hs = 1e-5
        fv = (pc(F, K, T, sigma + hs, call) - pc(F, K, T, sigma - hs, call)) / (2 * hs)
        assert g.vega == pytest.approx(fv, rel=1e-6, abs=1e-10)
        assert g.coin_delta == pytest.approx(F * g.delta, rel=1e-12, abs=1e-15)
        assert g.coin_delta == pytest.approx(g.delta_usd - g.price, rel=1e-12, abs=1e-15)


def test_coin_delta_is_the_inverse_future_hedge_ratio() -> None:
    """Deribit Delta Total rule: long option + short `coin_delta` coins of inverse future has no
    first-order coin P&L. An inverse future of coin notional N gains N·(1 − F/F') coin."""
    F, K, T, sigma = 73500.0, 80000.0, 0.14, 0.55
    g = ref.greeks_coin(F, K, T, sigma, True)
    for rel_move in (1e-4, -1e-4):
        F2 = F * (1.0 + rel_move)
        option_pnl = ref.price_coin(F2, K, T, sigma, True) - g.price
        future_pnl = g.coin_delta * (1.0 - F / F2)
        unhedged = abs(option_pnl)
        assert abs(option_pnl - future_pnl) < 1e-3 * unhedged  # residual is second order


def test_deribit_faq_delta_total_example() -> None:
    """Deribit FAQ: a call of delta 0.50 bought for 0.10 BTC adds 0.40 to Delta Total.

    Build that option: d1 = 0 (delta 0.50 at r = 0) needs K = F·exp(s²/2); its coin price is
    then 0.5 − exp(s²/2)·N(−s), which we set to 0.10 by choosing s with a root finder.
    """
    from scipy.optimize import brentq
    from scipy.stats import norm

    s = brentq(lambda x: 0.5 - math.exp(0.5 * x * x) * norm.cdf(-x) - 0.10, 1e-6, 5.0, xtol=1e-15)
    F, T = 73500.0, 0.25
    K = F * math.exp(0.5 * s * s)
    g = ref.greeks_coin(F, K, T, s / math.sqrt(T), True)
    assert g.delta_usd == pytest.approx(0.50, abs=1e-12)
    assert g.price == pytest.approx(0.10, abs=1e-12)
    assert g.coin_delta == pytest.approx(0.40, abs=1e-12)
    ga = fast.greeks_coin(F, K, T, s / math.sqrt(T), True)
    assert float(ga.coin_delta) == pytest.approx(0.40, abs=1e-12)


# --------------------------------------------------------------------------------------------
# identities and hypothesis properties


def test_put_call_parity_reference_and_fast() -> None:
    c = random_cases(5_000, seed=3)
    df = np.exp(-c["r"] * c["T"])
    calls = fast.price_usd(c["F"], c["K"], c["T"], c["sigma"], True, c["r"])
    puts = fast.price_usd(c["F"], c["K"], c["T"], c["sigma"], False, c["r"])
    scale = np.maximum(c["F"], c["K"])
    assert np.max(np.abs(calls - puts - df * (c["F"] - c["K"])) / scale) < 1e-14
    calls_nb = fast.price_usd_numba(c["F"], c["K"], c["T"], c["sigma"], True, c["r"])
    puts_nb = fast.price_usd_numba(c["F"], c["K"], c["T"], c["sigma"], False, c["r"])
    assert np.max(np.abs(calls_nb - puts_nb - df * (c["F"] - c["K"])) / scale) < 1e-14
    for i in range(0, 5_000, 50):
        a = (float(c["F"][i]), float(c["K"][i]), float(c["T"][i]), float(c["sigma"][i]))
        rr = float(c["r"][i])
        lhs = ref.price_usd(*a, True, rr) - ref.price_usd(*a, False, rr)
        assert lhs == pytest.approx(df[i] * (a[0] - a[1]), abs=1e-14 * scale[i])
        gc, gp = ref.greeks_usd(*a, True, rr), ref.greeks_usd(*a, False, rr)
        assert gc.delta - gp.delta == pytest.approx(df[i], abs=1e-14)
        assert gc.gamma == pytest.approx(gp.gamma, rel=1e-14)


def test_inverse_price_identity_and_expiry_payoff() -> None:
    """Coin price = USD price / F; at expiry the coin payoff is max(ω(F − K), 0)/F."""
    c = random_cases(2_000, seed=5)
    usd = fast.price_usd(c["F"], c["K"], c["T"], c["sigma"], c["is_call"], c["r"])
    coin = fast.price_coin(c["F"], c["K"], c["T"], c["sigma"], c["is_call"], c["r"])
    np.testing.assert_allclose(coin * c["F"], usd, rtol=1e-15, atol=0.0)
    w = np.where(c["is_call"], 1.0, -1.0)
    at_expiry = fast.price_coin(c["F"], c["K"], 0.0, c["sigma"], c["is_call"])
    np.testing.assert_array_equal(at_expiry, np.maximum(w * (c["F"] - c["K"]), 0.0) / c["F"])
    # a call's coin value never exceeds 1 coin (the payoff (F−K)/F < 1)
    assert np.all(fast.price_coin(c["F"], c["K"], c["T"], c["sigma"], True) <= 1.0)


positive = st.floats(min_value=1e-2, max_value=1e6, allow_nan=False, allow_infinity=False)
vols = st.floats(min_value=0.01, max_value=5.0)
times = st.floats(min_value=1e-4, max_value=5.0)
rates = st.floats(min_value=-0.05, max_value=0.2)


@settings(max_examples=300, deadline=None)
@given(F=positive, K=positive, T=times, sigma=vols, r=rates)
@example(F=142373.0, K=0.01, T=0.01, sigma=4.31, r=0.0)  # a put that rounded to -2.7e-321
def test_property_bounds(F: float, K: float, T: float, sigma: float, r: float) -> None:
    """DF·intrinsic <= price <= DF·F (call) / DF·K (put), up to rounding."""
    df = math.exp(-r * T)
    tol = 1e-13 * max(F, K)
    c = ref.price_usd(F, K, T, sigma, True, r)
    p = ref.price_usd(F, K, T, sigma, False, r)
    assert df * max(F - K, 0.0) - tol <= c <= df * F + tol
    assert df * max(K - F, 0.0) - tol <= p <= df * K + tol
    assert c >= 0.0
    assert p >= 0.0


@settings(max_examples=300, deadline=None)
@given(F=positive, K=positive, T=times, sigma=vols, bump=st.floats(1e-6, 0.5))
def test_property_monotone_in_forward(
    F: float, K: float, T: float, sigma: float, bump: float
) -> None:
    F2 = F * (1.0 + bump)
    tol = 1e-14 * max(F2, K)
    assert ref.price_usd(F2, K, T, sigma, True) >= ref.price_usd(F, K, T, sigma, True) - tol
    assert ref.price_usd(F2, K, T, sigma, False) <= ref.price_usd(F, K, T, sigma, False) + tol
    assert ref.greeks_usd(F, K, T, sigma, True).delta >= 0.0
    assert ref.greeks_usd(F, K, T, sigma, False).delta <= 0.0


@settings(max_examples=300, deadline=None)
@given(F=positive, K=positive, T=times, sigma=vols, bump=st.floats(1e-6, 1.0), call=st.booleans())
def test_property_monotone_in_sigma(
    F: float, K: float, T: float, sigma: float, bump: float, call: bool
) -> None:
    tol = 1e-14 * max(F, K)
    lo = ref.price_usd(F, K, T, sigma, call)
    hi = ref.price_usd(F, K, T, sigma + bump, call)
    assert hi >= lo - tol
    g = ref.greeks_usd(F, K, T, sigma, call)
    assert g.vega >= 0.0
    assert g.gamma >= 0.0
    assert g.theta <= 0.0  # r = 0: value decays with time at a fixed forward


@settings(max_examples=200, deadline=None)
@given(F=positive, K=positive, T=times, sigma=vols, r=rates, call=st.booleans())
def test_property_fast_equals_reference(
    F: float, K: float, T: float, sigma: float, r: float, call: bool
) -> None:
    e = ref.price_usd(F, K, T, sigma, call, r)
    # relative 1e-12 of the price, plus the rounding of F·N(d1) − K·N(d2) itself: a deep
    # out-of-the-money price cancels terms of size F and K, so a few ulps of max(F, K) remain
    # (a 3.6e-15 difference on such a price failed the purely relative bound).
    tol = 1e-12 * e + 1e-14 * max(F, K)
    assert abs(float(fast.price_usd(F, K, T, sigma, call, r)) - e) <= tol
    nb = float(fast.price_usd_numba(F, K, T, sigma, call, r)[0])
    assert abs(nb - e) <= tol
