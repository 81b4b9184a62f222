"""binance-usdm against the published Binance vectors (research/crypto-venues.md §3.4)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from margin_engine.domain.book import Book
from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError
from margin_engine.io.loaders import parse_model
from margin_engine.models.core.registry import get_model
from margin_engine.models.core.units import build_units
from margin_engine.models.venues.binance_usdm import (
    TABLES,
    SymbolBrackets,
    default_tables,
    shipped_tables,
)
from margin_engine.policy.assess import assess_account
from margin_engine.policy.health import HealthPolicy
from margin_engine.policy.liquidation import solve_liquidation_factor

# TV-B1: Binance's own worked example (FAQ "How to Calculate Liquidation Price of USDⓈ-M Futures").
TV_B1_MARKET = {
    "timestamp": "2021-06-01T00:00:00Z", "index": {"BTC": 31967.27, "ETH": 1335.18},
    "fx": {"USDT": 1.0},
    "instruments": [
        {"symbol": "BTCUSDT", "kind": "perpetual", "underlying": "BTC", "settle": "USDT",
         "mark_price": 31967.27},
        {"symbol": "ETHUSDT", "kind": "perpetual", "underlying": "ETH", "settle": "USDT",
         "mark_price": 1335.18}]}


def model_2021():
    """TV-B1 and TV-B2 are published against Binance's 2021-03-18 table: name it."""
    return get_model("binance-usdm", {"brackets": "2021-03-18"})


def tv_b1(mode: str):
    book = {"accounts": [{
        "id": "tv-b1", "margin_mode": mode, "collateral": {"USDT": 1535443.01},
        "positions": [{"symbol": "BTCUSDT", "size": 109.488, "entry_price": 32481.98},
                      {"symbol": "ETHUSDT", "size": 3683.979, "entry_price": 1456.84}],
        "leverage": {"BTCUSDT": 20, "ETHUSDT": 5}}]}
    return (parse_model(Book, book, "book").accounts[0],
            parse_model(MarketSnapshot, TV_B1_MARKET, "market"))


def test_tv_b1_intermediate_maintenance_margins():
    """TV-B1: BTC MM = 3,500,032.458 × 2.5% − 16,300; ETH MM = 4,918,775.081 × 10% − 135,365."""
    account, market = tv_b1("cross")
    r = assess_account(model_2021(), account, market, liquidation_prices=False)
    btc, eth = r.positions
    assert math.isclose(btc.margin.notional, 109.488 * 31967.27, rel_tol=1e-15)
    assert math.isclose(btc.margin.maintenance_margin, 71200.81144, abs_tol=5e-6)
    assert math.isclose(eth.margin.maintenance_margin, 356512.508, abs_tol=5e-4)
    assert btc.margin.details["cum"] == 16300 and eth.margin.details["cum"] == 135365


@pytest.mark.parametrize("mode, expected", [
    ("isolated", {"BTCUSDT": 18778.73, "ETHUSDT": 1114.78}),
    ("cross", {"BTCUSDT": 26316.89, "ETHUSDT": 1153.26}),
])
def test_tv_b1_liquidation_prices(mode, expected):
    """TV-B1: the four published liquidation prices, to 0.01."""
    account, market = tv_b1(mode)
    r = assess_account(model_2021(), account, market)
    got = {p.margin.symbol: p.liquidation_price for p in r.positions}
    for sym, lp in expected.items():
        assert got[sym] is not None and abs(got[sym] - lp) < 0.005, (sym, got[sym], lp)


@pytest.mark.parametrize("mode", ["isolated", "cross"])
def test_closed_form_agrees_with_generic_solver(mode):
    """The closed form and the model-free root search over the whole unit agree (TV-B1 book)."""
    account, market = tv_b1(mode)
    model = model_2021()
    policy = HealthPolicy()
    report = assess_account(model, account, market, policy=policy)
    for unit in build_units(account, market, model.cross_scope(account)):
        for j in unit.position_indices:
            ins = market.instrument(account.positions[j].symbol)
            f = solve_liquidation_factor(model, unit, account, market, ins.underlying, policy)
            assert f is not None
            assert math.isclose(f * ins.mark_price, report.positions[j].liquidation_price,
                                rel_tol=1e-9)


