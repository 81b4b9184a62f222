"""The backtest engine (issue 5): no look-ahead, realised loss by hand, exceedances and
statistics consistent with backtest_stats, controllers, option revaluation, real data."""

from __future__ import annotations

import csv
import gzip
import json
import math
import re
from datetime import date

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from design_examples import REAL_DATA
from margin_engine.analysis import backtest_stats as bs
from margin_engine.analysis.backtest import (
    NoController,
    backtest_json,
    compute_statistics,
    contract_value,
    inputs_from_series,
    registered_model_factory,
    result_from_json,
    run_backtest,
)
from margin_engine.analysis.market_builders import (
    ChainMarketBuilder,
    HistoryMarketBuilder,
    read_option_chain,
)
from margin_engine.domain.book import Book
from margin_engine.domain.history import PriceSeries
from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError
from margin_engine.io.loaders import parse_model
from margin_engine.io.series import load_price_series, synthetic_series

HIST = synthetic_series(date(2025, 1, 1), days=260)  # BTC, ETH, 2024-04-16 .. 2024-12-31
DAY = np.timedelta64(1, "D")


def book(*positions, collateral=None, accounts=None, rating=None):
    docs = accounts or [{"id": "a", "collateral": collateral or {"USDT": 1e6},
                         "positions": [{"symbol": s, "size": q} for s, q in positions],
                         "credit_rating": rating}]
    return parse_model(Book, {"accounts": docs}, "book")


def close(h: PriceSeries, und: str, day) -> float:
    i = int(np.searchsorted(h.dates, np.datetime64(day, "D")))
    assert h.dates[i] == np.datetime64(day, "D")
    return float(h.closes[i, h.symbols.index(und)])


def perturbed_after(h: PriceSeries, day, factors: np.ndarray) -> PriceSeries:
    """The history with every close dated after ``day`` multiplied by ``factors``."""
    c = h.closes.copy()
    after = h.dates > np.datetime64(day, "D")
    c[after] *= factors[: int(after.sum())][:, None]
    return PriceSeries(h.dates, h.symbols, c, h.source + " perturbed")


def b76(F, K, T, vol, call):
    """Plain Black-76 (zero rates), independent of the package."""
    if T <= 0:
        return max(F - K, 0.0) if call else max(K - F, 0.0)
    s = vol * math.sqrt(T)
    d1 = (math.log(F / K) + 0.5 * s * s) / s
    N = lambda x: 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))  # noqa: E731
    return F * N(d1) - K * N(d1 - s) if call else K * N(-d1 + s) - F * N(-d1)


# --------------------------------------------------------------------------------------------
# no look-ahead
# --------------------------------------------------------------------------------------------


@settings(max_examples=6, deadline=None)
@given(cut=st.integers(min_value=60, max_value=200), seed=st.integers(0, 2**16),
       name=st.sampled_from(["historical-var", "filtered-es"]))
def test_no_look_ahead_perturbing_prices_after_t_leaves_margins_up_to_t_unchanged(cut, seed,
                                                                                  name):
    """Margin(t') for t' ≤ t is bit-identical when every close after t is changed; the
    realised loss of day t (which needs t+1) does change, so the check is not vacuous."""
    t = HIST.dates[cut]
    bk = book(("BTCUSDT", 1.0), ("ETH-PERPETUAL", -2000.0))
    fac = np.random.default_rng(seed).uniform(0.5, 1.5, HIST.dates.size)
    kw = {"start": HIST.dates[cut - 20], "end": t}
    base = run_backtest(bk, registered_model_factory(name), HIST, **kw)
    moved = run_backtest(bk, registered_model_factory(name), perturbed_after(HIST, t, fac), **kw)
    assert base.dates[-1] == t and np.array_equal(base.dates, moved.dates)
    assert np.array_equal(base.margin, moved.margin)
    assert np.array_equal(base.realised_loss[:-1], moved.realised_loss[:-1])
    assert base.realised_loss[-1] != moved.realised_loss[-1]


