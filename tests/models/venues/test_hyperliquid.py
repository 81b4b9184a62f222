"""hyperliquid against the published vectors (research/crypto-venues.md §5.4: TV-H1..TV-H3),
the venue's cross liquidation formula, a model-free root search, and hypothesis properties.

Independent references used here:
- the golden files in tests/golden/hyperliquid/ (plain arithmetic in
  generate_hyperliquid_golden.py, no engine code);
- the maintenance margin as the integral of the marginal tier rate, which shares no code with the
  deduction recursion of [H1];
- ``policy.liquidation.solve_liquidation_factor`` (bracketing root search over the whole unit).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from margin_engine.cli.main import app
from margin_engine.domain.book import Account, Book
from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError
from margin_engine.io.loaders import parse_model
from margin_engine.models.core.registry import get_model
from margin_engine.models.core.revaluation import shift_underlying
from margin_engine.models.core.units import build_units
from margin_engine.models.venues.hyperliquid import (
    Hyperliquid,
    HyperliquidParams,
    MarginTable,
    isolated_liquidation_price,
    maintenance_margin,
    tier_margin,
)
from margin_engine.policy.assess import assess_account
from margin_engine.policy.health import HealthPolicy, unit_equity
from margin_engine.policy.liquidation import solve_liquidation_factor

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "hyperliquid"


def golden(name: str) -> Any:
    return json.loads((GOLDEN / name).read_text())


TV_H1 = golden("tv-h1-isolated-liquidation-prices.json")


def perp(symbol: str, price: float, underlying: str | None = None,
         settle: str = "USDC") -> dict[str, Any]:
    return {"symbol": symbol, "kind": "perpetual", "underlying": underlying or symbol,
            "settle": settle, "mark_price": price}


def market_of(prices: dict[str, float]) -> MarketSnapshot:
    doc = {"timestamp": "2026-03-01T00:00:00Z", "index": dict(prices),
           "fx": {"USDC": 1.0, "USDT": 1.0},
           "instruments": [perp(s, p) for s, p in prices.items()]}
    return parse_model(MarketSnapshot, doc, "market")


def account_of(doc: dict[str, Any]) -> Account:
    return parse_model(Book, {"accounts": [doc]}, "book").accounts[0]


def model(**params: Any) -> Hyperliquid:
    m = get_model("hyperliquid", params)
    assert isinstance(m, Hyperliquid)
    return m


# --------------------------------------------------------------------------------------------
# TV-H1: live isolated liquidation prices


def tv_h1_case(case: dict[str, Any]) -> tuple[Account, MarketSnapshot]:
    pos = case["ccxt_position"]
    sym = pos["symbol"].split("/")[0]
    side = 1.0 if pos["side"] == "long" else -1.0
    account = account_of({"id": case["name"], "margin_mode": "isolated",
                          "positions": [{"symbol": sym, "size": side * pos["contracts"],
                                         "entry_price": pos["entryPrice"],
                                         "isolated_margin": pos["collateral"]}]})
    return account, market_of({sym: pos["entryPrice"]})


@pytest.mark.parametrize("case", TV_H1["cases"], ids=[c["name"] for c in TV_H1["cases"]])
def test_tv_h1_liquidation_price_reproduces_the_venue(case):
    """TV-H1 (and the rest of the same freqtrade fixture): the model's isolated liquidation price
    equals [H2]'s formula (1e-9 rel) and reproduces the live venue value within its published
    rounding (price to 8 dp, isolated margin truncated to 6 dp)."""
    account, market = tv_h1_case(case)
    m = model(**TV_H1["params"])
    report = assess_account(m, account, market)
    lp = report.positions[0].liquidation_price
    assert lp is not None
    assert math.isclose(lp, case["formula_liquidation_price"], rel_tol=1e-9)
    lo, hi = sorted((case["formula_liquidation_price"],
                     case["formula_liquidation_price_margin_plus_1e-6"]))
    published = case["published_liquidation_price"]
    assert lo - 5e-9 <= published <= hi + 5e-9
    # the isolated unit's maintenance margin is the golden one at the mark (= entry)
    assert math.isclose(report.positions[0].margin.maintenance_margin,
                        case["intermediate"]["maintenance_margin_at_entry"], rel_tol=1e-12)


def test_tv_h1_research_rows_exactly():
    """TV-H1's five rows (research §5.4): ETH long/short, SOL short round to the published 8 dp,
    XYZ-AAPL matches to 1e-12, and BTC long's published price implies an isolated margin
    within the 6-dp truncation of the published 24.137992."""
    rows = {(c["ccxt_position"]["symbol"], c["ccxt_position"]["entryPrice"]): c
            for c in TV_H1["cases"] if c["research_id"] == "TV-H1"}
    assert len(rows) == 5
    m = model(**TV_H1["params"])
    got = {}
    for key, case in rows.items():
        account, market = tv_h1_case(case)
        got[key] = assess_account(m, account, market).positions[0].liquidation_price
    for key in [("ETH/USDC:USDC", 2458.5), ("ETH/USDC:USDC", 2642.8),
                ("SOL/USDC:USDC", 155.89)]:
        assert round(got[key], 8) == rows[key]["published_liquidation_price"], key
    aapl = ("XYZ-AAPL/USDC:USDC", 250.0)
    assert math.isclose(got[aapl], 210.526316, rel_tol=2e-9)
    assert math.isclose(got[aapl], rows[aapl]["published_liquidation_price"], rel_tol=1e-12)
    btc = rows[("BTC/USDC:USDC", 62739.0)]
    q, e, lp = 0.00077, 62739.0, btc["published_liquidation_price"]
    implied_margin = q * (e - lp * (1.0 - 1.0 / 100.0))
    assert 0.0 <= implied_margin - 24.137992 < 1e-6


@pytest.mark.parametrize("case", [c for c in TV_H1["cases"] if c["research_id"] == "TV-H1"],
                         ids=lambda c: c["name"])
def test_published_closed_form_function(case):
    """TV-H1: :func:`isolated_liquidation_price` is [H2]'s formula as printed."""
    pos = case["ccxt_position"]
    side = 1.0 if pos["side"] == "long" else -1.0
    got = isolated_liquidation_price(pos["entryPrice"], side * pos["contracts"],
                                     pos["collateral"],
                                     case["intermediate"]["maintenance_margin_rate"])
    assert math.isclose(got, case["formula_liquidation_price"], rel_tol=1e-12)


