"""deribit-pm's array engine against the per-unit reference (``DeribitPm.margin_unit``) and
``assess_book``, on seeded random books mixing perpetuals, futures and options, coin-settled
(inverse) and stablecoin-settled (linear) ones, under random market updates, fills, deposits
and what-ifs."""

from __future__ import annotations

import random
from datetime import timedelta

import numpy as np
import pytest

from margin_engine.domain.book import Account, Book, MarginMode, Position
from margin_engine.domain.market import MarketSnapshot
from margin_engine.live import LiveBook
from margin_engine.live.deribit_pm_engine import DeribitPmEngine
from margin_engine.live.engines import ReferenceEngine
from margin_engine.models.core.valuation import mark
from margin_engine.models.venues.deribit_pm import DeribitPm, DeribitPmParams
from margin_engine.policy.assess import assess_account

from .sequences import Order, check_states, close, drive, my_fill, revalidated
from .test_live_book import MARKET

#: Parameter sets the engine must follow: the defaults (btc: no pnl offset; eth, usd: 0.6 and
#: 0.4 with caps), and every switch of the aggregation and roll shock the other way.
PARAMS = {
    "defaults": {},
    "variants": {"extended_dampener_rule": "off", "worst_case_decimals": None,
                 "initial_margin_decimals": 3, "roll_shock_term": "sqrt",
                 "linear_reference_price": "index", "currency_amounts_in_usd": False,
                 "mm_factor": 0.7,
                 "currency": {"btc": {"pnl_offset": 0.5, "max_offsetable_pnl": 0.02}}},
    "orders": {"buckets_count": 2, "extended_moves": (-0.5, 0.8, 3.0),
               "order_margins": {"acct1": {"BTC": {"open_orders_margin": 0.25,
                                                   "mmp_margin": 0.01}},
                                 "acct2": {"eth": {"spot_margin": 0.5}}}},
}


def random_book(rng: random.Random, model: DeribitPm, n_accounts: int) -> Book:
    """Accounts of 1-9 random instruments the model margins (any kind, any settlement)."""
    ok = [i.symbol for i in MARKET.instruments if model.check_instrument(i) is None]
    accounts = []
    for a in range(n_accounts):
        syms = rng.sample(ok, rng.randint(1, 9))
        pos = tuple(Position(symbol=s, size=rng.choice([-1, 1]) * rng.choice([0.5, 1, 3, 10]))
                    for s in syms)
        coll = {c: rng.uniform(0.5, 5.0) * (1.0 if c in ("BTC", "ETH") else 2e4)
                for c in rng.sample(["BTC", "ETH", "USDC", "USDT"], rng.randint(1, 3))}
        accounts.append(Account(id=f"acct{a}", margin_mode=rng.choice(
            [MarginMode.CROSS, MarginMode.PORTFOLIO]), collateral=coll, positions=pos))
    return Book(accounts=tuple(accounts))


def check_units(live: LiveBook) -> None:
    """Every unit's (IM, MM): the engine's against ``margin_unit``'s on the same book."""
    slots = live.live_slots()
    im, mm = live.engine.margins(slots)
    im_r, mm_r = ReferenceEngine(live).margins(slots)
    for k in range(len(slots)):
        assert close(im[k], im_r[k]) and close(mm[k], mm_r[k]), (slots[k], im[k], im_r[k])


@pytest.mark.parametrize("params", sorted(PARAMS))
@pytest.mark.parametrize("seed", [1, 2])
def test_engine_equals_reference_and_assess_book(params, seed):
    model = DeribitPm(DeribitPmParams(**PARAMS[params]))
    rng = random.Random(f"{params}{seed}")
    book = random_book(rng, model, 8)
    market: MarketSnapshot = MARKET
    live = LiveBook(model, book, market)
    assert isinstance(live.engine, DeribitPmEngine)
    if params == "orders":  # order margins reach units in both coins (keys any case)
        assert np.count_nonzero(live.engine._slot_extra) == 2
    check_units(live)
    check_states(live, book, market)

    def fill(rng: random.Random, model, acct: Account, market: MarketSnapshot) -> list[Order]:
        held = rng.random() < 0.6
        sym = rng.choice(acct.positions).symbol if held else rng.choice(
            [i.symbol for i in market.instruments if model.check_instrument(i) is None])
        return [(sym, rng.choice([-1, 1]) * rng.choice([0.5, 2, 7]), None)]

    def what_if(rng: random.Random, model, acct: Account, market: MarketSnapshot
                ) -> list[Order]:  # orders on held symbols: answered from the cached vectors
        return [(p.symbol, rng.choice([-1, 1]) * rng.choice([0.5, 3, 25]), None)
                for p in rng.sample(acct.positions, min(2, len(acct.positions)))]

    def deposit(rng: random.Random, acct: Account) -> tuple[str, float]:
        ccy = rng.choice(sorted(acct.collateral))
        return ccy, -0.4 * acct.collateral[ccy]

    def check(book: Book, market: MarketSnapshot, _step: int) -> None:
        check_units(live)
        check_states(live, book, market)

    drive(rng, model, [live], book, market, 14, update=0.35, fill=0.6, deposit=0.7,
          draw_fill=fill, draw_what_if=what_if, draw_deposit=deposit, check=check)


