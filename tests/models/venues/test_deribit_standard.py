"""deribit-standard against research/crypto-venues.md §1.8 (TV-D1..TV-D4), a derived X:SM case,
an independent plain reference implementation (its own Black-76 from scipy, OTM against the
option's underlying mark price) and hypothesis properties."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import deribit_reference
from margin_engine.domain.book import Account, Book, MarginMode
from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError
from margin_engine.io.loaders import parse_model
from margin_engine.models.core.registry import get_model
from margin_engine.models.venues.deribit_standard import futures_margin, short_option_margin
from margin_engine.policy.assess import assess_account

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "deribit-standard"


def load(name: str) -> dict[str, Any]:
    return json.loads((GOLDEN / f"{name}.json").read_text())


def close(a: float, b: float, rel: float = 1e-9, abs_: float = 1e-12) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=abs_)


def run(doc: dict[str, Any], params: dict[str, Any] | None = None):
    market = parse_model(MarketSnapshot, doc["market"], "market")
    book = parse_model(Book, doc["book"], "book")
    model = get_model("deribit-standard", doc["params"] if params is None else params)
    out = {}
    for account in book.accounts:
        units = model.units(account, market)
        out[account.id] = [model.margin_unit(u, account, market) for u in units]
    return model, market, book, out


@pytest.mark.parametrize("name", ["TV-D1", "TV-D2", "TV-D3", "TV-D4"])
def test_published_and_derived_vectors(name):
    """TV-D1 (linear perps, [D1]), TV-D2 (inverse perps, [D2]), TV-D3 (options, [D11]),
    TV-D4 (options, §1.4): IM, MM, rates and OTM amounts to 1e-9."""
    doc = load(name)
    _, market, _, out = run(doc)
    for acct_id, exp in doc["expected"]["accounts"].items():
        (unit,) = out[acct_id]
        assert unit.currency == exp["unit"]
        assert close(unit.initial_margin, exp["initial_margin"])
        assert close(unit.maintenance_margin, exp["maintenance_margin"])
        (pos,) = unit.positions
        assert close(pos.contribution, exp["initial_margin"])
        for key in ("im_rate", "mm_rate", "size_base", "otm"):
            if key in exp:
                assert close(pos.details[key], exp[key]), key
        if "initial_margin_usd" in exp:
            assert close(market.convert(unit.initial_margin, "BTC", "USD"),
                         exp["initial_margin_usd"])
            assert close(market.convert(unit.maintenance_margin, "BTC", "USD"),
                         exp["maintenance_margin_usd"])


def test_xsm_cross_collateral_with_haircut():
    """XSM-1 (DERIVED by hand): X:SM over BTC, ETH and USDC products valued in USD, plus a 5%
    IM haircut on 10 BTC of collateral, attributed pro rata to position IM."""
    doc = load("XSM-1")
    _, _, _, out = run(doc)
    exp = doc["expected"]["accounts"]["xsm"]
    (unit,) = out["xsm"]
    assert unit.currency == "USD" and unit.details["margin_model"] == "cross_sm"
    for p, im, mm, c in zip(unit.positions, exp["positions_initial_margin"],
                            exp["positions_maintenance_margin"], exp["contributions"],
                            strict=True):
        assert close(p.initial_margin, im) and close(p.maintenance_margin, mm)
        assert close(p.contribution, c)
    assert close(unit.components["collateral_haircut"], exp["collateral_haircut"])
    assert close(unit.initial_margin, exp["initial_margin"])
    assert close(unit.maintenance_margin, exp["maintenance_margin"])
    assert close(sum(unit.components.values()), unit.initial_margin)


def test_xsm_segregated_splits_per_currency():
    """The same book under S:SM: one unit per settlement currency, no haircut; the units'
    USD sum equals the X:SM requirement without the haircut."""
    doc = load("XSM-1")
    _, market, _, out = run(doc, {"collateral": "segregated"})
    units = {u.currency: u for u in out["xsm"]}
    assert set(units) == {"BTC", "ETH", "USDC"}
    assert close(units["BTC"].initial_margin, 2.5 + 2 * 0.11)
    assert close(units["ETH"].maintenance_margin, 14.0)
    total = sum(market.convert(u.initial_margin, u.currency, "USD") for u in units.values())
    exp = doc["expected"]["accounts"]["xsm"]
    assert close(total, exp["initial_margin"] - exp["collateral_haircut"])


def test_formula_branches():
    """§1.4: the put MM branch max(0.075, 0.075·mark) switches when mark > 1; the put IM
    takes MM when MM is larger; deep OTM hits the 0.10 floor."""
    c = {"im_base": 0.15, "im_floor": 0.10, "mm": 0.075}
    im, mm = short_option_margin(False, 0.0, 100.0, 2.0, **c)
    assert close(mm, 0.15 + 2.0) and close(im, max(0.15 + 2.0, mm))
    im, mm = short_option_margin(True, 50.0, 100.0, 0.001, **c)
    assert close(im, 0.101) and close(mm, 0.076)
    assert futures_margin(-10.0, get_model("deribit-standard").params.futures["BTC"])[:2] == \
        pytest.approx((10 * (0.02 + 10 * 0.00005), 10 * (0.01 + 10 * 0.00005)), rel=1e-15)


def test_linear_option_scaled_formula():
    """Linear USDC option (UNCONFIRMED clone form): IM = max(0.15·S − OTM, 0.10·S) + mark_usd."""
    market = parse_model(MarketSnapshot, {
        "timestamp": "2026-01-15T00:00:00Z", "index": {"BTC": 60000.0}, "fx": {"USDC": 1.0},
        "instruments": [{"symbol": "BTC_USDC-27MAR26-70000-C", "kind": "option",
                         "underlying": "BTC", "settle": "USDC", "contract_size": 0.01,
                         "strike": 70000, "option_type": "call", "mark_iv": 0.5,
                         "mark_price": 600.0}]}, "m")
    account = parse_model(Book, {"accounts": [{"id": "a", "margin_mode": "cross", "positions": [
        {"symbol": "BTC_USDC-27MAR26-70000-C", "size": -100}]}]}, "b").accounts[0]
    model = get_model("deribit-standard")
    (u,) = [model.margin_unit(x, account, market) for x in model.units(account, market)]
    assert u.currency == "USDC"
    assert close(u.initial_margin, 1.0 * (max(0.15 * 60000 - 10000, 0.1 * 60000) + 600.0))
    assert close(u.maintenance_margin, 1.0 * (0.075 * 60000 + 600.0))
    strict = get_model("deribit-standard", {"linear_options": "reject"})
    with pytest.raises(InputError, match="linear options"):
        strict.units(account, market)


def test_otm_is_measured_against_the_underlying_mark_price():
    """Short BTC 76,000 call, underlying mark (forward) 75,000, index 73,000, mark 0.04 BTC:
    the published rule ("Underlying MarkPrice" [D3]) gives IM = max(0.15 − 1,000/75,000, 0.10)
    + 0.04 = 0.176667 BTC; the index reading gave max(0.15 − 3,000/73,000, 0.10) + 0.04 =
    0.148904 BTC (−16%). MM = 0.075 + 0.04 either way. Hand arithmetic."""
    market = parse_model(MarketSnapshot, MARKET, "m")
    account = parse_model(Book, {"accounts": [{"id": "a", "margin_mode": "cross", "positions": [
        {"symbol": "BTC-27MAR26-76000-C", "size": -10}]}]}, "b").accounts[0]

    def im_mm(params: dict[str, Any]) -> tuple[float, float]:
        model = get_model("deribit-standard", params)
        (u,) = [model.margin_unit(x, account, market) for x in model.units(account, market)]
        return u.initial_margin, u.maintenance_margin

    im, mm = im_mm({})
    assert close(im, 10 * (0.15 - 1000 / 75000 + 0.04)) and close(mm, 10 * 0.115)
    im_index, _ = im_mm({"option_otm_reference": "index"})
    assert close(im_index, 10 * (0.15 - 3000 / 73000 + 0.04))


# ------------------------------------------------------------------------------------------
# independent plain reference


MARKET: dict[str, Any] = {
    "timestamp": "2026-02-04T09:30:00Z", "index": {"BTC": 73000.0, "ETH": 2100.0},
    "fx": {"USDC": 1.0, "USDT": 1.0},
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
        {"symbol": "BTC-27MAR26-65000-P", "kind": "option", "underlying": "BTC", "settle": "BTC",
         "inverse": True, "contract_size": 1, "expiry": "2026-03-27T08:00:00Z",
         "strike": 65000, "option_type": "put", "mark_iv": 0.6, "underlying_price": 73500.0},
        {"symbol": "ETH-PERPETUAL", "kind": "perpetual", "underlying": "ETH", "settle": "ETH",
         "inverse": True, "contract_size": 1, "mark_price": 2101.0},
        {"symbol": "BTCUSDT", "kind": "perpetual", "underlying": "BTC", "settle": "USDT",
         "inverse": False, "contract_size": 1, "mark_price": 73005.0},
        {"symbol": "BTC-27MAR26-76000-C", "kind": "option", "underlying": "BTC", "settle": "BTC",
         "inverse": True, "contract_size": 1, "expiry": "2026-03-27T08:00:00Z",
         "strike": 76000, "option_type": "call", "mark_iv": 0.5, "underlying_price": 75000.0,
         "mark_price": 0.04}]}
SYMBOLS = [i["symbol"] for i in MARKET["instruments"]]
RATES = {"BTC": (0.02, 0.01, 0.00005), "ETH": (0.02, 0.01, 0.000004)}


def reference_position(ins: dict[str, Any], size: float, market: MarketSnapshot):
    """(IM, MM) in the settlement currency, written from research §1.2-1.4 alone: OTM against
    the option's underlying mark price ("Underlying MarkPrice" [D3])."""
    if ins["kind"] == "option":
        n = abs(size) * ins["contract_size"]
        if size >= 0:
            return 0.0, 0.0
        S = ins["underlying_price"]
        mark = ins.get("mark_price")
        if mark is None:  # no quoted mark: Black-76 at mark_iv on the forward, in coin
            T = (51 * 86400 - 1.5 * 3600) / (365 * 86400)   # 4 Feb 09:30 → 27 Mar 08:00
            mark = deribit_reference.b76(S, ins["strike"], T, ins["mark_iv"],
                                         ins["option_type"] == "call") / S
        if ins["option_type"] == "call":
            otm = max(ins["strike"] - S, 0)
            return n * (max(0.15 - otm / S, 0.10) + mark), n * (0.075 + mark)
        otm = max(S - ins["strike"], 0)
        mm = max(0.075, 0.075 * mark) + mark
        return n * max(max(0.15 - otm / S, 0.10) + mark, mm), n * mm
    im0, mm0, inc = RATES[ins["underlying"]]
    if ins["inverse"]:
        s = abs(size) * ins["contract_size"] / ins["mark_price"]
        return s * (im0 + s * inc), s * (mm0 + s * inc)
    s = abs(size) * ins["contract_size"]
    px = market.index[ins["underlying"]]
    return s * (im0 + s * inc) * px, s * (mm0 + s * inc) * px


