"""The rule-based engines (hyperliquid, dydx-v4, deribit-standard) against the reference engine
and ``assess_book`` on randomised books (issue 9).

The books are generated here to reach what the demo book does not: tiers crossed, leverages set
(and a default above an asset's maximum), open-interest scaling and custom IMFs, round sizes and
prices (dYdX's exact quantum rounding), an isolated dYdX market, one symbol held twice, short
inverse and linear options (quoted and Black-76 marks, forwards from a future or the index),
cross collateral with haircuts. Every step of a random sequence of market updates, fills,
deposits and what-ifs (sequences.drive) compares the fast book with a reference-engine book,
unit by unit.
"""

from __future__ import annotations

import copy
import importlib.util
import math
import random
from pathlib import Path

import pytest

from margin_engine.domain.book import Account, Book, Position
from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError
from margin_engine.io.loaders import parse_model
from margin_engine.live import LiveBook
from margin_engine.live.rule_engines import FractionEngine, StandardEngine, TierEngine
from margin_engine.models.core.registry import model_class
from margin_engine.models.core.valuation import mark
from margin_engine.policy.assess import assess_account

from .sequences import FIELDS, check_states, close, drive, my_fill, revalidated
from .test_live_book import MARKET_DOC


def _market() -> MarketSnapshot:
    """The demo market plus linear (USDC) options and inverse options without a quoted mark or
    underlying price (Black-76 on a same-expiry future's mark or the index)."""
    doc = copy.deepcopy(MARKET_DOC)
    opts = [i for i in doc["instruments"] if i["kind"] == "option"]
    extra = []
    for n, i in enumerate(opts[::9]):
        lin = dict(i, symbol=i["symbol"] + "-USDC", settle="USDC", inverse=False)
        lin.pop("mark_price")
        if n % 2:
            lin.pop("underlying_price")
        inv = dict(i, symbol=i["symbol"] + "-B76")
        inv.pop("mark_price")
        inv.pop("underlying_price")
        extra += [lin, inv]
    doc["instruments"] = doc["instruments"] + extra
    return parse_model(MarketSnapshot, doc, "market")


MARKET = _market()

TIERS = {"BTC": [{"lower_bound": 0, "max_leverage": 40}, {"lower_bound": 150_000,
                                                           "max_leverage": 20},
                 {"lower_bound": 600_000, "max_leverage": 10}],
         "ETH": [{"lower_bound": 0, "max_leverage": 25}, {"lower_bound": 20_000,
                                                           "max_leverage": 10}]}
CONFIGS = {
    "hyperliquid-tiers": ("hyperliquid", {"margin_tables": TIERS}),
    "hyperliquid-default-30x": ("hyperliquid", {"margin_tables": TIERS, "default_leverage": 30}),
    "dydx-v4-oi": ("dydx-v4", {"market_liquidity_tier": {"BTC": 1, "ETH": 5},
                               "open_interest": {"BTC": 300.0, "ETHUSDT": 30_000.0},
                               "isolated_markets": ["ETH_USDC-PERPETUAL"]}),
    "dydx-v4-default": ("dydx-v4", {}),
    "deribit-standard-segregated": ("deribit-standard", {}),
    "deribit-standard-cross": ("deribit-standard", {
        "collateral": "cross", "collateral_haircuts": {"ETH": 0.1, "USDC": 0.02},
        "haircut_applies_to_mm": True, "option_otm_reference": "index"}),
}
ENGINE = {"hyperliquid": TierEngine, "dydx-v4": FractionEngine,
          "deribit-standard": StandardEngine}


def random_book(model, rng: random.Random, n: int) -> Book:
    """``n`` accounts the model margins: random positions (round and ragged sizes), leverages,
    collateral and modes. (One symbol held twice: see the fallback test; the live book does not
    net such positions as ``assess_account`` does.)"""
    ok = [i for i in MARKET.instruments if model.check_instrument(i) is None]
    accounts = []
    while len(accounts) < n:
        k = len(accounts)
        picks = rng.sample(ok, min(len(ok), rng.randint(1, 5)))
        positions = []
        for ins in picks:
            big = 20.0 if ins.underlying == "BTC" else 300.0
            size = rng.choice([0.1, 0.5, 1.0, 2.5, round(rng.uniform(-big, big), 3),
                               rng.uniform(-big, big)]) * rng.choice([-1, 1])
            if ins.inverse and not ins.is_option:
                size = round(size * 1000)  # USD face value contracts
            positions.append(Position(symbol=ins.symbol, size=size or 1.0,
                                      entry_price=rng.choice([None, mark(ins, MARKET) * 0.99])))
        leverage = {p.symbol: float(rng.choice([1, 3, 5, 10, 20]))
                    for p in positions if rng.random() < 0.4}
        mode = rng.choice(sorted(m.value for m in model.modes))
        acct = Account(id=f"a{k}", margin_mode=mode, positions=tuple(positions),
                       leverage=leverage,
                       collateral={"USDC": rng.uniform(1e3, 5e5), "BTC": rng.uniform(0, 5),
                                   "ETH": rng.uniform(0, 50)})
        try:
            assess_account(model, acct, MARKET, liquidation_prices=False)
        except InputError:
            continue
        accounts.append(acct)
    return Book(accounts=tuple(accounts))


