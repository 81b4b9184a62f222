"""Implied volatility: round trips through the reference pricer, an independent root finder,
no-arbitrage bound errors, and hypothesis properties."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq

from margin_engine.maths import black76 as ref
from margin_engine.maths.implied_vol import implied_vol, implied_vol_array, implied_vol_coin


def _cases(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    F = 10.0 ** rng.uniform(0.0, 5.0, n)
    K = F * np.exp(rng.uniform(-2.0, 2.0, n))
    T = 10.0 ** rng.uniform(math.log10(1.0 / 8760.0), math.log10(3.0), n)
    sigma = rng.uniform(0.05, 3.0, n)
    is_call = rng.random(n) < 0.5
    r = np.where(rng.random(n) < 0.5, 0.0, rng.uniform(-0.02, 0.1, n))
    return {"F": F, "K": K, "T": T, "sigma": sigma, "is_call": is_call, "r": r}


def _args(c: dict[str, np.ndarray], i: int) -> tuple[float, float, float, float, bool, float]:
    return (
        float(c["F"][i]),
        float(c["K"][i]),
        float(c["T"][i]),
        float(c["sigma"][i]),
        bool(c["is_call"][i]),
        float(c["r"][i]),
    )


def test_round_trip_scalar_and_array() -> None:
    """price -> implied vol -> price reproduces the price; the vol itself is recovered wherever
    the price is sensitive to it (vega·sigma >= 1e-6·price and the time value is material)."""
    n = 3_000
    c = _cases(n, seed=2026)
    prices = np.array([ref.price_usd(*_args(c, i)) for i in range(n)])
    vols = implied_vol_array(prices, c["F"], c["K"], c["T"], c["is_call"], c["r"])
    assert vols.shape == (n,)
    assert np.all(np.isfinite(vols))
    recovered = 0
    for i in range(n):
        F, K, T, sigma, call, r = _args(c, i)
        iv = implied_vol(float(prices[i]), F, K, T, call, r)
        assert iv == vols[i]
        repriced = ref.price_usd(F, K, T, iv, call, r)
        assert repriced == pytest.approx(prices[i], rel=1e-12, abs=1e-14 * max(F, K))
        g = ref.greeks_usd(F, K, T, sigma, call, r)
        intrinsic = math.exp(-r * T) * max((F - K) if call else (K - F), 0.0)
        time_value = prices[i] - intrinsic
        if g.vega * sigma >= 1e-6 * prices[i] and time_value > 1e-9 * max(F, K):
            assert iv == pytest.approx(sigma, rel=1e-9)
            recovered += 1
    assert recovered > 0.4 * n


def test_matches_independent_brent_root_on_reference_price() -> None:
    """An independent solver (scipy brentq on sigma with the reference pricer) agrees."""
    c = _cases(500, seed=8)
    checked = 0
    for i in range(500):
        F, K, T, sigma, call, r = _args(c, i)
        price = ref.price_usd(F, K, T, sigma, call, r)
        if price < 1e-6 * F or ref.greeks_usd(F, K, T, sigma, call, r).vega < 1e-4 * price:
            continue
        root = brentq(
            lambda v, F=F, K=K, T=T, call=call, r=r, price=price: (
                ref.price_usd(F, K, T, v, call, r) - price
            ),
            1e-4,
            10.0,
            xtol=1e-15,
            rtol=1e-15,
        )
        assert implied_vol(price, F, K, T, call, r) == pytest.approx(root, rel=1e-9)
        checked += 1
    assert checked > 200


def test_design_option_in_coin() -> None:
    """DESIGN §4 option BTC-27MAR26-80000-C: F = 73,500, K = 80,000, sigma = 0.55,
    T = 2026-02-04T09:30Z -> 2026-03-27T08:00Z (ACT/365): round trip through the coin price,
    and the snapshot's mark 0.0123 BTC reprices exactly at its implied vol."""
    T = (
        datetime(2026, 3, 27, 8, 0, tzinfo=UTC) - datetime(2026, 2, 4, 9, 30, tzinfo=UTC)
    ).total_seconds() / (365.0 * 86400.0)
    F, K = 73500.0, 80000.0
    pc = ref.price_coin(F, K, T, 0.55, True)
    assert implied_vol_coin(pc, F, K, T, True) == pytest.approx(0.55, rel=1e-12)
    iv = implied_vol_coin(0.0123, F, K, T, True)
    assert 0.0 < iv < 0.55  # 0.0123 BTC is cheaper than the 0.55-vol value (~0.0484 BTC)
    assert ref.price_coin(F, K, T, iv, True) == pytest.approx(0.0123, rel=1e-13)


def test_price_at_intrinsic_gives_zero_vol() -> None:
    assert implied_vol(10.0, 110.0, 100.0, 1.0, True) == 0.0
    assert implied_vol(0.0, 90.0, 100.0, 1.0, True) == 0.0
    df = math.exp(-0.05 * 0.5)
    assert implied_vol(df * 20.0, 80.0, 100.0, 0.5, False, 0.05) == 0.0
    # one rounding step below the intrinsic value is still "at intrinsic"
    assert implied_vol(math.nextafter(10.0, 0.0), 110.0, 100.0, 1.0, True) == 0.0


