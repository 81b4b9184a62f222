"""okx-pm: OKX portfolio margin against research/crypto-venues.md §2.7 (TV-O1…TV-O5), DERIVED
hand-computed books, an independent plain reference (tests/golden/okx-pm/okx_reference.py,
QuantLib pricing) and hypothesis properties."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from golden_checks import check_subset, close, run_case
from margin_engine.cli.main import app
from margin_engine.domain.book import Account
from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError
from margin_engine.io.loaders import parse_model
from margin_engine.models.core.registry import get_model
from margin_engine.models.venues.okx_pm import (
    derivatives_mmr,
    match_stablecoin_hedges,
    standard_option_margin,
    tiered_sum,
)
from margin_engine.policy.assess import AccountReport, assess_account

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "okx-pm"
MODEL_CASES = sorted(p.stem for p in GOLDEN.glob("*.json")
                     if "market" in json.loads(p.read_text()))
FLAT = {"underlyings": {"BTC": {"mr7_tiers": [[None, 1.0]]},
                        "ETH": {"mr7_tiers": [[None, 1.0]]}},
        "mr9_tiers": [[None, 0.0075]]}


def case(name: str) -> dict[str, Any]:
    return json.loads((GOLDEN / f"{name}.json").read_text())


def tiers(rows: list[list[Any]]) -> list[tuple[float | None, float]]:
    return [(r[0], r[1]) for r in rows]








# --- published vectors -------------------------------------------------------------------------

def test_tv_o1_minimum_charge_scaling_and_mmr():
    """TV-O1: MR7_raw 30,000 → 10,000 + 20,000·2 = 50,000; MMR = max(40,000, 50,000)."""
    doc = case("TV-O1")
    adj = tiered_sum(doc["inputs"]["mr7_raw"], tiers(doc["inputs"]["mr7_tiers"]))
    assert adj == doc["expected"]["mr7_adjusted"]
    mr = doc["inputs"]["mr"]
    assert derivatives_mmr(mr, 0, 0, 0, 0, 0, 0, adj) == doc["expected"]["mmr"]


def test_tv_o2_minimum_charge_scaling_three_tiers():
    """TV-O2: MR7_raw 100,000 → 10,000·1 + 60,000·2 + 30,000·4 = 250,000."""
    doc = case("TV-O2")
    assert tiered_sum(doc["inputs"]["mr7_raw"], tiers(doc["inputs"]["mr7_tiers"])) == \
        doc["expected"]["mr7_adjusted"]


def test_tv_o3_stablecoin_depeg():
    """TV-O3: a 10M USDT–USD hedge → 1M·0.75% + 4M·1.75% + 5M·2.5% = 202,500."""
    doc = case("TV-O3")
    hedges = match_stablecoin_hedges(doc["inputs"]["cash_deltas"])
    assert [list(h) for h in hedges] == doc["expected"]["hedges"]
    mr9 = sum(tiered_sum(h, tiers(doc["inputs"]["mr9_tiers"])) for _, _, h in hedges)
    assert mr9 == pytest.approx(doc["expected"]["mr9"], rel=1e-12)


def test_tv_o4_assembly():
    """TV-O4: max(8,000 + 500 + 300 + 0 + 0, 5,000) = 8,800; IMR = 1.3 × = 11,440."""
    i = case("TV-O4")["inputs"]
    mmr = derivatives_mmr(i["max_mr1_mr2_mr6"], 0, i["mr3"], i["mr4"], i["mr5"], 0, i["mr9"],
                          i["mr7_adjusted"])
    assert mmr == case("TV-O4")["expected"]["mmr"]
    assert 1.3 * mmr == pytest.approx(case("TV-O4")["expected"]["imr"], rel=1e-12)
    model = get_model("okx-pm")
    assert model.params.imr_factor == 1.3


def test_tv_o5_standard_option_margin():
    """TV-O5: coin-margined short call F 60,000, K 66,000, mark 0.005 → IMR 0.105, MMR 0.035."""
    i, e = case("TV-O5")["inputs"], case("TV-O5")["expected"]
    im, mm = standard_option_margin(i["is_call"], i["forward"], i["strike"], i["mark"],
                                    margin_factor=i["margin_factor"])
    assert im == pytest.approx(e["imr"], rel=1e-12) and mm == pytest.approx(e["mmr"], rel=1e-12)
    # the put branch and the USDⓈ-margined form (× index)
    im_p, mm_p = standard_option_margin(False, 60000, 54000, 0.005)
    assert im_p == pytest.approx(0.105, rel=1e-12) and mm_p == pytest.approx(0.035, rel=1e-12)
    im_u, _ = standard_option_margin(True, 60000, 66000, 300.0, index=60000)
    assert im_u == pytest.approx(0.1 * 60000 + 300.0, rel=1e-12)


def test_tiers_need_an_unbounded_last_row():
    with pytest.raises(ValueError, match="unbounded"):
        tiered_sum(5.0, [(1.0, 1.0)])
    with pytest.raises(ValueError, match="amount"):
        tiered_sum(-1.0, [(None, 1.0)])


# --- golden books through the model ------------------------------------------------------------

@pytest.mark.parametrize("name", MODEL_CASES)
def test_golden_case(name):
    """TV-O3 (model form), DERIVED books, REFERENCE option book: every intermediate, the
    components and the result."""
    doc = case(name)
    tol = doc.get("tolerance_abs")
    r = run(doc)
    unit = r.units[0].margin
    rus = {ru["risk_unit"]: ru for ru in unit.details["risk_units"]}
    inter = doc.get("intermediate", {})
    for ru, want in inter.get("risk_units", {}).items():
        check_subset(rus[ru], want, tol, f"{name}.{ru}")
    check_subset(dict(unit.details), inter.get("unit", {}), tol, f"{name}.unit")
    exp = doc["expected"]
    assert close(r.maintenance_margin, exp["maintenance_margin"], tol)
    assert close(r.initial_margin, exp["initial_margin"], tol)
    if "equity" in exp:
        assert close(r.equity, exp["equity"], tol)
    check_subset(dict(r.components), exp.get("components", {}), tol, f"{name}.components")
    contrib = {p.margin.symbol: p.margin.contribution for p in r.positions}
    check_subset(contrib, exp.get("contributions", {}), tol, f"{name}.contributions")


def _reference_module() -> Any:
    pytest.importorskip("QuantLib")
    if "okx_reference" not in sys.modules:
        spec = importlib.util.spec_from_file_location("okx_reference",
                                                      GOLDEN / "okx_reference.py")
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules["okx_reference"] = mod
        spec.loader.exec_module(mod)
    return sys.modules["okx_reference"]


def test_model_agrees_with_the_plain_reference_computed_now():
    """The model against okx_reference.py run now (QuantLib pricing, written from the docs and
    not importing the model) on every model case — not against the JSON that reference wrote."""
    ref = _reference_module()
    for name in MODEL_CASES:
        doc = case(name)
        if doc.get("params"):
            continue
        got = ref.account_margin(doc["market"], doc["book"]["accounts"][0])
        r = run(doc)
        assert math.isclose(r.maintenance_margin, got["maintenance_margin"], rel_tol=1e-9,
                            abs_tol=1e-6), name
        assert math.isclose(r.initial_margin, got["initial_margin"], rel_tol=1e-9,
                            abs_tol=1e-6), name


def _n(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def _b76(F: float, K: float, T: float, vol: float, call: bool) -> float:
    """Undiscounted Black-76, closed form with math.erf (independent of the model and of
    QuantLib)."""
    sd = vol * math.sqrt(T)
    d1 = (math.log(F / K) + 0.5 * sd * sd) / sd
    d2 = d1 - sd
    return F * _n(d1) - K * _n(d2) if call else K * _n(-d2) - F * _n(-d1)


def test_reference_option_book_recomputed_inline():
    """REFERENCE-option-book's MR1, MR6 and raw MR7 worked out here from the formulas in
    docs/models/okx-pm.md, with nothing imported from the model or okx_reference.py: a price
    move m scales every forward and the index by (1 + m); inverse amounts are coin × scenario
    index; MR1 = worst loss over m ∈ {0, ±4, ±8, ±12%} × option vols {−shock (floor 1%), same,
    +shock}, shock by days to expiry linear in (30 d, 12 pts)–(90 d, 8 pts); MR6 = ½ × worst
    loss at ±24%; MR7 raw = 0.2% of notional (a long option's capped at its value)."""
    S = 100_000.0
    d51, d79 = 51.0, 79.0          # 2026-02-04T08 → 2026-03-27T08 and → 2026-04-24T08

    def shock(days: float) -> float:
        return 0.12 + (0.08 - 0.12) * (days - 30.0) / 60.0

    # (size, inverse, fx, strike, call, iv, forward, days) for the options
    opts = [(-5, True, 1.0, 110_000.0, True, 0.60, 101_000.0, d51),
            (3, False, 0.9999, 90_000.0, False, 0.65, 101_000.0, d51),
            (2, True, 1.0, 100_000.0, True, 0.55, 102_000.0, d79)]

    def pnl(m: float, side: int) -> float:
        f = 1.0 + m
        total = 150 * 0.01 * (100_050.0 * f - 100_050.0)                    # BTCUSDT
        total += -300 * 100 * (1 / 100_020.0 - 1 / (100_020.0 * f)) * S * f  # BTC-USD-SWAP
        for size, inv, fx, K, call, iv, F, days in opts:
            T = days / 365.0
            vol = iv + side * shock(days)
            vol = max(vol, 0.01) if side < 0 else vol
            v0 = _b76(F, K, T, iv, call)
            v1 = _b76(F * f, K, T, vol, call)
            total += size * ((v1 / (F * f) * S * f - v0 / F * S) if inv else (v1 - v0) * fx)
        return total

    moves = [0.0] + [s * m for m in (0.04, 0.08, 0.12) for s in (1, -1)]
    mr1 = max(-pnl(m, side) for m in moves for side in (-1, 0, 1))
    mr6 = 0.5 * max(0.0, -pnl(0.24, 0), -pnl(-0.24, 0))
    raw = 0.002 * (150 * 0.01 * 100_050.0 + 300 * 100)
    for size, inv, fx, K, call, iv, F, days in opts:
        charge = 0.002 * abs(size) * S
        if size > 0:
            value = size * _b76(F, K, days / 365.0, iv, call) * (S / F if inv else fx)
            charge = min(charge, value)
        raw += charge
    ru = run(case("REFERENCE-option-book")).units[0].margin.details["risk_units"][0]
    assert math.isclose(ru["mr1_spot_shock"], mr1, rel_tol=1e-9)
    assert math.isclose(ru["mr6_extreme_move"], mr6, rel_tol=1e-9)
    assert math.isclose(ru["mr7_raw"], raw, rel_tol=1e-12)
    assert ru["mr7_adjusted"] == ru["mr7_raw"]          # tier 1 (≤ 250,000) of 2025-01-15


# --- random books against the reference and properties ------------------------------------------

POOL_MARKET = json.loads(json.dumps(case("REFERENCE-option-book")["market"]))
POOL_MARKET["index"]["ETH"] = 2500.0
POOL_MARKET["instruments"] += [
    {"symbol": "BTCUSDT-260327", "kind": "future", "underlying": "BTC", "settle": "USDT",
     "contract_size": 0.01, "expiry": "2026-03-27T08:00:00Z", "mark_price": 101000.0},
    {"symbol": "BTC-USD-260626", "kind": "future", "underlying": "BTC", "settle": "BTC",
     "inverse": True, "contract_size": 100, "expiry": "2026-06-26T08:00:00Z",
     "mark_price": 103000.0},
    {"symbol": "BTC-USDC-260213-95000-P", "kind": "option", "underlying": "BTC",
     "settle": "USDC", "contract_size": 0.1, "expiry": "2026-02-13T08:00:00Z", "strike": 95000,
     "option_type": "put", "mark_iv": 0.7, "underlying_price": 100100.0},
    {"symbol": "BTC/USDT", "kind": "spot", "underlying": "BTC", "settle": "USDT",
     "contract_size": 1, "mark_price": 100000.0},
    {"symbol": "ETHUSDT", "kind": "perpetual", "underlying": "ETH", "settle": "USDT",
     "contract_size": 0.1, "mark_price": 2501.0},
    {"symbol": "ETH-27MAR26-2800-C", "kind": "option", "underlying": "ETH", "settle": "ETH",
     "inverse": True, "contract_size": 1, "expiry": "2026-03-27T08:00:00Z", "strike": 2800,
     "option_type": "call", "mark_iv": 0.75, "underlying_price": 2520.0}]
POOL = {"BTC-27MAR26-110000-C": 2.0, "BTC-USDC-260327-90000-P": 2.0,
        "BTC-24APR26-100000-C": 2.0, "BTCUSDT": 200.0, "BTC-USD-SWAP": 2000.0,
        "BTCUSDT-260327": 200.0, "BTC-USD-260626": 2000.0, "BTC-USDC-260213-95000-P": 20.0,
        "BTC/USDT": 2.0, "ETHUSDT": 300.0, "ETH-27MAR26-2800-C": 40.0}


@pytest.fixture(scope="module")
def pool_market() -> MarketSnapshot:
    return parse_model(MarketSnapshot, POOL_MARKET, "market")


def account_doc(positions: list[tuple[str, float]], collateral: dict[str, float] | None = None
                ) -> dict[str, Any]:
    return {"id": "p", "margin_mode": "portfolio", "collateral": collateral or {"USDT": 1e5},
            "positions": [{"symbol": s, "size": q} for s, q in positions]}


# one position per instrument, as OKX holds them (the engine nets duplicates before any model:
# tests/models/test_duplicate_positions.py; the plain reference does not)
books = st.lists(st.tuples(st.sampled_from(sorted(POOL)), st.floats(-1, 1).filter(
    lambda x: abs(x) > 1e-3)), min_size=1, max_size=6, unique_by=lambda t: t[0]).map(
    lambda ps: [(s, q * POOL[s]) for s, q in ps])
SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(positions=books, debt=st.floats(0, 50000), btc=st.floats(0, 3), eth=st.floats(0, 100))
def test_random_books_match_the_reference(pool_market, positions, debt, btc, eth):
    """Model and plain reference agree on every risk unit's MR1…MR9 and on MMR/IMR (coin
    balances offsetting as spot, USDC borrowed)."""
    ref = _reference_module()
    acct = account_doc(positions, {"USDT": 1e5, "USDC": -debt, "BTC": btc, "ETH": eth})
    want = ref.account_margin(POOL_MARKET, acct)
    r = assess_account(get_model("okx-pm"), Account.model_validate(acct), pool_market,
                       liquidation_prices=False)
    rus = {ru["risk_unit"]: ru for ru in r.units[0].margin.details["risk_units"]}
    keys = {"mr1": "mr1_spot_shock", "mr2": "mr2_theta_decay", "mr3": "mr3_vega_term_structure",
            "mr4": "mr4_basis", "mr5": "mr5_interest_rate", "mr6": "mr6_extreme_move",
            "mr7_raw": "mr7_raw", "mr7_adjusted": "mr7_adjusted", "mr9": "mr9_stablecoin_depeg",
            "derivatives_mmr": "derivatives_mmr"}
    for name, w in want["risk_units"].items():
        for k, mk in keys.items():
            assert math.isclose(rus[name][mk], w[k], rel_tol=1e-9, abs_tol=1e-6), (name, k)
    assert math.isclose(r.maintenance_margin, want["maintenance_margin"], rel_tol=1e-9,
                        abs_tol=1e-6)
    assert math.isclose(r.initial_margin, want["initial_margin"], rel_tol=1e-9, abs_tol=1e-6)


@SETTINGS
@given(positions=books, k=st.floats(0.01, 20))
def test_properties(pool_market, positions, k):
    """IM ≥ MM ≥ 0; contributions add up to IM; the book needs no more than its positions
    margined alone; with the size-dependent tables flattened (MR7 multiplier 1, one MR9
    factor) scaling every size by k scales MM and IM by k."""
    model = get_model("okx-pm")
    r = assess_account(model, Account.model_validate(account_doc(positions)), pool_market,
                       liquidation_prices=False)
    assert r.initial_margin >= r.maintenance_margin >= 0.0
    assert math.isclose(sum(p.margin.contribution for p in r.positions), r.initial_margin,
                        rel_tol=1e-9, abs_tol=1e-6)
    alone = sum(p.margin.maintenance_margin for p in r.positions)
    assert r.maintenance_margin <= alone * (1 + 1e-9) + 1e-6
    flat = get_model("okx-pm", FLAT)
    r1 = assess_account(flat, Account.model_validate(account_doc(positions)), pool_market,
                        liquidation_prices=False)
    rk = assess_account(flat, Account.model_validate(account_doc(
        [(s, q * k) for s, q in positions])), pool_market, liquidation_prices=False)
    assert math.isclose(rk.maintenance_margin, k * r1.maintenance_margin, rel_tol=1e-9,
                        abs_tol=1e-6)
    assert math.isclose(rk.initial_margin, k * r1.initial_margin, rel_tol=1e-9, abs_tol=1e-6)


def test_minimum_charge_tiers_are_size_dependent():
    """The MR7 tiers (from 2025-01-15) make a hedged book's margin grow faster than its size:
    DERIVED-calendar-min-charge (raw 12,060, tier 1) × 30: raw 361,800 → 250,000 +
    111,800·2 = 473,600 > 30 × 12,060; the stress part (30 × 3,723.29) stays below."""
    doc = case("DERIVED-calendar-min-charge")
    r1 = run(doc)
    doc["book"]["accounts"][0]["positions"] = [
        {**p, "size": 30 * p["size"]} for p in doc["book"]["accounts"][0]["positions"]]
    r30 = run(doc)
    assert r1.units[0].margin.details["risk_units"][0]["binding"] == "mr7"
    assert r1.maintenance_margin == pytest.approx(12060.0, rel=1e-12)
    assert r30.maintenance_margin == pytest.approx(473600.0, rel=1e-12)
    assert r30.maintenance_margin > 30 * r1.maintenance_margin


def test_mr7_tiers_are_the_2025_01_15_table():
    """One dated parameter set: MR7 tiers of 2025-01-15 with the 2025-01-06 MR1/MR6 moves."""
    u = get_model("okx-pm").params.underlyings["BTC"]
    assert u.mr7_tiers == ((250_000.0, 1.0), (500_000.0, 2.0), (1_000_000.0, 4.0),
                           (2_000_000.0, 6.0), (3_000_000.0, 8.0), (4_000_000.0, 10.0),
                           (None, 12.0))
    assert u.mr1_price_moves == (0.04, 0.08, 0.12) and u.mr6_extreme_move == 0.24
    assert tiered_sum(30_000, u.mr7_tiers) == 30_000       # TV-O1's raw charge, now tier 1


# --- modes, risk units, spot hedging, errors ----------------------------------------------------

def test_risk_unit_merge_off_gives_per_quote_units(pool_market):
    """Before 2025-01-21: BTC-USDT and BTC-USD risk units, which do not offset each other."""
    positions = [("BTCUSDT", 100.0), ("BTC-USD-SWAP", -1000.0)]
    merged = assess_account(get_model("okx-pm"), Account.model_validate(account_doc(positions)),
                            pool_market, liquidation_prices=False)
    split = assess_account(get_model("okx-pm", {"risk_unit_merge": False}),
                           Account.model_validate(account_doc(positions)), pool_market,
                           liquidation_prices=False)
    names = sorted(ru["risk_unit"] for ru in split.units[0].margin.details["risk_units"])
    assert names == ["BTC-USD", "BTC-USDT"]
    assert split.maintenance_margin == pytest.approx(
        sum(p.margin.maintenance_margin for p in split.positions), rel=1e-12)
    assert merged.maintenance_margin < 0.2 * split.maintenance_margin


def test_spot_hedging(pool_market):
    """Spot joins the risk unit when spot hedging is on (long spot vs short perpetual nets in
    MR1) and carries no margin when it is off."""
    positions = [("BTC/USDT", 1.0), ("BTCUSDT", -100.0)]
    on = assess_account(get_model("okx-pm"), Account.model_validate(account_doc(positions)),
                        pool_market, liquidation_prices=False)
    off = assess_account(get_model("okx-pm", {"spot_hedging": False}),
                         Account.model_validate(account_doc(positions)), pool_market,
                         liquidation_prices=False)
    ru = on.units[0].margin.details["risk_units"][0]
    assert ru["mr1_spot_shock"] == pytest.approx(0.12 * 50.0, rel=1e-9)  # 1·(100,050 − 100,000)
    assert off.positions[0].margin.maintenance_margin == 0.0
    assert off.maintenance_margin == pytest.approx(off.positions[1].margin.maintenance_margin,
                                                   rel=1e-12)
    assert on.maintenance_margin < off.maintenance_margin
    # spot beyond the derivatives' delta does not count; spot alone needs no margin
    big = assess_account(get_model("okx-pm"), Account.model_validate(account_doc(
        [("BTC/USDT", 2.0), ("BTCUSDT", -100.0)])), pool_market, liquidation_prices=False)
    ru = big.units[0].margin.details["risk_units"][0]
    assert ru["spot_offset_fraction"] == pytest.approx(100050.0 / 200000.0, rel=1e-12)
    assert ru["mr1_spot_shock"] == pytest.approx(0.0, abs=1e-6)
    lone = assess_account(get_model("okx-pm"), Account.model_validate(account_doc(
        [("BTC/USDT", 2.0)])), pool_market, liquidation_prices=False)
    assert lone.maintenance_margin == 0.0


def test_coin_balance_offsets_a_covered_call(pool_market):
    """Spot hedging: a BTC balance offsets a short call's delta (at most the call's delta); it
    lowers MR1, plays no part in MR9 and needs no margin of its own."""
    positions = [("BTC-27MAR26-110000-C", -2.0)]
    bare = assess_account(get_model("okx-pm"), Account.model_validate(account_doc(positions)),
                          pool_market, liquidation_prices=False)
    covered = assess_account(get_model("okx-pm"), Account.model_validate(account_doc(
        positions, {"USDT": 1e5, "BTC": 2.0})), pool_market, liquidation_prices=False)
    off = assess_account(get_model("okx-pm", {"spot_hedging": False}), Account.model_validate(
        account_doc(positions, {"USDT": 1e5, "BTC": 2.0})), pool_market,
        liquidation_prices=False)
    ru = covered.units[0].margin.details["risk_units"][0]
    assert 0.0 < ru["spot_offset_fraction"] < 1.0
    assert 0.0 < ru["balances_offsetting"]["BTC balance"] < 2.0
    assert ru["mr9_stablecoin_depeg"] == 0.0 and "" not in ru["cash_deltas"]
    assert covered.maintenance_margin < 0.6 * bare.maintenance_margin
    assert off.maintenance_margin == pytest.approx(bare.maintenance_margin, rel=1e-12)
    assert math.isclose(sum(p.margin.contribution for p in covered.positions),
                        covered.initial_margin, rel_tol=1e-12)


def test_currency_scope(pool_market):
    """scope=currency: one unit per settlement currency, amounts in that currency."""
    positions = [("BTCUSDT", 100.0), ("BTC-USD-SWAP", -1000.0)]
    r = assess_account(get_model("okx-pm", {"scope": "currency"}),
                       Account.model_validate(account_doc(positions, {"USDT": 1e5, "BTC": 1})),
                       pool_market, liquidation_prices=False)
    assert sorted(u.margin.currency for u in r.units) == ["BTC", "USDT"]
    btc = next(u for u in r.units if u.margin.currency == "BTC")
    usd = btc.margin.details["mmr"]
    assert btc.margin.maintenance_margin == pytest.approx(usd / 100000.0, rel=1e-12)


def test_isolated_mode_is_not_offered(pool_market):
    acct = Account.model_validate({**account_doc([("BTCUSDT", 1.0)]),
                                   "margin_mode": "isolated"})
    with pytest.raises(InputError, match="not offered"):
        assess_account(get_model("okx-pm"), acct, pool_market)


@pytest.mark.parametrize("params, message", [
    ({"mr6_fraction": 2}, "less than or equal"),
    ({"mr9_tiers": [[1e6, 0.01]]}, "unbounded"),
    ({"mr9_tiers": [[5e6, 0.01], [1e6, 0.02], [None, 0.03]]}, "increase"),
    ({"mr1_vol_shock": [[10, 0.1], [5, 0.2]]}, "increasing"),
    ({"underlyings": {"BTC": {"mr1_price_moves": [0.04, 1.5]}}}, r"\(0, 1\)"),
    ({"mr2": 1}, "unknown parameter"),
])
def test_bad_parameters_are_input_errors(params, message):
    with pytest.raises(InputError, match=message) as err:
        get_model("okx-pm", params)
    assert err.value.path.startswith("--param")


def test_partial_underlying_override_keeps_the_rest():
    m = get_model("okx-pm", {"underlyings": {"BTC": {"mr6_extreme_move": 0.3},
                                             "NEWCOIN": {"mr4_annual_basis": 0.4}}})
    u = m.params.underlyings
    assert u["BTC"].mr6_extreme_move == 0.3 and u["BTC"].mr1_price_moves == (0.04, 0.08, 0.12)
    assert u["NEWCOIN"].mr1_price_moves == (0.08, 0.16, 0.25)   # from '*'
    assert u["SOL"].mr6_extreme_move == 0.36 and u["LTC"].mr1_price_moves == (0.06, 0.12, 0.18)


def test_models_lists_the_unconfirmed_parameters():
    res = CliRunner().invoke(app, ["models", "--format", "json"])
    assert res.exit_code == 0
    rows = {r["name"]: r for r in json.loads(res.stdout)["models"]}
    params = {p["name"]: p["description"] for p in rows["okx-pm"]["parameters"]}
    for name in ("mr1_vol_shock", "mr2_time_decay_days", "mr3_fraction", "mr4_min_tenor_days",
                 "mr5_rate_shock", "mr6_fraction", "mr7_delta_one_rate", "mr7_option_rate",
                 "mr8_borrow_rate", "mr8_initial_factor", "mr9_tiers"):
        assert "UNCONFIRMED" in params[name], name
    assert "PUBLISHED" in params["imr_factor"]


def test_compute_cli_on_a_mixed_book(write_json, market_doc):
    """`margin-engine compute` on the DESIGN market with every instrument kind it lists."""
    book = {"accounts": [{"id": "mix", "margin_mode": "portfolio",
                          "collateral": {"USDT": 50000, "BTC": 0.5},
                          "positions": [{"symbol": "BTCUSDT", "size": 1.5},
                                        {"symbol": "BTC-PERPETUAL", "size": -10000},
                                        {"symbol": "BTC-27MAR26", "size": 3000},
                                        {"symbol": "BTC-27MAR26-80000-C", "size": -2}]}]}
    for model in ("okx-pm", "span"):
        res = CliRunner().invoke(app, ["compute", str(write_json("b.json", book)),
                                       str(write_json("m.json", market_doc)), "--model", model,
                                       "--format", "json"])
        assert res.exit_code == 0, res.output
        acct = json.loads(res.stdout)["accounts"][0]
        assert acct["initial_margin"] >= acct["maintenance_margin"] > 0
        assert math.isclose(sum(p["contribution"] for p in acct["positions"]),
                            acct["initial_margin"], rel_tol=1e-9)
        assert all(p["liquidation_price"] is None or p["liquidation_price"] > 0
                   for p in acct["positions"])


def run(doc: dict[str, Any], params: dict[str, Any] | None = None) -> AccountReport:
    return run_case("okx-pm", doc, params)