def test_the_close_of_t_is_used_for_margin_t():
    """Boundary: the snapshot of day t stands at the close of t, so a −30% close on t itself
    enters the return window of margin(t) (its margin rate of notional jumps) and leaves
    margin(t − 1) alone."""
    t = HIST.dates[150]
    bk = book(("BTCUSDT", 1.0))
    fac = np.ones(HIST.dates.size)
    fac[0] = 0.7
    moved = perturbed_after(HIST, t - DAY, fac)  # only the close of t changes ...
    c = moved.closes.copy()
    c[HIST.dates > t] = HIST.closes[HIST.dates > t]  # ... later closes restored
    moved = PriceSeries(HIST.dates, HIST.symbols, c, "moved")
    kw = {"start": t - DAY, "end": t}
    f = registered_model_factory("historical-var", {"apc": "none", "horizon_days": 1})
    a = run_backtest(bk, f, HIST, **kw)
    b = run_backtest(bk, f, moved, **kw)
    assert a.margin[0] == b.margin[0]
    assert b.margin[1] / b.notional[1] > 1.5 * a.margin[1] / a.notional[1]


# --------------------------------------------------------------------------------------------
# realised loss by hand
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("h", [1, 2, 5])
def test_realised_loss_equals_a_hand_computation_for_linear_and_inverse_positions(h):
    """loss_t = −[2.5·(P_{t+h} − P_t) + (−3000)·10·(1/P_t − 1/P_{t+h})·P_{t+h}
    + 40·(E_{t+h} − E_t)] in USD (inverse coin P&L valued at the t+h index)."""
    bk = book(("BTCUSDT", 2.5), ("BTC-PERPETUAL", -3000.0), ("ETHUSDC", 40.0))
    r = run_backtest(bk, registered_model_factory("historical-var"), HIST, horizon_days=h,
                     start="2024-07-01", end="2024-07-20")
    assert r.currency == "USD" and r.n_days == 20
    for k, t in enumerate(r.dates):
        p0, p1 = close(HIST, "BTC", t), close(HIST, "BTC", t + h * DAY)
        e0, e1 = close(HIST, "ETH", t), close(HIST, "ETH", t + h * DAY)
        pnl = 2.5 * (p1 - p0) + (-3000.0) * 10.0 * (1 / p0 - 1 / p1) * p1 + 40.0 * (e1 - e0)
        assert r.realised_loss[k] == pytest.approx(-pnl, rel=1e-12, abs=1e-9)
        assert r.notional[k] == pytest.approx(2.5 * p0 + 30000.0 + 40.0 * e0, rel=1e-12)
        assert r.prices["BTC"][k] == p0 and r.prices["ETH"][k] == e0
    sub = r.statistics.non_overlapping
    if h == 1:
        assert sub is None
    else:  # overlapping h-day losses: the tests are repeated on every h-th day
        assert sub is not None and sub.step == h
        assert sub.kupiec == bs.kupiec_pof(r.exceedance[::h], 0.01)
        assert sub.christoffersen == bs.christoffersen(r.exceedance[::h], 0.01)


def test_coin_margined_account_is_backtested_in_coin():
    """deribit-standard on an inverse perpetual margins in BTC; the loss is the coin P&L."""
    bk = book(("BTC-PERPETUAL", 5000.0), collateral={"BTC": 2.0})
    r = run_backtest(bk, registered_model_factory("deribit-standard"), HIST,
                     start="2024-09-01", end="2024-09-10")
    assert r.currency == "BTC"
    for k, t in enumerate(r.dates):
        p0, p1 = close(HIST, "BTC", t), close(HIST, "BTC", t + DAY)
        assert r.realised_loss[k] == pytest.approx(-5000 * 10 * (1 / p0 - 1 / p1), rel=1e-12)


# --------------------------------------------------------------------------------------------
# exceedances and statistics
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def var_run():
    bk = book(("BTCUSDT", 1.0), ("ETHUSDT", -10.0))
    return run_backtest(bk, registered_model_factory("historical-var", {"lookback_days": 60}),
                        HIST)


