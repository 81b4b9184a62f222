"""span: CME SPAN against the worked examples of research/ccp-standards.md §1.10 (TV-SPAN-1, -2,
-3), DERIVED hand-computed cases, an independent QuantLib risk-array reference, and properties."""

from __future__ import annotations

import json
import math
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from golden_checks import check_subset, close, run_case
from margin_engine.domain.book import Account, Book
from margin_engine.domain.instruments import Instrument
from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError
from margin_engine.io.loaders import parse_model
from margin_engine.models.core.registry import get_model
from margin_engine.models.venues.span import (
    calendar_spread_margin,
    cc_risk,
    form_intra_spreads,
    inter_spread_credit,
    risk_split,
    scan_risk,
    short_option_minimum,
    total_requirement,
)
from margin_engine.models.venues.span_arrays import span_risk_array, valuation
from margin_engine.policy.assess import AccountReport, assess_account

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "span"
MODEL_CASES = sorted(p.stem for p in GOLDEN.glob("*.json")
                     if "market" in json.loads(p.read_text()))


def case(name: str) -> dict[str, Any]:
    return json.loads((GOLDEN / f"{name}.json").read_text())








# --- TV-SPAN-1 ---------------------------------------------------------------------------------

def test_tv_span_1_scan_risk_from_published_arrays():
    """TV-SPAN-1 (McMillan): long call 3,990 (scenario 14), covered write 6,620 (13) with the
    published P/L column, long future 10,000 = PSR (13)."""
    doc = case("TV-SPAN-1")
    arrays = doc["risk_arrays_profit"]
    for name, port in doc["portfolios"].items():
        profit = [sum(q * arrays[s][k] for s, q in port.items()) for k in range(16)]
        scan, k = scan_risk([-p for p in profit])
        want = doc["expected"][name]
        assert (scan, k) == (want["scan_risk"], want["scan_scenario"]), name
        if "pnl" in want:
            assert profit == want["pnl"]


def test_tv_span_1_future_array_regenerated_by_the_model():
    """TV-SPAN-1: the future's array from PSR $10,000, X = 2, C = 35% (McMillan rounds the
    1/3 points to $10); its scan risk is the PSR."""
    mc = case("TV-SPAN-1")["model_case"]
    r = run(mc)
    got = r.positions[0].margin.details["risk_array"]
    want = [-x for x in case("TV-SPAN-1")["risk_arrays_profit"]["future"]]
    check_subset(got, want, mc["tolerance_abs_risk_array"], "risk_array")
    assert got[14] == pytest.approx(-7000.0, rel=1e-12)
    assert r.maintenance_margin == pytest.approx(mc["expected"]["maintenance_margin"], rel=1e-12)


# --- TV-SPAN-2 ---------------------------------------------------------------------------------

def test_tv_span_2_inter_arithmetic():
    """TV-SPAN-2 inter: 2 corn × $1,750 vs 1 soy × $2,500 at 55% → credit $3,300, margin
    $2,700 (the SCANRANGE form: WFPR = outright rate per contract)."""
    a = case("TV-SPAN-2-inter")["arithmetic"]
    outright = sum(n * rate for n, rate in a["legs"])
    credit = inter_spread_credit(1.0, [(n, rate) for n, rate in a["legs"]], a["rate"])
    assert outright == a["expected"]["outright"]
    assert credit == pytest.approx(a["expected"]["credit"], rel=1e-12)
    assert outright - credit == pytest.approx(a["expected"]["margin"], rel=1e-12)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_tv_span_2_intra_arithmetic(n):
    """TV-SPAN-2 intra: |Outright₁ − Outright₂| + IntraCharge = $200, $300, $250."""
    a = case(f"TV-SPAN-2-intra-{n}")["arithmetic"]
    assert calendar_spread_margin(a["outright_1"], a["outright_2"], a["intra_charge"]) == \
        a["expected"]["margin"]


# --- every golden case with a market and book, through the model -------------------------------

