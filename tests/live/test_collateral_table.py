"""CollateralTable against health.collateral_value (the per-holding reference), bit for bit."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from margin_engine.demo.synthetic import generate_market
from margin_engine.domain.book import Account, MarginMode
from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError
from margin_engine.io.loaders import parse_model
from margin_engine.live.collateral import CollateralTable, Holdings
from margin_engine.policy import health
from margin_engine.policy.health import HealthPolicy

MARKET = parse_model(MarketSnapshot, generate_market(seed=7), "market")
CCYS = ["USD", "USDT", "USDC", "BTC", "ETH"]
amounts = st.one_of(st.floats(-1e7, 1e7, allow_nan=False), st.sampled_from([0.0, -0.0, 1e-300]))
holdings = st.dictionaries(st.sampled_from(CCYS), amounts, max_size=5)


@settings(max_examples=150, deadline=None)
@given(owners=st.lists(st.tuples(holdings, st.sampled_from(CCYS),
                                 st.dictionaries(st.sampled_from(CCYS), st.floats(0, 0.99),
                                                 max_size=2)), max_size=6))
def test_values_are_the_reference_bits(owners):
    policy = HealthPolicy()
    hs = [Holdings(coll, ccy, Account(id=f"a{k}", margin_mode=MarginMode.CROSS,
                                      haircuts=haircuts))
          for k, (coll, ccy, haircuts) in enumerate(owners)]
    got = CollateralTable.build(hs, policy).values(MARKET, policy)
    want = [health.collateral_value(h.collateral, h.currency, h.account, MARKET, policy)
            for h in hs]
    assert got.tolist() == want  # the same operations in the same order: the same bits


def test_an_unpriced_holding_raises_the_reference_error():
    policy = HealthPolicy()
    h = Holdings({"USDT": 5.0, "NOPE": 1.0}, "USDT", Account(id="a", margin_mode=MarginMode.CROSS))
    with pytest.raises(InputError, match="NOPE"):
        CollateralTable.build([h], policy).values(MARKET, policy)