def test_exceedances_and_statistics_agree_with_backtest_stats(var_run):
    """Exceedance = loss > margin (strict); every statistic equals backtest_stats applied to
    the series by hand (ccp-standards §4.1–4.3, §3.4)."""
    r = var_run
    flags = r.realised_loss > r.margin
    assert np.array_equal(r.exceedance, flags)
    st_ = r.statistics
    x, n = int(flags.sum()), flags.size
    assert st_.coverage.n_exceptions == x and st_.coverage.n_obs == n
    assert st_.kupiec == bs.kupiec_pof_from_counts(x, n, 0.01)
    n00, n01, n10, n11 = bs.transition_counts(flags)
    assert st_.christoffersen == bs.christoffersen_from_counts(n00, n01, n10, n11, n_obs=n,
                                                               n_exceptions=x, p=0.01)
    last = flags[-250:]
    assert st_.traffic_light_last_250 == bs.basel_traffic_light(
        int(last.sum()), last.size, 0.01, plus_factors="bcbs" if last.size == 250 else "normal")
    years = [int(str(d)[:4]) for d in r.dates]
    for y in st_.traffic_light_by_year:
        mask = np.array([yy == y.year for yy in years])
        assert y.n_obs == mask.sum() and y.n_exceptions == flags[mask].sum()
        if y.n_obs < 250:  # no zone rests on fewer than 250 days
            assert y.traffic_light is None
        else:
            assert y.traffic_light is not None and y.traffic_light.n_obs == y.n_obs
            assert y.traffic_light.n_exceptions == y.n_exceptions
    # the headline light: the worst rolling 250-day window, counted here by brute force
    w = st_.traffic_light_worst_250
    if n < 250:
        assert w is None
    else:
        counts = [int(flags[i:i + 250].sum()) for i in range(n - 249)]
        i = counts.index(max(counts))
        assert w is not None and w.traffic_light.n_exceptions == max(counts)
        assert (w.first_day, w.last_day) == (r.dates[i], r.dates[i + 249])
    assert st_.procyclicality == bs.procyclicality(r.margin, (1, 5, 30))
    assert st_.procyclicality_of_share == bs.procyclicality(r.margin / r.notional, (1, 5, 30))
    assert st_.margin_share == bs.average_margin_share(r.margin, r.notional)
    assert st_.z2 is None and any("z2" in note for note in st_.notes)
    assert x > 0  # the synthetic history's jumps do breach a 60-day VaR


def test_the_warm_up_and_missing_days_are_skipped_with_a_reason(var_run):
    reasons = dict(var_run.skipped)
    first = str(HIST.dates[0])
    assert reasons[first].startswith("warm-up") and "complete daily returns" in reasons[first]
    assert reasons[str(HIST.dates[-1])] == "no market data at t+1"
    assert var_run.n_days + len(var_run.skipped) == HIST.dates.size


def test_es_model_gets_z2_from_its_own_var_and_es():
    """filtered-es records VaR_t and ES_t at α = 1 − confidence; Z2 equals backtest_stats on
    the recorded series, and ES ≥ VaR ≥ 0 every day (Acerbi–Szekely, ccp-standards §4.4)."""
    r = run_backtest(book(("BTCUSDT", 1.0), rating="AAA"),
                     registered_model_factory("filtered-es", {"apc": "none"}),  # ES only
                     HIST, start="2024-09-01")
    assert r.var is not None and r.es is not None and r.es_alpha == pytest.approx(0.025)
    assert np.all(r.es >= r.var) and np.all(r.var > 0)
    assert r.statistics.z2 == bs.acerbi_szekely_z2(-r.realised_loss, r.var, r.es, 0.025)
    # the ES is the model's market-risk component: no add-ons for an AAA account without an
    # order book, so it is the margin
    assert np.allclose(r.es, r.model_margin, rtol=1e-12)


def test_json_round_trips_and_recomputes_the_same_statistics(var_run):
    doc = json.loads(json.dumps(backtest_json(var_run), allow_nan=False))
    again = result_from_json(doc)
    assert backtest_json(again) == doc
    assert np.array_equal(again.margin, var_run.margin)
    assert doc["statistics"]["kupiec"]["n_exceptions"] == int(var_run.exceedance.sum())
    assert len(doc["series"]["date"]) == var_run.n_days


