"""The scenario-grid engines of the live book (``span``, ``okx-pm``) against the per-unit
reference engine and ``assess_book`` on randomised books (issue 9 item 3).

The books are drawn at random over the demo market plus spot pairs and USDC-settled options (so
OKX's spot offset, MR9's stablecoin matching and linear options are exercised), with coin
balances (spot hedging), negative stablecoin balances (MR8), positions in the delivery month
(SPAN's spot charge) and BTC against ETH (the inter-commodity credit). Each step is a market
update, a fill, a deposit or a what-if, applied to a fast-engine book, a reference-engine book
and, independently, to a plain book re-assessed from scratch (sequences.drive).
"""

from __future__ import annotations

import random

import pytest

from live.sequences import FIELDS, check_states, check_what_if, close, drive, revalidated
from live.test_live_book import MARKET_DOC, build
from margin_engine.domain.book import Account, Book, MarginMode, Position
from margin_engine.domain.market import MarketSnapshot
from margin_engine.io.loaders import parse_model
from margin_engine.live import LiveBook
from margin_engine.live.okx_pm_engine import OkxPmEngine
from margin_engine.live.span_engine import SpanEngine
from margin_engine.models.core.valuation import mark


def _market() -> MarketSnapshot:
    doc = dict(MARKET_DOC)
    extra = [
        {"symbol": "BTC/USDT", "kind": "spot", "underlying": "BTC", "settle": "USDT",
         "inverse": False, "contract_size": 1, "mark_price": 73010.0},
        {"symbol": "ETH/USDC", "kind": "spot", "underlying": "ETH", "settle": "USDC",
         "inverse": False, "contract_size": 1, "mark_price": 2099.0},
        {"symbol": "BTC_USDC-27FEB26-70000-P", "kind": "option", "underlying": "BTC",
         "settle": "USDC", "inverse": False, "contract_size": 0.1,
         "expiry": "2026-02-27T08:00:00Z", "strike": 70000, "option_type": "put",
         "mark_iv": 0.55, "mark_price": 1500.0},
        {"symbol": "ETH_USDC-27MAR26-2400-C", "kind": "option", "underlying": "ETH",
         "settle": "USDC", "inverse": False, "contract_size": 1,
         "expiry": "2026-03-27T08:00:00Z", "strike": 2400, "option_type": "call",
         "mark_iv": 0.7, "mark_price": 60.0},
    ]
    doc["instruments"] = [*MARKET_DOC["instruments"], *extra]
    return parse_model(MarketSnapshot, doc, "market")


MARKET = _market()


def random_book(rng: random.Random, model, market: MarketSnapshot, n: int = 14) -> Book:
    ok = [i for i in market.instruments if model.check_instrument(i) is None]
    modes = sorted(m.value for m in model.modes if m is not MarginMode.ISOLATED)
    accounts = []
    for a in range(n):
        picks = rng.sample(ok, rng.randint(1, 9))
        if rng.random() < 0.4:  # a calendar or spot hedge on one underlying
            und = picks[0].underlying
            picks += rng.sample([i for i in ok if i.underlying == und and not i.is_option], 2)
        positions = tuple(
            Position(symbol=i.symbol,
                     size=rng.choice([-1, 1]) * rng.choice([0.5, 1, 3, 10, 40]),
                     entry_price=None if i.is_option or rng.random() < 0.5
                     else mark(i, market) * rng.uniform(0.9, 1.1))
            for i in {i.symbol: i for i in picks}.values())
        coll = {"USDT": rng.choice([-20_000.0, 5_000.0, 400_000.0]),
                "USDC": rng.choice([0.0, 50_000.0])}
        if rng.random() < 0.6:
            coll[rng.choice(["BTC", "ETH"])] = rng.choice([-0.5, 2.0, 30.0])
        accounts.append(Account(id=f"r{a}", margin_mode=rng.choice(modes), collateral=coll,
                                positions=positions))
    return Book(accounts=tuple(accounts))