@pytest.mark.parametrize("name", MODEL_CASES)
def test_golden_case(name):
    """TV-SPAN-2 (model form), TV-SPAN-3 A/B and the X = 2 sensitivity, DERIVED cases: every
    intermediate and the result."""
    doc = case(name)
    tol = doc.get("tolerance_abs")
    r = run(doc)
    unit = r.units[0].margin
    ccs = {c["combined_commodity"]: c for c in unit.details["combined_commodities"]}
    inter = doc.get("intermediate", {})
    for cc, want in inter.get("combined_commodities", {}).items():
        want = dict(want)
        ends = want.pop("port_risk_array_15_16", None)
        check_subset(ccs[cc], want, tol, f"{name}.{cc}")
        if ends is not None:
            check_subset(ccs[cc]["port_risk_array"][14:], ends, tol, f"{name}.{cc}.RA15-16")
    by_symbol = {p.margin.symbol: p.margin for p in r.positions}
    for sym, arr in inter.get("risk_arrays", {}).items():
        check_subset(by_symbol[sym].details["risk_array"], arr, 5.001e-5, f"{name}.{sym}")
    for sym, ends in inter.get("extreme_scenarios", {}).items():
        check_subset(by_symbol[sym].details["risk_array"][14:], ends, 5.001e-5, f"{name}.{sym}")
    for sym, value in inter.get("option_values", {}).items():
        assert by_symbol[sym].details["option_value_usd"] / by_symbol[sym].size == \
            pytest.approx(value, abs=5.001e-5)
    exp = doc["expected"]
    assert close(r.maintenance_margin, exp["maintenance_margin"], tol)
    assert close(r.initial_margin, exp["initial_margin"], tol)
    check_subset(dict(unit.details), exp.get("unit_details", {}), tol, f"{name}.details")
    check_subset(dict(r.components), exp.get("components", {}), tol, f"{name}.components")
    for sym, want in exp.get("positions", {}).items():
        assert close(by_symbol[sym].maintenance_margin, want["maintenance_margin"], tol)


def test_tv_span_3_decomposition_and_assembly():
    """TV-SPAN-3 portfolio A from the printed PortRA: time −0.3639, vol 0, price 78.8818;
    CCRisk = max(78.5179, SOM 10) and Total = 78.5179 − (−15.6644) = 94.1823."""
    cc = case("TV-SPAN-3-A")["intermediate"]["combined_commodities"]["XYZ"]
    time, vol, price = risk_split(cc["port_risk_array"])
    assert (round(time, 4), vol, round(price, 4)) == (-0.3639, 0.0, 78.8818)
    scan, _ = scan_risk(cc["port_risk_array"])
    risk = cc_risk(scan, 0.0, 0.0, 0.0, short_option_minimum(1.0, 0.0, 10.0))
    assert risk == 78.5179
    assert total_requirement(risk, -15.6644) == pytest.approx(94.1823, abs=1e-12)


# --- pure-function behaviour -------------------------------------------------------------------

def test_intra_spreads_pair_nearest_tiers_first():
    """Deltas (−1, +3, −4): the front tier pairs with the next one first, then the rest."""
    spreads, used, rem = form_intra_spreads([-1.0, 3.0, -4.0])
    assert (spreads, used, rem) == (3.0, [1.0, 3.0, 2.0], [0.0, 0.0, -2.0])


def test_risk_split_pairs():
    """The volatility risk uses the pair holding the scan scenario (here 7/8)."""
    ra = [0.0] * 16
    ra[6], ra[7] = 10.0, 4.0
    assert risk_split(ra) == (0.0, 3.0, 7.0)
    with pytest.raises(ValueError, match="port_ra"):
        scan_risk([1.0] * 15)


# --- independent reference: risk arrays with QuantLib's Black formula ---------------------------

ql = pytest.importorskip("QuantLib")


