"""The generic liquidation solver: nearest price and the safe band along an underlying."""

from __future__ import annotations

import math
from datetime import date

from margin_engine.domain.book import Book
from margin_engine.domain.market import MarketSnapshot
from margin_engine.io.loaders import parse_model
from margin_engine.io.series import synthetic_series
from margin_engine.models.core.registry import get_model
from margin_engine.policy.assess import assess_account
from margin_engine.policy.health import HealthPolicy
from margin_engine.policy.liquidation import solve_liquidation_band, surplus_function


def _account(positions, collateral):
    return parse_model(Book, {"accounts": [{"id": "a", "margin_mode": "cross",
                                            "collateral": collateral,
                                            "positions": positions}]}, "book").accounts[0]


def test_band_of_a_long_perp_has_only_a_lower_side(market_doc):
    """Long 1 BTCUSDT (entry = mark) with 10,000 USDT under binance-usdm: equity
    10,000 + (P − 73,005) = 0.005·P − 50 (bracket 2: 50,000 ≤ N < 250,000) → P = 62,955 / 0.995."""
    market = parse_model(MarketSnapshot, market_doc, "market")
    account = _account([{"symbol": "BTCUSDT", "size": 1, "entry_price": 73005}],
                       {"USDT": 10000})
    model = get_model("binance-usdm")
    unit = model.units(account, market)[0]
    lo, hi = solve_liquidation_band(model, unit, account, market, "BTC", HealthPolicy())
    assert hi is None and lo is not None
    assert math.isclose(lo * 73005.0, 62955.0 / 0.995, rel_tol=1e-9)


def test_short_straddle_is_liquidated_on_both_sides(market_doc):
    market_doc["instruments"].append({"symbol": "BTC-27MAR26-80000-P", "settle": "BTC",
                                      "inverse": True, "mark_iv": 0.55,
                                      "underlying_price": 73500.0})
    market = parse_model(MarketSnapshot, market_doc, "market")
    account = _account([{"symbol": "BTC-27MAR26-80000-C", "size": -20},
                        {"symbol": "BTC-27MAR26-80000-P", "size": -20}], {"USDT": 600000})
    model = get_model("historical-var", {"history": synthetic_series(date(2026, 2, 4))})
    policy = HealthPolicy()
    unit = model.units(account, market)[0]
    lo, hi = solve_liquidation_band(model, unit, account, market, "BTC", policy)
    assert lo is not None and hi is not None and lo < 1.0 < hi
    f = surplus_function(model, unit, account, market, "BTC", policy)
    assert abs(f(lo)) < 1e-4 and abs(f(hi)) < 1e-4 and f(1.0) > 0
    report = assess_account(model, account, market)
    low, high = report.positions[0].liquidation_range
    assert math.isclose(low, 73000.0 * lo) and math.isclose(high, 73000.0 * hi)
    nearest = min((low, high), key=lambda p: abs(p - 73000.0))
    assert report.positions[0].liquidation_price == nearest
