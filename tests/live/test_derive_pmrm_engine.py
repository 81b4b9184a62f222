"""derive-pmrm on the live book's array engine against the per-unit reference (issue 9).

The demo market lists only inverse (coin-settled) options, which Derive's PMRM_2 does not
margin, so these tests build a USDC-settled market of their own: perpetuals and calls/puts on
BTC and ETH over three expiries (either side of Derive's 30-day vol-shock kink), forwards given
per option or read from the index, a snapshot rate and a de-pegged stablecoin (the peg-loss IM
add-on). Random sequences of market updates, fills, deposits and what-ifs (the driver of
sequences.py) must keep every account equal to ``assess_book`` and to the reference engine to
1e-9; Derive's published portfolio cases that map onto a book must give the core's charges.
"""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from margin_engine.domain.book import Account, Book
from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError
from margin_engine.io.loaders import parse_model
from margin_engine.live import LiveBook
from margin_engine.live.derive_pmrm_engine import DerivePmrmEngine
from margin_engine.maths import black76
from margin_engine.models.core.registry import get_model
from margin_engine.models.venues import derive_pmrm_core as core

from .sequences import check_states, check_what_if, close, drive, revalidated

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
SPOT = {"BTC": 68000.0, "ETH": 2000.0}
CASES = (Path(__file__).resolve().parents[3] / "shared" / "data" / "peer"
         / "derive-v2-core-pmrm2-cases")


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def derive_market(split_forward: bool = True) -> MarketSnapshot:
    """USDC perpetuals and options on BTC and ETH; ``split_forward`` adds an ETH option whose
    forward differs from the rest of its expiry (what the engine leaves to the reference)."""
    ins: list[dict[str, Any]] = []
    for und, s in SPOT.items():
        ins.append({"symbol": f"{und}-PERP", "kind": "perpetual", "underlying": und,
                    "settle": "USDC", "mark_price": s * 1.0004})
        for days, fwd in ((6, s * 1.001), (13, s * 1.002), (45, None)):
            expiry = NOW + timedelta(days=days)
            f = fwd or s
            t = days / 365.0
            for m in (0.8, 0.9, 1.0, 1.1, 1.25):
                strike = round(s * m, 2)
                for cp in ("call", "put"):
                    iv = 0.5 + 0.3 * abs(math.log(m)) + 0.02 * days / 45
                    px = black76.price_usd(f, strike, t, iv, cp == "call")
                    doc = {"symbol": f"{und}-D{days}-{strike:g}-{cp[0].upper()}",
                           "kind": "option", "underlying": und, "settle": "USDC",
                           "expiry": _iso(expiry), "strike": strike, "option_type": cp,
                           "mark_iv": iv, "mark_price": max(px, 0.01)}
                    if fwd is not None:
                        doc["underlying_price"] = fwd
                    ins.append(doc)
    if split_forward:
        ins.append({"symbol": "ETH-D13-2000-C-X", "kind": "option", "underlying": "ETH",
                    "settle": "USDC", "expiry": _iso(NOW + timedelta(days=13)),
                    "strike": 2000.0, "option_type": "call", "mark_iv": 0.55,
                    "mark_price": 60.0, "underlying_price": 2009.0})
    doc = {"timestamp": _iso(NOW), "index": dict(SPOT), "fx": {"USDC": 0.985},
           "rates": {"USDC": 0.04}, "instruments": ins}
    return parse_model(MarketSnapshot, doc, "market")


def derive_book(market: MarketSnapshot, n: int, seed: int) -> Book:
    """``n`` accounts of 1–9 random positions; some hold BTC/ETH (risk-cancelling collateral),
    one holds both forwards of the split ETH expiry (when listed), one nothing."""
    rng = random.Random(seed)
    syms = [i.symbol for i in market.instruments if not i.symbol.endswith("-X")]
    accounts = []
    for a in range(n):
        picks = rng.sample(syms, rng.randint(1, 9)) if a != n - 1 else []
        if a == 1 and market.has("ETH-D13-2000-C-X"):
            picks = ["ETH-D13-2000-C", "ETH-D13-2000-C-X", "ETH-PERP"]
        coll: dict[str, float] = {"USDC": rng.choice([2e4, 1e5, 1e6])}
        if rng.random() < 0.4:
            coll[rng.choice(["BTC", "ETH"])] = rng.choice([0.5, 3.0, 20.0])
        accounts.append({"id": f"d{a}", "margin_mode": rng.choice(["portfolio", "cross"]),
                         "collateral": coll,
                         "positions": [{"symbol": s, "size": rng.choice([-1, 1])
                                        * rng.choice([0.5, 1.0, 3.0, 10.0])} for s in picks]})
    return parse_model(Book, {"accounts": accounts}, "book")