def test_tv_b2_maintenance_amount():
    """TV-B2: notional 500,000 on the 2021 BTCUSDT table → bracket 1%, cum 1,300, MM 3,700."""
    row = shipped_tables("2021-03-18")["BTCUSDT"].at(500_000)
    assert (row.maintMarginRatio, row.cum) == (0.01, 1300)
    assert math.isclose(500_000 * row.maintMarginRatio - row.cum, 3700.0, rel_tol=1e-15)
    assert shipped_tables("2021-03-18")["BTCUSDT"].at(264_000).maintMarginRatio == 0.01


def test_maintenance_margin_is_continuous_across_brackets():
    """The cum recursion makes MM continuous at every bracket floor (every shipped table)."""
    for table in [t for date in TABLES for t in shipped_tables(date).values()]:
        for prev, row in zip(table.brackets, table.brackets[1:], strict=False):
            n = row.notionalFloor
            below = n * prev.maintMarginRatio - prev.cum
            above = n * row.maintMarginRatio - row.cum
            assert math.isclose(below, above, rel_tol=1e-12, abs_tol=1e-9)


def _table(changes):
    rows = [dict(r) for r in json.loads(json.dumps(
        default_tables()["BTCUSDT"].model_dump()))["brackets"]]
    for (i, key), value in changes.items():
        rows[i][key] = value
    return {"symbol": "BTCUSDT", "brackets": rows}


@pytest.mark.parametrize("change, message", [
    ({(1, "notionalFloor"): 60000}, "does not continue"),
    ({(2, "cum"): 1400}, "recursion"),
    ({(0, "notionalFloor"): 10}, "start at 0"),
    ({(3, "maintMarginRatio"): 0.001}, "decreases"),
    ({(2, "maintMarginRatio"): float("nan")}, "finite"),
])
def test_bracket_table_validation(change, message):
    with pytest.raises(ValueError, match=message):
        SymbolBrackets.model_validate(_table(change))


def test_brackets_file_param(tmp_path, market_doc, book_doc):
    """`--param brackets=FILE` reads the leverageBracket API JSON and replaces that symbol."""
    api = [{"symbol": "BTCUSDT", "notionalCoef": 1.0, "brackets": [
        {"bracket": 1, "initialLeverage": 50, "notionalFloor": 0, "notionalCap": 100000,
         "maintMarginRatio": 0.01, "cum": 0},
        {"bracket": 2, "initialLeverage": 20, "notionalFloor": 100000, "notionalCap": 1e9,
         "maintMarginRatio": 0.02, "cum": 1000}]}]
    path = tmp_path / "brackets.json"
    path.write_text(json.dumps(api))
    model = get_model("binance-usdm", {"brackets": str(path)})
    market = parse_model(MarketSnapshot, market_doc, "market")
    account = parse_model(Book, book_doc, "book").accounts[0]
    r = assess_account(model, account, market)
    n = 2.5 * 73005.0
    assert math.isclose(r.maintenance_margin, n * 0.02 - 1000, rel_tol=1e-15)
    assert math.isclose(r.initial_margin, n / 20, rel_tol=1e-15)
    assert model.params.params_hash() != get_model("binance-usdm").params.params_hash()


def test_bad_brackets_file_is_a_parameter_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([_table({(2, "cum"): 1})]))
    with pytest.raises(InputError, match=r"--param brackets.*recursion"):
        get_model("binance-usdm", {"brackets": str(bad)})
    with pytest.raises(InputError, match="unknown parameter"):
        get_model("binance-usdm", {"leverage_cap": 3})


@pytest.mark.parametrize("symbol, reason", [
    ("BTC-PERPETUAL", "only linear"), ("BTC-27MAR26-80000-C", "only linear")])
def test_rejects_instruments_it_cannot_margin(market_doc, book_doc, symbol, reason):
    book_doc["accounts"][0]["positions"][0]["symbol"] = symbol
    market = parse_model(MarketSnapshot, market_doc, "market")
    account = parse_model(Book, book_doc, "book").accounts[0]
    with pytest.raises(InputError, match=reason) as err:
        assess_account(get_model("binance-usdm"), account, market)
    assert err.value.path == "positions[0].symbol"


def test_portfolio_mode_is_not_offered(market_doc, book_doc):
    book_doc["accounts"][0]["margin_mode"] = "portfolio"
    account = parse_model(Book, book_doc, "book").accounts[0]
    with pytest.raises(InputError, match="not offered"):
        assess_account(get_model("binance-usdm"), account,
                       parse_model(MarketSnapshot, market_doc, "market"))


@settings(max_examples=60, deadline=None)
@given(size=st.floats(-2000, 2000).filter(lambda x: abs(x) > 1e-6),
       lev=st.integers(1, 125), k=st.floats(0.1, 10))
