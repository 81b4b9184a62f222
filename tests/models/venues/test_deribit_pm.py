"""deribit-pm: published vectors TV-D5/TV-D6 (research/crypto-venues.md §1.8) with every
intermediate vector; a derived options golden case and random books checked against an
independent reference (tests/deribit_reference.py: its own Black-76 from scipy, its own vol
shocks, no margin_engine import); the extended table on a far-OTM short-call book; X:PM joint
scenarios and collateral revaluation; hypothesis properties."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import deribit_reference as reference
from margin_engine.domain.book import Account, Book, MarginMode
from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError
from margin_engine.io.loaders import parse_model
from margin_engine.models.core.registry import get_model
from margin_engine.models.venues.deribit_pm import (
    DeribitPm,
    DeribitPmParams,
    aggregate,
    scenario_grid,
    shocked_vols,
)

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "deribit-pm"
REAL = Path(__file__).resolve().parents[4] / "shared" / "data" / "real"


def load(name: str) -> dict[str, Any]:
    return json.loads((GOLDEN / f"{name}.json").read_text())


def build(doc: dict[str, Any], params: dict[str, Any] | None = None):
    market = parse_model(MarketSnapshot, doc["market"], "market")
    book = parse_model(Book, doc["book"], "book")
    model = get_model("deribit-pm", doc["params"] if params is None else params)
    return model, market, book


def close(a: float, b: float, rel: float = 1e-9, abs_: float = 1e-15) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=abs_)


def assert_tree(got: Any, want: Any, path: str = "", rel: float = 1e-9,
                abs_: float = 1e-15) -> None:
    """Every number in ``want`` is in ``got`` at the same place, within tolerance."""
    if isinstance(want, dict):
        for k, v in want.items():
            assert k in got, f"{path}.{k} missing"
            assert_tree(got[k], v, f"{path}.{k}", rel, abs_)
    elif isinstance(want, list):
        assert len(got) == len(want), f"{path}: length {len(got)} != {len(want)}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_tree(g, w, f"{path}[{i}]", rel, abs_)
    elif isinstance(want, bool | str):
        assert got == want, f"{path}: {got!r} != {want!r}"
    else:
        assert close(float(got), float(want), rel, abs_), f"{path}: {got!r} != {want!r}"


def unit_of(model, market, account, currency: str | None = None):
    units = model.units(account, market)
    if currency is not None:
        units = [u for u in units if u.currency == currency]
    assert len(units) == 1
    return model.margin_unit(units[0], account, market)


# ------------------------------------------------------------------------------------------
# published vectors


@pytest.mark.parametrize("name", ["TV-D5", "TV-D6"])
def test_published_pm_vectors_every_intermediate(name):
    """TV-D5 ([D7] API example, 2024-06-17) and TV-D6 ([D8] mainnet, 2026-02-15): initial,
    pre-aggregated and aggregated risk vectors, worst case and its bucket, roll shock, risk
    matrix margin, IM and MM, all to 1e-9 relative."""
    doc = load(name)
    model, market, book = build(doc)
    account = book.accounts[0]
    for pos in account.positions:  # the book's contracts are the venue's base-currency sizes
        ins = market.instrument(pos.symbol)
        q = pos.size * ins.contract_size / ins.mark_price
        assert close(q, doc["venue_inputs"]["position"][pos.symbol], rel=1e-12)
    exp = doc["expected"]
    r = unit_of(model, market, account)
    assert r.currency == exp["unit"]
    for key in ("initial_risk_vectors", "pre_aggregated_risk_vectors",
                "aggregated_risk_vectors", "margins"):
        if key in exp:
            assert_tree(r.details[key], exp[key], key)
    assert close(r.initial_margin, exp["initial_margin"])
    assert close(r.maintenance_margin, exp["maintenance_margin"])


def test_tv_d5_mm_is_exactly_08_risk_matrix_and_contributions_add_up():
    """TV-D5: MM = 0.8 × 0.06284313098 = 0.050274504784; contributions add up to IM; each
    position's worst-case share is its own P&L at −16% (the worst scenario, scale 1)."""
    doc = load("TV-D5")
    model, market, book = build(doc)
    r = unit_of(model, market, book.accounts[0])
    assert close(r.maintenance_margin, 0.8 * 0.06284313098, rel=1e-15)
    assert close(sum(p.contribution for p in r.positions), r.initial_margin, rel=1e-14)
    assert close(sum(r.components.values()), r.initial_margin, rel=1e-14)
    perp, fut = r.positions
    assert close(perp.details["pnl_worst_scenario"], -0.05991206933333334)
    assert close(fut.details["pnl_worst_scenario"], 0.0002261969523809524)
    # roll shock is per future: 0.01 × |q|
    assert close(perp.details["roll_shock"], 0.01 * 0.314538364)
    assert close(fut.details["roll_shock"], 0.01 * 0.001187534)


