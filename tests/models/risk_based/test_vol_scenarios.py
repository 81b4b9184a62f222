"""Joint price and implied-vol scenarios (docs/vol-factors.md): the new scenario sets against
independent computations from the raw history, no look-ahead, seeded reproducibility, and the
reference revaluation against the batched (fast) one and a scalar Black-76 loop."""

from __future__ import annotations

import copy
import math
from datetime import date

import numpy as np
import pytest

from design_examples import DESIGN_MARKET
from margin_engine.domain.history import PriceSeries
from margin_engine.domain.market import MarketSnapshot
from margin_engine.io.loaders import parse_model
from margin_engine.io.series import synthetic_series
from margin_engine.live.revalue import instrument_pnl_batch
from margin_engine.maths import black76, scenarios
from margin_engine.models.core.registry import get_model
from margin_engine.models.core.scenario_pnl import instrument_pnl

UNTIL = np.datetime64("2026-02-03")  # the day before the market date
DVOL_FROM = 400                      # DVOL exists from this row of the history on


def _history() -> PriceSeries:
    """Synthetic BTC/ETH closes plus a BTC_DVOL column correlated with BTC's moves, missing for
    the first DVOL_FROM days (so that the realised-vol proxy is used there)."""
    base = synthetic_series(date(2026, 2, 4))
    r = np.diff(np.log(base.closes[:, 0]))
    rng = np.random.default_rng(11)
    dl = -2.0 * r + rng.normal(0, 0.03, r.size)
    dvol = 0.55 * np.exp(np.concatenate([[0.0], np.cumsum(dl)]))
    dvol[:DVOL_FROM] = np.nan
    return PriceSeries(base.dates, (*base.symbols, "BTC_DVOL"),
                       np.column_stack([base.closes, dvol]), "synthetic + DVOL")


HIST = _history()


def _market() -> MarketSnapshot:
    doc = copy.deepcopy(DESIGN_MARKET)
    for k, iv, kind in ((60000, 0.72, "put"), (70000, 0.61, "put"), (90000, 0.57, "call")):
        doc["instruments"].append({
            "symbol": f"BTC-27MAR26-{k}-{kind[0].upper()}", "kind": "option", "underlying": "BTC",
            "settle": "BTC", "inverse": True, "contract_size": 1,
            "expiry": "2026-03-27T08:00:00Z", "strike": k, "option_type": kind, "mark_iv": iv,
            "underlying_price": 73500.0, "mark_price": 0.01})
    doc["instruments"].append({"symbol": "ETHUSDT", "kind": "perpetual", "underlying": "ETH",
                               "settle": "USDT", "mark_price": 2101.0})
    return parse_model(MarketSnapshot, doc, "market")


MARKET = _market()


def _set(name, history=HIST, unds=("BTC",), **kw):
    return get_model(name, {"history": history, **kw}).scenario_set(MARKET, unds)


def _col(sym):
    k = HIST.symbols.index(sym)
    keep = HIST.dates <= UNTIL
    return HIST.dates[keep], HIST.closes[keep][:, k]


def test_historical_joint_moves_come_from_the_dvol_file():
    """h = 2: each window's 30-day shift is σ_now·(DVOL_end / DVOL_start − 1), its price move
    the plain one, its skew move loading·ln(DVOL_end / DVOL_start)."""
    scen = _set("historical-var", horizon_days=2)
    plain = _set("historical-var", horizon_days=2, vol_factor="beta")
    np.testing.assert_array_equal(scen.price_moves, plain.price_moves)
    assert scen.labels == plain.labels and "implied-vol" in scen.kind
    d, v = _col("BTC_DVOL")
    at = {str(x): i for i, x in enumerate(d)}
    sigma_now = v[-1]
    checked = 0
    for s, lab in enumerate(scen.labels):
        i = at[lab]
        if i - 2 >= DVOL_FROM:
            ratio = v[i] / v[i - 2]
            assert scen.vol_shifts[s, 0] == pytest.approx(sigma_now * (ratio - 1), rel=1e-9)
            assert scen.skew_shifts[s, 0] == pytest.approx(-0.14 * math.log(ratio), rel=1e-9)
            checked += 1
    assert checked > 300