def test_what_if_is_answered_from_the_cache():
    """The engine answers one held-symbol order itself (one row addition), equal to the unit's
    ``margin_unit`` with the order filled; a symbol the unit does not hold goes to the rebuild."""
    model = DeribitPm()
    book = random_book(random.Random(5), model, 6)
    live = LiveBook(model, book, MARKET)
    eng = live.engine
    assert isinstance(eng, DeribitPmEngine)
    for i, acct in enumerate(book.accounts):
        for p in acct.positions:
            k = live.instruments.index[p.symbol]
            slot = next(s for s in live._acct_units[i]
                        if k in live.pos_ins[live.unit_positions(s)].tolist())
            for size in (-4.0, 0.3, -p.size):
                got = eng.what_if(slot, [(k, size)])
                assert got is not None
                after = my_fill(acct, MARKET, p.symbol, size, mark(MARKET.instrument(p.symbol),
                                                                   MARKET))
                unit = next(u for u in model.units(after, MARKET)
                            if u.currency == live.unit(slot).currency)
                want = model.margin_unit(unit, after, MARKET)
                assert close(got[0], want.initial_margin), (acct.id, p.symbol, size)
                assert close(got[1], want.maintenance_margin), (acct.id, p.symbol, size)
    other = next(i for i in MARKET.instruments if i.symbol not in
                 {p.symbol for p in book.accounts[0].positions}
                 and i.settle == live.unit(live._acct_units[0][0]).currency)
    assert eng.what_if(live._acct_units[0][0],
                       [(live.instruments.index[other.symbol], 1.0)]) is None


def test_a_tick_regathers_only_the_moved_underlying():
    """A BTC tick revalues BTC instruments and re-gathers the vectors on BTC only: the ETH
    vectors keep their cached values (and stay equal to the reference)."""
    model = DeribitPm()
    book = random_book(random.Random(8), model, 10)
    live = LiveBook(model, book, MARKET)
    eng = live.engine
    assert isinstance(eng, DeribitPmEngine)
    arr = live.instruments
    keys = eng._v_key.a
    on_btc = arr.underlying[np.array([k for k in range(len(arr.instruments))])] == arr.ccy["BTC"]
    btc_keys = np.unique(arr.underlying[on_btc] * len(arr.currencies) + arr.settle[on_btc])
    eth_vectors = np.flatnonzero(~np.isin(keys, btc_keys))
    before = eng._V[eth_vectors].copy()
    live.update_market({"index": {"BTC": MARKET.index["BTC"] * 1.07}})
    assert np.array_equal(eng._V[eth_vectors], before)
    assert eng._fresh.a.all()  # the re-margin re-gathered the BTC ones
    check_units(live)


def test_vectors_of_replaced_units_are_dropped():
    """Every fill gives the account's units new slots (new vectors); the old ones are dropped
    once they outnumber the live ones, and the book stays equal to ``assess_book``."""
    model = DeribitPm()
    rng = random.Random(4)
    book = random_book(rng, model, 4)
    live = LiveBook(model, book, MARKET)
    eng = live.engine
    assert isinstance(eng, DeribitPmEngine)
    eng.compact_min = 16
    seen = []
    for step in range(60):
        i = step % len(book.accounts)
        acct = book.accounts[i]
        p = rng.choice(acct.positions)
        live.apply_fill(acct.id, p.symbol, 0.5)
        accounts = list(book.accounts)
        accounts[i] = my_fill(acct, MARKET, p.symbol, 0.5, mark(MARKET.instrument(p.symbol),
                                                                MARKET))
        book = Book(accounts=tuple(accounts))
        seen.append(eng._nv)
    live_nv = int(np.maximum(eng._slot_nv[live.live_slots()], 0).sum())
    assert max(seen) <= 2 * max(seen[:4]) + 32  # bounded, not one unit's vectors per fill
    assert min(seen[4:]) < max(seen)  # compacted at least once
    assert eng._nv <= 2 * live_nv + 32
    check_units(live)
    check_states(live, book, MARKET)
    acct = book.accounts[0]
    got = live.what_if(acct.id, [(acct.positions[0].symbol, 1.0, None)])
    after = my_fill(acct, MARKET, acct.positions[0].symbol, 1.0,
                    mark(MARKET.instrument(acct.positions[0].symbol), MARKET))
    want = assess_account(model, after, MARKET, liquidation_prices=False)
    assert close(got.after.initial_margin, want.initial_margin, abs(want.initial_margin))


def test_cross_collateral_units_fall_back_to_the_reference():
    """X:PM (one USD unit over the account, collateral revalued in the scenarios) is margined
    by ``margin_unit``; the book still equals ``assess_book``, after a tick too."""
    model = DeribitPm(DeribitPmParams(collateral="cross"))
    book = random_book(random.Random(3), model, 5)
    live = LiveBook(model, book, MARKET)
    eng = live.engine
    assert isinstance(eng, DeribitPmEngine)
    assert all(eng.what_if(s, []) is None for s in live.live_slots())
    check_states(live, book, MARKET)
    change = {"index": {"ETH": MARKET.index["ETH"] * 0.9},
              "timestamp": MARKET.timestamp + timedelta(hours=3)}
    live.update_market(change)
    check_states(live, book, revalidated(MARKET, change))
