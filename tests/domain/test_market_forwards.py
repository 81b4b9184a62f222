"""``MarketSnapshot.forwards`` (one scan of the futures) equals ``forward`` one by one."""

from __future__ import annotations

from datetime import timedelta

from margin_engine.demo.synthetic import generate_market
from margin_engine.domain.market import MarketSnapshot
from margin_engine.io.loaders import parse_model


def test_forwards_equal_forward_one_by_one():
    doc = generate_market(seed=7)
    opts = [i for i in doc["instruments"] if i["kind"] == "option"]
    opts[0]["underlying_price"] = 12345.0  # given: wins over any future
    opts[1]["underlying_price"] = None
    opts[1]["expiry"] = (MarketSnapshot.model_validate(doc).timestamp
                         + timedelta(days=400)).isoformat()  # no future there: the index
    market = MarketSnapshot.model_validate(doc)
    ins = list(market.instruments)
    want = [market.forward(i) for i in ins]
    assert market.forwards(ins) == want
    by = {i.symbol: f for i, f in zip(ins, want, strict=True)}
    far = market.instrument(opts[1]["symbol"])
    assert by[opts[0]["symbol"]] == 12345.0 and by[far.symbol] == market.index[far.underlying]
    assert len(set(want)) > len(market.index)  # futures' marks, not only the index


def test_a_copy_with_new_instruments_looks_symbols_up_among_them():
    market = parse_model(MarketSnapshot, generate_market(seed=7), "market")
    first = market.instruments[0]
    assert market.instrument(first.symbol) is first  # the lookup is now cached
    moved = first.model_copy(update={"mark_price": (first.mark_price or 1.0) * 2})
    copy = market.model_copy(update={"instruments": (moved, *market.instruments[1:])})
    assert copy.instrument(first.symbol) is moved
    assert market.instrument(first.symbol) is first