# --------------------------------------------------------------------------------------------
# TV-H2, TV-H3: tiers and leverage


@pytest.mark.parametrize("name", ["tv-h2-btc-tiers.json", "tv-h3-btc-10k.json"])
def test_tv_h2_h3_requirements(name):
    """TV-H2 (BTC MM(200M) = 3,125,000; MM(150M) = 1,875,000 from both sides) and TV-H3
    ($10,000 BTC: IM 1,000 at 10×, 250 at 40×; MM 125) through the model."""
    doc = golden(name)
    market = parse_model(MarketSnapshot, doc["market"], "market")
    m = model(**doc["params"])
    for case in doc["cases"]:
        lev = {"BTC": case["leverage"]} if case["leverage"] else {}
        account = account_of({"id": "a", "margin_mode": "cross", "leverage": lev,
                              "positions": [{"symbol": "BTC", "size": case["size"]}]})
        pm = assess_account(m, account, market, liquidation_prices=False).positions[0].margin
        assert math.isclose(pm.notional, case["notional"], rel_tol=1e-12)
        if "published_maintenance_margin" in case:
            mm = case.get("maintenance_margin", case.get("lower_tier_maintenance_margin"))
            assert math.isclose(mm, case["published_maintenance_margin"], rel_tol=1e-12)
        if "maintenance_margin" in case:
            assert math.isclose(pm.maintenance_margin, case["maintenance_margin"],
                                rel_tol=1e-12), case["name"]
            assert math.isclose(pm.initial_margin, case["initial_margin"], rel_tol=1e-12)
        if "tier" in case:
            assert pm.details["tier"] == case["tier"]