def check_both(fast: LiveBook, ref: LiveBook, book: Book, market: MarketSnapshot) -> None:
    check_states(fast, book, market)
    for a in book.accounts:
        got, want = fast.state(a.id), ref.state(a.id)
        assert close(got.initial_margin, want.initial_margin), a.id
        assert close(got.maintenance_margin, want.maintenance_margin), a.id


def test_make_engine_picks_the_array_engine():
    model = get_model("derive-pmrm", {})
    market = derive_market()
    live = LiveBook(model, derive_book(market, 3, 1), market)
    assert isinstance(live.engine, DerivePmrmEngine)


@pytest.mark.parametrize("seed", [1, 2])
def test_random_sequences_equal_the_reference_and_assess_book(seed):
    model = get_model("derive-pmrm", {})
    market = derive_market()
    book = derive_book(market, 12, seed)
    fast = LiveBook(model, book, market)
    ref = LiveBook(get_model("derive-pmrm", {}), book, market, engine="reference")
    check_both(fast, ref, book, market)
    rng = random.Random(seed)

    def deposit(rng: random.Random, acct: Account) -> tuple[str, float]:
        ccy = rng.choice(["USDC", "BTC", "ETH"])
        return ccy, rng.choice([-0.4, 0.5, 2.0]) * (1e4 if ccy == "USDC" else 1.0)

    def check(book: Book, market: MarketSnapshot, _step: int) -> None:
        check_both(fast, ref, book, market)

    run = drive(rng, model, [fast, ref], book, market, 30, update=0.35, fill=0.6, deposit=0.7,
                draw_deposit=deposit, check=check)
    assert run.what_ifs >= 3


def test_what_if_answers_from_the_kept_vectors():
    """Orders on held symbols (several on one underlying, one closing a position, one
    flipping it) are answered by the engine, not the rebuild, and equal ``assess_account``."""
    model = get_model("derive-pmrm", {})
    market = derive_market(split_forward=False)
    book = derive_book(market, 8, 5)
    live = LiveBook(model, book, market)
    engine = live.engine
    assert isinstance(engine, DerivePmrmEngine)
    answered = 0
    for acct in book.accounts:
        for p in acct.positions[:3]:
            for size in (-p.size, 2.5 * -p.size, 4.0):
                orders = [(p.symbol, size, None), (acct.positions[0].symbol, 1.0, None)]
                rows = [live.instruments.index[s] for s, _, _ in orders]
                slot = live._acct_units[live._by_id[acct.id]][0]
                assert engine.what_if(slot, [(k, q) for k, (_, q, _) in
                                             zip(rows, orders, strict=True)]) is not None
                answered += 1
                check_what_if([live], model, acct, market, orders)
    assert answered > 10
    # a tick invalidates the kept vectors: the next what-if is still exact
    change = {"index": {"ETH": SPOT["ETH"] * 1.07}}
    live.update_market(change)
    market = revalidated(market, change)
    acct = next(a for a in book.accounts if a.positions)
    check_what_if([live], model, acct, market, [(acct.positions[0].symbol, 3.0, None)])


def test_split_forward_falls_back_to_the_reference():
    """Two options of one expiry at different forwards: the reference prices the expiry at the
    first one's forward; the engine hands that unit to the reference and stays exact."""
    model = get_model("derive-pmrm", {})
    market = derive_market()
    book = derive_book(market, 3, 3)
    live = LiveBook(model, book, market)
    slot = live._acct_units[live._by_id["d1"]][0]
    engine = live.engine
    assert isinstance(engine, DerivePmrmEngine)
    assert engine._run([slot], keep=False)[-1].any()  # flagged for the reference
    assert engine.what_if(slot, [(live.instruments.index["ETH-PERP"], 1.0)]) is None
    check_states(live, book, market)
    # and the same account in the other order (the other forward first) is exact too
    d1 = book.accounts[1]
    flipped = d1.model_copy(update={"positions": tuple(reversed(d1.positions))})
    book2 = Book(accounts=(flipped,))
    check_states(LiveBook(model, book2, market), book2, market)


