"""The broadcast context: the risk-based model travels with its instrument P&L, which stays
bound to the market it came with after pickling (what ``client.scatter`` does), and gives
the same numbers bit for bit."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from margin_engine.distributed.assess import Context, assess_partition, broadcast_model
from margin_engine.domain.book import Book
from margin_engine.io.loaders import load_market, parse_model
from margin_engine.io.model_options import build_model
from margin_engine.models.risk_based import model as risk_based_model
from margin_engine.policy.assess import assess_book

from .conftest import scale_book

MARKET = Path(__file__).resolve().parents[2] / "docs" / "examples" / "market-2026-02-04.json"


@pytest.fixture(scope="module")
def inputs():
    market = load_market(MARKET)
    book = parse_model(Book, scale_book(), "book")
    # apc=none: the prepared whole-book P&L holds the model's scenarios only; the CCP default
    # floor (issue 11) revalues on its own ten-year set per unit
    model, _ = build_model("filtered-es", {"apc": "none"}, None, market)
    return model, book, market


def test_shipped_pnl_is_read_not_recomputed_after_pickling(inputs, monkeypatch):
    model, book, market = inputs
    expected = assess_book(model, book, market, liquidation_prices=False)
    model.clear_cache()
    shipped = broadcast_model(model, book, market)
    ctx = pickle.loads(pickle.dumps(Context(shipped, market, None, False)))

    def boom(*a, **k):
        raise AssertionError("revalued on the worker although the P&L was shipped")

    monkeypatch.setattr(risk_based_model, "instrument_pnl", boom)
    res = assess_partition(ctx, book.accounts)
    assert res.problems == () and len(res.reports) == len(book.accounts)
    for a, b in zip(res.reports, expected, strict=True):
        assert a == b  # dataclass equality: every float identical


def test_a_shifted_market_falls_back_to_revaluation(inputs):
    model, book, market = inputs
    shipped = broadcast_model(model, book, market)
    other = market.model_copy(update={"index": {**market.index,
                                                "BTC": market.index["BTC"] * 0.9}})
    fresh, _ = build_model("filtered-es", {"apc": "none"}, None, market)
    got = assess_book(shipped, book, other, liquidation_prices=False)
    want = assess_book(fresh, book, other, liquidation_prices=False)
    assert got == want
    assert got != assess_book(shipped, book, market, liquidation_prices=False)