def test_properties(size, lev, k):
    """IM ≥ MM ≥ 0; MM ignores leverage; margin grows with size (never falls when scaled up)."""
    account, market = tv_b1("cross")
    model = get_model("binance-usdm")
    table = default_tables()["BTCUSDT"]

    def margins(sz, leverage):
        leverage = min(leverage, table.at(abs(sz) * 31967.27).initialLeverage)
        acct = account.model_copy(update={
            "positions": (account.positions[0].model_copy(update={"size": sz}),),
            "leverage": {"BTCUSDT": leverage}})
        r = assess_account(model, acct, market, liquidation_prices=False)
        return r.initial_margin, r.maintenance_margin

    im, mm = margins(size, lev)
    assert im >= mm >= 0
    assert margins(size, 1)[1] == mm
    _, mm_k = margins(size * k, lev)
    assert (mm_k >= mm) == (k >= 1) or math.isclose(mm_k, mm, rel_tol=1e-12)


GOLDEN = sorted((Path(__file__).parents[2] / "golden" / "binance-usdm").glob("*.json"))


@pytest.mark.parametrize("path", GOLDEN, ids=[p.stem for p in GOLDEN])
def test_golden_cases(path):
    """Golden JSON cases (TV-B1 isolated/cross, TV-B2): inputs, every intermediate, result."""
    case = json.loads(path.read_text())
    market = parse_model(MarketSnapshot, case["market"], "market")
    account = parse_model(Book, case["book"], "book").accounts[0]
    r = assess_account(get_model("binance-usdm", case["params"]), account, market)
    tol = case["tolerance"]
    by_symbol = {p.margin.symbol: p for p in r.positions}
    for want in case["intermediates"]["positions"]:
        got = by_symbol[want["symbol"]].margin
        assert got.details["bracket"] == want["bracket"]
        assert got.details["maint_margin_ratio"] == want["maint_margin_ratio"]
        assert got.details["cum"] == want["cum"]
        assert abs(got.notional - want["notional"]) <= tol.get("notional", 1e-9) * want[
            "notional"] + 1e-3
        assert abs(got.maintenance_margin - want["maintenance_margin"]) <= 1e-3
    result = case["result"]
    for sym, lp in result.get("liquidation_price", {}).items():
        assert abs(by_symbol[sym].liquidation_price - lp) <= tol["liquidation_price"]
    if "initial_margin" in result:
        assert math.isclose(r.initial_margin, result["initial_margin"], rel_tol=1e-12)
        assert math.isclose(r.maintenance_margin, result["maintenance_margin"],
                            rel_tol=tol["maintenance_margin"])


# --- the 2024-10-24 table and the leverage limit ------------------------------------------------

def test_default_table_is_the_2024_recording():
    """BTCUSDT 3,500,032.458 USDT on the 2024-10-24 table: bracket 4 (3M–12M, 1%, max 50×), cum
    by the recursion 50 + 600,000·0.15% + 3,000,000·0.35% = 11,450 → MM 23,550.32458 (by hand)."""
    table = default_tables()["BTCUSDT"]
    row = table.at(3_500_032.458)
    assert (row.bracket, row.maintMarginRatio, row.initialLeverage) == (4, 0.01, 50)
    assert row.cum == 50 + 600_000 * 0.0015 + 3_000_000 * 0.0035 == 11450
    account, market = tv_b1("cross")
    acct = account.model_copy(update={"positions": account.positions[:1]})
    r = assess_account(get_model("binance-usdm"), acct, market, liquidation_prices=False)
    assert math.isclose(r.maintenance_margin, 109.488 * 31967.27 * 0.01 - 11450, rel_tol=1e-12)
    # the named 2021 table gives TV-B1's 2.5% bracket for the same position
    r21 = assess_account(model_2021(), acct, market, liquidation_prices=False)
    assert math.isclose(r21.maintenance_margin, 71200.81144, abs_tol=5e-6)


@pytest.mark.parametrize("table, lev, ok", [
    ("2021-03-18", 20, True), ("2021-03-18", 21, False),    # 1M–10M: max 20×
    ("2024-10-24", 50, True), ("2024-10-24", 51, False)])   # 3M–12M: max 50×