def ql_value(F: float, S: float, K: float, T: float, vol: float, call: bool, cs: float,
             inverse: bool, fx: float) -> float:
    if T <= 0:
        usd = max((F - K) if call else (K - F), 0.0)
    else:
        usd = ql.blackFormula(ql.Option.Call if call else ql.Option.Put, K, F,
                              max(vol, 0.0) * math.sqrt(T), 1.0)
    return cs * usd * (S / F if inverse else fx)


MARKET_T = "2026-02-04T09:30:00Z"


@settings(max_examples=60, deadline=None)
@given(F=st.floats(500, 200_000), basis=st.floats(0.95, 1.05), k=st.floats(0.5, 1.8),
       days=st.floats(0.5, 400), vol=st.floats(0.1, 1.5), call=st.booleans(),
       inverse=st.booleans(), psr=st.floats(0.05, 0.6), vsr=st.floats(0.0, 0.5),
       relative=st.booleans(), cs=st.sampled_from([0.1, 1.0, 5.0]))
def test_option_risk_array_matches_quantlib_reference(F, basis, k, days, vol, call, inverse,
                                                      psr, vsr, relative, cs):
    """RA_k = (V(F, S, σ, T) − V(F + m·PSR, S + m·PSR, σ', T − 1d))·w with V from QuantLib's
    blackFormula, USD: linear ×fx, inverse ×S/F (coin value at the scenario index)."""
    from datetime import UTC, datetime, timedelta
    now = datetime(2026, 2, 4, 9, 30, tzinfo=UTC)
    S = F / basis
    ins = Instrument(symbol="X", kind="option", underlying="BTC",
                     settle="BTC" if inverse else "USDC", inverse=inverse, contract_size=cs,
                     expiry=now + timedelta(days=days), strike=round(F * k, 2),
                     option_type="call" if call else "put", mark_iv=vol, underlying_price=F)
    market = MarketSnapshot(timestamp=now, index={"BTC": S}, fx={"USDC": 0.9997},
                            instruments=(ins,))
    v = valuation(ins, market)
    P = psr * S
    mode = "relative" if relative else "absolute"
    got = span_risk_array(v, price_scan=P, vol_scan=vsr, vol_mode=mode, extreme_move=3.0,
                          extreme_cover=0.35, lookahead_years=1 / 365)
    T = days / 365
    moves = [0, 0, 1 / 3, 1 / 3, -1 / 3, -1 / 3, 2 / 3, 2 / 3, -2 / 3, -2 / 3, 1, 1, -1, -1, 3, -3]
    vm = [1, -1] * 7 + [0, 0]
    base = ql_value(F, S, ins.strike, T, vol, call, cs, inverse, 0.9997)
    for j in range(16):
        d = moves[j] * P
        F1, S1 = max(F + d, 1e-12 * F), max(S + d, 1e-12 * S)
        sig = vol + vm[j] * vsr if not relative else vol * (1 + vm[j] * vsr)
        w = 0.35 if j >= 14 else 1.0
        want = (base - ql_value(F1, S1, ins.strike, max(T - 1 / 365, 0.0), sig, call, cs,
                                inverse, 0.9997)) * w
        assert math.isclose(got[j], want, rel_tol=1e-9, abs_tol=1e-9 * cs * F), (j, got[j], want)


# --- properties --------------------------------------------------------------------------------