def test_before_dvol_the_realised_vol_proxy_moves_the_vol():
    """h = 1 windows before DVOL: the shift is σ_now·(σ̂_t/σ̂_{t−1} − 1), σ̂ the EWMA (λ 0.94)
    realised vol recomputed here from the closes."""
    scen = _set("historical-var", lookback_days=2000, horizon_days=1)
    d, c = _col("BTC")
    r = np.diff(np.log(c))
    var = float(np.mean(r[:30] ** 2))
    sig = []
    for x in r:
        var = 0.94 * var + 0.06 * x * x
        sig.append(math.sqrt(var))
    sigma_now = _col("BTC_DVOL")[1][-1]
    at = {str(x): i for i, x in enumerate(d[1:])}
    n = 0
    for s, lab in enumerate(scen.labels):
        i = at[lab]
        if i >= 1 and i + 1 < DVOL_FROM:
            want = sigma_now * (sig[i] / sig[i - 1] - 1)
            assert scen.vol_shifts[s, 0] == pytest.approx(want, rel=1e-9, abs=1e-15)
            n += 1
    assert n > 100


def test_filtered_es_filters_the_vol_column_like_a_price():
    """filtered-es's joint set = the filtered generator run on (price return, Δln DVOL)
    columns built here from the raw closes."""
    scen = _set("filtered-es", lookback_days=300, horizon_days=1, decay=0.97)
    d, c = _col("BTC")
    _, v = _col("BTC_DVOL")
    keep = d[1:] > UNTIL - np.timedelta64(300, "D")
    cols = np.column_stack([np.diff(np.log(c)), np.diff(np.log(v))])[keep]
    labels = [str(x) for x in d[1:][keep]]
    ref = scenarios.filtered_historical(("BTC", "V"), cols, labels, horizon_days=1,
                                        decay=0.97)
    np.testing.assert_allclose(scen.price_moves[:, 0], ref.price_moves[:, 0], rtol=1e-9,
                               atol=1e-14)
    np.testing.assert_allclose(scen.vol_shifts[:, 0], v[-1] * ref.price_moves[:, 1],
                               rtol=1e-9, atol=1e-14)


@pytest.mark.parametrize("name", ["historical-var", "filtered-es", "monte-carlo-es"])
def test_no_look_ahead(name):
    """Closes and DVOL after the day before the market date change nothing."""
    later = HIST.dates > UNTIL
    assert later.sum() == 0  # the synthetic history ends there: extend it with wild data
    extra_d = UNTIL + np.arange(1, 6).astype("timedelta64[D]")
    wild = np.tile([[1.0, 1.0, 5.0]], (5, 1)) * HIST.closes[-1]
    future = PriceSeries(np.concatenate([HIST.dates, extra_d]), HIST.symbols,
                         np.vstack([HIST.closes, wild]), "with the future")
    kw = {"n_paths": 2000} if name == "monte-carlo-es" else {}
    a = _set(name, **kw)
    b = _set(name, history=future, **kw)
    for f in ("price_moves", "vol_shifts", "skew_shifts"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))


