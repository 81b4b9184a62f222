"""Tests for margin_engine.policy.dynamic (the dynamic-adjustment controller).

References: ccp-standards §3.1 (EMIR RTS 153/2013 Art. 28: 25 % buffer released in stress, floor
from a long look-back), §5.1 (EWMA). Scripted paths are checked against hand-computed margins;
regime inputs against a plain-Python EWMA/RMS recursion; the limits with hypothesis over random
regime paths and random limit settings; the effect on real BTC history (skipped if absent).
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from margin_engine.analysis import backtest_stats as bt
from margin_engine.policy.dynamic import (
    DynamicConfig,
    DynamicController,
    RegimeInputs,
    daily_log_returns,
    regime_inputs_series,
    run_controller,
)

REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "real"
BTC = REAL / "binance_spot_daily_BTCUSDT_cdd.csv"
DVOL = REAL / "deribit_dvol_daily_BTC_2021-03-24_2026-04-06.csv"
FUNDING = REAL / "binance_BTCUSDT_perp_funding_daily_mean_2019-09-10_2026-02-12.csv"

D0 = dt.date(2024, 1, 1)


def day(i: int) -> dt.date:
    return D0 + dt.timedelta(days=i)


def calm(ratio: float = 1.0, lr: float = 0.03, **kw: float | None) -> RegimeInputs:
    """Inputs with ewma_vol / long_run_vol = ratio."""
    return RegimeInputs(ewma_vol=ratio * lr, long_run_vol=lr, **kw)


# ------------------------------------------------------------------------------------------
# inputs and configuration
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"ewma_vol": 0.0, "long_run_vol": 0.03}, "ewma_vol"),
        ({"ewma_vol": 0.02, "long_run_vol": math.nan}, "long_run_vol"),
        ({"ewma_vol": 0.02, "long_run_vol": 0.03, "dvol": -0.5}, "dvol"),
        ({"ewma_vol": 0.02, "long_run_vol": 0.03, "funding": 1.5}, "funding"),
        ({"ewma_vol": 0.02, "long_run_vol": 0.03, "depth": 0.0}, "depth"),
        ({"ewma_vol": 0.02, "long_run_vol": 0.03, "floor_margin": -1.0}, "floor_margin"),
    ],
)
def test_regime_inputs_reject_bad_values(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        RegimeInputs(**kwargs)


def test_regime_inputs_ratios() -> None:
    x = RegimeInputs(ewma_vol=0.045, long_run_vol=0.03, dvol=0.9)
    assert x.realised_ratio == pytest.approx(1.5)
    assert x.implied_ratio(365.0) == pytest.approx(0.9 / math.sqrt(365.0) / 0.03)
    assert RegimeInputs(0.02, 0.03).implied_ratio() is None


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"stress_enter": 1.2, "stress_exit": 1.3}, "stress_exit"),
        ({"funding_enter": 0.0002, "funding_exit": 0.0003}, "funding_exit"),
        ({"depth_enter": 0.9, "depth_exit": 0.8}, "depth_exit"),
        ({"min_multiplier": 1.5, "max_multiplier": 1.2}, "max_multiplier"),
        ({"initial_multiplier": 3.0}, "initial_multiplier"),
        ({"no_such_field": 1}, "no_such_field"),
        ({"max_step_down": 1.0}, "max_step_down"),
    ],
)
def test_config_rejects_inconsistent_or_unknown(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        DynamicConfig(**kwargs)


def test_config_is_frozen_and_start_multiplier_is_the_buffer() -> None:
    cfg = DynamicConfig()
    assert cfg.start_multiplier == pytest.approx(1.25)  # EMIR Art. 28(a): 25 % buffer
    with pytest.raises(ValueError):
        cfg.buffer = 0.5  # type: ignore[misc]


def test_adjust_rejects_bad_calls() -> None:
    c = DynamicController()
    c.adjust("2024-01-02", 100.0, calm())
    with pytest.raises(ValueError, match="date"):
        c.adjust("2024-01-02", 100.0, calm())
    with pytest.raises(ValueError, match="date"):
        c.adjust("2024-01-01", 100.0, calm())
    with pytest.raises(ValueError, match="base_margin"):
        c.adjust("2024-01-03", -1.0, calm())
    with pytest.raises(ValueError, match="date"):
        c.adjust(20240104, 1.0, calm())  # type: ignore[arg-type]
    c.reset()
    assert c.log == () and c.trace == ()
    c.adjust("2024-01-01", 100.0, calm())  # an earlier date is fine after reset


# ------------------------------------------------------------------------------------------
# scripted paths, hand-computed
# ------------------------------------------------------------------------------------------


def test_buffer_released_in_stress_then_rebuilt_after_notice() -> None:
    """ccp-standards §3.1 Art. 28(a): 1.25 × IM outside stress, the buffer released in stress.

    Floor off so the multiplier alone is visible. Hand-computed path (base 100):
    day 0 ratio 1.0 -> 125; day 1 ratio 1.6 (stress) -> 100 at once; days 2..9 stay stressed
    or inside the band (ratio 1.3) -> 100; day 10 ratio 1.0 (<= exit 1.1) -> increase announced,
    effective day 12 (notice 2): 100, 100, then 125.
    """
    cfg = DynamicConfig(floor="off", notice_days=2, min_days_between_changes=0,
                        max_step_down=0.5)
    c = DynamicController(cfg)
    ratios = [1.0, 1.6, 1.3, 1.3, 1.3, 1.3, 1.3, 1.3, 1.3, 1.3, 1.0, 1.0, 1.0, 1.0]
    want = [125, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 125, 125]
    got = []
    for i, r in enumerate(ratios):
        m, _ = c.adjust(day(i), 100.0, calm(r))
        got.append(m)
    assert got == pytest.approx(want)
    kinds = [(e.date, e.kind, e.old_multiplier, e.new_multiplier, e.effective_date)
             for e in c.log]
    assert kinds == [
        (day(1), "decrease", 1.25, 1.0, day(1)),
        (day(10), "increase", 1.0, 1.25, day(12)),
    ]
    assert "vol stress starts" in c.log[0].reason
    assert "vol stress ends" in c.log[1].reason
    assert c.log[1].vol_regime == "normal" and c.log[0].vol_regime == "stress"


def test_docs_worked_example() -> None:
    """docs/dynamic-margin.md §4 table, hand-computed: base ∝ EWMA vol, long-run vol 3 %,
    DynamicConfig(floor="volatility") defaults (min 5 days, 1 day notice, 25 % buffer)."""
    ewma = [0.030, 0.048, 0.042, 0.032, 0.027, 0.027, 0.027, 0.027]
    want_m = [1.25, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.25]
    want = [125.0, 160.0, 140.0, 320 / 3, 100.0, 100.0, 100.0, 112.5]
    c = DynamicController(DynamicConfig(floor="volatility"))
    got = [c.adjust(day(i), 100.0 * v / 0.03, RegimeInputs(v, 0.03))[0]
           for i, v in enumerate(ewma)]
    assert got == pytest.approx(want)
    assert [r.multiplier for r in c.trace] == pytest.approx(want_m)
    assert [r.floor for r in c.trace] == pytest.approx([100.0] * 8)
    assert [e.kind for e in c.log] == ["decrease", "increase"]
    assert (c.log[0].date, c.log[1].date, c.log[1].effective_date) == (day(1), day(6), day(7))


def test_step_limits_bound_each_change() -> None:
    """A target of 2.0 from 1.0 with max_step_up 0.2 and 3-day spacing: 1.2, 1.44, 1.728, 2.0."""
    cfg = DynamicConfig(floor="off", buffer=1.0, initial_multiplier=1.0, max_step_up=0.2,
                        min_days_between_changes=3, notice_days=0, max_multiplier=2.0)
    c = DynamicController(cfg)
    for i in range(12):
        c.adjust(day(i), 10.0, calm())
    seq = [(e.date, round(e.new_multiplier, 6)) for e in c.log]
    assert seq == [(day(0), 1.2), (day(3), 1.44), (day(6), 1.728), (day(9), 2.0)]
    assert all("step limited" in e.reason for e in c.log[:3])


def test_overall_cap_and_floor_on_the_multiplier() -> None:
    cfg = DynamicConfig(floor="off", buffer=3.0, max_multiplier=1.5, initial_multiplier=1.0,
                        max_step_up=10.0, notice_days=0)
    c = DynamicController(cfg)
    m, e = c.adjust(day(0), 10.0, calm())
    assert e is not None and e.new_multiplier == pytest.approx(1.5)
    assert m == pytest.approx(15.0)
    cfg = DynamicConfig(floor="off", buffer=0.0, stressed_buffer=0.0, min_multiplier=0.8,
                        initial_multiplier=1.0)
    c = DynamicController(cfg)
    for i in range(20):
        c.adjust(day(i), 10.0, calm(2.0))
    assert c.multiplier == pytest.approx(1.0)  # target 1.0 already: nothing below the target


def test_notice_delay_is_honoured() -> None:
    """An increase announced on day t applies from t + notice_days, not before."""
    for notice in (0, 1, 3, 7):
        cfg = DynamicConfig(floor="off", initial_multiplier=1.0, notice_days=notice)
        c = DynamicController(cfg)
        out = [c.adjust(day(i), 100.0, calm())[0] for i in range(10)]
        (e,) = c.log
        assert e.kind == "increase" and e.date == day(0)
        assert e.effective_date == day(notice)
        assert out == pytest.approx([100.0] * notice + [125.0] * (10 - notice))


def test_pending_increase_is_cancelled_when_stress_returns() -> None:
    cfg = DynamicConfig(floor="off", initial_multiplier=1.0, notice_days=5)
    c = DynamicController(cfg)
    c.adjust(day(0), 100.0, calm())  # increase to 1.25 announced for day 5
    assert c.state.pending is not None and c.state.pending.effective_date == day(5)
    m, e = c.adjust(day(2), 100.0, calm(1.8))  # stress: the target is 1.0 again
    assert e is not None and e.kind == "cancel"
    assert "cancel the increase" in e.reason
    assert c.state.pending is None
    out = [c.adjust(day(i), 100.0, calm(1.8))[0] for i in range(3, 9)]
    assert m == 100.0 and out == [100.0] * 6


def test_liquidity_regime_from_funding_and_depth() -> None:
    """Funding >= 0.05 %/8 h or depth <= 0.5 adds 10 %; exits need every signal calm."""
    cfg = DynamicConfig(floor="off", notice_days=0, min_days_between_changes=0)
    c = DynamicController(cfg)
    m0, _ = c.adjust(day(0), 100.0, calm(funding=0.0004))  # inside the band: normal
    m1, e1 = c.adjust(day(1), 100.0, calm(funding=0.0006))
    m2, _ = c.adjust(day(2), 100.0, calm(funding=0.0004))  # band: stays in stress
    m3, e3 = c.adjust(day(3), 100.0, calm(funding=-0.0002, depth=0.6))  # depth not >= 0.8
    m4, e4 = c.adjust(day(4), 100.0, calm(funding=-0.0002, depth=0.9))
    m5, e5 = c.adjust(day(5), 100.0, calm(depth=0.4))
    assert [m0, m1, m2, m3, m4, m5] == pytest.approx([125, 137.5, 137.5, 137.5, 125, 137.5])
    assert e1 is not None and "funding" in e1.reason and e1.liquidity_regime == "stress"
    assert e3 is None
    assert e4 is not None and "liquidity stress ends" in e4.reason
    assert e5 is not None and "depth" in e5.reason


def test_implied_vol_counts_in_the_vol_regime() -> None:
    """DVOL 0.9 annualised = 4.71 %/day; against a 3 % long-run vol the ratio is 1.57 >= 1.5."""
    for use_implied, want in ((True, 100.0), (False, 125.0)):
        c = DynamicController(DynamicConfig(floor="off", use_implied=use_implied))
        m, _ = c.adjust(day(0), 100.0, calm(1.0, dvol=0.9))
        assert m == pytest.approx(want)


def test_apc_floor_given_volatility_scaled_and_off() -> None:
    """Art. 28(c): margin >= floor. 'given' uses floor_margin only; 'volatility' falls back to
    base × long_run_vol / ewma_vol; 'off' ignores both."""
    c = DynamicController(DynamicConfig())  # floor="given"
    m, _ = c.adjust(day(0), 100.0, calm(0.5))  # no floor_margin: no floor
    assert m == pytest.approx(125.0)
    m, _ = c.adjust(day(1), 100.0, calm(1.0, floor_margin=180.0))
    assert m == pytest.approx(180.0)
    assert c.trace[-1].floor_binding and c.trace[-1].floor == 180.0
    v = DynamicController(DynamicConfig(floor="volatility"))
    m, _ = v.adjust(day(0), 100.0, calm(0.5))  # floor 100 × 0.03 / 0.015 = 200 > 125
    assert m == pytest.approx(200.0)
    assert v.trace[-1].floor_binding
    m, _ = v.adjust(day(1), 100.0, calm(0.5, floor_margin=150.0))  # a given floor wins
    assert m == pytest.approx(150.0)
    h = DynamicController(DynamicConfig(floor="volatility", floor_fraction=0.5))
    m, _ = h.adjust(day(0), 100.0, calm(0.5))
    assert m == pytest.approx(125.0)  # floor 100 < 125
    assert not h.trace[-1].floor_binding
    off = DynamicController(DynamicConfig(floor="off"))
    m, _ = off.adjust(day(0), 100.0, calm(0.5, floor_margin=500.0))
    assert m == pytest.approx(125.0) and off.trace[-1].floor == 0.0


# ------------------------------------------------------------------------------------------
# hysteresis
# ------------------------------------------------------------------------------------------


def test_hysteresis_prevents_flip_flop_on_a_noisy_series() -> None:
    """A ratio hovering around the stress threshold (1.5 ± 0.15, i.i.d.) flips a controller
    without hysteresis (enter = exit) on most days; with the 1.5 / 1.1 band it changes once."""
    rng = np.random.default_rng(11)
    ratios = 1.5 + rng.uniform(-0.15, 0.15, 300)
    fast = {"floor": "off", "min_days_between_changes": 0, "notice_days": 0}
    with_h = run_controller(
        [day(i) for i in range(300)], np.full(300, 100.0), [calm(r) for r in ratios],
        DynamicConfig(**fast),
    )
    without_h = run_controller(
        [day(i) for i in range(300)], np.full(300, 100.0), [calm(r) for r in ratios],
        DynamicConfig(stress_exit=1.5, **fast),
    )
    assert len(with_h.log) == 1
    assert len(without_h.log) > 50


# ------------------------------------------------------------------------------------------
# property test over random regime paths
# ------------------------------------------------------------------------------------------


@st.composite
def paths(draw: st.DrawFn) -> tuple[DynamicConfig, list[int], list[float], list[RegimeInputs]]:
    n = draw(st.integers(5, 80))
    cfg = DynamicConfig(
        stress_enter=draw(st.floats(1.1, 2.0)),
        stress_exit=draw(st.floats(0.6, 1.1)),
        buffer=draw(st.floats(0.0, 0.6)),
        stressed_buffer=draw(st.floats(0.0, 0.3)),
        liquidity_addon=draw(st.floats(0.0, 0.5)),
        floor=draw(st.sampled_from(["given", "volatility", "off"])),
        floor_fraction=draw(st.floats(0.0, 1.5)),
        min_multiplier=draw(st.floats(0.8, 1.0)),
        max_multiplier=draw(st.floats(1.6, 2.5)),
        max_step_up=draw(st.floats(0.01, 0.5)),
        max_step_down=draw(st.floats(0.01, 0.9)),
        min_days_between_changes=draw(st.integers(0, 10)),
        notice_days=draw(st.integers(0, 6)),
        min_change=draw(st.floats(0.0, 0.05)),
    )
    gaps = draw(st.lists(st.integers(1, 3), min_size=n, max_size=n))
    days = list(np.cumsum(gaps))
    base = draw(st.lists(st.floats(0.0, 1e6), min_size=n, max_size=n))
    ratio = st.floats(0.2, 4.0)
    inputs = [
        RegimeInputs(
            ewma_vol=0.03 * draw(ratio),
            long_run_vol=0.03,
            dvol=draw(st.none() | st.floats(0.1, 2.0)),
            funding=draw(st.none() | st.floats(-0.002, 0.002)),
            depth=draw(st.none() | st.floats(0.1, 2.0)),
            floor_margin=draw(st.none() | st.floats(0.0, 1e6)),
        )
        for _ in range(n)
    ]
    return cfg, [int(x) for x in days], base, inputs


@settings(max_examples=100, deadline=None)
@given(paths())
def test_property_limits_hold_on_random_paths(
    case: tuple[DynamicConfig, list[int], list[float], list[RegimeInputs]],
) -> None:
    cfg, days, base, inputs = case
    c = DynamicController(cfg)
    margins = [c.adjust(day(d), b, x)[0] for d, b, x in zip(days, base, inputs, strict=True)]
    trace, log = c.trace, c.log
    mult = [cfg.start_multiplier] + [r.multiplier for r in trace]
    tol = 1e-9
    # overall floor and cap
    assert all(cfg.min_multiplier - tol <= m <= cfg.max_multiplier + tol for m in mult[1:])
    # margin = max(base × m, floor) and never below the APC floor
    for r, mg in zip(trace, margins, strict=True):
        assert mg == pytest.approx(max(r.base_margin * r.multiplier, r.floor), rel=1e-12)
        assert mg >= r.floor - tol
        if cfg.floor == "off":
            assert r.floor == 0.0
    # the multiplier changes only on days when a logged change takes effect
    applied = {e.effective_date: e for e in log if e.kind != "cancel"}
    change_days = []
    for prev, r in zip(mult[:-1], trace, strict=True):
        if r.multiplier != prev:
            assert r.date in applied or any(
                e.kind == "increase" and e.effective_date <= r.date and e.new_multiplier ==
                r.multiplier for e in log
            )
            change_days.append(r.date)
            ratio = r.multiplier / prev
            # step limits per change
            assert 1.0 - cfg.max_step_down - tol <= ratio <= 1.0 + cfg.max_step_up + tol
    # never more often than allowed
    for a, b in itertools.pairwise(change_days):
        assert (b - a).days >= cfg.min_days_between_changes
    # every decision has a reason; increases carry the notice; decreases apply at once
    for e in log:
        assert e.reason and ("regime" in e.reason or "stress" in e.reason)
        if e.kind == "increase":
            assert e.effective_date == e.date + dt.timedelta(days=cfg.notice_days)
            assert e.new_multiplier > e.old_multiplier
        elif e.kind == "decrease":
            assert e.effective_date == e.date and e.new_multiplier < e.old_multiplier
        else:
            assert e.new_multiplier == e.old_multiplier
    # an increase never applies before its effective date (nor at all once cancelled)
    for j, e in enumerate(log):
        if e.kind != "increase":
            continue
        nxt = log[j + 1] if j + 1 < len(log) else None
        end = nxt.date if nxt is not None and nxt.kind == "cancel" else e.effective_date
        if nxt is not None and nxt.kind == "cancel":
            assert nxt.date < e.effective_date
        for r in trace:
            if e.date <= r.date < end:
                assert r.multiplier == pytest.approx(e.old_multiplier)


# ------------------------------------------------------------------------------------------
# regime inputs from history
# ------------------------------------------------------------------------------------------


def _plain_inputs(prices: list[float], lam: float, seed_window: int, window: int
                  ) -> list[tuple[float, float] | None]:
    """Plain-Python EWMA (ccp-standards §5.1) and RMS, as a reference."""
    r = [math.log(prices[i] / prices[i - 1]) for i in range(1, len(prices))]
    mean = sum(r[:seed_window]) / seed_window
    var = sum((x - mean) ** 2 for x in r[:seed_window]) / seed_window
    out: list[tuple[float, float] | None] = [None] * len(prices)
    s2 = var
    for i in range(1, len(prices)):
        s2 = lam * s2 + (1 - lam) * r[i - 1] ** 2  # forecast after the return ending day i
        if i >= seed_window:
            lo = max(0, i - window)
            lr = math.sqrt(sum(x * x for x in r[lo:i]) / (i - lo))
            out[i] = (math.sqrt(s2), lr)
    return out


def test_regime_inputs_match_a_plain_recursion() -> None:
    rng = np.random.default_rng(3)
    prices = list(100 * np.exp(np.cumsum(rng.standard_t(4, 200) * 0.02)))
    dates = np.arange(200).astype("datetime64[D]")
    rs = regime_inputs_series(dates, prices, decay=0.94, seed_window=30, long_run_window=50)
    ref = _plain_inputs(prices, 0.94, 30, 50)
    assert rs.first == 30
    for got, want in zip(rs.inputs, ref, strict=True):
        if want is None:
            assert got is None
        else:
            assert got is not None
            assert got.ewma_vol == pytest.approx(want[0], rel=1e-10)
            assert got.long_run_vol == pytest.approx(want[1], rel=1e-10)


def test_auxiliary_series_as_of_with_staleness_and_funding_mean() -> None:
    dates = np.arange("2024-01-01", "2024-02-20", dtype="datetime64[D]")
    prices = 100 * np.exp(np.linspace(0, 0.3, dates.size) + 0.01 * np.sin(np.arange(dates.size)))
    dv_dates = np.array(["2024-02-01", "2024-02-02", "2024-02-10"], dtype="datetime64[D]")
    fu_dates = np.arange("2024-01-30", "2024-02-12", dtype="datetime64[D]")
    fu_vals = np.arange(fu_dates.size) * 1e-4
    rs = regime_inputs_series(dates, prices, dvol=(dv_dates, [0.5, 0.6, 0.7]),
                              funding=(fu_dates, fu_vals), funding_window=3,
                              max_staleness_days=3)

    def at(d: str) -> RegimeInputs:
        x = rs.at(d)
        assert x is not None
        return x

    assert at("2024-01-31").dvol is None  # nothing yet
    assert at("2024-02-02").dvol == 0.6
    assert at("2024-02-05").dvol == 0.6  # 3 days old
    assert at("2024-02-06").dvol is None  # 4 days old: stale
    assert at("2024-02-10").dvol == 0.7
    # funding: mean of the 3 days ending at the last observation
    assert at("2024-02-05").funding == pytest.approx(np.mean(fu_vals[4:7]))
    assert at("2024-01-31").funding == pytest.approx(np.mean(fu_vals[0:2]))  # series start
    assert at("2024-02-14").funding == pytest.approx(np.mean(fu_vals[10:13]))  # 3 days old
    assert at("2024-02-15").funding is None
    assert rs.at("2024-01-15") is None  # burn-in
    with pytest.raises(ValueError, match="date"):
        rs.at("2025-01-01")


@settings(max_examples=40, deadline=None)
@given(st.integers(40, 120), st.integers(0, 2**31 - 1))
def test_property_no_look_ahead(n: int, seed: int) -> None:
    """Inputs of day i computed on the full history equal those computed on days 0..i only."""
    rng = np.random.default_rng(seed)
    prices = 100 * np.exp(np.cumsum(rng.normal(0, 0.03, n)))
    dates = np.datetime64("2020-01-01") + np.arange(n)
    dv = (dates[::2], rng.uniform(0.3, 1.2, dates[::2].size))
    fu = (dates, rng.normal(0, 3e-4, n))
    full = regime_inputs_series(dates, prices, dvol=dv, funding=fu, long_run_window=25)
    cut = int(rng.integers(31, n))
    part = regime_inputs_series(dates[:cut], prices[:cut], dvol=dv, funding=fu,
                                long_run_window=25)
    for a, b in zip(full.inputs[:cut], part.inputs, strict=True):
        assert a == b


def test_daily_log_returns_scale_gaps_to_one_day() -> None:
    dates = np.array(["2024-01-01", "2024-01-02", "2024-01-05"], dtype="datetime64[D]")
    r, gap = daily_log_returns(dates, [100.0, 110.0, 99.0])
    assert list(gap) == [1, 3]
    assert r == pytest.approx([math.log(1.1), math.log(0.9) / math.sqrt(3)])
    with pytest.raises(ValueError, match="prices"):
        daily_log_returns(dates, [100.0, math.nan, 99.0])
    with pytest.raises(ValueError, match="dates"):
        daily_log_returns(dates[::-1], [100.0, 110.0, 99.0])


# ------------------------------------------------------------------------------------------
# the measured effect on real BTC history (docs/dynamic-margin.md)
# ------------------------------------------------------------------------------------------


@pytest.mark.realdata
@pytest.mark.skipif(not REAL.is_dir(), reason=f"real data absent: {REAL}")
def test_controller_on_real_btc_lowers_procyclicality_and_keeps_coverage() -> None:
    """FHS VaR99 (λ 0.94, 1000-day window) on Binance BTC 2018-09..2026-03, with and without the
    default controller: coverage must not fall, and peak-to-trough and the largest 5-day
    increase must fall (the figures themselves are in docs/dynamic-margin.md)."""
    from margin_engine.analysis.calibration import fhs_margin_series
    from margin_engine.io.history import load_dvol, load_funding, load_history

    px = load_history(BTC)
    dv = load_dvol(DVOL)
    fu = load_funding(FUNDING)
    dates, price = px.dates, px.column("BTC")
    base = fhs_margin_series(price, dates, confidence=0.99, decay=0.94, window=1000)
    rows = np.flatnonzero(base.evaluated)
    regimes = regime_inputs_series(dates, price, dvol=(dv.dates, dv.column("BTC")),
                                   funding=(fu.dates, fu.rates[:, 0]))
    inputs = [regimes.inputs[i] for i in rows]
    assert all(x is not None for x in inputs)
    loss = base.realised_loss_rate[rows]
    before = base.margin_rate[rows]
    cov_before = bt.coverage(bt.exception_flags(before, loss)).coverage
    # default (buffer + liquidity add-on, no floor given) and with the volatility-scaled floor,
    # exact here: the model's EWMA (λ 0.94, 30-day seed) is the regime inputs' EWMA
    for cfg in (DynamicConfig(), DynamicConfig(floor="volatility")):
        run = run_controller(dates[rows], base.margin[rows], inputs, cfg)  # type: ignore[arg-type]
        after = run.margin / price[rows]
        cov_after = bt.coverage(bt.exception_flags(after, loss)).coverage
        assert cov_after >= cov_before
        assert cov_after >= 0.99
        assert bt.peak_to_trough(after).ratio < bt.peak_to_trough(before).ratio
        assert bt.n_day_increase(after, 5).ratio < bt.n_day_increase(before, 5).ratio
        # the buffer was released in the March 2020 crash
        crash = int(np.flatnonzero(run.dates == np.datetime64("2020-03-12"))[0])
        assert run.vol_stress[crash] and run.multiplier[crash] == pytest.approx(1.0)
        assert all(e.reason for e in run.log)
    # the APC floor holds every day, and it is the model at the long-run volatility
    assert np.all(run.margin >= run.floor - 1e-9)
    lr = np.array([x.long_run_vol for x in inputs if x is not None])
    np.testing.assert_allclose(run.floor, base.margin[rows] * lr / base.sigma[rows], rtol=1e-12)
