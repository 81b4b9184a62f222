"""Edge cases found in review: unit conversions of coin-settled options, contradictory
instrument specs, quoted marks far from the model, stale histories, unusable parameters."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pytest
from typer.testing import CliRunner

from margin_engine.cli.main import app
from margin_engine.domain.book import Book
from margin_engine.domain.history import PriceSeries
from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError
from margin_engine.io.loaders import parse_model
from margin_engine.io.model_options import build_model
from margin_engine.io.series import synthetic_series
from margin_engine.models.core.registry import get_model
from margin_engine.models.core.revaluation import shift_underlying
from margin_engine.models.core.valuation import model_option_price
from margin_engine.policy.assess import assess_account

HISTORY = synthetic_series(date(2026, 2, 4))


def _account(positions, collateral, mode="cross"):
    return parse_model(Book, {"accounts": [{"id": "a", "margin_mode": mode, "credit_rating": "AAA",
                                            "collateral": collateral,
                                            "positions": positions}]}, "book").accounts[0]


@pytest.mark.parametrize("inverse, settle", [(True, "USDT"), (False, "BTC")])
def test_inverse_flag_must_match_the_settlement_currency(market_doc, inverse, settle):
    market_doc["instruments"][0].update(inverse=inverse, settle=settle)
    with pytest.raises(InputError, match="settles in") as err:
        parse_model(MarketSnapshot, market_doc, "market")
    assert err.value.path == "instruments[0]"


def test_deep_itm_coin_option_risk_matches_its_delta_one_equivalent(market_doc):
    """A deep ITM inverse call is worth ~(F − K)/F coin: in USD it moves like F − K per unit, so
    its USD market risk must be close to a linear contract's of the same size."""
    market_doc["instruments"].append({"symbol": "BTC-27MAR26-20000-C", "settle": "BTC",
                                      "inverse": True, "mark_iv": 0.55,
                                      "underlying_price": 73500.0})
    market = parse_model(MarketSnapshot, market_doc, "market")
    model = get_model("historical-var", {"history": HISTORY, "liquidity": False})
    opt = assess_account(model, _account([{"symbol": "BTC-27MAR26-20000-C", "size": -10}],
                                         {"USDT": 1e6}), market, liquidation_prices=False)
    lin = assess_account(model, _account([{"symbol": "BTCUSDT", "size": -10}], {"USDT": 1e6}),
                         market, liquidation_prices=False)
    ratio = opt.components["market_risk"] / lin.components["market_risk"]
    assert 0.9 < ratio < 1.1


def test_shifted_quoted_mark_moves_by_the_model_difference(market_doc):
    market_doc["instruments"].append({"symbol": "BTC-27MAR26-30000-P", "settle": "BTC",
                                      "inverse": True, "mark_iv": 0.5,
                                      "underlying_price": 73500.0, "mark_price": 0.0001})
    market = parse_model(MarketSnapshot, market_doc, "market")
    ins = market.instrument("BTC-27MAR26-30000-P")
    for factor in (0.8, 0.5, 0.3):
        moved = shift_underlying(market, "BTC", factor).instrument(ins.symbol)
        want = 0.0001 + model_option_price(ins, market, 73500.0 * factor) - model_option_price(
            ins, market, 73500.0)
        assert math.isclose(moved.mark_price, want, rel_tol=1e-12)
        assert moved.mark_price < 30000 / (73500.0 * factor)  # a put is worth < K/F coin


def test_close_out_cost_of_a_coin_quoted_option_book(market_doc):
    """Buying back 10 calls at 0.0126 against a 0.0123 mid costs 10 × 0.0003 BTC × 73,000."""
    market_doc["order_books"]["BTC-27MAR26-80000-C"] = {"bids": [[0.0120, 100]],
                                                        "asks": [[0.0126, 100]]}
    market = parse_model(MarketSnapshot, market_doc, "market")
    model = get_model("historical-var", {"history": HISTORY})
    r = assess_account(model, _account([{"symbol": "BTC-27MAR26-80000-C", "size": -10}],
                                       {"USDT": 1e5}), market, liquidation_prices=False)
    assert math.isclose(r.components["liquidity"], 10 * 0.0003 * 73000.0, rel_tol=1e-9)


