"""The live risk engine charges an unrated account ``credit_unrated`` (found by the optimiser's
benchmark: on a market without order books the array path refused ``credit_rating: None``), the
same number as the batch model."""

from __future__ import annotations

import pytest

from margin_engine.demo.run import write_sample
from margin_engine.domain.book import Book
from margin_engine.io.loaders import load_book, load_market
from margin_engine.io.model_options import build_model
from margin_engine.live import LiveBook
from margin_engine.policy.assess import assess_account


@pytest.mark.parametrize("unrated", [0.0, 0.1])
def test_unrated_account_without_order_books(tmp_path, unrated):
    market_path, book_path, _ = write_sample(tmp_path, seed=7)
    market = load_market(market_path).model_copy(update={"order_books": {}})
    acct = next(a for a in load_book(book_path).accounts if a.id == "basis-trader")
    acct = acct.model_copy(update={"credit_rating": None})
    model, _ = build_model("filtered-es", {"credit_unrated": unrated}, None, market)
    live = LiveBook(model, Book(accounts=(acct,)), market)
    batch = assess_account(model, acct, market, liquidation_prices=False)
    assert live.state(acct.id).initial_margin == pytest.approx(batch.initial_margin, rel=1e-9)
    assert batch.components["credit"] == pytest.approx(unrated * batch.components["market_risk"],
                                                       rel=1e-12)