PROP_MARKET = {
    "timestamp": MARKET_T, "index": {"BTC": 73000.0, "ETH": 2100.0},
    "fx": {"USDT": 1.0, "USDC": 1.0},
    "instruments": [
        {"symbol": "BTCUSDT", "kind": "perpetual", "underlying": "BTC", "settle": "USDT",
         "contract_size": 1, "mark_price": 73005.0},
        {"symbol": "BTC-PERPETUAL", "kind": "perpetual", "underlying": "BTC", "settle": "BTC",
         "inverse": True, "contract_size": 10, "mark_price": 73010.5},
        {"symbol": "BTC-27FEB26", "kind": "future", "underlying": "BTC", "settle": "BTC",
         "inverse": True, "contract_size": 10, "mark_price": 73200.0},
        {"symbol": "BTC-27MAR26", "kind": "future", "underlying": "BTC", "settle": "BTC",
         "inverse": True, "contract_size": 10, "mark_price": 73500.0},
        {"symbol": "BTC-27MAR26-80000-C", "kind": "option", "underlying": "BTC", "settle": "BTC",
         "inverse": True, "contract_size": 1, "mark_iv": 0.55, "underlying_price": 73500.0,
         "mark_price": 0.0123},
        {"symbol": "BTC-27MAR26-65000-P", "kind": "option", "underlying": "BTC", "settle": "BTC",
         "inverse": True, "contract_size": 1, "mark_iv": 0.60, "underlying_price": 73500.0},
        {"symbol": "BTC_USDC-26JUN26-75000-C", "kind": "option", "underlying": "BTC",
         "settle": "USDC", "contract_size": 0.01, "mark_iv": 0.52},
        {"symbol": "ETHUSDT", "kind": "perpetual", "underlying": "ETH", "settle": "USDT",
         "contract_size": 1, "mark_price": 2101.0},
        {"symbol": "ETH-27MAR26-2000-P", "kind": "option", "underlying": "ETH", "settle": "ETH",
         "inverse": True, "contract_size": 1, "mark_iv": 0.7, "underlying_price": 2110.0}]}
SYMBOLS = [i["symbol"] for i in PROP_MARKET["instruments"]]
SIZE_SCALE = {"BTCUSDT": 1.0, "BTC-PERPETUAL": 5000.0, "BTC-27FEB26": 5000.0,
              "BTC-27MAR26": 5000.0, "BTC-27MAR26-80000-C": 1.0, "BTC-27MAR26-65000-P": 1.0,
              "BTC_USDC-26JUN26-75000-C": 100.0, "ETHUSDT": 30.0, "ETH-27MAR26-2000-P": 30.0}


@pytest.fixture(scope="module")
def prop_market() -> MarketSnapshot:
    return parse_model(MarketSnapshot, PROP_MARKET, "market")


def account(positions: list[tuple[str, float]], mode: str = "portfolio") -> Account:
    return Account.model_validate({"id": "p", "margin_mode": mode,
                                   "collateral": {"USDT": 100000},
                                   "positions": [{"symbol": s, "size": q} for s, q in positions]})


books = st.lists(st.tuples(st.sampled_from(SYMBOLS), st.floats(-3, 3).filter(
    lambda x: abs(x) > 1e-3)), min_size=1, max_size=6).map(
    lambda ps: [(s, q * SIZE_SCALE[s]) for s, q in ps])


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(positions=books, k=st.floats(0.01, 50))
def test_properties(prop_market, positions, k):
    """IM ≥ MM ≥ 0; contributions add up to IM; SPAN has no size-dependent term, so scaling
    every size by k scales IM and MM by k; the book never needs more than its positions
    margined alone (the hedge property)."""
    model = get_model("span")
    r = assess_account(model, account(positions), prop_market, liquidation_prices=False)
    assert r.initial_margin >= r.maintenance_margin >= 0.0
    assert math.isclose(sum(p.margin.contribution for p in r.positions), r.initial_margin,
                        rel_tol=1e-9, abs_tol=1e-6)
    alone = sum(p.margin.maintenance_margin for p in r.positions)
    assert r.maintenance_margin <= alone * (1 + 1e-9) + 1e-6
    rk = assess_account(model, account([(s, q * k) for s, q in positions]), prop_market,
                        liquidation_prices=False)
    assert math.isclose(rk.maintenance_margin, k * r.maintenance_margin, rel_tol=1e-9,
                        abs_tol=1e-6)
    assert math.isclose(rk.initial_margin, k * r.initial_margin, rel_tol=1e-9, abs_tol=1e-6)


