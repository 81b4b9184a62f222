"""``LiveBook.apply_fills`` (one batch, one re-margin) gives the same state as ``apply_fill``
and ``deposit`` one call at a time, and refuses a malformed batch before changing anything."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from margin_engine.analysis.cascade.population import generate_population, to_book
from margin_engine.domain.instruments import Kind
from margin_engine.errors import InputError
from margin_engine.io.loaders import load_market
from margin_engine.live import LiveBook
from margin_engine.models.core.registry import get_model

MARKET = load_market(Path(__file__).resolve().parents[2] / "docs" / "examples"
                     / "market-2026-02-04.json")
BOOK = to_book(generate_population(40, MARKET, seed=3))


@pytest.mark.parametrize("name", ["binance-usdm", "hyperliquid", "dydx-v4"])
def test_batch_equals_one_by_one(name):
    model = get_model(name, {})
    ok = [i.symbol for i in MARKET.instruments if not model.check_instrument(i)
          and i.kind is Kind.PERPETUAL]
    one, batch = LiveBook(model, BOOK, MARKET), LiveBook(model, BOOK, MARKET)
    rng = random.Random(5)
    ids = one.account_ids()
    fills = [(rng.choice(ids), rng.choice(ok), rng.choice([-2.0, -0.5, 0.25, 1.0]),
              rng.choice([None, 1.0])) for _ in range(12)]
    fills = [(a, s, q, None if p is None else float(MARKET.instrument(s).mark_price or 1) * 1.01)
             for a, s, q, p in fills]
    ccy = MARKET.instrument(ok[0]).settle
    deposits = [(rng.choice(ids), ccy, rng.choice([-3.0, 5.0])) for _ in range(5)]
    for a, s, q, p in fills:
        one.apply_fill(a, s, q, p)
    for a, c, x in deposits:
        one.deposit(a, c, x)
    batch.apply_fills(fills, deposits)
    for x, y in zip(one.states(), batch.states(), strict=True):
        assert x.status == y.status
        for f in ("initial_margin", "maintenance_margin", "equity", "available_balance"):
            assert getattr(x, f) == pytest.approx(getattr(y, f), rel=1e-12, abs=1e-9)
    arrays = batch.margin_arrays()
    assert arrays["eq"].tolist() == pytest.approx([s.equity for s in batch.states()])


def test_bad_batch_changes_nothing():
    lb = LiveBook(get_model("binance-usdm", {}), BOOK, MARKET)
    before = [s.equity for s in lb.states()]
    sym = next(i.symbol for i in MARKET.instruments if i.kind is Kind.PERPETUAL)
    with pytest.raises(InputError) as err:
        lb.apply_fills([(lb.account_ids()[0], sym, 1.0, None),
                        (lb.account_ids()[0], sym, float("nan"), None)])
    assert err.value.path == "fills[1].size"
    with pytest.raises(InputError) as err:
        lb.apply_fills([], [(lb.account_ids()[0], "NOPE", 1.0)])
    assert err.value.path == "deposits[0].currency"
    assert [s.equity for s in lb.states()] == before