def test_available_balance_never_exceeds_what_a_unit_can_spare(market_doc):
    """BTC collateral does not back a USDT unit under binance-usdm: the unit is short of IM, so
    nothing is available although the whole account's equity exceeds the IM."""
    market = parse_model(MarketSnapshot, market_doc, "market")
    r = assess_account(get_model("binance-usdm"),
                       _account([{"symbol": "BTCUSDT", "size": 25, "entry_price": 73005}],
                                {"BTC": 1.5}), market)
    assert r.status.value in ("margin_call", "liquidation")
    assert r.equity > r.initial_margin and r.available_balance < 0


def test_stale_history_is_rejected(market_doc):
    market = parse_model(MarketSnapshot, market_doc, "market")
    old = PriceSeries(HISTORY.dates[:-100], HISTORY.symbols, HISTORY.closes[:-100], "old")
    with pytest.raises(InputError, match="stale"):
        assess_account(get_model("historical-var", {"history": old}),
                       _account([{"symbol": "BTCUSDT", "size": 1}], {"USDT": 1e5}), market)


def test_lookback_counts_calendar_days(market_doc):
    market = parse_model(MarketSnapshot, market_doc, "market")
    gappy = np.ones(HISTORY.dates.size, dtype=bool)
    gappy[-200:-100] = False  # 100 missing days inside the last year
    hist = PriceSeries(HISTORY.dates[gappy], HISTORY.symbols, HISTORY.closes[gappy], "gappy")
    r = assess_account(get_model("historical-var", {"history": hist}),
                       _account([{"symbol": "BTCUSDT", "size": 1}], {"USDT": 1e5}), market,
                       liquidation_prices=False)
    assert r.units[0].margin.details["n_scenarios"] < 365 - 99


@pytest.mark.parametrize("options, must", [
    ({"history": "x.csv"}, "--history FILE"),
    ({"open_interest": {"BTCUSDT": -5}}, "open_interest"),
    ({"horizon_days": True}, "horizon_days"),
])
def test_unusable_parameters_are_rejected(market_doc, options, must):
    market = parse_model(MarketSnapshot, market_doc, "market")
    with pytest.raises(InputError, match=must):
        build_model("historical-var", options, None, market)


def test_demo_out_that_cannot_be_written(tmp_path):
    target = tmp_path / "a-file"
    target.write_text("x")
    res = CliRunner().invoke(app, ["demo", "--out", str(target)])
    assert res.exit_code == 2 and "error: --out" in res.stderr


def test_backtest_realised_loss_of_a_coin_option_in_usd(market_doc):
    """Realised USD P&L of a coin-settled option is V1·S1 − V0·S0 (its coin value moves too)."""
    import copy

    from margin_engine.analysis.backtest import realised_pnl

    later = copy.deepcopy(market_doc)
    later["timestamp"] = "2026-02-05T09:30:00Z"
    later["index"]["BTC"] = 65000.0
    later["instruments"][3]["underlying_price"] = 65400.0
    m0 = parse_model(MarketSnapshot, market_doc, "market")
    m1 = parse_model(MarketSnapshot, later, "market")
    ins0, ins1 = m0.instrument("BTC-27MAR26-80000-C"), m1.instrument("BTC-27MAR26-80000-C")
    v0 = model_option_price(ins0, m0, 73500.0)
    v1 = model_option_price(ins1, m1, 65400.0)
    got = realised_pnl(_account([{"symbol": "BTC-27MAR26-80000-C", "size": -10}], {}), m0, m1,
                       "USD")
    assert math.isclose(got, -10 * (v1 * 65000.0 - v0 * 73000.0), rel_tol=1e-12)