def test_defaults_are_the_published_parameter_sets():
    """The default btc/eth/usd and btc_usd/eth_usd parameters are those of [D7]/[D8]: running
    TV-D5 and TV-D6 with only the order margins given reproduces them."""
    for name, extra in (("TV-D5", {"order_margins": load("TV-D5")["params"]["order_margins"]}),
                        ("TV-D6", {})):
        doc = load(name)
        model, market, book = build(doc, extra)
        r = unit_of(model, market, book.accounts[0])
        assert close(r.initial_margin, doc["expected"]["initial_margin"])
        assert close(r.maintenance_margin, doc["expected"]["maintenance_margin"])


# ------------------------------------------------------------------------------------------
# independent reference (tests/deribit_reference.py)


MIXED_MARKET: dict[str, Any] = {
    "timestamp": "2026-02-04T09:30:00Z", "index": {"BTC": 73000.0, "ETH": 2100.0},
    "fx": {"USDC": 1.0},
    "instruments": [
        {"symbol": "BTC-PERPETUAL", "kind": "perpetual", "underlying": "BTC", "settle": "BTC",
         "inverse": True, "contract_size": 10, "mark_price": 73010.5},
        {"symbol": "BTC-27MAR26", "kind": "future", "underlying": "BTC", "settle": "BTC",
         "inverse": True, "contract_size": 10, "expiry": "2026-03-27T08:00:00Z",
         "mark_price": 73500.0},
        {"symbol": "BTC-27MAR26-80000-C", "kind": "option", "underlying": "BTC", "settle": "BTC",
         "inverse": True, "contract_size": 1, "expiry": "2026-03-27T08:00:00Z",
         "strike": 80000, "option_type": "call", "mark_iv": 0.55, "underlying_price": 73500.0,
         "mark_price": 0.0123},
        {"symbol": "BTC-27MAR26-60000-P", "kind": "option", "underlying": "BTC", "settle": "BTC",
         "inverse": True, "contract_size": 1, "expiry": "2026-03-27T08:00:00Z",
         "strike": 60000, "option_type": "put", "mark_iv": 0.62, "underlying_price": 73500.0},
        {"symbol": "BTC-6FEB26-70000-P", "kind": "option", "underlying": "BTC", "settle": "BTC",
         "inverse": True, "contract_size": 1, "expiry": "2026-02-06T08:00:00Z",
         "strike": 70000, "option_type": "put", "mark_iv": 0.8, "underlying_price": 73050.0},
        {"symbol": "BTC-25DEC26-100000-C", "kind": "option", "underlying": "BTC",
         "settle": "BTC", "inverse": True, "contract_size": 1,
         "expiry": "2026-12-25T08:00:00Z", "strike": 100000, "option_type": "call",
         "mark_iv": 0.3, "underlying_price": 76000.0},
        {"symbol": "ETH-PERPETUAL", "kind": "perpetual", "underlying": "ETH", "settle": "ETH",
         "inverse": True, "contract_size": 1, "mark_price": 2101.0},
        {"symbol": "ETH-27MAR26-2500-C", "kind": "option", "underlying": "ETH", "settle": "ETH",
         "inverse": True, "contract_size": 1, "expiry": "2026-03-27T08:00:00Z",
         "strike": 2500, "option_type": "call", "mark_iv": 0.7, "underlying_price": 2115.0},
        {"symbol": "BTC_USDC-PERPETUAL", "kind": "perpetual", "underlying": "BTC",
         "settle": "USDC", "inverse": False, "contract_size": 0.001, "mark_price": 73020.0},
        {"symbol": "BTC_USDC-27MAR26-90000-C", "kind": "option", "underlying": "BTC",
         "settle": "USDC", "inverse": False, "contract_size": 0.01,
         "expiry": "2026-03-27T08:00:00Z", "strike": 90000, "option_type": "call",
         "mark_iv": 0.58, "underlying_price": 73500.0}]}

MIXED_BOOK: dict[str, Any] = {"accounts": [{
    "id": "pm-mixed", "margin_mode": "portfolio",
    "collateral": {"BTC": 2.0, "ETH": 20.0, "USDC": 50000.0},
    "positions": [
        {"symbol": "BTC-PERPETUAL", "size": 3000},
        {"symbol": "BTC-27MAR26", "size": -1500},
        {"symbol": "BTC-27MAR26-80000-C", "size": -12},
        {"symbol": "BTC-27MAR26-60000-P", "size": -8},
        {"symbol": "BTC-6FEB26-70000-P", "size": 5},
        {"symbol": "BTC-25DEC26-100000-C", "size": -2},
        {"symbol": "ETH-PERPETUAL", "size": -20000},
        {"symbol": "ETH-27MAR26-2500-C", "size": -30},
        {"symbol": "BTC_USDC-PERPETUAL", "size": -1500},
        {"symbol": "BTC_USDC-27MAR26-90000-C", "size": -300}]}]}