def test_compute_statistics_omits_what_is_undefined():
    d = np.array(["2024-01-01", "2024-01-02", "2024-01-03"], dtype="datetime64[D]")
    s = compute_statistics(d, np.array([0.0, 1.0, 1.0]), np.array([0.5, 0.0, 2.0]),
                           np.array([10.0, 10.0, 10.0]), confidence=0.99)
    assert s.procyclicality is None and s.coverage.n_exceptions == 2
    assert any("procyclicality" in n for n in s.notes)
    with pytest.raises(ValueError, match="confidence"):
        compute_statistics(d, np.ones(3), np.ones(3), np.ones(3), confidence=1.5)


# --------------------------------------------------------------------------------------------
# controllers
# --------------------------------------------------------------------------------------------


class Doubler:
    """Charges twice the model's margin and records what it was shown."""

    name = "doubler"

    def __init__(self):
        self.seen = []

    def adjust(self, date, margin, state_inputs):
        self.seen.append(state_inputs)
        return 2.0 * margin, {"date": str(date), "multiplier": 2.0}


def test_controller_moves_the_margin_and_sees_only_the_past():
    bk = book(("BTCUSDT", 1.0))
    f = registered_model_factory("historical-var")
    plain = run_backtest(bk, f, HIST, start="2024-08-01", end="2024-08-31")
    ident = run_backtest(bk, f, HIST, start="2024-08-01", end="2024-08-31",
                         controller=NoController())
    ctrl = Doubler()
    doubled = run_backtest(bk, f, HIST, start="2024-08-01", end="2024-08-31", controller=ctrl)
    assert np.array_equal(ident.margin, plain.margin) and ident.controller_log == ()
    assert np.array_equal(doubled.model_margin, plain.margin)
    assert np.array_equal(doubled.margin, 2.0 * plain.margin)
    assert np.array_equal(doubled.exceedance, doubled.realised_loss > 2.0 * plain.margin)
    assert doubled.label == "historical-var + doubler" and len(doubled.controller_log) == 31
    for t, s in zip(doubled.dates, ctrl.seen, strict=True):
        assert s["known_until"] == t and s["history"].dates[-1] == t
        assert s["prices"]["BTC"] == close(HIST, "BTC", t)
        assert s["returns"]["BTC"] == pytest.approx(
            math.log(close(HIST, "BTC", t) / close(HIST, "BTC", t - DAY)), rel=1e-14)
        assert s["market"].timestamp.date().isoformat() == str(t + DAY)


def test_controller_inputs_adapter_and_bad_controller_output():
    class Series:
        def at(self, day):
            if str(day).endswith("-05"):
                raise ValueError("no such day")
            return 3.0

    class Scale:
        def adjust(self, date, margin, inputs):
            return margin * inputs, None

    bk = book(("BTCUSDT", 1.0))
    f = registered_model_factory("historical-var")
    r = run_backtest(bk, f, HIST, start="2024-08-01", end="2024-08-10", controller=Scale(),
                     controller_inputs=inputs_from_series(Series()))
    k = list(map(str, r.dates)).index("2024-08-05")
    assert r.margin[k] == r.model_margin[k]
    others = np.arange(r.n_days) != k
    assert np.allclose(r.margin[others], 3.0 * r.model_margin[others], rtol=1e-15)

    class Broken:
        def adjust(self, date, margin, inputs):
            return -1.0, None

    with pytest.raises(ValueError, match=re.escape("controller: Broken.adjust returned -1.0")):
        run_backtest(bk, f, HIST, start="2024-08-01", end="2024-08-03", controller=Broken())


def test_the_dynamic_controller_plugs_in_through_a_regime_series():
    dyn = pytest.importorskip("margin_engine.policy.dynamic")
    reg = dyn.regime_inputs_series(HIST.dates, HIST.closes[:, 0])
    bk = book(("BTCUSDT", 1.0))
    r = run_backtest(bk, registered_model_factory("filtered-es"), HIST, start="2024-07-01",
                     controller=dyn.DynamicController(),
                     controller_inputs=inputs_from_series(reg))
    ratio = r.margin / r.model_margin
    assert np.all(ratio >= 1.0 - 1e-12) and np.all(ratio <= 1.25 + 1e-12)
    assert r.controller == "DynamicController"