def test_monte_carlo_joint_draw_is_seeded_and_correlated():
    a = _set("monte-carlo-es", n_paths=4000, seed=3)
    b = _set("monte-carlo-es", n_paths=4000, seed=3)
    c = _set("monte-carlo-es", n_paths=4000, seed=4)
    for f in ("price_moves", "vol_shifts", "skew_shifts"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    assert not np.array_equal(a.vol_shifts, c.vol_shifts)
    # the history's vol falls when the price rises (Δln σ = −2r + noise): so must the draws
    assert np.corrcoef(np.log1p(a.price_moves[:, 0]), a.vol_shifts[:, 0])[0, 1] < -0.3


def test_a_history_without_dvol_keeps_the_beta_rule():
    plain = PriceSeries(HIST.dates, HIST.symbols[:2], HIST.closes[:, :2], "no DVOL")
    a = _set("filtered-es", history=plain, unds=("BTC", "ETH"))
    b = _set("filtered-es", history=HIST, unds=("BTC", "ETH"), vol_factor="beta")
    np.testing.assert_array_equal(a.vol_shifts, b.vol_shifts)
    assert a.skew_shifts is None and a.kind == "filtered-historical"
    # with DVOL for BTC only, ETH keeps the beta rule
    c = _set("filtered-es", unds=("BTC", "ETH"))
    np.testing.assert_array_equal(c.vol_shifts[:, 1], b.vol_shifts[:, 1])
    assert not np.array_equal(c.vol_shifts[:, 0], b.vol_shifts[:, 0])
    assert (c.skew_shifts[:, 1] == 0).all()


@pytest.mark.parametrize("dynamics", ["sticky-strike", "sticky-moneyness"])
@pytest.mark.parametrize("target", ["USD", "BTC"])
def test_reference_equals_fast_path_and_a_scalar_loop(dynamics, target):
    scen = _set("historical-var", horizon_days=2, surface_dynamics=dynamics)
    assert scen.surface_dynamics == dynamics and not scen.plain_vol
    ins = [i for i in MARKET.instruments if i.underlying == "BTC"]
    want = instrument_pnl(ins, MARKET, scen, target, vol_tenor_power=0.5)
    got = instrument_pnl_batch(ins, MARKET, scen, target, vol_tenor_power=0.5)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())
    # scalar loop for the options, with the vol built by hand
    opts = [i for i in ins if i.is_option]
    F, S = 73500.0, 73000.0
    smile_k = sorted((math.log(o.strike / F), o.mark_iv) for o in opts)
    T = MARKET.years_to_expiry(opts[0])
    T1 = T - 2 / 365
    row = {i.symbol: k for k, i in enumerate(ins)}
    for s in range(0, scen.n, 37):
        x, lv, sk = (scen.price_moves[s, 0], scen.vol_shifts[s, 0], scen.skew_shifts[s, 0])
        for o in opts:
            k = math.log(o.strike / F)
            base = o.mark_iv
            if dynamics == "sticky-moneyness":
                base = float(np.interp(k - math.log1p(x), [a for a, _ in smile_k],
                                       [b for _, b in smile_k]))
            z = max(-3.0, min(3.0, math.log(o.strike / (F * (1 + x))) / (o.mark_iv * T1 ** 0.5)))
            sig = max(base + lv * (30 / 365 / T1) ** 0.5 + sk * z, 0.01)
            v0 = black76.price_usd(F, o.strike, T, o.mark_iv, o.is_call) / F
            v1 = black76.price_usd(F * (1 + x), o.strike, T1, sig, o.is_call) / (F * (1 + x))
            if target == "USD":  # the USD value change: each coin value at its own price
                usd = v1 * S * (1 + x) - v0 * S
                assert want[row[o.symbol], s] == pytest.approx(usd, rel=1e-9, abs=1e-9)
            else:
                assert want[row[o.symbol], s] == pytest.approx(v1 - v0, rel=1e-9, abs=1e-12)


def test_sticky_moneyness_is_sticky_strike_on_a_flat_smile():
    one = MarketSnapshot.model_construct(**{**dict(MARKET), "instruments": tuple(
        i for i in MARKET.instruments if not i.is_option or i.strike == 80000)})
    a = get_model("historical-var", {"history": HIST}).scenario_set(one, ("BTC",))
    b = get_model("historical-var", {"history": HIST, "surface_dynamics": "sticky-moneyness"}
                  ).scenario_set(one, ("BTC",))
    ins = [one.instrument("BTC-27MAR26-80000-C")]
    np.testing.assert_allclose(instrument_pnl(ins, one, a, "USD", vol_tenor_power=0.5),
                               instrument_pnl(ins, one, b, "USD", vol_tenor_power=0.5),
                               rtol=1e-12)


def test_the_apc_floor_draws_the_vol_factor_too():
    """apc=floor: the whole-history (stressed) set is the joint historical one, so the floor of
    a short option moves with the DVOL history; without DVOL it is the β-rule set."""
    from margin_engine.domain.book import Book
    from margin_engine.policy.assess import assess_account

    book = parse_model(Book, {"accounts": [{
        "id": "a", "margin_mode": "portfolio", "collateral": {"BTC": 10},
        "positions": [{"symbol": "BTC-27MAR26-70000-P", "size": -5}]}]}, "book")
    floors = {}
    for vf in ("implied", "beta"):
        m = get_model("historical-var", {"history": HIST, "apc": "floor", "vol_factor": vf})
        rep = assess_account(m, book.accounts[0], MARKET, liquidation_prices=False)
        stressed = [v for k, v in m._scenario_cache.items() if k[0] == "stressed"]
        assert len(stressed) == 1
        assert ("implied-vol" in stressed[0].kind) == (vf == "implied")
        assert stressed[0].n > scenarios_in_lookback(m)
        floors[vf] = rep.components["anti_procyclicality"] + rep.components["market_risk"]
    assert floors["implied"] != pytest.approx(floors["beta"], rel=1e-6)


def scenarios_in_lookback(model) -> int:
    return model.scenario_set(MARKET, ("BTC",)).n