def test_tv_h2_deduction_and_rates():
    """TV-H2: BTC rates 1.25 % / 2.5 % and deduction₁ = 150M × 1.25 % = 1,875,000."""
    doc = golden("tv-h2-btc-tiers.json")
    table = HyperliquidParams().margin_tables["BTC"]
    assert table.rates() == pytest.approx(doc["tiers"]["maintenance_margin_rate"], rel=1e-15)
    assert table.deductions() == pytest.approx(doc["tiers"]["maintenance_deduction"], rel=1e-15)
    assert math.isclose(table.deductions()[1], 1_875_000.0, rel_tol=1e-12)


def test_leverage_capped_by_the_tier_of_the_notional():
    """[H1]: above 150M BTC allows at most 20× even when the account chose 40×."""
    table = HyperliquidParams().margin_tables["BTC"]
    small, big = tier_margin(table, 1e6, 40), tier_margin(table, 2e8, 40)
    assert small.leverage == 40 and big.leverage == 20
    assert math.isclose(big.initial_margin, 1e7, rel_tol=1e-15)


# --------------------------------------------------------------------------------------------
# cross account


CROSS = golden("cross-account-liquidation.json")


def cross_inputs() -> tuple[Account, MarketSnapshot]:
    book = parse_model(Book, CROSS["book"], "book")
    return book.accounts[0], parse_model(MarketSnapshot, CROSS["market"], "market")


def test_cross_account_against_the_published_cross_formula():
    """HL-CROSS-1: account-level liquidation prices equal [H2]'s formula with margin_available
    = account value − total maintenance margin (other positions' margin included)."""
    account, market = cross_inputs()
    r = assess_account(model(), account, market)
    exp = CROSS["expected"]
    assert math.isclose(r.initial_margin, exp["initial_margin"], rel_tol=1e-12)
    assert math.isclose(r.maintenance_margin, exp["maintenance_margin"], rel_tol=1e-12)
    assert math.isclose(r.equity, exp["equity"], rel_tol=1e-12)
    assert r.status.value == exp["status"]
    details = r.units[0].margin.details
    assert math.isclose(details["transfer_margin_required"], exp["transfer_margin_required"],
                        rel_tol=1e-12)
    assert math.isclose(details["backstop_equity"], exp["backstop_equity"], rel_tol=1e-12)
    for p in r.positions:
        want = exp["positions"][p.margin.symbol]
        assert math.isclose(p.margin.initial_margin, want["initial_margin"], rel_tol=1e-12)
        assert math.isclose(p.margin.maintenance_margin, want["maintenance_margin"],
                            rel_tol=1e-12)
        assert p.liquidation_price is not None
        assert math.isclose(p.liquidation_price, want["liquidation_price"], rel_tol=1e-9)


def assert_agrees_with_generic(m: Hyperliquid, account: Account, market: MarketSnapshot) -> None:
    policy = HealthPolicy()
    report = assess_account(m, account, market, policy=policy)
    for unit in build_units(account, market, m.cross_scope(account)):
        for j in unit.position_indices:
            ins = market.instrument(account.positions[j].symbol)
            f = solve_liquidation_factor(m, unit, account, market, ins.underlying, policy)
            lp, mark = report.positions[j].liquidation_price, ins.mark_price
            assert mark is not None
            if f is None:
                assert lp is None or not 0.01 <= lp / mark <= 100.0
            else:
                assert lp is not None
                assert math.isclose(lp, f * mark, rel_tol=1e-9)


@pytest.mark.parametrize("mode", ["cross", "isolated"])
def test_closed_form_agrees_with_generic_solver(mode):
    """The exact piecewise solve and the model-free bracketing root search agree."""
    account, market = cross_inputs()
    doc = account.model_dump(mode="json") | {"margin_mode": mode}
    assert_agrees_with_generic(model(), account_of(doc), market)