def check_against_reference(model, market_doc: dict[str, Any],
                            account_doc: dict[str, Any]) -> None:
    """Every unit's vectors, worst case, roll shock, IM and MM equal the reference's."""
    ref = reference.segregated(market_doc, account_doc)
    market = parse_model(MarketSnapshot, market_doc, "market")
    account = parse_model(Book, {"accounts": [account_doc]}, "book").accounts[0]
    for unit in model.units(account, market):
        r = model.margin_unit(unit, account, market)
        want = ref[unit.currency]
        margins = r.details["margins"][unit.currency.lower()]
        rmm_details = margins["initial_margin_details"]["risk_matrix_margin_details"]
        for key, v in want["vectors"].items():
            got_pre = r.details["pre_aggregated_risk_vectors"][key]
            got_agg = r.details["aggregated_risk_vectors"][key]
            scale = max(1.0, max(abs(x) for x in v["pre"]))
            np.testing.assert_allclose(got_pre["standard"] + got_pre["extended"], v["pre"],
                                       rtol=1e-9, atol=1e-12 * scale)
            np.testing.assert_allclose(got_agg["standard"] + got_agg["extended"], v["agg"],
                                       rtol=1e-9, atol=1e-12 * scale)
            assert close(rmm_details[key]["worst_case"], v["worst"], abs_=1e-12 * scale)
            assert close(rmm_details[key]["roll_shock"], v["roll"], abs_=1e-12 * scale)
        assert close(r.maintenance_margin, want["mm"], abs_=1e-12)
        assert close(r.initial_margin, want["im"], abs_=2e-9)


def test_mixed_options_book_matches_reference_and_golden():
    """PM-OPT-1 (DERIVED, tests/golden/deribit-pm/PM-OPT-1.json): inverse BTC/ETH futures and
    options (short-dated, 2-month and 11-month), linear USDC perp and option, three S:PM units.
    The golden numbers were written by the independent reference; the model must match both."""
    doc = load("PM-OPT-1")
    assert doc["provenance"] == "derived"
    model, market, book = build(doc)
    check_against_reference(model, doc["market"], doc["book"]["accounts"][0])
    account = book.accounts[0]
    for ccy, exp in doc["expected"]["units"].items():
        r = unit_of(model, market, account, ccy)
        assert_tree(r.details["pre_aggregated_risk_vectors"],
                    exp["pre_aggregated_risk_vectors"], ccy, abs_=1e-12)
        assert_tree(r.details["aggregated_risk_vectors"], exp["aggregated_risk_vectors"], ccy,
                    abs_=1e-12)
        assert close(r.initial_margin, exp["initial_margin"], abs_=1e-12)
        assert close(r.maintenance_margin, exp["maintenance_margin"], abs_=1e-12)
        assert_tree(r.details["margins"][ccy.lower()]["initial_margin_details"]
                    ["risk_matrix_margin_details"], exp["risk_matrix_margin_details"], ccy,
                    abs_=1e-12)
        assert close(sum(p.contribution for p in r.positions), r.initial_margin, rel=1e-12)


def mixed():
    market = parse_model(MarketSnapshot, MIXED_MARKET, "market")
    account = parse_model(Book, MIXED_BOOK, "book").accounts[0]
    return market, account


def test_unit_details_expose_the_risk_matrix_and_worst_scenario():
    model = get_model("deribit-pm")
    market, account = mixed()
    r = unit_of(model, market, account, "BTC")
    d = r.details
    assert d["margin_model"] == "segregated_pm"
    assert len(d["aggregated_risk_vectors"]["btc_btc"]["standard"]) == 27
    assert len(d["aggregated_risk_vectors"]["btc_btc"]["extended"]) == 8
    worst = d["worst_scenario"]["btc_btc"]
    agg = d["aggregated_risk_vectors"]["btc_btc"]
    flat = agg["standard"] + agg["extended"]
    pos = worst["index"] + (27 if worst["source"] == "extended" else 0)
    assert flat[pos] == min(flat)
    assert set(d["scenarios"]["btc_usd"]["option_vols"]) == {
        "BTC-27MAR26-80000-C", "BTC-27MAR26-60000-P", "BTC-6FEB26-70000-P",
        "BTC-25DEC26-100000-C"}
    # contributions: P&L in the worst scenario (+ roll shock), adding up to IM
    for p in r.positions:
        expect = -p.details["pnl_worst_scenario"] * (
            d["margins"]["btc"]["initial_margin_details"]["risk_matrix_margin_details"]
            ["btc_btc"]["worst_case"] / -sum(q.details["pnl_worst_scenario"]
                                              for q in r.positions))
        assert close(p.details["worst_case_share"], expect, rel=1e-8, abs_=1e-12)
    assert close(sum(p.contribution for p in r.positions), r.initial_margin, rel=1e-13)


# ------------------------------------------------------------------------------------------
# building blocks, hand-checked


def test_grid_and_tie_break_order():
    """Standard grid bucket-major with (up, same, down) triplets; the scan prefers the 'same'
    scenario of a tied triplet (TV-D5 index 1, TV-D6 index 25)."""
    g = scenario_grid("btc_usd", 0.16, 4, (-0.66, 0.5), ("up", "same", "down"))
    assert g.n_standard == 27 and g.n_scenarios == 29
    np.testing.assert_allclose(g.moves[:27:3], [-0.16, -0.12, -0.08, -0.04, 0, 0.04, 0.08,
                                                0.12, 0.16], atol=1e-15)
    assert list(g.vol[:3]) == [1, 0, -1] and list(g.vol[27:]) == [1, 1]
    assert list(g.futures_moves[27:]) == [-0.16, 0.16]
    assert list(g.scan_order[:6]) == [1, 0, 2, 4, 3, 5]