def account_of(sizes: list[float]) -> Account:
    positions = [{"symbol": s, "size": z} for s, z in zip(SYMBOLS, sizes, strict=True) if z]
    return parse_model(Book, {"accounts": [{"id": "h", "margin_mode": "cross",
                                            "collateral": {"BTC": 3.0, "USDT": 1e5},
                                            "positions": positions}]}, "b").accounts[0]


SIZES = st.lists(st.integers(-300000, 300000).map(float), min_size=len(SYMBOLS),
                 max_size=len(SYMBOLS))
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(SIZES, st.sampled_from(["segregated", "cross"]))
def test_matches_plain_reference(sizes, collateral):
    sizes = [z if i not in (2, 3, 6) else z / 1000.0 for i, z in enumerate(sizes)]
    market = parse_model(MarketSnapshot, MARKET, "m")
    account = account_of(sizes)
    model = get_model("deribit-standard", {"collateral": collateral})
    units = [model.margin_unit(u, account, market) for u in model.units(account, market)]
    want_im = want_mm = 0.0
    for pos in account.positions:
        ins = next(i for i in MARKET["instruments"] if i["symbol"] == pos.symbol)
        im, mm = reference_position(ins, pos.size, market)
        want_im += market.convert(im, ins["settle"], "USD")
        want_mm += market.convert(mm, ins["settle"], "USD")
    got_im = sum(market.convert(u.initial_margin, u.currency, "USD") for u in units)
    got_mm = sum(market.convert(u.maintenance_margin, u.currency, "USD") for u in units)
    assert close(got_im, want_im, abs_=1e-9) and close(got_mm, want_mm, abs_=1e-9)
    for u in units:
        assert u.initial_margin >= u.maintenance_margin >= 0.0
        assert close(sum(p.contribution for p in u.positions), u.initial_margin, abs_=1e-9)


