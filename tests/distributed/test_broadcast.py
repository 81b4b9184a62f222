"""The broadcast context: the risk-based model travels with its instrument P&L, which stays
bound to the market it came with after pickling (what ``client.scatter`` does), and gives
the same numbers bit for bit."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from margin_engine.distributed.assess import Context, assess_partition, broadcast_model
from margin_engine.domain.book import Book
from margin_engine.io.loaders import load_market, parse_model
from margin_engine.io.model_options import build_model
from margin_engine.models.core import scenario_pnl
from margin_engine.policy.assess import assess_book

from .conftest import scale_book

MARKET = Path(__file__).resolve().parents[2] / "docs" / "examples" / "market-2026-02-04.json"


@pytest.fixture(scope="module")
def inputs():
    market = load_market(MARKET)
    book = parse_model(Book, scale_book(), "book")
    model, _ = build_model("filtered-es", {}, None, market)
    return model, book, market


def test_shipped_pnl_is_read_not_recomputed_after_pickling(inputs, monkeypatch):
    model, book, market = inputs
    shipped = broadcast_model(model, book, market)
    assert shipped is not model and model.pnl_cache is None
    assert shipped.pnl_cache is not None and shipped.pnl_cache.nbytes > 0
    ctx = pickle.loads(pickle.dumps(Context(shipped, market, None, False)))
    assert ctx.model.pnl_cache.market is ctx.market  # identity survives one pickle
    expected = assess_book(model, book, market, liquidation_prices=False)

    def boom(*a, **k):
        raise AssertionError("revalued on the worker although the P&L was shipped")

    monkeypatch.setattr(scenario_pnl, "instrument_pnl", boom)
    res = assess_partition(ctx, book.accounts)
    assert res.problems == () and len(res.reports) == len(book.accounts)
    for a, b in zip(res.reports, expected, strict=True):
        assert a == b  # dataclass equality: every float identical


def test_a_shifted_market_falls_back_to_revaluation(inputs):
    model, book, market = inputs
    shipped = broadcast_model(model, book, market)
    cache = shipped.pnl_cache
    ins = [market.instrument("BTC-27MAR26-80000-C"), market.instrument("BTCUSDT")]
    scen = shipped.scenario_set(market, ("BTC",))
    fresh = scenario_pnl.instrument_pnl(ins, market, scen, "USD",
                                        vol_tenor_power=cache.vol_tenor_power)
    got = cache.pnl(ins, market, scen, "USD", vol_tenor_power=cache.vol_tenor_power)
    assert np.array_equal(got, fresh)
    other = market.model_copy()
    assert np.array_equal(cache.pnl(ins, other, scen, "USD",
                                    vol_tenor_power=cache.vol_tenor_power), fresh)