def test_extreme_but_valid_prices() -> None:
    # very far out of the money, tiny price
    p = ref.price_usd(100.0, 400.0, 0.01, 0.5, True)
    assert 0.0 < p < 1e-100
    assert implied_vol(p, 100.0, 400.0, 0.01, True) == pytest.approx(0.5, rel=1e-9)
    # very high vol, price near its upper bound F
    p = ref.price_usd(100.0, 100.0, 3.0, 3.0, True)
    assert implied_vol(p, 100.0, 100.0, 3.0, True) == pytest.approx(3.0, rel=1e-9)
    # very short expiry at the money
    p = ref.price_usd(73500.0, 73500.0, 1.0 / 8760.0, 0.4, False)
    assert implied_vol(p, 73500.0, 73500.0, 1.0 / 8760.0, False) == pytest.approx(0.4, rel=1e-12)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((9.0, 110.0, 100.0, 1.0, True), "below the intrinsic value"),
        ((-0.1, 90.0, 100.0, 1.0, True), "below the intrinsic value"),
        ((110.0, 110.0, 100.0, 1.0, True), "at or above the no-arbitrage upper bound"),
        ((100.0, 110.0, 100.0, 1.0, False), "at or above the no-arbitrage upper bound"),
        ((5.0, 100.0, 0.0, 1.0, False), "at or above the no-arbitrage upper bound"),  # K = 0 put
        ((5.0, 100.0, 0.0, 1.0, True), "below the intrinsic value"),  # K = 0 call below F
        ((100.0, 100.0, 0.0, 1.0, True), "at or above"),  # K = 0 call carries no vol
        ((5.0, 100.0, 100.0, 0.0, True), r"^T: must be > 0"),
        ((5.0, 100.0, 100.0, -1.0, True), r"^T: must be > 0"),
        ((math.nan, 100.0, 100.0, 1.0, True), r"^price_usd: not a finite number"),
        ((5.0, -100.0, 100.0, 1.0, True), r"^F: forward must be > 0"),
        ((5.0, 100.0, -1.0, 1.0, True), r"^K: strike must be >= 0"),
        ((5.0, 100.0, 100.0, math.inf, True), r"^T: not a finite number"),
    ],
)
def test_no_implied_vol_raises(args: tuple[float, float, float, float, bool], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        implied_vol(*args)


def test_discounted_upper_bound() -> None:
    """With r > 0 the bound is DF·F: a call worth more than DF·F (but less than F) is rejected."""
    F, T, r = 100.0, 1.0, 0.1
    with pytest.raises(ValueError, match="upper bound"):
        implied_vol(0.95 * F, F, 100.0, T, True, r)  # 0.95 F > DF·F = 0.905 F


def test_array_errors_raise_or_nan() -> None:
    prices = np.array([5.0, 200.0, 3.0])
    with pytest.raises(ValueError, match=r"^price_usd\[1\]: 200.0 is at or above"):
        implied_vol_array(prices, 100.0, 100.0, 1.0, np.array([True, True, False]))
    out = implied_vol_array(prices, 100.0, 100.0, 1.0, np.array([True, True, False]), errors="nan")
    assert np.isnan(out[1])
    assert out[0] == implied_vol(5.0, 100.0, 100.0, 1.0, True)
    assert out[2] == implied_vol(3.0, 100.0, 100.0, 1.0, False)
    with pytest.raises(ValueError, match=r"^T\[0, 1\]: must be > 0"):
        implied_vol_array(5.0, 100.0, 100.0, np.array([[1.0, 0.0]]), True)
    with pytest.raises(ValueError, match="errors"):
        implied_vol_array(5.0, 100.0, 100.0, 1.0, True, errors="ignore")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="is_call"):
        implied_vol_array(5.0, 100.0, 100.0, 1.0, np.array([1.0]))


@settings(max_examples=300, deadline=None)
@given(
    F=st.floats(1.0, 1e6),
    log_moneyness=st.floats(-1.5, 1.5),
    T=st.floats(1.0 / 8760.0, 3.0),
    sigma=st.floats(0.05, 3.0),
    call=st.booleans(),
    r=st.floats(-0.02, 0.1),
)
def test_property_round_trip(
    F: float, log_moneyness: float, T: float, sigma: float, call: bool, r: float
) -> None:
    """Repricing at the implied vol reproduces any arbitrage-free price from the pricer."""
    K = F * math.exp(log_moneyness)
    price = ref.price_usd(F, K, T, sigma, call, r)
    iv = implied_vol(price, F, K, T, call, r)
    assert iv >= 0.0
    assert ref.price_usd(F, K, T, iv, call, r) == pytest.approx(
        price, rel=1e-12, abs=1e-14 * max(F, K)
    )
    if iv > 0.0:
        assert iv == pytest.approx(sigma, rel=1e-6) or (
            abs(ref.greeks_usd(F, K, T, sigma, call, r).vega) * abs(iv - sigma) <= 1e-12 * max(F, K)
        )