@FAST
@given(st.lists(st.integers(-50, 50).map(float), min_size=2, max_size=2),
       st.sampled_from([0.5, 2.0, 7.0]))
def test_options_scale_linearly(sizes, k):
    """Options carry no size-dependent term: sizes × k give margin × k."""
    market = parse_model(MarketSnapshot, MARKET, "m")
    model = get_model("deribit-standard")
    a = account_of([0, 0, *sizes, 0, 0, 0])
    b = account_of([0, 0, *(k * z for z in sizes), 0, 0, 0])
    if not a.positions:
        return
    (ua,) = [model.margin_unit(u, a, market) for u in model.units(a, market)]
    (ub,) = [model.margin_unit(u, b, market) for u in model.units(b, market)]
    assert close(ub.initial_margin, k * ua.initial_margin)
    assert close(ub.maintenance_margin, k * ua.maintenance_margin)


@FAST
@given(SIZES)
def test_hedge_never_raises_margin(sizes):
    """Standard margin adds positions: a unit's IM equals the sum of the positions alone (a
    hedge earns no offset but never costs more)."""
    market = parse_model(MarketSnapshot, MARKET, "m")
    model = get_model("deribit-standard")
    account = account_of(sizes)
    for u in model.units(account, market):
        r = model.margin_unit(u, account, market)
        assert r.initial_margin <= sum(p.initial_margin for p in r.positions) * (1 + 1e-12)