def test_isolated_mode_margins_each_position_alone(prop_market):
    """Isolated: one unit per position, each equal to that position's standalone SPAN."""
    positions = [("BTCUSDT", 1.0), ("BTC-27MAR26", -7300.0), ("BTC-27MAR26-80000-C", -2.0)]
    model = get_model("span")
    iso = assess_account(model, account(positions, "isolated"), prop_market,
                         liquidation_prices=False)
    port = assess_account(model, account(positions), prop_market, liquidation_prices=False)
    assert len(iso.units) == 3
    for u, p in zip(iso.units, port.positions, strict=True):
        assert math.isclose(u.margin.maintenance_margin,
                            prop_market.convert(p.margin.maintenance_margin, "USD",
                                                u.margin.currency), rel_tol=1e-12)
    assert port.maintenance_margin < iso.maintenance_margin


# --- inputs and parameters ---------------------------------------------------------------------

def test_unknown_underlying_is_rejected(market_doc, book_doc):
    market_doc["index"]["SOL"] = 150.0
    market_doc["instruments"].append({"symbol": "SOLUSDT", "kind": "perpetual",
                                      "underlying": "SOL", "settle": "USDT",
                                      "mark_price": 150.0})
    book_doc["accounts"][0]["positions"].append({"symbol": "SOLUSDT", "size": 3})
    market = parse_model(MarketSnapshot, market_doc, "market")
    acct = parse_model(Book, book_doc, "book").accounts[0]
    with pytest.raises(InputError, match="no SPAN risk-parameter set") as err:
        assess_account(get_model("span"), acct, market)
    assert err.value.path == "positions[1].symbol"
    fixed = get_model("span", {"combined_commodities": {"SOL": {"price_scan_range": 0.6}}})
    r = assess_account(fixed, acct, market, liquidation_prices=False)
    assert r.maintenance_margin > 0


def test_partial_parameter_override_keeps_defaults():
    m = get_model("span", {"combined_commodities": {"BTC": {"price_scan_range": 0.2}}})
    ccs = m.params.combined_commodities
    assert ccs["BTC"].price_scan_range == 0.2 and ccs["BTC"].extreme_cover == 0.35
    assert ccs["ETH"].price_scan_range == 0.63
    assert m.params.params_hash() != get_model("span").params.params_hash()


@pytest.mark.parametrize("params, message", [
    ({"combined_commodities": {"BTC": {"extreme_cover": 1.5}}}, "less than or equal"),
    ({"combined_commodities": {"BTC": {"vol_scan_mode": "log"}}}, "absolute"),
    ({"inter_spreads": [{"legs": ["BTC", "ETH"], "ratios": [1, 0], "rate": 0.5}]}, "> 0"),
    ({"scan": 1}, "unknown parameter"),
])
def test_bad_parameters_are_input_errors(params, message):
    with pytest.raises(InputError, match=message) as err:
        get_model("span", params)
    assert err.value.path.startswith("--param")


def test_design_example_with_liquidation_price(market_doc, book_doc):
    """The DESIGN §4 book (collateral 150,000 USDT): a long linear perpetual margined at its scan
    risk, 43% × 2.5 × index; the liquidation price solves 150,000 + 2.5·(73,005·f − 70,000) =
    0.43·2.5·73,000·f (index and mark both move by f)."""
    book_doc["accounts"][0]["collateral"] = {"USDT": 150000}
    market = parse_model(MarketSnapshot, market_doc, "market")
    acct = parse_model(Book, book_doc, "book").accounts[0]
    r = assess_account(get_model("span"), acct, market)
    assert math.isclose(r.maintenance_margin, 0.43 * 73000.0 * 2.5, rel_tol=1e-12)
    assert math.isclose(r.initial_margin, 1.1 * r.maintenance_margin, rel_tol=1e-12)
    f = (2.5 * 70000 - 150000) / (2.5 * 73005 - 0.43 * 2.5 * 73000)
    assert math.isclose(r.positions[0].liquidation_price, 73005 * f, rel_tol=1e-9)


