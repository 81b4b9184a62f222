"""bench/live_book_data.py builds instruments without validation: they must still be the objects
validation would make. Issue 14 follow-up: its deep out-of-the-money inverse options carried marks
of 1e-8 (below the legal range of a mark) and ``kind="option"`` as a plain string, so
``is_option`` was False and the model revalued them as inverse futures priced at 1e-8 coin —
6.8e10 USD of expected shortfall. The generator's fault: a validated market cannot say that."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from margin_engine.domain.instruments import Instrument
from margin_engine.domain.market import MarketSnapshot
from margin_engine.maths import black76
from margin_engine.maths.scenarios import ScenarioSet
from margin_engine.models.core.scenario_pnl import instrument_pnl

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("live_book_data",
                                               ROOT / "bench" / "live_book_data.py")
assert _spec is not None and _spec.loader is not None
lbd = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lbd)


@pytest.mark.parametrize("make", ["deribit_market", "linear_market"])
def test_generated_instruments_are_what_validation_makes(make):
    market = getattr(lbd, make)(400)
    for ins in market.instruments:
        valid = Instrument.model_validate(ins.model_dump())
        for f in Instrument.model_fields:
            a, b = getattr(ins, f), getattr(valid, f)
            assert type(a) is type(b) and a == b, (ins.symbol, f, a, b)
        assert (ins.is_option, ins.is_call, ins.has_expiry) == (
            valid.is_option, valid.is_call, valid.has_expiry)


def test_deep_otm_inverse_options_have_bounded_scenario_pnl():
    """Per contract, an option is worth between 0 and max(forward, strike) USD in any scenario
    (a call is below the forward, a put below the strike), so its P&L (value change) is bounded
    by that: an independent bound, not the model's formula."""
    market = lbd.deribit_market(400)
    opts = [i for i in market.instruments if i.strike is not None]
    # the deep out-of-the-money options whose marks (then 1e-8) gave the absurd margin
    assert any(i.mark_price == lbd.MIN_OPTION_MARK for i in opts)
    unds = tuple(sorted({i.underlying for i in opts}))
    rng = np.random.default_rng(3)
    n = 200
    scen = ScenarioSet(unds, rng.uniform(-0.3, 0.3, (n, len(unds))),
                       rng.uniform(-0.2, 0.3, (n, len(unds))), 1.0, np.full(n, 1.0 / n),
                       tuple(str(s) for s in range(n)), "test")
    pnl = instrument_pnl(opts, market, scen, "USD")
    for i, row in zip(opts, pnl, strict=True):
        x = scen.price_moves[:, scen.column(i.underlying)]
        cap = i.contract_size * np.maximum(lbd.SPOT[i.underlying] * 1.01 * (1 + x), i.strike)
        assert np.all(np.abs(row) <= cap), i.symbol
        # a long option loses at most what it is worth now (reference Black-76, USD)
        now = i.contract_size * black76.price_usd(market.forward(i), i.strike,
                                                  market.years_to_expiry(i), i.mark_iv, i.is_call)
        assert row.min() >= -now * (1 + 1e-6) - 1e-9, i.symbol


def test_a_legal_market_with_the_smallest_marks_gives_bounded_pnl():
    """The model side: a validated market cannot carry the generator's objects (a mark must be
    above 1e-8, an option needs a mark_iv or a surface: vol is never inverted from the mark),
    and deep out-of-the-money inverse options at the smallest legal mark keep a P&L within the
    option's bounds under ±50% moves and vol up to +100 points."""
    now = datetime(2026, 2, 4, 9, 30, tzinfo=UTC)
    exp = datetime(2026, 2, 21, 8, tzinfo=UTC)
    ins = tuple(Instrument(symbol=f"BTC-21FEB26-{k:g}-{cp[0].upper()}", kind="option",
                           underlying="BTC", settle="BTC", inverse=True, contract_size=1.0,
                           mark_price=2e-8, expiry=exp, strike=k, option_type=cp, mark_iv=0.69)
                for k, cp in [(38000.0, "put"), (200000.0, "call")])
    market = MarketSnapshot(timestamp=now, index={"BTC": 76000.0}, instruments=ins)
    with pytest.raises(ValueError, match="mark_price"):
        Instrument.model_validate({**ins[0].model_dump(), "mark_price": 1e-8})
    rng = np.random.default_rng(0)
    n = 500
    x = rng.uniform(-0.5, 0.5, (n, 1))
    scen = ScenarioSet(("BTC",), x, rng.uniform(-0.3, 1.0, (n, 1)), 1.0, np.full(n, 1.0 / n),
                       tuple(str(s) for s in range(n)), "test")
    pnl = instrument_pnl(list(ins), market, scen, "USD")
    for i, row in zip(ins, pnl, strict=True):
        assert np.all(np.abs(row) <= np.maximum(76000.0 * (1 + x[:, 0]), i.strike))
        now_usd = black76.price_usd(76000.0, i.strike, market.years_to_expiry(i), 0.69,
                                    i.is_call)
        assert row.min() >= -now_usd * (1 + 1e-6) - 1e-12