def test_liquidation_price_crossing_a_tier():
    """A long whose liquidation price lies in a lower tier than today's (custom table
    0-1M → 50×, ≥1M → 10×): equity = MM there, and the generic solver agrees."""
    m = model(margin_tables={"BTC": [{"lower_bound": 0, "max_leverage": 50},
                                     {"lower_bound": 1_000_000, "max_leverage": 10}],
                             "ETH": 5})
    market = market_of({"BTC": 100_000.0, "ETH": 2000.0})
    account = account_of({"id": "t", "margin_mode": "cross", "collateral": {"USDC": 250_000},
                          "positions": [{"symbol": "BTC", "size": 12.0, "entry_price": 100_000},
                                        {"symbol": "ETH", "size": -10.0, "entry_price": 2000}],
                          "leverage": {"BTC": 5, "ETH": 5}})
    report = assess_account(m, account, market)
    lp = report.positions[0].liquidation_price
    assert lp is not None and 12.0 * lp < 1_000_000 < 12.0 * 100_000  # tier 1 → tier 0
    unit = build_units(account, market, "currency")[0]
    moved = shift_underlying(market, "BTC", lp / 100_000.0)
    surplus = (unit_equity(unit, account, moved, HealthPolicy())
               - m.margin_unit(unit, account, moved).maintenance_margin)
    assert abs(surplus) < 1e-9 * 1.2e6
    assert_agrees_with_generic(m, account, market)


def test_netted_positions_and_contributions():
    """Cross nets positions in one symbol (Hyperliquid holds one position per asset);
    contributions add up to the unit's IM."""
    market = market_of({"BTC": 50_000.0, "ETH": 2_500.0})
    account = account_of({"id": "n", "margin_mode": "cross", "collateral": {"USDC": 10_000},
                          "positions": [{"symbol": "BTC", "size": 2.0},
                                        {"symbol": "BTC", "size": -0.5},
                                        {"symbol": "ETH", "size": 3.0}],
                          "leverage": {"BTC": 20, "ETH": 10}})
    um = model().margin_unit(build_units(account, market, "currency")[0], account, market)
    assert math.isclose(um.initial_margin, 1.5 * 50_000 / 20 + 3 * 2_500 / 10, rel_tol=1e-12)
    assert math.isclose(um.maintenance_margin, 1.5 * 50_000 / 80 + 3 * 2_500 / 50,
                        rel_tol=1e-12)
    assert math.isclose(sum(p.contribution for p in um.positions), um.initial_margin,
                        rel_tol=1e-12)
    assert um.positions[1].contribution < 0.0  # the offsetting leg
    assert math.isclose(um.positions[0].initial_margin, 2.0 * 50_000 / 20, rel_tol=1e-12)


# --------------------------------------------------------------------------------------------
# properties


@st.composite
def tables(draw: st.DrawFn) -> MarginTable:
    levs = sorted(draw(st.lists(st.integers(1, 100), min_size=1, max_size=4)), reverse=True)
    bounds = sorted(draw(st.sets(st.floats(1e3, 1e9), min_size=len(levs) - 1,
                                 max_size=len(levs) - 1)))
    return MarginTable.model_validate(
        [{"lower_bound": b, "max_leverage": lv} for b, lv in zip([0.0, *bounds], levs,
                                                                 strict=True)])


def integral_mm(table: MarginTable, notional: float) -> float:
    """MM as ∫₀ᴺ marginal rate: each tier's rate on the notional inside that tier."""
    bounds = [t.lower_bound for t in table.tiers] + [math.inf]
    total = 0.0
    for n, tier in enumerate(table.tiers):
        inside = min(notional, bounds[n + 1]) - bounds[n]
        if inside > 0:
            total += inside / (2.0 * tier.max_leverage)
    return total


