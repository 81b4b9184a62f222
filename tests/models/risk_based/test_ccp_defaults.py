"""The CCP-grade defaults of the risk-based family (issue 11, item 2): 2-day margin period of
risk, the ten-year stressed look-back floor on, each default sourced; the floor's look-back
properties and no look-ahead. Expected margins are ``derived``: recomputed here with plain
NumPy from the constructed history (quantile convention of ccp-standards §5.3), not by the
model's code."""

from __future__ import annotations

import math

import numpy as np
import pytest

from design_examples import DESIGN_MARKET
from margin_engine.domain.book import Book
from margin_engine.domain.history import PriceSeries
from margin_engine.domain.market import MarketSnapshot
from margin_engine.io.loaders import parse_model
from margin_engine.models.core.registry import get_model, model_class
from margin_engine.policy.assess import assess_account

UNTIL = np.datetime64("2026-02-03")  # the design market's date − 1 day
MARK = 73005.0                      # BTCUSDT mark of the design market


def _snap() -> MarketSnapshot:
    return parse_model(MarketSnapshot, DESIGN_MARKET, "market")


def _account(size: float = 1.0):
    return parse_model(Book, {"accounts": [{
        "id": "a", "collateral": {"USDT": 1e6}, "credit_rating": "AAA",
        "positions": [{"symbol": "BTCUSDT", "size": size}]}]}, "book").accounts[0]


def _history(n_days: int, crash_days_ago: int | None, extra_after: int = 0) -> PriceSeries:
    """Daily BTC closes ending on UNTIL: calm returns 1%·sin(i) and, ``crash_days_ago``
    before the end, a 40-day stressed period of −6% a day; ``extra_after`` wild days follow
    UNTIL (they must not change a margin set on the market date)."""
    i = np.arange(n_days - 1)
    r = 0.01 * np.sin(1.7 * i)
    if crash_days_ago is not None:
        end = r.size - crash_days_ago
        r[end - 40:end] = -0.06
    extra = np.tile([0.5, -0.5], extra_after // 2 + 1)[:extra_after]
    closes = 70000.0 * np.exp(np.concatenate([[0.0], np.cumsum(np.concatenate([r, extra]))]))
    dates = UNTIL - np.timedelta64(n_days - 1, "D") + np.arange(closes.size)
    return PriceSeries(dates.astype("datetime64[D]"), ("BTC",), closes[:, None], "constructed")


def _var_2d(h: PriceSeries, lookback: int, size: float = 1.0) -> float:
    """VaR 99% of ``size`` BTCUSDT over 2-day overlapping log-return sums of the returns ending
    in the ``lookback`` calendar days to UNTIL (derived, plain NumPy)."""
    d, c = h.dates, h.closes[:, 0]
    lr = np.log(c[1:] / c[:-1])
    end = d[1:]
    lr = lr[(end <= UNTIL) & (end > UNTIL - np.timedelta64(lookback, "D"))]
    two = lr[1:] + lr[:-1]
    losses = np.sort(-size * MARK * np.expm1(two))[::-1]
    k = math.floor(losses.size * 0.01 + 1e-9) + 1
    return float(losses[k - 1])


def test_the_defaults_are_the_ccp_set_and_each_is_sourced():
    for name in ("historical-var", "filtered-es", "monte-carlo-es"):
        f = model_class(name).Params.model_fields
        assert f["horizon_days"].default == 2
        assert "RTS 153/2013 Art. 26" in f["horizon_days"].description
        assert f["apc"].default == "floor"
        assert "Art. 28(1)(c)" in f["apc"].description
        assert f["apc_floor_lookback_days"].default == 3650
        assert "ten years" in f["apc_floor_lookback_days"].description
        assert "2026-12-06" in f["horizon_days"].description
    hv = model_class("historical-var").Params.model_fields
    assert hv["confidence"].default == 0.99 and "Art. 24" in hv["confidence"].description
    assert hv["lookback_days"].default == 365 and "Art. 25" in hv["lookback_days"].description
    for name in ("filtered-es", "monte-carlo-es"):
        f = model_class(name).Params.model_fields
        assert f["confidence"].default == 0.975 and "d457" in f["confidence"].description
        assert f["decay"].default == 0.99 and "house calibration" in f["decay"].description
    mc = model_class("monte-carlo-es").Params.model_fields
    assert mc["marginals"].default == "empirical" and "Kupiec" in mc["marginals"].description


def test_the_floor_holds_a_stressed_period_of_the_last_ten_years():
    """Crash 5 years ago: the 365-day VaR does not see it, the ten-year floor does, and the
    margin is the larger of the two (RTS 153/2013 Art. 28(1)(c))."""
    h = _history(3000, crash_days_ago=1825)
    r = assess_account(get_model("historical-var", {"history": h, "liquidity": False}),
                       _account(), _snap(), liquidation_prices=False)
    recent, floor = _var_2d(h, 365), _var_2d(h, 3650)
    assert floor > 3 * recent  # the stressed period dominates the ten-year look-back
    assert math.isclose(r.components["market_risk"], recent, rel_tol=1e-12)
    assert math.isclose(r.components["anti_procyclicality"], floor - recent, rel_tol=1e-9)
    assert math.isclose(r.initial_margin, floor, rel_tol=1e-12)


def test_a_crash_older_than_ten_years_leaves_the_floor():
    old = _history(4500, crash_days_ago=4000)
    r = assess_account(get_model("historical-var", {"history": old, "liquidity": False}),
                       _account(), _snap(), liquidation_prices=False)
    assert math.isclose(r.initial_margin, max(_var_2d(old, 365), _var_2d(old, 3650)),
                        rel_tol=1e-12)
    # the same crash 9 years back is inside the look-back and raises the margin
    inside = _history(4500, crash_days_ago=9 * 365)
    ri = assess_account(get_model("historical-var", {"history": inside, "liquidity": False}),
                        _account(), _snap(), liquidation_prices=False)
    assert ri.initial_margin > 3 * r.initial_margin


def test_the_floor_is_never_below_market_risk_for_a_short():
    h = _history(3000, crash_days_ago=1825)
    r = assess_account(get_model("historical-var", {"history": h, "liquidity": False}),
                       _account(-1.0), _snap(), liquidation_prices=False)
    # a short loses on the rises: the crash is no stress for it, the floor adds little
    assert r.components["anti_procyclicality"] >= 0.0
    assert math.isclose(r.initial_margin, max(_var_2d(h, 365, -1.0), _var_2d(h, 3650, -1.0)),
                        rel_tol=1e-12)


@pytest.mark.parametrize("name", ["historical-var", "filtered-es", "monte-carlo-es"])
def test_no_look_ahead(name):
    """Days after the market date (wild ±50% moves) change no margin set on that date."""
    opts = {"n_paths": 2000} if name == "monte-carlo-es" else {}
    base, later = _history(1500, 600), _history(1500, 600, extra_after=30)
    im = [assess_account(get_model(name, {"history": h, **opts}), _account(), _snap(),
                         liquidation_prices=False).initial_margin for h in (base, later)]
    assert im[0] == im[1] and im[0] > 0
