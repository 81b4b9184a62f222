"""Every registered model on the demo's synthetic book: the invariants all models share
(issue 3: IM ≥ MM ≥ 0, contributions add up, JSON output, bit-identical reruns)."""

from __future__ import annotations

import json
import math
from datetime import date

import pytest

from margin_engine.demo.synthetic import generate_book, generate_market
from margin_engine.domain.book import Book, check_against_market
from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError
from margin_engine.io.loaders import parse_model
from margin_engine.io.report_json import compute_json
from margin_engine.io.series import synthetic_series
from margin_engine.models.core.registry import model_class, model_names
from margin_engine.policy.assess import assess_account

MARKET_DOC = generate_market(seed=7)
MARKET = parse_model(MarketSnapshot, MARKET_DOC, "market")
BOOK = parse_model(Book, generate_book(MARKET_DOC, seed=7), "book")
check_against_market(BOOK, MARKET)
HISTORY = synthetic_series(date(2026, 2, 4))


def build(name: str):
    cls = model_class(name)
    opts = {"history": HISTORY} if "history" in cls.Params.model_fields else {}
    if name == "monte-carlo-es":
        opts["n_paths"] = 2000
    return cls.from_options(opts)


def test_the_design_names_are_all_registered():
    assert set(model_names()) >= {"binance-usdm", "hyperliquid", "dydx-v4", "deribit-standard",
                                  "deribit-pm", "derive-pmrm", "historical-var", "filtered-es",
                                  "monte-carlo-es"}


@pytest.mark.parametrize("name", model_names())
def test_invariants_on_every_account_the_model_margins(name):
    model = build(name)
    margined = 0
    for account in BOOK.accounts:
        try:
            r = assess_account(model, account, MARKET, liquidation_prices=False)
        except InputError:
            continue  # the model does not margin this account (reason tested per model)
        margined += 1
        assert r.initial_margin >= r.maintenance_margin >= 0, account.id
        for u in r.units:
            total = sum(p.contribution for p in u.margin.positions)
            assert math.isclose(total, u.margin.initial_margin, rel_tol=1e-6, abs_tol=1e-6), (
                account.id, u.margin.id)
        again = assess_account(build(name), account, MARKET, liquidation_prices=False)
        assert again.initial_margin == r.initial_margin
        doc = compute_json(model, [r], "t")
        json.dumps(doc, allow_nan=False)
    assert margined > 0, f"{name} margined none of the demo accounts"


def test_risk_based_models_margin_mixed_linear_inverse_option_accounts():
    """A cross-collateral book with linear, inverse and option positions across BTC and ETH."""
    mixed = [a for a in BOOK.accounts
             if {MARKET.instrument(p.symbol).kind.value for p in a.positions} >= {"option"}
             and any(MARKET.instrument(p.symbol).inverse for p in a.positions)]
    assert mixed
    for name in ("historical-var", "filtered-es", "monte-carlo-es"):
        r = assess_account(build(name), mixed[0], MARKET, liquidation_prices=False)
        assert r.initial_margin > 0
