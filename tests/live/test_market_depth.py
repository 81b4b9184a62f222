"""Order-book depth in a partial market update feeds the risk-based models' liquidity add-on
live (DESIGN §8: "market updates may carry order-book depth").

Hand-derived figure: 5 BTCUSDT long closed into a one-level book (bid 72,990 × 1, ask
73,010 × 1; mid 73,000) costs 1 × 10 at the level, then the 4 beyond the visible depth at the
last level's distance grown by the square-root impact ``4 × 10 × sqrt((1 + 4) / 1)``, i.e.
10 + 40·√5 = 99.4427 USDT (``maths.addons.close_out_cost``'s documented rule), converted to
the unit's currency at the market's prices (the demo prices USDT at 1.00004 USD).
"""

from __future__ import annotations

import math
from datetime import date

import pytest

from margin_engine.demo.synthetic import generate_market
from margin_engine.domain.book import Account, Book, Position
from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError
from margin_engine.io.loaders import parse_model
from margin_engine.io.series import synthetic_series
from margin_engine.live import LiveBook
from margin_engine.live.market_update import apply_update, parse_update
from margin_engine.models.core.registry import model_class
from margin_engine.policy.assess import assess_account

MARKET = parse_model(MarketSnapshot, generate_market(seed=7), "market")
THIN = {"BTCUSDT": {"bids": [[72990.0, 1.0]], "asks": [[73010.0, 1.0]]}}


def _model():
    return model_class("historical-var").from_options(
        {"history": synthetic_series(date(2026, 2, 4))})


def test_depth_in_an_update_moves_the_liquidity_add_on() -> None:
    model = _model()
    acct = Account(id="a1", collateral={"USDT": 100_000.0},
                   positions=(Position(symbol="BTCUSDT", size=5.0, entry_price=73_000.0),))
    live = LiveBook(model, Book(accounts=(acct,)), MARKET)
    before = live.state("a1")
    live.update_market({"order_books": THIN})
    after = live.state("a1")
    new_market, touched, symbols = apply_update(MARKET, parse_update(
        {"order_books": THIN}, MARKET))
    assert touched == {"BTC"} and symbols == {"BTCUSDT"}
    batch = assess_account(model, acct, new_market)  # the batch path, from scratch
    assert after.initial_margin == pytest.approx(batch.initial_margin, rel=1e-9)
    assert after.initial_margin != pytest.approx(before.initial_margin, rel=1e-6)
    to_unit = MARKET.usd_price("USDT") / MARKET.usd_price(batch.currency)
    assert batch.components["liquidity"] == pytest.approx((10 + 40 * math.sqrt(5)) * to_unit,
                                                          rel=1e-12)


@pytest.mark.parametrize("books, path", [
    ({"NOPE": {"bids": [], "asks": []}}, "order_books.NOPE"),
    ({"BTCUSDT": {"bids": [[1.0, 1.0], [2.0, 1.0]]}}, "order_books.BTCUSDT"),
    ({"BTCUSDT": {"bids": [[100.0, -1.0]]}}, "order_books.BTCUSDT.bids"),
    ({"BTCUSDT": [1, 2]}, "order_books.BTCUSDT"),
    ([1], "order_books"),
])
def test_bad_depth_is_refused_with_its_path(books: object, path: str) -> None:
    with pytest.raises(InputError) as err:
        parse_update({"order_books": books}, MARKET)
    assert err.value.path.startswith(path), err.value