def test_leverage_above_the_bracket_maximum_is_refused(table, lev, ok):
    """Binance refuses a leverage above the bracket's initialLeverage; nothing is capped. (No
    entry price here: the notional at the mark, 3,500,032.46, decides.)"""
    account, market = tv_b1("isolated")
    account = account.model_copy(update={"positions": tuple(
        p.model_copy(update={"entry_price": None}) for p in account.positions)})
    acct = account.model_copy(update={"leverage": {"BTCUSDT": lev, "ETHUSDT": 1}})
    model = get_model("binance-usdm", {"brackets": table})
    if ok:
        r = assess_account(model, acct, market, liquidation_prices=False)
        btc = r.positions[0].margin
        assert btc.details["leverage"] == lev
        assert math.isclose(btc.initial_margin, 109.488 * 31967.27 / lev, rel_tol=1e-12)
        return
    with pytest.raises(InputError) as err:
        assess_account(model, acct, market, liquidation_prices=False)
    assert err.value.path == "leverage.BTCUSDT"
    assert f"{lev} exceeds the maximum" in err.value.reason
    assert "3,500,032.46 USDT (bracket 4)" in err.value.reason


def test_leverage_is_checked_at_the_entry_notional():
    """Opened at 40,000 with 50× (notional 800,000: 2021 bracket 3, max 50×), then the price
    rose to 60,000 (notional 1.2M, bracket 4, max 20×): Binance keeps the position; so does the
    model, margining IM at N/50 and MM on bracket 4. Opened at 60,000 with 50×: refused.
    (TV-B1's ETH leg is the converse: 5× allowed at the mark's notional, not at the entry's.)"""
    market = parse_model(MarketSnapshot, {**TV_B1_MARKET, "index": {"BTC": 60000.0,
                                                                     "ETH": 1335.18},
                                           "instruments": [{**TV_B1_MARKET["instruments"][0],
                                                            "mark_price": 60000.0}]}, "market")

    def acct(entry):
        return parse_model(Book, {"accounts": [{
            "id": "a", "margin_mode": "isolated", "collateral": {"USDT": 1e6},
            "positions": [{"symbol": "BTCUSDT", "size": 20, "entry_price": entry}],
            "leverage": {"BTCUSDT": 50}}]}, "book").accounts[0]

    r = assess_account(model_2021(), acct(40000.0), market, liquidation_prices=False)
    assert math.isclose(r.initial_margin, 1_200_000 / 50, rel_tol=1e-12)
    assert math.isclose(r.maintenance_margin, 1_200_000 * 0.025 - 16300, rel_tol=1e-12)
    with pytest.raises(InputError, match=r"1,200,000.00 USDT \(bracket 4, 20 for "
                                         r"1,200,000.00 at the entry price"):
        assess_account(model_2021(), acct(60000.0), market, liquidation_prices=False)


def test_default_leverage_is_lowered_to_the_bracket_maximum_and_said():
    """No leverage set: Binance's default 20× does not fit a 150M notional (100M–230M: max 10×)."""
    account, market = tv_b1("isolated")
    acct = account.model_copy(update={
        "positions": (account.positions[0].model_copy(update={"size": 4700.0}),),
        "leverage": {}})
    r = assess_account(get_model("binance-usdm"), acct, market, liquidation_prices=False)
    pm = r.positions[0].margin
    n = 4700.0 * 31967.27
    assert pm.details["leverage"] == 10 and "default 20x" in pm.details["note"]
    assert math.isclose(pm.initial_margin, n / 10, rel_tol=1e-12)


def test_leverage_error_from_the_cli_is_one_line(write_json):
    """`compute --strict` prints `error: accounts[0].leverage.BTCUSDT: ...` and exits 2; without
    --strict the account is listed as not margined with the same reason."""
    account = {"id": "a", "margin_mode": "cross", "collateral": {"USDT": 1e6},
               "positions": [{"symbol": "BTCUSDT", "size": 109.488}],
               "leverage": {"BTCUSDT": 125}}
    book = write_json("book.json", {"accounts": [account]})
    market = write_json("market.json", TV_B1_MARKET)
    from typer.testing import CliRunner

    from margin_engine.cli.main import app
    args = ["compute", str(book), str(market), "--model", "binance-usdm"]
    soft = CliRunner().invoke(app, [*args, "--format", "json"])
    assert soft.exit_code == 0, soft.output
    refused = json.loads(soft.stdout)["not_margined"]
    assert refused[0]["id"] == "a" and "125 exceeds the maximum 50" in refused[0]["reason"]
    res = CliRunner().invoke(app, [*args, "--strict"])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1, res.output
    assert lines[0].startswith("error: accounts[0].leverage.BTCUSDT: 125 exceeds the maximum 50")