@settings(max_examples=200, deadline=None)
@given(tables(), st.floats(0.0, 5e9))
def test_deduction_form_equals_integral_form(table, notional):
    """[H1]'s deduction recursion makes MM continuous: it equals ∫ marginal rate."""
    assert math.isclose(maintenance_margin(table, notional), integral_mm(table, notional),
                        rel_tol=1e-9, abs_tol=1e-6)


sizes = st.floats(-50.0, 50.0).filter(lambda x: abs(x) > 1e-6)


def book_account(mode: str, btc: float, eth: float, lev_btc: int, lev_eth: int) -> Account:
    iso = {"isolated_margin": 1000.0} if mode == "isolated" else {}
    return account_of({"id": "p", "margin_mode": mode, "collateral": {"USDC": 50_000.0},
                       "positions": [{"symbol": "BTC", "size": btc, "entry_price": 60_000, **iso},
                                     {"symbol": "ETH", "size": eth, "entry_price": 2_000, **iso}],
                       "leverage": {"BTC": lev_btc, "ETH": lev_eth}})


PROP_MARKET = market_of({"BTC": 65_000.0, "ETH": 2_200.0})


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["cross", "isolated"]), st.floats(-5e3, 5e3), st.floats(-1e5, 1e5),
       st.integers(1, 40), st.integers(1, 25))
def test_im_at_least_mm_at_least_zero(mode, btc, eth, lev_btc, lev_eth):
    """IM ≥ MM ≥ 0 on every unit, across tiers (BTC up to 325M notional)."""
    account = book_account(mode, btc, eth, lev_btc, lev_eth)
    r = assess_account(model(), account, PROP_MARKET, liquidation_prices=False)
    for u in r.units:
        assert u.margin.initial_margin >= u.margin.maintenance_margin >= 0.0


@settings(max_examples=60, deadline=None)
@given(sizes, sizes, st.integers(1, 40), st.integers(1, 25), st.floats(0.1, 20.0))
def test_scaling_sizes_scales_margin(btc, eth, lev_btc, lev_eth, k):
    """Inside the first tier (no size-dependent rate) margin is linear in size."""
    m = model()
    base = assess_account(m, book_account("cross", btc, eth, lev_btc, lev_eth), PROP_MARKET,
                          liquidation_prices=False)
    scaled = assess_account(m, book_account("cross", k * btc, k * eth, lev_btc, lev_eth),
                            PROP_MARKET, liquidation_prices=False)
    assert math.isclose(scaled.initial_margin, k * base.initial_margin, rel_tol=1e-12)
    assert math.isclose(scaled.maintenance_margin, k * base.maintenance_margin, rel_tol=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.floats(-4e3, 4e3), st.floats(0.0, 4e3), st.floats(-1e4, 1e4), st.integers(1, 40))
def test_hedge_never_raises_margin(a, hedge, eth, lev):
    """A hedged cross book (an offsetting BTC leg, plus ETH) needs no more margin than its
    positions margined alone (netting included, across BTC tiers)."""
    m = model()
    positions = [("BTC", a), ("BTC", -math.copysign(hedge, a)), ("ETH", eth)]
    account = account_of({"id": "h", "margin_mode": "cross", "collateral": {"USDC": 1e6},
                          "positions": [{"symbol": s, "size": q} for s, q in positions],
                          "leverage": {"BTC": lev, "ETH": min(lev, 25)}})
    whole = assess_account(m, account, PROP_MARKET, liquidation_prices=False)
    alone_im = alone_mm = 0.0
    for s, q in positions:
        one = account_of({"id": "o", "margin_mode": "cross", "collateral": {"USDC": 1e6},
                          "positions": [{"symbol": s, "size": q}],
                          "leverage": {"BTC": lev, "ETH": min(lev, 25)}})
        r = assess_account(m, one, PROP_MARKET, liquidation_prices=False)
        alone_im += r.initial_margin
        alone_mm += r.maintenance_margin
    assert whole.initial_margin <= alone_im * (1 + 1e-12) + 1e-9
    assert whole.maintenance_margin <= alone_mm * (1 + 1e-12) + 1e-9


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(["cross", "isolated"]), st.floats(-3e3, 3e3).filter(lambda x: abs(x) > 1),
       st.floats(-3e4, 3e4).filter(lambda x: abs(x) > 1), st.floats(1e4, 3e7))