# ------------------------------------------------------------------------------------------
# input handling and the command line


def test_rejections():
    market = parse_model(MarketSnapshot, {
        "timestamp": "2026-02-04T09:30:00Z", "index": {"BTC": 73000.0, "DOGE": 0.1},
        "fx": {"USDC": 1.0},
        "instruments": [
            {"symbol": "BTC/USDC", "kind": "spot", "underlying": "BTC", "settle": "USDC",
             "mark_price": 73000.0},
            {"symbol": "DOGE_USDC-PERPETUAL", "kind": "perpetual", "underlying": "DOGE",
             "settle": "USDC", "mark_price": 0.1},
            {"symbol": "BTC-PERP-IN-DOGE", "kind": "perpetual", "underlying": "BTC",
             "settle": "DOGE", "mark_price": 73000.0}]}, "m")
    model = get_model("deribit-standard")
    # an inverse contract settled in a stablecoin is rejected when the market is read
    with pytest.raises(InputError, match="inverse contract settles in its underlying"):
        parse_model(MarketSnapshot, {
            "timestamp": "2026-02-04T09:30:00Z", "index": {"BTC": 73000.0}, "fx": {"USDC": 1.0},
            "instruments": [{"symbol": "BTCUSD-INV-USDC", "kind": "perpetual",
                             "underlying": "BTC", "settle": "USDC", "inverse": True,
                             "mark_price": 73000.0}]}, "m")
    for sym, why in (("BTC/USDC", "spot"),
                     ("DOGE_USDC-PERPETUAL", "no futures rates for underlying 'DOGE'"),
                     ("BTC-PERP-IN-DOGE", "must settle in a stablecoin")):
        acct = parse_model(Book, {"accounts": [{"id": "a", "positions": [
            {"symbol": sym, "size": 1}]}]}, "b").accounts[0]
        with pytest.raises(InputError, match=why) as e:
            model.units(acct, market)
        assert e.value.path == "positions[0].symbol"
    ok = get_model("deribit-standard", {"futures": {"doge": {"im_base": 0.05, "mm_base": 0.025,
                                                             "increase": 0.0}}})
    assert set(ok.params.futures) >= {"BTC", "ETH", "SOL", "DOGE"}
    acct = parse_model(Book, {"accounts": [{"id": "a", "margin_mode": "portfolio"}]},
                       "b").accounts[0]
    with pytest.raises(InputError, match="not offered"):
        model.units(acct, market)
    with pytest.raises(InputError, match="above im_base"):
        get_model("deribit-standard", {"futures": {"BTC": {"im_base": 0.01, "mm_base": 0.02,
                                                           "increase": 0.0}}})
    with pytest.raises(InputError, match="collateral_haircuts"):
        get_model("deribit-standard", {"collateral_haircuts": {"BTC": 1.5}})
    assert MarginMode.ISOLATED not in model.modes


def test_assess_and_compute_on_the_design_example(tmp_path, market_doc, book_doc):
    """DESIGN §4 example market with every instrument held (linear USDT perp, inverse perp and
    future, inverse option): the command prints a result for both collateral modes."""
    from typer.testing import CliRunner

    from margin_engine.cli.main import app
    book_doc["accounts"][0]["positions"] += [
        {"symbol": "BTC-PERPETUAL", "size": -2000}, {"symbol": "BTC-27MAR26", "size": 1000},
        {"symbol": "BTC-27MAR26-80000-C", "size": -3}]
    (tmp_path / "m.json").write_text(json.dumps(market_doc))
    (tmp_path / "b.json").write_text(json.dumps(book_doc))
    for coll in ("segregated", "cross"):
        res = CliRunner().invoke(app, ["compute", str(tmp_path / "b.json"),
                                       str(tmp_path / "m.json"), "--model", "deribit-standard",
                                       "--param", f"collateral={coll}", "--format", "json"])
        assert res.exit_code == 0, res.output
        acct = json.loads(res.stdout)["accounts"][0]
        assert len(acct["positions"]) == 4
        assert {u["currency"] for u in acct["units"]} == (
            {"USDT", "BTC"} if coll == "segregated" else {"USD"})
        assert acct["initial_margin"] >= acct["maintenance_margin"] > 0
    market = parse_model(MarketSnapshot, market_doc, "m")
    account = parse_model(Book, book_doc, "b").accounts[0]
    r = assess_account(get_model("deribit-standard"), account, market)
    btc_perp = r.positions[1]
    assert btc_perp.liquidation_price is None or btc_perp.liquidation_price > 0