# --------------------------------------------------------------------------------------------
# options
# --------------------------------------------------------------------------------------------


def _flat_vol(h: PriceSeries, vol: float) -> PriceSeries:
    return PriceSeries(h.dates, ("BTC",), np.full((h.dates.size, 1), vol), "flat vol")


def test_option_revaluation_with_daily_vol_and_time_decay_matches_black76_by_hand():
    """A short inverse call priced with each day's DVOL (here a vol path), forward = close,
    T to the 08:00 expiry from the close (t + 1 day 00:00 UTC)."""
    vols = PriceSeries(HIST.dates, ("BTC",), np.linspace(0.4, 0.8, HIST.dates.size)[:, None],
                       "vol path")
    bk = book(("BTC-27DEC24-70000-C", -3.0), collateral={"BTC": 10.0})
    r = run_backtest(bk, registered_model_factory("deribit-pm"), HIST, vol_index=vols,
                     horizon_days=2, start="2024-12-01", end="2024-12-24")
    assert r.currency == "BTC"
    expiry = np.datetime64("2024-12-27T08:00")

    def value(t):
        F = close(HIST, "BTC", t)
        ts = (t + DAY).astype("datetime64[m]")
        T = (expiry - ts).astype(float) / (365 * 24 * 60)
        v = vols.closes[int(np.searchsorted(vols.dates, t)), 0]
        return (b76(F, 70000.0, T, v, True) if T > 0 else max(F - 70000.0, 0.0)) / F

    for k, t in enumerate(r.dates):
        assert r.realised_loss[k] == pytest.approx(
            3.0 * (value(t + 2 * DAY) - value(t)), rel=1e-9, abs=1e-12)
    # 2024-12-26's close stands at 12-27 00:00, before the 08:00 expiry: still listed
    assert str(r.dates[-1]) == "2024-12-24"


def test_an_option_expiring_within_the_horizon_settles_at_intrinsic_value():
    bk = book(("BTC-27DEC24-60000-P", 2.0), collateral={"BTC": 10.0})
    b = HistoryMarketBuilder(HIST, _flat_vol(HIST, 0.5))
    assert b.unknown(["BTC-27DEC24-60000-P"]) == {}
    m0 = b.snapshot(np.datetime64("2024-12-26"), ["BTC-27DEC24-60000-P"])
    m1 = b.snapshot(np.datetime64("2024-12-28"), ["BTC-27DEC24-60000-P"])
    assert m0 is not None and m1 is not None and not m1.has("BTC-27DEC24-60000-P")
    ins = m0.instrument("BTC-27DEC24-60000-P")
    S = close(HIST, "BTC", "2024-12-28")
    assert contract_value(ins, m1) == max(60000.0 - S, 0.0) / S
    r = run_backtest(bk, registered_model_factory("deribit-standard"), HIST,
                     vol_index=_flat_vol(HIST, 0.5), horizon_days=2, start="2024-12-26",
                     end="2024-12-26")
    F = close(HIST, "BTC", "2024-12-26")
    T = (np.datetime64("2024-12-27T08:00") - np.datetime64("2024-12-27T00:00")).astype(
        float) / (365 * 24 * 60)
    v0 = b76(F, 60000.0, T, 0.5, False) / F
    assert r.realised_loss[0] == pytest.approx(-2.0 * (max(60000.0 - S, 0.0) / S - v0),
                                               rel=1e-9, abs=1e-12)


# --------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kw, path, msg", [
    ({"start": "2024-09-01", "end": "2024-08-01"}, "--start", "is after --end 2024-08-01"),
    ({"start": "2030-01-01"}, "--start", "no days with data between 2030-01-01"),
    ({"start": "2024-02-30"}, "--start", "not a date"),
    ({"horizon_days": 0}, "--horizon", "whole number of days"),
    ({"account": "zz"}, "--account", "no account 'zz'"),
    ({"confidence": 1.0}, "--confidence", "must lie in (0.5, 1)"),
])
def test_bad_arguments_are_clear_input_errors(kw, path, msg):
    with pytest.raises(InputError) as e:
        run_backtest(book(("BTCUSDT", 1.0)), registered_model_factory("historical-var"), HIST,
                     **kw)
    assert e.value.path == path and msg in e.value.reason