def run(doc: dict[str, Any], params: dict[str, Any] | None = None) -> AccountReport:
    return run_case("span", doc, params)


# --- a risk-parameter file, and the sourced defaults ---------------------------------------------

ROOT = Path(__file__).resolve().parents[3]


def _file_reports(extra: dict[str, Any] | None = None) -> dict[str, AccountReport]:
    from margin_engine.io.model_options import build_model

    doc = case("FILE-cme-crypto-2026-02-04")
    files = {k: ROOT / v for k, v in doc["files"].items()}
    market = parse_model(MarketSnapshot, json.loads(files["market"].read_text()), "market")
    book = parse_model(Book, json.loads(files["book"].read_text()), "book")
    model, _ = build_model("span", {"risk_parameters": str(files["risk_parameters"]),
                                    **(extra or {})}, None, market)
    return {a.id: assess_account(model, a, market, liquidation_prices=False)
            for a in book.accounts}


def test_span_runs_on_a_cme_risk_parameter_file():
    """FILE-cme-crypto-2026-02-04: published arrays, the file's spread, delivery, SOM and
    inter-commodity parameters and its initial/maintenance ratio, against hand arithmetic."""
    want = case("FILE-cme-crypto-2026-02-04")["expected"]
    r = _file_reports()
    fut, calls = r["cme-futures"], r["cme-short-calls"]
    exp = want["cme-futures"]
    assert close(fut.maintenance_margin, exp["maintenance_margin"], 1e-6)
    assert close(fut.initial_margin, exp["initial_margin"], 1e-6)
    check_subset(dict(fut.components), exp["components"], 1e-6, "components")
    unit = fut.units[0].margin
    ccs = {c["combined_commodity"]: c for c in unit.details["combined_commodities"]}
    for name, sub in exp["combined_commodities"].items():
        check_subset(ccs[name], sub, 1e-9, name)
    src = {p.margin.symbol: p.margin.details["risk_array_source"] for p in fut.positions}
    assert src == exp["risk_array_source"]
    assert unit.details["parameter_source"].endswith("(CME 2026-02-04 settlement)")
    exp = want["cme-short-calls"]
    assert close(calls.maintenance_margin, exp["maintenance_margin"], 1e-6)
    assert close(calls.initial_margin, exp["initial_margin"], 1e-6)
    cc = calls.units[0].margin.details["combined_commodities"][0]
    assert close(cc["short_option_minimum"], exp["short_option_minimum"], 1e-9)


def test_options_beside_the_file_win():
    """`--param combined_commodities=...` beside the file overrides it field by field: the
    generated BTC-202602 leg then scans 20,000 points (and the file's other BTC fields stay)."""
    r = _file_reports({"combined_commodities": {"BTC": {"price_scan_points": 20000.0}}})
    cc = r["cme-futures"].units[0].margin.details["combined_commodities"][0]
    assert cc["price_scan_points"] == 20000.0 and cc["intra_spread_charge"] == 1500.0
    # scenario 13: 2 × 156,950 (published) − 20,000 × 5 (generated) = 213,900
    assert close(cc["scan_risk"], 213900.0, 1e-6)