def same_units(fast: LiveBook, ref: LiveBook) -> None:
    """Every unit's IM and MM and every account's numbers: fast engine = reference engine."""
    assert fast.n_units == ref.n_units
    for s in fast.live_slots():
        for a, b in ((fast._im.a[s], ref._im.a[s]), (fast._mm.a[s], ref._mm.a[s])):
            assert close(float(a), float(b)), (s, float(a), float(b))
    for a, b in zip(fast.states(), ref.states(), strict=True):
        for f in FIELDS:
            assert close(getattr(a, f), getattr(b, f)), (a.id, f)
        assert a.status is b.status


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_rule_engine_equals_reference_and_assess_book(config):
    name, opts = CONFIGS[config]
    model = model_class(name).from_options(copy.deepcopy(opts))
    rng = random.Random(config)
    book = random_book(model, rng, 30)
    market = MARKET
    fast = LiveBook(model, book, market)
    ref = LiveBook(model_class(name).from_options(copy.deepcopy(opts)), book, market,
                   engine="reference")
    assert type(fast.engine) is ENGINE[name]
    same_units(fast, ref)
    check_states(fast, book, market)

    def deposit(rng: random.Random, acct: Account) -> tuple[str, float]:
        return "ETH", rng.choice([-0.3, 0.5]) * acct.collateral.get("ETH", 1.0) or 1.0

    def check(book: Book, market: MarketSnapshot, step: int) -> None:
        same_units(fast, ref)
        if step % 8 == 7:
            check_states(fast, book, market)

    run = drive(rng, model, [fast, ref], book, market, 40, update=0.35, fill=0.65, deposit=0.72,
                draw_deposit=deposit, check=check, skip_refused=True)
    book, market = run.book, run.market
    check_states(fast, book, market)


def test_fallback_units_are_the_ones_the_arrays_cannot_reproduce():
    """A default leverage above an asset's maximum (capped by the model) goes through the
    reference path; the rest stay on arrays (one symbol held twice too: the book nets it on the
    way in, as assess_account does)."""
    model = model_class("hyperliquid").from_options({"margin_tables": TIERS,
                                                     "default_leverage": 30})
    twice = Position(symbol="BTCUSDT", size=1.0)
    book = Book(accounts=(
        Account(id="eth", margin_mode="cross", positions=(Position(symbol="ETHUSDT", size=3.0),)),
        Account(id="eth-10x", margin_mode="cross", leverage={"ETHUSDT": 10},
                positions=(Position(symbol="ETHUSDT", size=3.0),)),
        Account(id="twice", margin_mode="cross", positions=(twice, twice)),
        Account(id="btc", margin_mode="cross", positions=(twice,))))
    live = LiveBook(model, book, MARKET)
    assert live.engine._reference(live.live_slots()).tolist() == [True, False, False, False]
    check_states(live, book, MARKET)


@pytest.mark.parametrize("name, opts, account", [
    ("hyperliquid", {}, Account(id="x", margin_mode="cross", leverage={"BTCUSDT": 2.5},
                                positions=(Position(symbol="BTCUSDT", size=1.0),))),
    ("dydx-v4", {}, Account(id="x", margin_mode="cross", leverage={"BTCUSDT": 100},
                            positions=(Position(symbol="BTCUSDT", size=1.0),))),
    ("dydx-v4", {"isolated_markets": ["ETHUSDT"]}, Account(
        id="x", margin_mode="cross", positions=(Position(symbol="ETHUSDT", size=1.0),
                                                Position(symbol="BTCUSDT", size=1.0)))),
])
def test_the_models_errors_come_through_the_fast_engines(name, opts, account):
    model = model_class(name).from_options(opts)
    with pytest.raises(InputError) as want:
        assess_account(model, account, MARKET, liquidation_prices=False)
    with pytest.raises(InputError) as got:
        LiveBook(model, Book(accounts=(account,)), MARKET)
    assert got.value.path == want.value.path