def test_equity_meets_maintenance_at_the_liquidation_price(mode, btc, eth, cash):
    """At each reported price, the unit's equity equals its maintenance margin (tiers and the
    other asset's margin included)."""
    m = model()
    account = account_of({"id": "l", "margin_mode": mode, "collateral": {"USDC": cash},
                          "positions": [{"symbol": "BTC", "size": btc, "entry_price": 64_000},
                                        {"symbol": "ETH", "size": eth, "entry_price": 2_300}]})
    report = assess_account(m, account, PROP_MARKET)
    policy = HealthPolicy()
    for unit in build_units(account, PROP_MARKET, "currency"):
        for j in unit.position_indices:
            lp = report.positions[j].liquidation_price
            if lp is None:
                continue
            ins = PROP_MARKET.instrument(account.positions[j].symbol)
            moved = shift_underlying(PROP_MARKET, ins.underlying, lp / ins.mark_price)
            eq = unit_equity(unit, account, moved, policy)
            mm = m.margin_unit(unit, account, moved).maintenance_margin
            assert abs(eq - mm) <= 1e-9 * max(cash, abs(btc) * 65_000, abs(eth) * 2_200)


# --------------------------------------------------------------------------------------------
# inputs, parameters, command line


def test_rejects_what_it_cannot_margin(market_doc):
    """Options, dated futures, inverse perpetuals and non-stable settlement are refused with the
    position's path and a reason; portfolio mode is not offered."""
    market = parse_model(MarketSnapshot, market_doc, "market")
    for sym, word in [("BTC-PERPETUAL", "inverse"), ("BTC-27MAR26", "future"),
                      ("BTC-27MAR26-80000-C", "option")]:
        account = account_of({"id": "x", "margin_mode": "cross",
                              "positions": [{"symbol": sym, "size": 1.0}]})
        with pytest.raises(InputError) as err:
            assess_account(model(), account, market)
        assert err.value.path == "positions[0].symbol" and word in err.value.reason
    account = account_of({"id": "x", "margin_mode": "portfolio",
                          "positions": [{"symbol": "BTCUSDT", "size": 1.0}]})
    with pytest.raises(InputError, match="not offered"):
        assess_account(model(), account, market)
    btc_settled = parse_model(MarketSnapshot, {
        "timestamp": "2026-03-01T00:00:00Z", "index": {"BTC": 1.0, "SOLX": 2.0},
        "instruments": [perp("SOLX", 2.0, settle="BTC")]}, "market")
    account = account_of({"id": "x", "positions": [{"symbol": "SOLX", "size": 1.0}]})
    with pytest.raises(InputError, match="settles in BTC"):
        assess_account(model(margin_tables={"SOLX": 5}), account, btc_settled)
    with pytest.raises(InputError, match="no margin table"):
        assess_account(model(), account_of({"id": "x", "positions": [
            {"symbol": "NEWCOIN", "size": 1.0}]}), market_of({"NEWCOIN": 3.0}))


@pytest.mark.parametrize("lev, word", [(2.5, "integer"), (41, "exceeds the maximum")])
def test_rejects_bad_leverage(lev, word):
    account = account_of({"id": "x", "positions": [{"symbol": "BTC", "size": 1.0}],
                          "leverage": {"BTC": lev}})
    with pytest.raises(InputError) as err:
        assess_account(model(), account, market_of({"BTC": 60_000.0}))
    assert err.value.path == "leverage.BTC" and word in err.value.reason


def test_default_leverage_is_the_maximum_or_the_parameter():
    market = market_of({"BTC": 100_000.0})
    account = account_of({"id": "x", "positions": [{"symbol": "BTC", "size": 0.1}]})
    assert math.isclose(assess_account(model(), account, market).initial_margin, 250.0)
    assert math.isclose(assess_account(model(default_leverage=10), account,
                                       market).initial_margin, 1000.0)