def test_unknown_symbols_name_the_position():
    bk = book(("BTCUSDT", 1.0), ("DOGEUSDT", 5.0), ("BTC-FOO", 1.0), ("BTC-27DEC24-1-C", 1.0))
    with pytest.raises(InputError) as e:
        run_backtest(bk, registered_model_factory("historical-var"), HIST)
    probs = dict(e.value.problems)
    assert "no price history for DOGE" in probs["accounts[0].positions[1].symbol"]
    assert "not a backtest symbol" in probs["accounts[0].positions[2].symbol"]
    assert "implied-vol index (DVOL)" in probs["accounts[0].positions[3].symbol"]
    assert "accounts[0].positions[0].symbol" not in probs


def test_books_models_and_windows_that_cannot_be_backtested():
    two = book(accounts=[{"id": "x", "positions": [{"symbol": "BTCUSDT", "size": 1}]},
                         {"id": "y", "positions": [{"symbol": "BTCUSDT", "size": 2}]}])
    with pytest.raises(InputError, match=re.escape("the book has 2 (choose one with --account")):
        run_backtest(two, registered_model_factory("historical-var"), HIST)
    r = run_backtest(two, registered_model_factory("binance-usdm"), HIST, account="y",
                     start="2024-06-01", end="2024-06-02")
    assert r.account == "y" and r.n_days == 2
    with pytest.raises(InputError, match="unknown model 'nope'"):
        registered_model_factory("nope")
    with pytest.raises(InputError, match="the backtest passes its own --history"):
        registered_model_factory("historical-var", {"history": "x"})
    with pytest.raises(InputError) as e:
        run_backtest(book(("BTC-PERPETUAL", 1.0)), registered_model_factory("binance-usdm"),
                     HIST, start="2024-06-01", end="2024-06-02")
    assert e.value.path == "accounts[0].positions[0].symbol"
    with pytest.raises(InputError, match=re.escape(
            "no day between 2024-04-16 and 2024-04-20 could be backtested (5× warm-up")):
        run_backtest(book(("BTCUSDT", 1.0)), registered_model_factory("historical-var"), HIST,
                     end="2024-04-20")


def test_market_builder_rejects_bad_snapshot_requests():
    b = HistoryMarketBuilder(HIST)
    assert b.snapshot(np.datetime64("2030-01-01"), ["BTCUSDT"]) is None
    with pytest.raises(ValueError, match="symbol: 'XRPUSDT'"):
        b.snapshot(HIST.dates[5], ["XRPUSDT"])
    snap = b.snapshot(HIST.dates[5], ["BTCUSDT", "BTC-PERPETUAL"])
    assert isinstance(snap, MarketSnapshot)
    assert snap.instrument("BTC-PERPETUAL").contract_size == 10.0
    assert snap.instrument("BTCUSDT").mark_price == HIST.closes[5, 0]


# --------------------------------------------------------------------------------------------
# real data (skipped when ../shared/data/real is absent)
# --------------------------------------------------------------------------------------------

BTC_FILE = REAL_DATA / "binance_spot_daily_BTCUSDT_cdd.csv"
CHAIN_FILE = REAL_DATA / "deribit_options_chain_daily_0930utc_2025-12-30_2026-08-22.csv.gz"
needs_btc = pytest.mark.skipif(not BTC_FILE.exists(), reason=f"real data absent: {BTC_FILE}")
needs_chain = pytest.mark.skipif(not CHAIN_FILE.exists(),
                                 reason=f"real data absent: {CHAIN_FILE}")


def _cdd_closes(path) -> dict[str, float]:
    """Date → close read with the csv module (independent of the package's loaders)."""
    with open(path, newline="") as f:
        next(f)
        return {row["Date"][:10]: float(row["Close"]) for row in csv.DictReader(f)}