@pytest.mark.parametrize("btc_mark", [70000.1, 70000.0, 76760.00000000001, 65432.123456])
def test_dydx_quantum_rounding_is_exact(btc_mark):
    """Decimal sizes and prices: the exact notional is often a whole number of quantums that
    the float product misses (0.119 × 70000.1 × 10⁶ = 8330011899.999999 in floats); the engine
    must match the model's fractions to the quantum (at leverage 1, IMR = notional; at the
    default IMF the rounding up to whole ppm hides most of it), on its int64 path and on its
    fraction path (a mark with 11 decimals, 17-digit sizes, a float one ulp below a short
    decimal: 0.29999999999999993 is not 0.3)."""
    model = model_class("dydx-v4").from_options({})
    rng = random.Random(btc_mark)
    sizes = [round(n * 0.001, 3) * (-1) ** n for n in range(1, 300)] + [
        1e-6, 12.35, 1234.5678901, *(rng.uniform(-5, 5) for _ in range(20)),
        *(math.nextafter(q, 0.0) for q in (0.3, 0.119, 1.5, 2.0))]  # one ulp below a decimal
    held = [("BTC_USDC-PERPETUAL", q) for q in sizes] + [("ETH_USDC-PERPETUAL", float(q))
                                                         for q in range(-20, 21) if q]
    book = Book(accounts=tuple(
        Account(id=f"r{n}", margin_mode="isolated", leverage={sym: 1 + n % 2},
                positions=(Position(symbol=sym, size=q),))
        for n, (sym, q) in enumerate(held)))
    live = LiveBook(model, book, MARKET)
    change = {"instruments": [{"symbol": "BTC_USDC-PERPETUAL", "mark_price": btc_mark},
                              {"symbol": "ETH_USDC-PERPETUAL", "mark_price": 2100.0}]}
    live.update_market(change)
    market = revalidated(MARKET, change)
    for a in book.accounts:
        want = assess_account(model, a, market, liquidation_prices=False)
        st = live.state(a.id)
        assert st.initial_margin == want.initial_margin, a.positions  # to the quantum
        assert st.maintenance_margin == want.maintenance_margin
        # the what-if's one-position pricing (integers, not the arrays) to the quantum too
        g = live.unit_positions(live._acct_units[live._by_id[a.id]][0])[0]
        assert live.engine.price_one(int(g), a.positions[0].size) == (
            want.initial_margin, want.maintenance_margin), a.positions


def _bench_data():
    """bench/live_book_data.py (not a package on the test path)."""
    path = Path(__file__).resolve().parents[2] / "bench" / "live_book_data.py"
    spec = importlib.util.spec_from_file_location("live_book_data", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("name", sorted(ENGINE))
def test_the_bench_configuration_runs_on_the_fast_engine(name):
    """bench_live's market and model for each venue (one linear perpetual per coin for
    hyperliquid and dydx-v4): the fast engine, equal to the reference engine on a small
    generated book (10 coins, whole sizes), before and after every price moves 1%."""
    lbd = _bench_data()
    perps = name in ("hyperliquid", "dydx-v4")
    market = lbd.linear_market(len(lbd.COINS)) if perps else lbd.deribit_market(200)
    book = lbd.random_book(market, 40, min(10, len(market.instruments)), mode="cross")
    fast = LiveBook(lbd.model_for(name, market), book, market)
    ref = LiveBook(lbd.model_for(name, market), book, market, engine="reference")
    assert type(fast.engine) is ENGINE[name]
    same_units(fast, ref)
    other = MarketSnapshot.model_construct(  # not model_copy: it keeps the symbol lookup
        timestamp=market.timestamp, index={k: v * 1.01 for k, v in market.index.items()},
        fx=market.fx, order_books={}, vol_surface={}, rates={},
        instruments=tuple(i.model_copy(update={"mark_price": i.mark_price * 1.01})
                          for i in market.instruments))
    for lv in (fast, ref):
        lv.set_market(other)
    same_units(fast, ref)


@pytest.mark.parametrize("config", ["deribit-standard-segregated", "deribit-standard-cross"])
def test_deribit_what_if_on_every_kind_of_position(config):
    """A what-if on each kind of held position (linear and inverse perpetuals and futures,
    short and long inverse and linear options, quoted and Black-76 marks) equals
    ``assess_account`` on the account with the order filled."""
    name, opts = CONFIGS[config]
    model = model_class(name).from_options(copy.deepcopy(opts))
    picks = {"BTCUSDT": 3.5, "ETH_USDC-PERPETUAL": -40.0, "BTC-PERPETUAL": -25_000.0,
             "BTC-27FEB26": 12_000.0}
    opts_held = [i.symbol for i in MARKET.instruments if i.is_option]
    for n, sym in enumerate(opts_held[::13]):
        picks[sym] = -2.5 if n % 3 else 1.5
    picks.update({s: -3.0 for s in opts_held if s.endswith(("-USDC", "-B76"))})
    acct = Account(id="k", margin_mode="cross", collateral={"USDC": 5e5, "BTC": 3.0, "ETH": 40.0},
                   positions=tuple(Position(symbol=s, size=q) for s, q in picks.items()))
    live = LiveBook(model, Book(accounts=(acct,)), MARKET)
    check_states(live, Book(accounts=(acct,)), MARKET)
    for sym, q in picks.items():
        for size in (q * 0.5, -q * 1.5):
            got = live.what_if("k", [(sym, size, None)])
            after = my_fill(acct, MARKET, sym, size, mark(MARKET.instrument(sym), MARKET))
            want = assess_account(model, after, MARKET, liquidation_prices=False)
            for f in FIELDS:
                assert close(getattr(got.after, f), getattr(want, f)), (sym, size, f)