def test_vol_shocks_by_term():
    """(30/DTE)^p with p = 0.30 up to 30 days, 0.13 beyond; floor of 1 day; min vol 0.5 on the
    shocked-up vol (btc_usd parameters, multiplicative)."""
    pp = DeribitPmParams().currency_pair["btc_usd"]
    T = np.array([30 / 365, 7.5 / 365, 120 / 365, 0.1 / 365])
    up, down = shocked_vols(T, np.array([0.6, 0.6, 0.6, 0.2]), pp)
    assert close(up[0], 0.6 * 1.5) and close(down[0], 0.6 * 0.75)
    assert close(up[1], 0.6 * (1 + 0.5 * 4 ** 0.3))
    assert close(down[1], 0.6 * (1 - 0.25 * 4 ** 0.3))
    assert close(up[2], 0.6 * (1 + 0.5 * 0.25 ** 0.13))
    assert close(up[3], max(0.2 * (1 + 0.5 * 30 ** 0.3), 0.5))   # 1-day floor, min vol
    assert close(down[3], 0.2 * max(0.0, 1 - 0.25 * 30 ** 0.3))
    up_a, down_a = shocked_vols(T[:1], np.array([0.6]), pp, mode="additive")
    assert close(up_a[0], 1.1) and close(down_a[0], 0.35)


def test_aggregate_offset_cap_and_dampener():
    """Gains × pnl_offset, capped; extended |P&L| less (|x|/range − 1)·dampener (hand values)."""
    g = scenario_grid("btc_usd", 0.16, 1, (-0.66,), ("up", "same", "down"))
    pre = np.array([[-1.0, 0.0, 100.0, 0.0, 0.0, 0.0, 5.0, 7.0, 9.0, -1000.0]])
    agg = aggregate(pre, g, pnl_offset=np.array([0.6]), max_offsetable=np.array([50.0]),
                    dampener=np.array([10.0]), rule="deductible")
    assert agg[0, 0] == -1.0 and agg[0, 2] == 50.0 and close(agg[0, 6], 3.0)
    assert close(agg[0, 9], -1000.0 + (0.66 / 0.16 - 1) * 10.0)


# ------------------------------------------------------------------------------------------
# the extended table binds on large far-OTM short options (issue 8)

FAR_OTM_MARKET: dict[str, Any] = {
    "timestamp": "2026-02-04T09:30:00Z", "index": {"BTC": 73000.0},
    "instruments": [{"symbol": "BTC-27MAR26-150000-C", "kind": "option", "underlying": "BTC",
                     "settle": "BTC", "inverse": True, "contract_size": 1,
                     "expiry": "2026-03-27T08:00:00Z", "strike": 150000,
                     "option_type": "call", "mark_iv": 0.55, "underlying_price": 73500.0}]}
FAR_OTM_ACCOUNT: dict[str, Any] = {
    "id": "far-otm", "margin_mode": "portfolio", "collateral": {"BTC": 100.0},
    "positions": [{"symbol": "BTC-27MAR26-150000-C", "size": -1000}]}


def test_extended_table_binds_on_far_otm_short_calls():
    """1,000 short BTC-27MAR26-150000-C at index 73,000: the +500% vol-up scenario loses about
    660 BTC. The extended table ("only a fraction of simulated P&L", "application of a
    dampener" [D4]) binds: the worst scenario is extended (+400%), IM is the loss there × the
    fraction 0.16/4 valued at the edge price (× 5/1.16) less the dampener (4/0.16 − 1) ×
    100,000 USD / (73,000 × 1.16), equal to the independent reference, and more than 10% of
    the full +500% loss (the coin-unit dampener gave 4.7 BTC)."""
    market = parse_model(MarketSnapshot, FAR_OTM_MARKET, "market")
    account = parse_model(Book, {"accounts": [FAR_OTM_ACCOUNT]}, "book").accounts[0]
    r = unit_of(get_model("deribit-pm"), market, account)
    ref = reference.segregated(FAR_OTM_MARKET, FAR_OTM_ACCOUNT)["BTC"]
    assert close(r.initial_margin, ref["im"], abs_=2e-9)
    worst = r.details["worst_scenario"]["btc_btc"]
    assert worst["source"] == "extended" and worst["price_move"] == 4.0
    # hand check of the binding entry with the test's own Black-76 and vol shock
    F, K = 73500.0, 150000.0
    T = (51 * 86400 - 1.5 * 3600) / (365 * 86400)              # 4 Feb 09:30 → 27 Mar 08:00
    up = 0.55 * (1 + 0.5 * (30 / (T * 365)) ** 0.13)
    v0 = reference.b76(F, K, T, 0.55, True) / F

    def loss(x: float) -> float:
        return 1000 * (reference.b76(F * (1 + x), K, T, up, True) / (F * (1 + x)) - v0)

    assert loss(5.0) > 600.0
    want = loss(4.0) * (0.16 / 4.0) * (5.0 / 1.16) - (4.0 / 0.16 - 1) * 100000 / (73000 * 1.16)
    assert close(r.initial_margin, round(want, 9), rel=1e-9)
    assert r.initial_margin > 0.1 * loss(5.0)
    # the former reading (dampener in coin) never binds: under 5 BTC
    old = get_model("deribit-pm", {"currency_amounts_in_usd": False,
                                   "extended_pnl_scaling": "off"})
    assert unit_of(old, market, account).initial_margin < 5.0