CONFIGS = [
    ("span", {}),
    ("span", {"scope": "currency", "initial_factor": 1.0, "inter_spreads": [
        {"legs": ["ETH", "BTC"], "ratios": [30.0, 1.0], "ratio_unit": "underlying",
         "rate": 0.4}]}),
    ("okx-pm", {}),
    ("okx-pm", {"risk_unit_merge": False, "spot_hedging": False, "mr8_borrow_rate": 0.1}),
    ("okx-pm", {"scope": "currency"}),
]


def _same_states(a: LiveBook, b: LiveBook) -> None:
    for x, y in zip(a.states(), b.states(), strict=True):
        scale = max(abs(y.initial_margin), abs(y.equity))
        for f in FIELDS:
            assert close(getattr(x, f), getattr(y, f), scale), (x.id, f)
        assert x.status is y.status


@pytest.mark.parametrize("name, params", CONFIGS)
def test_grid_engine_equals_reference_and_assess_book(name, params):
    rng = random.Random(f"{name}{sorted(params)}")
    model = build(name, **params)
    book = random_book(rng, model, MARKET)
    market = MARKET
    fast = LiveBook(model, book, market)
    ref = LiveBook(build(name, **params), book, market, engine="reference")
    assert isinstance(fast.engine, SpanEngine if name == "span" else OkxPmEngine)
    assert type(ref.engine).__name__ == "ReferenceEngine"
    check_states(fast, book, market)
    _same_states(fast, ref)

    def deposit(rng: random.Random, acct: Account) -> tuple[str, float]:
        return rng.choice(["USDT", "BTC", "ETH"]), rng.choice([-1, 1]) * rng.choice([0.7, 3000.0])

    def check(_book: Book, _market: MarketSnapshot, _step: int) -> None:
        _same_states(fast, ref)

    run = drive(rng, model, [fast, ref], book, market, 14, update=0.35, fill=0.6, deposit=0.7,
                draw_deposit=deposit, check=check)
    book, market = run.book, run.market
    check_states(fast, book, market)


@pytest.mark.parametrize("name", ["span", "okx-pm"])
def test_what_if_is_answered_from_the_cached_rows(name):
    """An order on a held instrument is answered by the engine (never by rebuilding the
    account), buys and sells alike (OKX: with the premium or realised P&L moved in the unit's
    collateral), and equals ``assess_account`` on the filled account."""
    model = build(name)
    rng = random.Random(5)
    book = random_book(rng, model, MARKET, n=10)
    live = LiveBook(model, book, MARKET)

    def no_rebuild(*_args, **_kw):
        raise AssertionError("rebuilt instead of answered from the cache")

    live._rebuilt_what_if = no_rebuild  # type: ignore[method-assign]
    answered = 0
    for acct in book.accounts:
        for p in acct.positions:
            ins = MARKET.instrument(p.symbol)
            size = rng.choice([-3.0, 0.5, -p.size, 2.0 * p.size])
            price = mark(ins, MARKET) * rng.choice([0.95, 1.0, 1.04])
            check_what_if([live], model, acct, MARKET, [(p.symbol, size, price)])
            answered += 1
    assert answered >= 20


@pytest.mark.parametrize("name", ["span", "okx-pm"])
def test_a_tick_revalues_only_the_instruments_that_moved(name):
    model = build(name)
    book = random_book(random.Random(8), model, MARKET)
    live = LiveBook(model, book, MARKET)
    eng = live.engine
    seen: list[int] = []
    real = eng._revalue

    def spy(rows):
        seen.extend(rows.tolist())
        real(rows)

    eng._revalue = spy  # type: ignore[method-assign]
    change = {"index": {"ETH": MARKET.index["ETH"] * 1.04}}
    live.update_market(change)
    market = revalidated(MARKET, change)
    names = list(market.instruments)
    assert seen and all("ETH" in (names[k].underlying, names[k].settle) for k in seen)
    assert set(seen) <= set(live.pos_ins.tolist())  # only instruments some unit holds
    check_states(live, book, market)