@pytest.mark.realdata
@needs_btc
def test_real_btc_2020_crash_is_an_exceedance_and_losses_match_the_file():
    """1 BTC long, historical-var 99%, 2019-2020 slice: the 2020-03-12 drop (−39.5%,
    SOURCES.md crash table: close 4,800.00) breaches the margin set on 2020-03-11."""
    h = load_price_series([BTC_FILE])
    raw = _cdd_closes(BTC_FILE)
    r = run_backtest(book(("BTCUSDT", 1.0)), registered_model_factory("historical-var"), h,
                     start="2019-06-01", end="2020-06-30")
    k = list(map(str, r.dates)).index("2020-03-11")
    assert raw["2020-03-12"] == 4800.0
    assert r.realised_loss[k] == pytest.approx(raw["2020-03-11"] - raw["2020-03-12"], rel=1e-12)
    assert r.exceedance[k] and r.realised_loss[k] > 2 * r.margin[k]
    for i in range(0, r.n_days, 37):
        d, d1 = str(r.dates[i]), str(r.dates[i] + DAY)
        assert r.realised_loss[i] == pytest.approx(raw[d] - raw[d1], rel=1e-12, abs=1e-9)


@pytest.mark.realdata
@needs_btc
def test_real_btc_no_look_ahead():
    h = load_price_series([BTC_FILE])
    t = np.datetime64("2022-11-08")
    fac = np.random.default_rng(5).uniform(0.3, 3.0, h.dates.size)
    kw = {"start": "2022-10-01", "end": t}
    a = run_backtest(book(("BTCUSDT", 1.0)), registered_model_factory("filtered-es"), h, **kw)
    b = run_backtest(book(("BTCUSDT", 1.0)), registered_model_factory("filtered-es"),
                     perturbed_after(h, t, fac), **kw)
    assert np.array_equal(a.margin, b.margin) and a.realised_loss[-1] != b.realised_loss[-1]


def _chain_rows(symbol: str) -> dict[str, dict[str, str]]:
    """Snapshot date → the chain row of ``symbol`` (csv module, the one file per day)."""
    out = {}
    with gzip.open(CHAIN_FILE, "rt", newline="") as f:
        for row in csv.DictReader(f):
            if row["instrument_name"] == symbol:
                out[row["timestamp"][:10]] = row
    return out


@pytest.mark.realdata
@needs_chain
def test_real_chain_option_revaluation_over_the_2026_02_05_crash():
    """A short BTC call revalued from each day's chain (mark IV, forward, time to expiry):
    loss over 1 day = 5·(B76(F1, K, T1, σ1)/F1 − B76(F0, K, T0, σ0)/F0) from the raw rows."""
    sym = "BTC-27MAR26-80000-C"
    chain = read_option_chain([CHAIN_FILE], symbols=[sym])
    rows = _chain_rows(sym)
    builder = ChainMarketBuilder(chain)
    snap = builder.snapshot(np.datetime64("2026-02-05"), [sym, "BTC-PERPETUAL"])
    assert snap is not None
    ins = snap.instrument(sym)
    assert ins.mark_iv == float(rows["2026-02-05"]["implied_volatility"])
    assert ins.underlying_price == float(rows["2026-02-05"]["underlying"])
    h = load_price_series([BTC_FILE]) if BTC_FILE.exists() else None
    hist = h if h is not None else HIST
    r = run_backtest(book((sym, -5.0), collateral={"BTC": 5.0}),
                     registered_model_factory("deribit-standard"), hist,
                     market_builder=builder, start="2026-02-02", end="2026-02-08")

    def value(d):
        row = rows[d]
        F = float(row["underlying"])
        ts = np.datetime64(row["timestamp"][:26])
        T = (np.datetime64("2026-03-27T08:00") - ts) / np.timedelta64(1, "us") / (
            365 * 24 * 3600e6)
        return b76(F, 80000.0, T, float(row["implied_volatility"]), True) / F

    for k, t in enumerate(r.dates):
        d0, d1 = str(t), str(t + DAY)
        assert r.realised_loss[k] == pytest.approx(5.0 * (value(d1) - value(d0)), rel=1e-9)
    assert r.currency == "BTC" and r.n_days == 7