def test_extended_scaling_reproduces_the_published_futures_entries():
    """The scaling rule (fraction e/x, coin at the edge price) applied to the perpetual of
    TV-D5 gives its published extended entries: q·x/(1+x) × (0.16/|x|) × (1+x)/(1±0.16) =
    ±q·0.16/(1±0.16) (hand algebra; the published vector repeats the ±16% entries)."""
    doc = load("TV-D5")
    q = doc["venue_inputs"]["position"]["BTC-PERPETUAL"]
    published = doc["expected"]["initial_risk_vectors"]["BTC-PERPETUAL"]["extended"]
    for x, got in zip((-0.66, -0.33, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0), published, strict=True):
        e = math.copysign(0.16, x)
        assert close(q * x / (1 + x) * (e / x) * (1 + x) / (1 + e), got, rel=1e-9)


# ------------------------------------------------------------------------------------------
# X:PM: one USD stress test over every asset


def xpm(params: dict[str, Any], market_doc: dict[str, Any], account_doc: dict[str, Any]):
    market = parse_model(MarketSnapshot, market_doc, "market")
    account = parse_model(Book, {"accounts": [account_doc]}, "book").accounts[0]
    model = get_model("deribit-pm", {"collateral": "cross", **params})
    (unit,) = model.units(account, market)
    assert unit.currency == "USD"
    r = model.margin_unit(unit, account, market)
    assert r.details["margin_model"] == "cross_pm"
    assert close(sum(p.contribution for p in r.positions), r.initial_margin, rel=1e-12)
    assert close(sum(r.components.values()), r.initial_margin, rel=1e-12)
    return r


@pytest.mark.parametrize("mode", ["joint", "independent"])
def test_xpm_matches_independent_reference(mode):
    """The mixed book (BTC and ETH inverse futures and options, USDC linear perp and option,
    BTC and ETH collateral) against deribit_reference.cross: USD vectors per pair, coin
    collateral revalued, joint or independent pairs, BTC haircut 10% on IM and gains."""
    account = MIXED_BOOK["accounts"][0]
    r = xpm({"cross_pair_scenarios": mode, "currency": {"btc": {"haircut": 0.1}}},
            MIXED_MARKET, account)
    ref = reference.cross(MIXED_MARKET, account, mode == "joint", {"BTC": 0.1})
    for pk, v in ref["usd"].items():
        got = r.details["pre_aggregated_risk_vectors_usd"][pk]
        np.testing.assert_allclose(got["standard"] + got["extended"], v, rtol=1e-9, atol=1e-6)
    assert close(r.initial_margin, ref["im"], rel=1e-9)
    assert close(r.maintenance_margin, ref["mm"], rel=1e-9)
    assert close(r.components["collateral_haircut"], 0.1 * 2.0 * 73000.0, rel=1e-12)


PERPS: dict[str, Any] = {
    "timestamp": "2026-02-04T09:30:00Z", "index": {"BTC": 73000.0, "ETH": 2100.0},
    "fx": {"USDC": 1.0},
    "instruments": [
        {"symbol": "BTC-PERPETUAL", "kind": "perpetual", "underlying": "BTC", "settle": "BTC",
         "inverse": True, "contract_size": 10, "mark_price": 73000.0},
        {"symbol": "ETH-PERPETUAL", "kind": "perpetual", "underlying": "ETH", "settle": "ETH",
         "inverse": True, "contract_size": 1, "mark_price": 2100.0},
        {"symbol": "BTC_USDC-PERPETUAL", "kind": "perpetual", "underlying": "BTC",
         "settle": "USDC", "inverse": False, "contract_size": 0.001, "mark_price": 73000.0}]}


def test_xpm_btc_long_eth_short_offsets_only_as_far_as_the_joint_scenarios_go():
    """Long 730,000 USD of BTC-PERPETUAL (10 BTC), short 210,000 USD of ETH-PERPETUAL (100 ETH),
    USDC collateral. In USD a coin-settled perp's P&L is q·S·x. Independent pairs: each worst
    case in full, 10·73,000·0.16 + 100·2,100·0.18 = 154,600, plus roll shocks 0.01·10·73,000 +
    0.005·100·2,100 = 8,350. Joint scenarios (BTC −16% with ETH −18%, …): the ETH gain counts
    × pnl_offset 0.6, so the worst is 116,800 − 0.6·37,800 = 94,120 (the extended entries are
    dampened to 0). Hand arithmetic."""
    acct = {"id": "x", "margin_mode": "portfolio", "collateral": {"USDC": 100000.0},
            "positions": [{"symbol": "BTC-PERPETUAL", "size": 73000},
                          {"symbol": "ETH-PERPETUAL", "size": -210000}]}
    ind = xpm({"cross_pair_scenarios": "independent"}, PERPS, acct)
    joint = xpm({"cross_pair_scenarios": "joint"}, PERPS, acct)
    default = xpm({}, PERPS, acct)      # published correlation_set false → independent
    assert close(ind.initial_margin, 116800 + 37800 + 8350, rel=1e-12)
    assert close(default.initial_margin, ind.initial_margin, rel=1e-15)
    assert close(joint.initial_margin, 94120 + 8350, rel=1e-12)
    assert close(joint.maintenance_margin, 0.8 * (94120 + 8350), rel=1e-12)
    flagged = xpm({"currency": {"btc": {"correlation_set": True},
                                "eth": {"correlation_set": True}}}, PERPS, acct)
    assert close(flagged.initial_margin, joint.initial_margin, rel=1e-15)