def test_cli_compute_with_a_risk_parameter_file(write_json):
    from typer.testing import CliRunner

    from margin_engine.cli.main import app
    ex = ROOT / "docs" / "examples"
    args = ["compute", str(ex / "book-cme.json"), str(ex / "market-cme-2026-02-04.json"),
            "--model", "span", "--format", "json"]
    res = CliRunner().invoke(app, [*args, "--param",
                                   f"risk_parameters={ex / 'cme-span-crypto-2026-02-04.pa2'}"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    accounts = out["accounts"] if isinstance(out, dict) else out
    assert close(accounts[0]["maintenance_margin"], 250780.0, 1e-6)
    bad = write_json("bad.pa2", "0 CME   20260204S\nQQ\n")
    res = CliRunner().invoke(app, [*args, "--param", f"risk_parameters={bad}"])
    assert res.exit_code == 2
    text = " ".join(res.output.split())     # (the terminal may wrap a long line)
    assert text.startswith("error: --param risk_parameters: ")
    assert "bad.pa2: line 2: record type 'QQ' is not one of the expanded format's" in text


def test_short_option_minimum_in_points_binds():
    """A far out-of-the-money short call scans to almost nothing; SOM = 157 USD per BTC of
    short options (the file's 785 per 5-BTC contract) × 10 BTC = 1,570 binds."""
    m = get_model("span", {"combined_commodities": {"BTC": {
        "short_option_minimum_points": 157.0, "price_scan_range": 0.01}}})
    market = parse_model(MarketSnapshot, {
        "timestamp": "2026-02-04T09:30:00Z", "index": {"BTC": 73000.0},
        "instruments": [{"symbol": "C200K", "kind": "option", "underlying": "BTC",
                         "settle": "USD", "contract_size": 0.1, "strike": 200000,
                         "option_type": "call", "expiry": "2026-03-27T16:00:00Z",
                         "mark_iv": 0.5, "underlying_price": 73500.0}]}, "market")
    book = parse_model(Book, {"accounts": [{"id": "a", "margin_mode": "cross",
                                            "collateral": {"USD": 1e6},
                                            "positions": [{"symbol": "C200K",
                                                           "size": -100}]}]}, "book")
    r = assess_account(m, book.accounts[0], market, liquidation_prices=False)
    cc = r.units[0].margin.details["combined_commodities"][0]
    assert cc["short_option_minimum"] == pytest.approx(1570.0, rel=1e-12)
    assert r.maintenance_margin == pytest.approx(1570.0, rel=1e-12)


def test_defaults_are_the_dated_figures():
    """BTC 43% (CME's launch maintenance rate), ETH 63% (derived below); version says so."""
    ccs = get_model("span").params.combined_commodities
    assert ccs["BTC"].price_scan_range == 0.43 and ccs["ETH"].price_scan_range == 0.63
    assert "UNCONFIRMED" in type(ccs["BTC"]).model_fields["price_scan_range"].description


def test_eth_default_is_derived_from_the_shared_daily_closes():
    """ETH PSR = 43% × (ETH/BTC 99th-percentile |daily log return|), rounded up to a percent,
    recomputed from the Binance USDⓈ-M daily closes 2024-01-10 … 2026-03-18 with plain Python."""
    real = ROOT.parent / "shared" / "data" / "real"
    q = {}
    for s in ("BTC", "ETH"):
        p = real / f"binance_usdm_perp_daily_{s}USDT_2024-01-10_2026-03-19.csv"
        if not p.exists():
            pytest.skip(f"{p} absent")
        closes = [float(r.split(",")[4]) for r in p.read_text().splitlines()[1:]]
        moves = sorted(abs(math.log(b / a)) for a, b in pairwise(closes))
        pos = 0.99 * (len(moves) - 1)           # numpy's default (linear) quantile
        lo = int(pos)
        q[s] = moves[lo] + (moves[lo + 1] - moves[lo]) * (pos - lo)
    ratio = q["ETH"] / q["BTC"]
    assert 1.44 < ratio < 1.46
    assert math.ceil(0.43 * ratio * 100) / 100 == get_model(
        "span").params.combined_commodities["ETH"].price_scan_range


def test_backtest_options_read_the_file_too():
    """`backtest --model span --param span:risk_parameters=FILE` gets the file's parameters."""
    from margin_engine.cli.main import _bt_model_options

    pa2 = str(ROOT / "docs" / "examples" / "cme-span-crypto-2026-02-04.pa2")
    ((name, opts), (other, rest)) = _bt_model_options(
        ["span", "okx-pm"], {"span:risk_parameters": pa2})
    assert name == "span" and "risk_parameters" not in opts
    assert opts["combined_commodities"]["BTC"]["price_scan_points"] == 31390.0
    assert (other, rest) == ("okx-pm", {})
