"""The dynamic controller on a live feed (live.dynamic): what it reads from the updates, when it
decides, the notice it gives, and the ``margin_parameters`` records it publishes.

Expected multipliers are derived from the controller's documented defaults
(docs/dynamic-margin.md §1-2): normal regime 1 + 0.25; liquidity stress × 1.10 (funding
≥ 0.05 %/8 h); vol stress releases the buffer (target 1.0); increases 1 day's notice.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from margin_engine.demo.synthetic import generate_market
from margin_engine.domain.history import PriceSeries
from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError
from margin_engine.io.loaders import parse_model
from margin_engine.live.dynamic import (
    LiveDynamic,
    LiveDynamicConfig,
    RegimeSignals,
    atm_implied_vol,
    parse_signals,
)
from margin_engine.policy.dynamic import DynamicConfig

MARKET_DOC = generate_market(seed=7)
MARKET = parse_model(MarketSnapshot, MARKET_DOC, "market")
START = date(2026, 2, 4)


def seed(days: int = 60, daily: float = 0.03, end: date = START) -> PriceSeries:
    """Closes alternating ±``daily`` log returns (RMS vol exactly ``daily``), up to the day
    before ``end``."""
    dates = np.array([end - timedelta(days=days - k) for k in range(days)],
                     dtype="datetime64[D]")
    r = np.where(np.arange(days) % 2 == 0, daily, -daily)
    r[0] = 0.0
    closes = 73000.0 * np.exp(np.cumsum(r))
    return PriceSeries(dates, ("BTC",), closes[:, None], "test")


def at(t: datetime, btc: float = 73000.0) -> MarketSnapshot:
    return MARKET.model_copy(update={"timestamp": t, "index": {**MARKET.index, "BTC": btc}})


def hours(first: datetime, n: int) -> list[datetime]:
    return [first + timedelta(hours=k) for k in range(n)]


def test_funding_stress_is_announced_a_day_ahead_then_applies() -> None:
    dyn = LiveDynamic(LiveDynamicConfig(atm_iv=False), seed())
    assert dyn.multiplier == 1.25  # 1 + buffer, in force from the start
    out = []
    t0 = datetime(2026, 2, 4, tzinfo=UTC)
    for t in hours(t0, 24 * 3 + 1):  # 4 Feb 00:00 .. 7 Feb 00:00
        out += dyn.observe(at(t), RegimeSignals(funding=0.001))
    assert [(r.phase, r.change) for r in out] == [("announced", "increase"),
                                                  ("in_effect", "increase")]
    ann, eff = out
    # decided at the close of 4 Feb (first update of 5 Feb), in force at the close of 5 Feb
    assert ann.time == datetime(2026, 2, 5, tzinfo=UTC) and ann.day == date(2026, 2, 4)
    assert ann.effective_time == datetime(2026, 2, 6, tzinfo=UTC) == eff.time
    assert ann.effective_time - ann.announced_time == timedelta(days=1)
    assert (ann.old, ann.new) == (1.25, pytest.approx(1.25 * 1.10))
    assert ann.scale is None and eff.scale is not None
    assert eff.scale.im_multiplier == pytest.approx(1.375) == dyn.multiplier
    assert eff.scale.mm_ceiling == pytest.approx(0.95 * 1.25)  # cap × the lower multiplier
    assert "liquidity stress starts" in ann.reason and "funding" in ann.reason
    body = ann.payload()
    assert {"old", "new", "effective_time", "reason"} <= set(body)
    assert body["effective_time"] == "2026-02-06T00:00:00Z"
    assert body["phase"] == "announced" and body["inputs"]["funding"] == pytest.approx(0.001)


def test_a_crash_releases_the_buffer_at_once() -> None:
    dyn = LiveDynamic(LiveDynamicConfig(atm_iv=False), seed())
    t0 = datetime(2026, 2, 4, tzinfo=UTC)
    out = dyn.observe(at(t0))
    out += dyn.observe(at(t0 + timedelta(hours=20), btc=73000.0 * 0.7))  # -35.7 % log
    assert out == []  # the day has not closed yet
    out = dyn.observe(at(t0 + timedelta(days=1), btc=73000.0 * 0.7))
    assert len(out) == 1
    r = out[0]
    assert (r.change, r.phase, r.old, r.new) == ("decrease", "in_effect", 1.25, 1.0)
    assert r.effective_time == r.time == t0 + timedelta(days=1)
    assert r.vol_regime == "stress" and r.vol_ratio >= 1.5
    assert dyn.scale.is_identity


def test_implied_vol_from_the_market_raises_the_vol_ratio() -> None:
    """With ATM IV on (the demo BTC options, ~60 % a year = 3.2 %/day) and a seed of 1 %/day,
    the implied ratio is above 1.5: vol stress and the buffer released."""
    dyn = LiveDynamic(LiveDynamicConfig(), seed(daily=0.01))
    t0 = datetime(2026, 2, 4, tzinfo=UTC)
    dyn.observe(at(t0))
    (r,) = dyn.observe(at(t0 + timedelta(days=1)))
    iv = atm_implied_vol(at(t0 + timedelta(hours=0)), "BTC")
    assert r.inputs.dvol == pytest.approx(iv)
    assert r.vol_ratio == pytest.approx(iv / np.sqrt(365) / r.inputs.long_run_vol)
    assert r.new == 1.0
    # a DVOL on the update wins over the ATM IV
    dyn2 = LiveDynamic(LiveDynamicConfig(), seed(daily=0.01))
    dyn2.observe(at(t0), RegimeSignals(dvol=0.2))
    assert dyn2.observe(at(t0 + timedelta(days=1))) == []
    assert dyn2.days[-1][1] is not None and dyn2.days[-1][1].dvol == 0.2


def test_atm_iv_picks_the_expiry_nearest_30_days_and_the_strike_nearest_the_forward() -> None:
    """Recomputed from the market JSON: BTC options, expiry nearest timestamp + 30 days,
    strike nearest (log distance) the options' underlying price, mean IV of call and put."""
    t = datetime(2026, 2, 4, 9, 30, tzinfo=UTC)
    opts = [i for i in MARKET_DOC["instruments"]
            if i["kind"] == "option" and i["underlying"] == "BTC"]
    exps = sorted({i["expiry"] for i in opts})

    def days(e: str) -> float:
        return (datetime.fromisoformat(e.replace("Z", "+00:00")) - t).total_seconds() / 86400

    e = min(exps, key=lambda x: abs(days(x) - 30))
    chain = [i for i in opts if i["expiry"] == e]
    f = chain[0]["underlying_price"]
    k = min({i["strike"] for i in chain}, key=lambda x: abs(np.log(x / f)))
    want = np.mean([i["mark_iv"] for i in chain if i["strike"] == k])
    assert atm_implied_vol(MARKET, "BTC") == pytest.approx(want)
    assert atm_implied_vol(MARKET, "SOL") is None