def test_params_override_merges_and_validates(tmp_path):
    p = HyperliquidParams.model_validate({"margin_tables": {"BTC": 50}})
    assert p.margin_tables["BTC"].max_leverage == 50 and len(p.margin_tables["BTC"].tiers) == 1
    assert p.margin_tables["ETH"].max_leverage == 25  # untouched default
    with pytest.raises(InputError, match="increases"):
        get_model("hyperliquid", {"margin_tables": {"BTC": [
            {"lower_bound": 0, "max_leverage": 10}, {"lower_bound": 5, "max_leverage": 20}]}})
    with pytest.raises(InputError, match="unknown parameter"):
        get_model("hyperliquid", {"max_lev": 3})
    with pytest.raises(InputError, match="integer max leverage") as err:
        get_model("hyperliquid", {"margin_tables": {"BTC": 2.5}})
    assert err.value.path == "--param margin_tables.BTC"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"universe": [{"name": "BTC", "marginTableId": 77}],
                               "marginTables": []}))
    with pytest.raises(InputError, match="table 77 not in marginTables"):
        get_model("hyperliquid", {"margin_tables": str(bad)})
    meta = {"universe": [{"name": "BTC", "szDecimals": 5, "maxLeverage": 40,
                          "marginTableId": 56},
                         {"name": "ATOM", "szDecimals": 2, "maxLeverage": 5, "marginTableId": 5}],
            "marginTables": [[56, {"description": "tiered 40x", "marginTiers": [
                {"lowerBound": "0.0", "maxLeverage": 40},
                {"lowerBound": "150000000.0", "maxLeverage": 20}]}]]}
    path = tmp_path / "meta.json"
    path.write_text(json.dumps(meta))
    q = HyperliquidParams.model_validate({"margin_tables": str(path)})
    assert [t.max_leverage for t in q.margin_tables["BTC"].tiers] == [40, 20]
    assert q.margin_tables["BTC"].tiers[1].lower_bound == 150e6
    assert q.margin_tables["ATOM"].max_leverage == 5


def test_cli_compute_on_the_design_example_and_a_usdc_book(write_json, market_doc, book_doc):
    """`margin-engine compute --model hyperliquid` on the DESIGN §4 example (a USDT-settled
    linear perpetual) and on the cross golden book; an inverse position exits 2 with a reason."""
    runner = CliRunner()
    book, market = write_json("book.json", book_doc), write_json("market.json", market_doc)
    res = runner.invoke(app, ["compute", str(book), str(market), "--model", "hyperliquid",
                              "--format", "json"])
    assert res.exit_code == 0, res.output
    acct = json.loads(res.stdout)["accounts"][0]
    assert math.isclose(acct["initial_margin"], 2.5 * 73005.0 / 20, rel_tol=1e-12)
    assert math.isclose(acct["maintenance_margin"], 2.5 * 73005.0 / 80, rel_tol=1e-12)
    # 257,512 USDT of equity backs 182,512 of notional: no positive liquidation price
    assert acct["positions"][0]["liquidation_price"] is None
    res = runner.invoke(app, ["compute", str(write_json("b2.json", CROSS["book"])),
                              str(write_json("m2.json", CROSS["market"])), "--model",
                              "hyperliquid", "--format", "json"])
    assert res.exit_code == 0, res.output
    assert [p["symbol"] for p in json.loads(res.stdout)["accounts"][0]["positions"]] == [
        "BTC", "ETH"]
    book_doc["accounts"][0]["positions"] = [{"symbol": "BTC-PERPETUAL", "size": 10}]
    res = runner.invoke(app, ["compute", str(write_json("b3.json", book_doc)), str(market),
                              "--model", "hyperliquid", "--strict"])
    assert res.exit_code == 2
    assert "accounts[0].positions[0].symbol" in res.output and "inverse" in res.output