def test_xpm_coin_collateral_that_falls_with_the_portfolio_raises_the_requirement():
    """Long 5 BTC of BTC_USDC-PERPETUAL (mark = index 73,000): worst −16%, 5·73,000·0.16 =
    58,400 USD + roll 3,650. Holding 2 BTC as collateral adds its own fall, 2·73,000·0.16 =
    23,360. Short 2 BTC of the perp against 2 BTC of collateral is hedged: only the roll shock
    1,460 remains (S:PM of the same short: 23,360 + 1,460). Hand arithmetic."""
    def acct(coll: dict[str, float], size: float) -> dict[str, Any]:
        return {"id": "x", "margin_mode": "portfolio", "collateral": coll,
                "positions": [{"symbol": "BTC_USDC-PERPETUAL", "size": size}]}

    usdc_only = xpm({}, PERPS, acct({"USDC": 50000.0}, 5000))
    with_btc = xpm({}, PERPS, acct({"USDC": 50000.0, "BTC": 2.0}, 5000))
    assert close(usdc_only.initial_margin, 58400 + 3650, rel=1e-12)
    assert close(with_btc.initial_margin, 58400 + 23360 + 3650, rel=1e-12)
    off = xpm({"collateral_revaluation": "off"}, PERPS, acct({"BTC": 2.0}, 5000))
    assert close(off.initial_margin, usdc_only.initial_margin, rel=1e-15)
    hedged = xpm({}, PERPS, acct({"BTC": 2.0}, -2000))
    assert close(hedged.initial_margin, 1460, rel=1e-12)
    # equity_side_impact 'up': the balance counts in rising moves only, so its fall is ignored
    up_only = xpm({"currency": {"btc": {"equity_side_impact": "up"}}}, PERPS,
                  acct({"BTC": 2.0}, 5000))
    assert close(up_only.initial_margin, usdc_only.initial_margin, rel=1e-15)
    # a coin without positions on its pair counts only with collateral_revaluation='all'
    eth = {"id": "x", "margin_mode": "portfolio", "collateral": {"BTC": 2.0},
           "positions": [{"symbol": "ETH-PERPETUAL", "size": -210000}]}
    assert close(xpm({}, PERPS, eth).initial_margin, 37800 + 1050, rel=1e-12)
    assert close(xpm({"collateral_revaluation": "all"}, PERPS, eth).initial_margin,
                 37800 + 23360 + 1050, rel=1e-12)
    market = parse_model(MarketSnapshot, PERPS, "market")
    account = parse_model(Book, {"accounts": [acct({"BTC": 2.0}, -2000)]}, "b").accounts[0]
    assert close(unit_of(get_model("deribit-pm"), market, account).initial_margin,
                 23360 + 1460, rel=1e-9)


def test_xpm_tv_d6_book_in_usd():
    """TV-D6's short ETH perpetual (q = 0.999487053 ETH, index 1,949.34) held against the
    book's 1 ETH balance: in X:PM the balance is revalued in the same scenarios, so the pair
    vector is (1 − q)·S·x USD and the worst case (1 − q)·S·0.18 at −18% (0.18 USD), plus the
    roll shock q·0.005·S. S:PM of the same account charges 0.157461562 ETH (published)."""
    doc = load("TV-D6")
    account = doc["book"]["accounts"][0]
    assert account["collateral"] == {"ETH": 1.0}
    r = xpm({}, doc["market"], account)
    q, S = 0.999487053, 1949.34
    assert close(r.initial_margin, (1.0 - q) * S * 0.18 + q * 0.005 * S, rel=1e-9)


# ------------------------------------------------------------------------------------------
# properties


def book_doc(draw_sizes: list[float], symbols: list[str]) -> dict[str, Any]:
    positions = [{"symbol": s, "size": z} for s, z in zip(symbols, draw_sizes, strict=True)
                 if z != 0]
    return {"id": "h", "margin_mode": "portfolio", "collateral": {"BTC": 1.0},
            "positions": positions}


def books(draw_sizes: list[float], symbols: list[str]) -> Account:
    return parse_model(Book, {"accounts": [book_doc(draw_sizes, symbols)]},
                       "book").accounts[0]