def test_non_default_parameters_and_no_collateral_offset():
    """Other loss factors, contingencies, skew caps and no risk-cancelling collateral."""
    opts = {"im_factor": 1.3, "mm_factor": 0.6, "im_perp_percent": 0.02,
            "mm_option_percent": 0.01, "linear_base_cap": 0.4, "abs_c_base": -0.3,
            "risk_cancelling_collateral": False, "rate": 0.02, "short_term_power": 0.5}
    model = get_model("derive-pmrm", opts)
    market = derive_market(split_forward=False)
    book = derive_book(market, 10, 9)
    live = LiveBook(model, book, market)
    check_states(live, book, market)
    change = {"index": {"BTC": SPOT["BTC"] * 0.9}, "timestamp": _iso(NOW + timedelta(hours=20))}
    live.update_market(change)
    market = revalidated(market, change)
    check_states(live, book, market)


def test_a_tick_recomputes_only_the_moved_underlying_and_a_depeg_everything():
    """Each (unit, underlying) charge is kept: an ETH tick recomputes the ETH charges only (the
    BTC ones keep their stamp) and the book stays equal to ``assess_book``; a move of the
    stablecoin every instrument settles in (the peg-loss IM factor) recomputes every charge."""
    model = get_model("derive-pmrm", {})
    market = derive_market(split_forward=False)
    book = derive_book(market, 10, 4)
    live = LiveBook(model, book, market)
    engine = live.engine
    assert isinstance(engine, DerivePmrmEngine)
    btc, eth = live.instruments.ccy["BTC"], live.instruments.ccy["ETH"]
    slots = live.live_slots()
    both = [s for s in slots if engine._stamp[s, btc] >= 0 and engine._stamp[s, eth] >= 0]
    assert both  # some units hold both
    before = engine._stamp[both].copy()
    change = {"index": {"ETH": SPOT["ETH"] * 1.05},
              "instruments": [{"symbol": "ETH-PERP", "mark_price": SPOT["ETH"] * 1.05}]}
    live.update_market(change)
    market = revalidated(market, change)
    after = engine._stamp[both]
    assert (after[:, btc] == before[:, btc]).all() and (after[:, eth] > before[:, eth]).all()
    check_states(live, book, market)
    live.update_market({"fx": {"USDC": 0.96}})
    market = market.model_copy(update={"fx": {"USDC": 0.96}})
    assert (engine._stamp[both][:, btc] > before[:, btc]).all()
    check_states(live, book, market)


# ---------------------------------------------------------------------------------------------
# Derive's published portfolio cases


