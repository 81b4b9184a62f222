"""The book-level fused path equals the per-unit market risk of the risk-based models."""

from __future__ import annotations

import math
from datetime import date

import pytest

from margin_engine.demo.synthetic import generate_book, generate_market
from margin_engine.domain.book import Book
from margin_engine.domain.market import MarketSnapshot
from margin_engine.io.loaders import parse_model
from margin_engine.io.series import synthetic_series
from margin_engine.models.core.registry import get_model
from margin_engine.models.risk_based.book_risk import book_market_risk
from margin_engine.policy.assess import assess_account

MARKET_DOC = generate_market(seed=11)
MARKET = parse_model(MarketSnapshot, MARKET_DOC, "market")
BOOK = parse_model(Book, generate_book(MARKET_DOC, seed=11), "book")
HISTORY = synthetic_series(date(2026, 2, 4))


@pytest.mark.parametrize("name, extra", [
    ("historical-var", {}), ("historical-var", {"measure": "es", "confidence": 0.975}),
    ("historical-var", {"measure": "worst_loss"}), ("filtered-es", {}),
    ("monte-carlo-es", {"n_paths": 3000}), ("historical-var", {"cross_scope": "currency"})])
def test_fused_book_path_matches_per_unit(name, extra):
    model = get_model(name, {"history": HISTORY, **extra})
    batch = book_market_risk(model, BOOK, MARKET)
    checked = 0
    for account in BOOK.accounts:
        report = assess_account(model, account, MARKET, liquidation_prices=False)
        for unit in report.units:
            want = unit.margin.components.get("market_risk", 0.0)
            got = batch.values[account.id, unit.margin.id]
            assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9), (account.id,
                                                                          unit.margin.id)
            checked += 1
    assert checked >= len(BOOK.accounts)