BTC_SYMBOLS = ["BTC-PERPETUAL", "BTC-27MAR26", "BTC-27MAR26-80000-C", "BTC-27MAR26-60000-P",
               "BTC-6FEB26-70000-P", "BTC-25DEC26-100000-C"]
SIZES = st.lists(st.floats(-50, 50, allow_nan=False).map(lambda x: round(x, 1)),
                 min_size=len(BTC_SYMBOLS), max_size=len(BTC_SYMBOLS))
FAST = settings(max_examples=25, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


def scaled(sizes: list[float]) -> list[float]:
    return [z * (1000.0 if i < 2 else 1.0) for i, z in enumerate(sizes)]


@FAST
@given(SIZES)
def test_random_books_match_reference(sizes):
    doc = book_doc(scaled(sizes), BTC_SYMBOLS)
    if doc["positions"]:
        check_against_reference(get_model("deribit-pm"), MIXED_MARKET, doc)


@FAST
@given(st.lists(st.integers(-20, 20), min_size=10, max_size=10),
       st.sampled_from(["joint", "independent"]),
       st.fixed_dictionaries({"BTC": st.sampled_from([0.0, 0.5, 3.0]),
                              "ETH": st.sampled_from([0.0, 10.0]), "USDC": st.just(1e4)}))
def test_random_xpm_books_match_reference(units, mode, collateral):
    """X:PM on random mixed books (inverse and linear, futures and options, coin collateral):
    IM and MM equal the independent reference; contributions add up (checked in xpm)."""
    symbols = [i["symbol"] for i in MIXED_MARKET["instruments"]]
    scale = {"BTC-PERPETUAL": 500, "BTC-27MAR26": 500, "ETH-PERPETUAL": 2000,
             "BTC_USDC-PERPETUAL": 500, "BTC_USDC-27MAR26-90000-C": 20}
    doc = {"id": "h", "margin_mode": "portfolio", "collateral": collateral,
           "positions": [{"symbol": s, "size": z * scale.get(s, 1)}
                         for s, z in zip(symbols, units, strict=True) if z]}
    if not doc["positions"]:
        return
    r = xpm({"cross_pair_scenarios": mode}, MIXED_MARKET, doc)
    ref = reference.cross(MIXED_MARKET, doc, mode == "joint")
    assert close(r.initial_margin, ref["im"], rel=1e-9, abs_=1e-6)
    assert close(r.maintenance_margin, ref["mm"], rel=1e-9, abs_=1e-6)
    assert r.initial_margin >= r.maintenance_margin >= 0.0


@FAST
@given(SIZES, st.sampled_from([0.5, 2.0, 3.0, 10.0]))
def test_scaling_and_ordering(sizes, k):
    """IM ≥ MM ≥ 0; every size × k scales IM and MM by k (no size-dependent term; roundings
    and the extended dampener, a fixed USD deductible, off); contributions add up to IM."""
    market, _ = mixed()
    model = get_model("deribit-pm", {"worst_case_decimals": None,
                                     "initial_margin_decimals": None,
                                     "extended_dampener_rule": "off"})
    a = books(scaled(sizes), BTC_SYMBOLS)
    b = books([k * z for z in scaled(sizes)], BTC_SYMBOLS)
    if not a.positions:
        return
    ra = unit_of(model, market, a)
    rb = unit_of(model, market, b)
    assert ra.initial_margin >= ra.maintenance_margin >= 0.0
    assert close(rb.initial_margin, k * ra.initial_margin, rel=1e-9, abs_=1e-12)
    assert close(rb.maintenance_margin, k * ra.maintenance_margin, rel=1e-9, abs_=1e-12)
    assert close(sum(p.contribution for p in ra.positions), ra.initial_margin, rel=1e-9,
                 abs_=1e-12)


@FAST
@given(SIZES)
def test_hedge_never_raises_margin(sizes):
    """Portfolio IM ≤ Σ IM of each position margined alone (rounding: 1e-9 per position). The
    dampener is a deductible per risk vector, so it is off here: with it, positions margined
    alone each get the deductible and their sum can be lower than the portfolio's IM."""
    market, _ = mixed()
    model = get_model("deribit-pm", {"extended_dampener_rule": "off"})
    account = books(scaled(sizes), BTC_SYMBOLS)
    if not account.positions:
        return
    r = unit_of(model, market, account)
    alone = sum(p.initial_margin for p in r.positions)
    assert r.initial_margin <= alone + 1e-9 * (len(r.positions) + 1)


# ------------------------------------------------------------------------------------------
# input handling, modes, command line


def test_rejections():
    market, account = mixed()
    model = get_model("deribit-pm")
    iso = account.model_copy(update={"margin_mode": MarginMode.ISOLATED})
    with pytest.raises(InputError, match=r"margin_mode.*not offered"):
        model.units(iso, market)
    cross_acct = account.model_copy(update={"margin_mode": MarginMode.CROSS})
    assert len(model.units(cross_acct, market)) == 3
    no_eth = get_model("deribit-pm", {"currency_pair": {}})  # merged: defaults kept
    assert "eth_usd" in no_eth.params.currency_pair
    with pytest.raises(InputError, match="vol_scenario_order"):
        get_model("deribit-pm", {"vol_scenario_order": ["up", "up", "down"]})
    with pytest.raises(InputError, match="unknown parameter"):
        get_model("deribit-pm", {"no_such": 1})
    sol = parse_model(MarketSnapshot, {
        "timestamp": "2026-02-04T09:30:00Z", "index": {"SOL": 100.0}, "fx": {"USDC": 1.0},
        "instruments": [{"symbol": "SOL_USDC-PERPETUAL", "kind": "perpetual",
                         "underlying": "SOL", "settle": "USDC", "mark_price": 100.0}]}, "m")
    acct = parse_model(Book, {"accounts": [{"id": "s", "margin_mode": "portfolio",
                                            "positions": [{"symbol": "SOL_USDC-PERPETUAL",
                                                           "size": 5}]}]}, "b").accounts[0]
    with pytest.raises(InputError, match="sol_usd"):
        model.units(acct, sol)
    with_sol = get_model("deribit-pm", {"currency_pair": {"sol_usd": {
        **DeribitPmParams().currency_pair["eth_usd"].model_dump(), "price_range": 0.3}}})
    r = unit_of(with_sol, sol, acct)
    # linear perp, 5 SOL short at 100: worst = 5·100·0.3 = 150 USDC; roll 5·100·0.01 = 5
    assert close(r.details["margins"]["usdc"]["initial_margin_details"]["risk_matrix_margin"],
                 155.0)


def test_compute_command_on_mixed_book(tmp_path):
    from typer.testing import CliRunner

    from margin_engine.cli.main import app
    (tmp_path / "m.json").write_text(json.dumps(MIXED_MARKET))
    (tmp_path / "b.json").write_text(json.dumps(MIXED_BOOK))
    res = CliRunner().invoke(app, ["compute", str(tmp_path / "b.json"), str(tmp_path / "m.json"),
                                   "--model", "deribit-pm", "--format", "json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    acct = doc["accounts"][0]
    assert {u["currency"] for u in acct["units"]} == {"BTC", "ETH", "USDC"}
    for u in acct["units"]:
        assert "aggregated_risk_vectors" in u["details"]
        assert u["initial_margin"] >= u["maintenance_margin"] >= 0
    assert all(p["liquidation_price"] is None or p["liquidation_price"] > 0
               for p in acct["positions"])


# ------------------------------------------------------------------------------------------
# real data: a Deribit option chain, every instrument revalued


CHAIN = REAL / "deribit_options_chain_daily_0930utc_2025-12-30_2026-08-22.csv.gz"


@pytest.mark.realdata
def test_real_chain_revaluation_matches_independent_reference():
    """One real BTC chain snapshot (Deribit public API, 2025-12-30): the risk matrix of 60
    options equals the independent reference (its own Black-76 from scipy and its own vol
    shocks from the published formula, deribit_reference.position_vector), and Black-76 at
    mark_iv reproduces the venue's marks within 2% of the premium + 1e-4 BTC."""
    if not CHAIN.exists():
        pytest.skip(f"real data absent: {CHAIN}")
    import csv
    rows = []
    with gzip.open(CHAIN, "rt") as f:
        for row in csv.DictReader(f):
            if row["currency"] != "BTC":
                continue
            if rows and row["snapshot_file"] != rows[0]["snapshot_file"]:
                break
            rows.append(row)
    ts = rows[0]["timestamp"]
    instruments = [{
        "symbol": r["instrument_name"], "kind": "option", "underlying": "BTC", "settle": "BTC",
        "inverse": True, "contract_size": 1, "expiry": r["expiry_datetime"],
        "strike": float(r["strike"]), "option_type": r["option_type"],
        "mark_iv": float(r["implied_volatility"]),
        "underlying_price": float(r["underlying"]), "mark_price": float(r["mark_price"])}
        for r in rows if float(r["implied_volatility"]) > 0 and float(r["mark_price"]) > 0]
    market_doc = {"timestamp": ts, "index": {"BTC": float(rows[0]["index_price"])},
                  "instruments": instruments}
    market = parse_model(MarketSnapshot, market_doc, "market")
    model = get_model("deribit-pm")
    assert isinstance(model, DeribitPm)
    rv = model.risk_vectors(market.instruments, market)["btc_usd"]
    assert rv.pnl.shape == (len(instruments), 35)
    rng = np.random.default_rng(5)
    for i in rng.choice(len(instruments), size=min(60, len(instruments)), replace=False):
        doc = instruments[i]
        assert market.instruments[i].symbol == doc["symbol"]
        T = (market.instruments[i].expiry - market.timestamp).total_seconds() / (365 * 86400)
        F = doc["underlying_price"]
        v0 = reference.b76(F, doc["strike"], T, doc["mark_iv"], doc["option_type"] == "call")
        assert abs(v0 / F - doc["mark_price"]) < 0.02 * v0 / F + 1e-4
        _, want, _ = reference.position_vector(doc, 1.0, market_doc)
        np.testing.assert_allclose(rv.pnl[i], want, rtol=1e-9, atol=1e-13)