def _case_book(case: dict[str, Any]) -> tuple[dict[str, Any], MarketSnapshot, Account] | None:
    """The case as (model options, market, account), or None where it does not map onto a
    book: a forward partly fixed (under 30 minutes to expiry), a skew scenario with a spot
    move, a number outside the book's or the model's bounds. Each expiry's options settle in
    a stablecoin of their own (priced 1) whose snapshot rate is the feed's. Collateral, cash
    and confidences have no book counterpart (equity and haircuts live in the health policy):
    the comparison is with the core on the case without them."""
    sc = case["Scenario"]
    feeds = sc["OptionFeeds"]
    if any(float(f["FeedExpiry"]) < core.FORWARD_PORTION_WINDOW for f in feeds):
        return None
    params = core.case_params(case)
    scen = core.case_scenarios(case)
    if any(s.kind == "skew" and s.spot_shock != 1.0 for s in scen):
        return None
    opts: dict[str, Any] = {f: getattr(params, f) for f in core.CoreParams.__dataclass_fields__}
    opts["scenarios"] = [{"spot_shock": s.spot_shock, "vol_shock": s.vol_shock,
                          "dampening": s.dampening} for s in scen]
    feed = {float(f["FeedExpiry"]): (float(f["Forward"]), f"S{e}", float(f["Rate"]))
            for e, f in enumerate(feeds)}
    perp = float(sc["PerpPrice"]) if float(sc["NumPerps"]) != 0.0 else float(sc["SpotPrice"])
    ins: list[dict[str, Any]] = [{"symbol": "U-PERP", "kind": "perpetual", "underlying": "U",
                                  "settle": "USDC", "mark_price": perp}]
    pos = []
    if float(sc["NumPerps"]) != 0.0:
        pos.append({"symbol": "U-PERP", "size": float(sc["NumPerps"])})
    for j, o in enumerate(sc["Options"]):
        sec = float(o["Expiry"])
        fwd, settle, _ = feed[sec]
        ins.append({"symbol": f"U-O{j}", "kind": "option", "underlying": "U", "settle": settle,
                    "expiry": _iso(NOW + timedelta(seconds=sec)), "strike": float(o["Strike"]),
                    "option_type": "call" if int(o["IsCall"]) else "put",
                    "mark_iv": float(o["MarkVol"]), "underlying_price": fwd})
        pos.append({"symbol": f"U-O{j}", "size": float(o["Amount"])})
    doc = {"timestamp": _iso(NOW), "index": {"U": float(sc["SpotPrice"])},
           "fx": {"USDC": float(sc["StablePrice"])} | {s: 1.0 for _, s, _ in feed.values()},
           "rates": {s: r for _, s, r in feed.values()}, "instruments": ins}
    try:
        market = parse_model(MarketSnapshot, doc, "market")
        account = parse_model(Book, {"accounts": [{"id": "case", "margin_mode": "portfolio",
                                                   "collateral": {"USDC": 1e6},
                                                   "positions": pos}]}, "book").accounts[0]
    except InputError:  # a stress case beyond the book's bounds (e.g. a 2,511 vol)
        return None
    return opts, market, account


def _bare(portfolio: core.Portfolio) -> core.Portfolio:
    """The case portfolio as the book sees it: no collateral, cash, MtM or low confidences."""
    exp = tuple(core.ExpiryHoldings(e.sec_to_expiry, e.forward_fixed, e.forward_variable,
                                    e.rate, e.options) for e in portfolio.expiries)
    perps = tuple(core.PerpHolding(h.position, h.price) for h in portfolio.perps)
    return core.Portfolio(spot=portfolio.spot, stable_price=portfolio.stable_price,
                          perps=perps, expiries=exp)


@pytest.mark.realdata
@pytest.mark.skipif(not CASES.is_dir(), reason=f"peer test data absent ({CASES})")
def test_published_cases_that_map_onto_a_book():
    ran = exact = 0
    for path in sorted(CASES.glob("*.json")):
        case = json.loads(path.read_text())
        got = _case_book(case)
        if got is None:
            continue
        opts, market, account = got
        try:
            model = get_model("derive-pmrm", opts)
        except InputError:  # a parameter outside Derive's setter bounds
            continue
        book = Book(accounts=(account,))
        live = LiveBook(model, book, market)
        assert isinstance(live.engine, DerivePmrmEngine)
        portfolio, _ = core.case_portfolio(case)
        want = core.compute(_bare(portfolio), core.case_params(case),
                            core.case_scenarios(case))
        st = live.state("case")
        assert close(st.initial_margin, want.im_charge), path.stem
        assert close(st.maintenance_margin, want.mm_charge), path.stem
        res = case["Result"]
        confident = all(e.forward_confidence == e.rate_confidence == e.vol_confidence == 1.0
                        for e in portfolio.expiries) and portfolio.spot_confidence == 1.0 and all(
                            h.confidence == 1.0 for h in portfolio.perps)
        if confident and not portfolio.collaterals:
            # nothing dropped but cash and MtM: Derive's own numbers, to its 1e-8
            mtm = float(res["PortfolioMTM"])
            assert math.isclose(st.initial_margin, mtm - float(res["IM"]), rel_tol=1e-8)
            assert math.isclose(st.maintenance_margin, mtm - float(res["MM"]), rel_tol=1e-8)
            exact += 1
        ran += 1
    assert ran >= 120 and exact >= 4, (ran, exact)