def test_warm_up_without_history_makes_no_decision() -> None:
    dyn = LiveDynamic(LiveDynamicConfig(atm_iv=False))
    t0 = datetime(2026, 2, 4, tzinfo=UTC)
    for d in range(5):
        assert dyn.observe(at(t0 + timedelta(days=d)), RegimeSignals(funding=0.01)) == []
    assert [x[1] for x in dyn.days] == [None] * 4
    assert dyn.multiplier == 1.25


def test_an_update_dated_an_earlier_day_is_ignored() -> None:
    dyn = LiveDynamic(LiveDynamicConfig(atm_iv=False), seed())
    t0 = datetime(2026, 2, 4, tzinfo=UTC)
    dyn.observe(at(t0 + timedelta(days=1)))
    assert dyn.observe(at(t0)) == []
    assert len(dyn.days) == 0


@pytest.mark.parametrize(("raw", "path"), [
    ([1], "regime"), ({"dvol": "x"}, "regime.dvol"), ({"funding": 2.0}, "regime.funding"),
    ({"depth": -1}, "regime.depth"), ({"depth": float("inf")}, "regime.depth"),
    ({"spread": 1}, "regime.spread")])
def test_bad_signals_name_the_field(raw: object, path: str) -> None:
    with pytest.raises(InputError) as exc:
        parse_signals(raw)
    assert exc.value.path == path


def test_config_refuses_a_floor_or_a_multiplier_below_one() -> None:
    with pytest.raises(ValueError, match="floor"):
        LiveDynamicConfig(controller=DynamicConfig())
    with pytest.raises(ValueError, match="min_multiplier"):
        LiveDynamicConfig(controller=DynamicConfig(floor="off", min_multiplier=0.5,
                                                   initial_multiplier=1.0))
    with pytest.raises(InputError, match="ETH"):
        LiveDynamic(LiveDynamicConfig(underlying="ETH"), seed())
