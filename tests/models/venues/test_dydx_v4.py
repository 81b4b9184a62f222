"""dydx-v4 against the protocol's own test expectations (research/crypto-venues.md §4.6:
liquidity_tier_test.go, liquidations_test.go), the DERIVED vectors, a plain-fraction reference
and hypothesis properties.

Independent references used here:
- tests/golden/dydx-v4/ (Go test expectations copied verbatim; intermediates in plain integer
  arithmetic in generate_dydx_v4_golden.py, no engine code);
- :func:`ref_imr` below: IMR from exact fractions, following the Go comments' formula
  (``Effective IMF = Min(Base IMF + Max(IMF Increase, 0), 1.0)``) with the documented rounding;
- ``policy.liquidation.solve_liquidation_factor`` (bracketing root search over the unit).
"""

from __future__ import annotations

import json
import math
from fractions import Fraction
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
from margin_engine.models.venues.dydx_v4 import (
    PPM,
    DydxV4,
    DydxV4Params,
    LiquidityTier,
    adjusted_initial_margin_ppm,
    bankruptcy_price_qq,
    exact,
    initial_margin_qq,
    is_liquidatable,
    leverage_to_imf_ppm,
    liquidation_price_single,
    maintenance_margin_qq,
    position_bankruptcy_price_qq,
    quote_quantums,
)
from margin_engine.policy.assess import assess_account
from margin_engine.policy.health import HealthPolicy, unit_equity
from margin_engine.policy.liquidation import solve_liquidation_factor

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "dydx-v4"


def golden(name: str) -> Any:
    return json.loads((GOLDEN / name).read_text())


LT = golden("code-liquidity-tier.json")
BP = golden("code-bankruptcy-price.json")
DERIVED = golden("derived-book-cases.json")


def tier(imf: int, lo: int = 0, hi: int = 0, fraction: int = 500_000) -> LiquidityTier:
    return LiquidityTier(initial_margin_ppm=imf, maintenance_fraction_ppm=fraction,
                         open_interest_lower_cap=lo, open_interest_upper_cap=hi)


def model(**params: Any) -> DydxV4:
    m = get_model("dydx-v4", params)
    assert isinstance(m, DydxV4)
    return m


def account_of(doc: dict[str, Any]) -> Account:
    return parse_model(Book, {"accounts": [doc]}, "book").accounts[0]


def market_of(prices: dict[str, float]) -> MarketSnapshot:
    doc = {"timestamp": "2026-03-01T00:00:00Z", "index": {s.split("-")[0]: p
                                                          for s, p in prices.items()},
           "fx": {"USDC": 1.0},
           "instruments": [{"symbol": s, "kind": "perpetual", "underlying": s.split("-")[0],
                            "settle": "USDC", "mark_price": p} for s, p in prices.items()]}
    return parse_model(MarketSnapshot, doc, "market")


# --------------------------------------------------------------------------------------------
# CODE test expectations (liquidity_tier_test.go)


@pytest.mark.parametrize("case", LT["initial_margin_cases"], ids=lambda c: c["name"])
def test_code_get_initial_margin_quote_quantums(case):
    """§4.6 / TestGetInitialMarginQuoteQuantums: IMR in quote quantums, exactly."""
    t = tier(case["initial_margin_ppm"], case["open_interest_lower_cap"],
             case["open_interest_upper_cap"])
    got = initial_margin_qq(case["quote_quantums"], t, case["open_interest_notional"])
    assert got == case["expected_initial_margin_quote_quantums"]
    assert got == math.ceil(case["intermediate"]["imr_unrounded"])


@pytest.mark.parametrize("case", LT["adjusted_imf_cases"], ids=lambda c: c["name"])
def test_code_get_adjusted_initial_margin_ppm(case):
    """§4.6 / TestGetAdjustedInitialMarginPpm: OI-scaled IMF in ppm, rounded down."""
    t = tier(case["initial_margin_ppm"], case["open_interest_lower_cap"],
             case["open_interest_upper_cap"])
    got = adjusted_initial_margin_ppm(t, case["open_interest_notional"])
    assert got == case["expected_ppm"]
    assert got == math.floor(case["intermediate"]["imf_ppm_unrounded"])


def test_custom_imf_only_raises_the_requirement():
    """leverage.go / GetInitialMarginQuoteQuantums: custom IMF = max(OI-scaled, custom)."""
    t = tier(200_000, 1_000_000, 2_000_000)
    assert initial_margin_qq(500_000, t, 0, 100_000) == 100_000  # below base: base wins
    assert initial_margin_qq(500_000, t, 0, 500_000) == 250_000
    assert initial_margin_qq(500_000, t, 1_500_000, 500_000) == 300_000  # OI-scaled 60 % wins
    assert maintenance_margin_qq(500_000, t) == 50_000  # never scaled nor leveraged


# --------------------------------------------------------------------------------------------
# CODE test expectations (liquidations_test.go)


def bp_case_risk(case: dict[str, Any]) -> tuple[int, int]:
    """TNC and TMMR of the Go test subaccount, through the module's own functions."""
    setup = BP["setup"]
    t = tier(setup["liquidity_tier"]["initial_margin_ppm"],
             fraction=setup["liquidity_tier"]["maintenance_fraction_ppm"])
    tnc = case["usdc_balance"] * 10**6
    tmmr = 0
    for p in case["positions"]:
        price, size = exact(setup["oracle_price"][p["market"]]), exact(p["size"])
        tnc += quote_quantums(size * price)
        tmmr += maintenance_margin_qq(quote_quantums(abs(size) * price), t)
    return tnc, tmmr


@pytest.mark.parametrize("case", BP["cases"], ids=lambda c: c["name"])
def test_code_get_bankruptcy_price_in_quote_quantums(case):
    """§4.6 / TestGetBankruptcyPriceInQuoteQuantums: every expectation, to the quote quantum
    (the rounding toward +∞ included), with the golden intermediates."""
    setup = BP["setup"]
    t = tier(setup["liquidity_tier"]["initial_margin_ppm"],
             fraction=setup["liquidity_tier"]["maintenance_fraction_ppm"])
    tnc, tmmr = bp_case_risk(case)
    assert (tnc, tmmr) == (case["intermediate"]["tnc"], case["intermediate"]["tmmr"])
    size = next(exact(p["size"]) for p in case["positions"] if p["market"] == case["market"])
    got = position_bankruptcy_price_qq(size, exact(case["delta_size"]),
                                       exact(setup["oracle_price"][case["market"]]), t, tnc, tmmr)
    assert got == case["expected_bankruptcy_price_quote_quantums"]
    i = case["intermediate"]
    assert bankruptcy_price_qq(i["pnnv"], i["pnnv_after"], i["pmmr"], i["pmmr_after"], i["tnc"],
                               i["tmmr"]) == got


@pytest.mark.parametrize("case", BP["error_cases"], ids=lambda c: c["name"])
def test_code_bankruptcy_price_invalid_delta(case):
    """liquidations_test.go: ErrInvalidPerpetualPositionSizeDelta cases are refused."""
    with pytest.raises(ValueError, match="delta"):
        position_bankruptcy_price_qq(exact(case["size"]), exact(case["delta_size"]),
                                     Fraction(50_000), tier(200_000), 1, 1)


def test_liquidatable_is_strict():
    """risk.go IsLiquidatable: MMR > 0 and MMR > NC (equality is not liquidatable)."""
    assert is_liquidatable(499, 500) and not is_liquidatable(500, 500)
    assert not is_liquidatable(-5, 0)


# --------------------------------------------------------------------------------------------
# DERIVED (§4.6) and the CODE vectors through books


@pytest.mark.parametrize("case", DERIVED["cases"], ids=lambda c: c["name"])
def test_derived_book_cases(case):
    """§4.6 DERIVED: Large-Cap 1 BTC @ 60,000 → IMR 1,200 / MMR 720; Mid-Cap at OI 70M →
    IMF 52.5 %, $10,000 → 5,250 / 300; P_liq = 4,501/(0.1·0.9) = 50,011.11; and the CODE
    bankruptcy vectors (4,501,000,000 and 294,000,000 qq) from a book."""
    market = parse_model(MarketSnapshot, case["market"], "market")
    account = parse_model(Book, case["book"], "book").accounts[0]
    m = model(**case["params"])
    r = assess_account(m, account, market)
    exp, unit = case["expected"], r.units[0].margin
    assert math.isclose(r.initial_margin, exp["initial_margin"], rel_tol=1e-12)
    assert math.isclose(r.maintenance_margin, exp["maintenance_margin"], rel_tol=1e-12)
    inter = case["intermediate"]
    for key in ("quote_balance_qq", "tnc_qq", "tmmr_qq"):
        if key in inter:
            assert unit.details[key] == inter[key]
    markets = unit.details["markets"]
    if "imf_oi_ppm" in inter:
        assert markets["MID-USD"]["imf_oi_ppm"] == inter["imf_oi_ppm"] == 525_000
        assert markets["MID-USD"]["open_interest_qq"] == inter["open_interest_qq"]
    if "liquidatable" in exp:
        assert unit.details["liquidatable"] is exp["liquidatable"]
    if "liquidation_price" in exp:
        lp = r.positions[0].liquidation_price
        assert lp is not None and math.isclose(lp, exp["liquidation_price"], rel_tol=1e-9)
        assert round(lp, 2) == exp["published_liquidation_price"]
    bq = exp.get("bankruptcy_quote_quantums")
    if isinstance(bq, int):
        (only,) = markets.values()
        assert only["bankruptcy_quote_quantums"] == bq
        assert math.isclose(only["bankruptcy_price"], exp["bankruptcy_price"], rel_tol=1e-12)
    elif isinstance(bq, dict):
        for sym, v in bq.items():
            assert markets[sym]["bankruptcy_quote_quantums"] == v
            assert math.isclose(markets[sym]["bankruptcy_price"],
                                exp["bankruptcy_price"][sym], rel_tol=1e-12)


def test_single_position_closed_form_matches_the_model():
    """§4.5: the model's subaccount solve equals P_liq = −Q/(q(1−m)) and Q/(|q|(1+m))."""
    market = market_of({"BTC-USD": 60_000.0})
    m = model()
    mmf = 0.02 * 0.6
    for size, cash in [(0.5, 5_000.0), (-0.5, 5_000.0), (2.0, 9_000.0), (-1.3, 3_000.0)]:
        account = account_of({"id": "s", "margin_mode": "cross", "collateral": {"USDC": cash},
                              "positions": [{"symbol": "BTC-USD", "size": size,
                                             "entry_price": 60_000}]})
        lp = assess_account(m, account, market).positions[0].liquidation_price
        want = liquidation_price_single(cash - size * 60_000, size, mmf)
        assert lp is not None and want is not None
        assert math.isclose(lp, want, rel_tol=1e-12)


# --------------------------------------------------------------------------------------------
# cross, isolated, leverage, liquidation solve


def two_market_account(mode: str, btc: float, eth: float, cash: float = 20_000.0,
                       leverage: dict[str, float] | None = None) -> Account:
    iso = {"isolated_margin": cash / 2} if mode == "isolated" else {}
    return account_of({"id": "t", "margin_mode": mode, "collateral": {"USDC": cash},
                       "positions": [{"symbol": "BTC-USD", "size": btc, "entry_price": 61_000,
                                      **iso},
                                     {"symbol": "ETH-USD", "size": eth, "entry_price": 2_400,
                                      **iso}],
                       "leverage": leverage or {}})


MARKET2 = market_of({"BTC-USD": 60_000.0, "ETH-USD": 2_500.0})


@pytest.mark.parametrize("mode", ["cross", "isolated"])
def test_liquidation_solve_agrees_with_generic_solver(mode):
    """The DERIVED subaccount solve and the model-free root search agree (to the quantum
    rounding of MMR, ≤ 1e-6 USDC of collateral)."""
    m = model()
    account = two_market_account(mode, 1.5, -20.0)
    policy = HealthPolicy()
    report = assess_account(m, account, MARKET2, policy=policy)
    for unit in build_units(account, MARKET2, m.cross_scope(account)):
        for j in unit.position_indices:
            ins = MARKET2.instrument(account.positions[j].symbol)
            f = solve_liquidation_factor(m, unit, account, MARKET2, ins.underlying, policy)
            lp = report.positions[j].liquidation_price
            assert f is not None and lp is not None
            assert math.isclose(lp, f * ins.mark_price, rel_tol=1e-8)


def test_isolated_subaccounts_are_separate():
    """Isolated mode: each position is its own subaccount with its own USDC."""
    m = model()
    iso = assess_account(m, two_market_account("isolated", 1.0, 10.0), MARKET2)
    assert len(iso.units) == 2
    assert [u.margin.details["quote_balance_qq"] for u in iso.units] == [
        (10_000 - 61_000) * 10**6, (10_000 - 24_000) * 10**6]


def test_isolated_market_must_be_alone_in_a_cross_subaccount():
    """isolated_subaccount.go: a subaccount holding an isolated market holds nothing else."""
    m = model(isolated_markets=["ETH-USD"])
    with pytest.raises(InputError) as err:
        assess_account(m, two_market_account("cross", 1.0, 1.0), MARKET2)
    assert err.value.path == "positions[1].symbol" and "isolated market" in err.value.reason
    assert assess_account(m, two_market_account("isolated", 1.0, 1.0), MARKET2).units


def test_leverage_sets_custom_imf():
    """A chosen leverage raises IMR only (MMR unchanged); above the tier's max it is refused."""
    m = model()
    plain = assess_account(m, two_market_account("cross", 1.0, 0.0), MARKET2)
    lev = assess_account(m, two_market_account("cross", 1.0, 0.0, leverage={"BTC-USD": 3}),
                         MARKET2)
    assert leverage_to_imf_ppm(3) == 333_334
    assert math.isclose(lev.positions[0].margin.initial_margin, 60_000 * 0.333334, rel_tol=1e-12)
    assert lev.maintenance_margin == plain.maintenance_margin == 720.0
    with pytest.raises(InputError) as err:
        assess_account(m, two_market_account("cross", 1.0, 0.0, leverage={"BTC-USD": 60}),
                       MARKET2)
    assert err.value.path == "leverage.BTC-USD" and "maximum 50×" in err.value.reason


def test_open_interest_parameter_scales_initial_margin_only():
    """OI (base units, keyed by market or underlying) raises IMF via the tier's caps."""
    m = model(market_liquidity_tier={"BTC": 1}, open_interest={"BTC-USD": 700.0})
    r = assess_account(m, two_market_account("cross", 1.0, 0.0), MARKET2)
    d = r.units[0].margin.details["markets"]["BTC-USD"]
    # OI notional 42M between Small-Cap caps 20M-50M: 100000 + 900000·22/30 ppm, rounded down
    assert d["open_interest_qq"] == 42_000_000 * 10**6
    assert d["imf_ppm"] == 100_000 + 900_000 * 22 // 30
    assert d["mmr_qq"] == 60_000 * 10**6 // 20
    by_und = model(market_liquidity_tier={"BTC": 1}, open_interest={"BTC": 700.0})
    assert assess_account(by_und, two_market_account("cross", 1.0, 0.0),
                          MARKET2).initial_margin == r.initial_margin


# --------------------------------------------------------------------------------------------
# properties


def ref_imr(notional: int, imf: int, lo: int, hi: int, oi: int, custom: int = 0) -> int:
    """Plain reference: scale in exact fractions, floor to ppm, then ceil the IMR."""
    if hi == 0 or oi <= lo:
        ppm = Fraction(imf)
    elif oi >= hi:
        ppm = Fraction(PPM)
    else:
        ppm = Fraction(imf) + Fraction(oi - lo, hi - lo) * (PPM - imf)
    ppm_int = max(math.floor(ppm), custom)
    return math.ceil(Fraction(notional * ppm_int, PPM))


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 10**16), st.integers(0, PPM), st.integers(0, 10**14),
       st.integers(0, 10**14), st.integers(0, 2 * 10**14), st.integers(0, PPM))
def test_imr_matches_plain_fraction_reference(notional, imf, a, b, oi, custom):
    lo, hi = min(a, b), max(a, b)
    t = tier(imf, lo, hi)
    assert initial_margin_qq(notional, t, oi, custom) == ref_imr(notional, imf, lo, hi, oi, custom)


positions = st.floats(-200.0, 200.0).filter(lambda x: abs(x) > 1e-4).map(lambda x: round(x, 4))


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["cross", "isolated"]), positions, positions,
       st.floats(0.0, 1e9), st.sampled_from([0, 1, 2, 5]))
def test_im_at_least_mm_at_least_zero(mode, btc, eth, oi, tier_id):
    m = model(market_liquidity_tier={"ETH": tier_id}, open_interest={"ETH": oi})
    r = assess_account(m, two_market_account(mode, btc, eth), MARKET2, liquidation_prices=False)
    for u in r.units:
        assert u.margin.initial_margin >= u.margin.maintenance_margin >= 0.0
        assert math.isclose(sum(p.contribution for p in u.margin.positions),
                            u.margin.initial_margin, rel_tol=1e-12, abs_tol=1e-12)


@settings(max_examples=60, deadline=None)
@given(positions, positions, st.integers(2, 9))
def test_scaling_sizes_scales_margin(btc, eth, k):
    """Margin is linear in size up to the quote-quantum rounding (≤ k + 2 qq per position)."""
    m = model()
    base = assess_account(m, two_market_account("cross", btc, eth), MARKET2,
                          liquidation_prices=False)
    scaled = assess_account(m, two_market_account("cross", k * btc, k * eth), MARKET2,
                            liquidation_prices=False)
    tol = 2 * (k + 2) * 1e-6
    assert abs(scaled.initial_margin - k * base.initial_margin) <= tol
    assert abs(scaled.maintenance_margin - k * base.maintenance_margin) <= tol


@settings(max_examples=60, deadline=None)
@given(positions, st.floats(0.0, 200.0).map(lambda x: round(x, 4)), positions)
def test_hedge_never_raises_margin(a, hedge, eth):
    """An offsetting leg in the same market (netted, as the subaccount holds one position per
    market) never raises the subaccount's margin above its positions margined alone."""
    m = model()
    legs = [("BTC-USD", a), ("BTC-USD", -math.copysign(hedge, a)), ("ETH-USD", eth)]
    whole = assess_account(m, account_of({
        "id": "h", "margin_mode": "cross", "collateral": {"USDC": 1e6},
        "positions": [{"symbol": s, "size": q} for s, q in legs]}), MARKET2,
        liquidation_prices=False)
    alone = [assess_account(m, account_of({"id": "o", "margin_mode": "cross",
                                           "positions": [{"symbol": s, "size": q}]}), MARKET2,
                            liquidation_prices=False) for s, q in legs]
    assert whole.initial_margin <= sum(r.initial_margin for r in alone) + 1e-12
    assert whole.maintenance_margin <= sum(r.maintenance_margin for r in alone) + 1e-12


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(["cross", "isolated"]), positions, positions, st.floats(1e3, 1e7))
def test_net_collateral_meets_mmr_at_the_liquidation_price(mode, btc, eth, cash):
    """At each reported price NC = MMR for the subaccount, up to the MMR's quote-quantum
    ceilings (≤ 2 qq per market) — the DERIVED §4.5 claim."""
    m = model()
    account = two_market_account(mode, btc, eth, cash)
    report = assess_account(m, account, MARKET2)
    policy = HealthPolicy()
    for unit in build_units(account, MARKET2, "currency"):
        for j in unit.position_indices:
            lp = report.positions[j].liquidation_price
            if lp is None:
                continue
            ins = MARKET2.instrument(account.positions[j].symbol)
            assert ins.mark_price is not None
            moved = shift_underlying(MARKET2, ins.underlying, lp / ins.mark_price)
            gap = (unit_equity(unit, account, moved, policy)
                   - m.margin_unit(unit, account, moved).maintenance_margin)
            assert abs(gap) <= 4e-6 + 1e-12 * max(cash, abs(btc) * 6e4 * 100, abs(eth) * 2500)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 10**12), st.integers(1, 10**9)), min_size=1,
                max_size=4), st.integers(-10**13, 10**13), st.data())
def test_closing_at_bankruptcy_price_keeps_collateralisation(markets, tnc, data):
    """Closing one market at its rounded bankruptcy price never lowers TNC/TMMR (the rounding
    toward +∞ never asks the insurance fund for a quantum)."""
    nnv = [n for n, _ in markets]
    mmr = [mm for _, mm in markets]
    tmmr = sum(mmr)
    i = data.draw(st.integers(0, len(markets) - 1))
    bp = bankruptcy_price_qq(nnv[i], 0, mmr[i], 0, tnc, tmmr)
    tnc_after = tnc - nnv[i] + bp
    tmmr_after = tmmr - mmr[i]
    assert tnc_after * tmmr >= tnc * tmmr_after  # TNC'/TMMR' ≥ TNC/TMMR without division


# --------------------------------------------------------------------------------------------
# inputs, parameters, command line


def test_rejects_what_it_cannot_margin(market_doc):
    market = parse_model(MarketSnapshot, market_doc, "market")
    for sym, word in [("BTC-PERPETUAL", "inverse"), ("BTC-27MAR26", "future"),
                      ("BTC-27MAR26-80000-C", "option")]:
        account = account_of({"id": "x", "positions": [{"symbol": sym, "size": 1.0}]})
        with pytest.raises(InputError) as err:
            assess_account(model(), account, market)
        assert err.value.path == "positions[0].symbol" and word in err.value.reason
    with pytest.raises(InputError, match="no liquidity tier"):
        assess_account(model(), account_of({"id": "x", "positions": [
            {"symbol": "SOL-USD", "size": 1.0}]}), market_of({"SOL-USD": 150.0}))


def test_params_merge_and_validate():
    p = DydxV4Params.model_validate({"liquidity_tiers": {"7": {
        "initial_margin_ppm": 200_000, "maintenance_fraction_ppm": 500_000, "id": 7,
        "impact_notional": 2_500_000_000}}, "market_liquidity_tier": {"SOL": 7}})
    assert set(p.liquidity_tiers) == {0, 1, 2, 3, 4, 5, 6, 7}
    assert p.market_liquidity_tier == {"BTC": 0, "ETH": 0, "SOL": 7}
    assert p.liquidity_tiers[5].name == "Mid-Cap"
    with pytest.raises(InputError, match="no liquidity tier 9"):
        get_model("dydx-v4", {"market_liquidity_tier": {"SOL": 9}})
    with pytest.raises(InputError, match="open_interest_lower_cap"):
        get_model("dydx-v4", {"liquidity_tiers": {"1": {
            "initial_margin_ppm": 1, "maintenance_fraction_ppm": 1,
            "open_interest_lower_cap": 5, "open_interest_upper_cap": 0}}})
    with pytest.raises(InputError):
        get_model("dydx-v4", {"liquidity_tiers": {"0": {
            "initial_margin_ppm": 1_000_001, "maintenance_fraction_ppm": 1}}})


def test_cli_compute_on_the_design_example_and_a_usdc_book(write_json, market_doc, book_doc):
    """`margin-engine compute --model dydx-v4` on the DESIGN §4 example and on a derived book;
    an option position exits 2 with a reason."""
    runner = CliRunner()
    book, market = write_json("book.json", book_doc), write_json("market.json", market_doc)
    res = runner.invoke(app, ["compute", str(book), str(market), "--model", "dydx-v4",
                              "--format", "json"])
    assert res.exit_code == 0, res.output
    acct = json.loads(res.stdout)["accounts"][0]
    # the book's 20× leverage sets a custom IMF of 5 % (above Large-Cap's 2 %); MMR stays 1.2 %
    assert acct["initial_margin"] == 9125.625
    assert acct["maintenance_margin"] == 2190.15
    case = DERIVED["cases"][3]
    res = runner.invoke(app, ["compute", str(write_json("b2.json", case["book"])),
                              str(write_json("m2.json", case["market"])), "--model", "dydx-v4",
                              "--param", "market_liquidity_tier=" + json.dumps(
                                  case["params"]["market_liquidity_tier"]),
                              "--param", "liquidity_tiers=" + json.dumps(
                                  case["params"]["liquidity_tiers"]), "--format", "json"])
    assert res.exit_code == 0, res.output
    unit = json.loads(res.stdout)["accounts"][0]["units"][0]
    assert unit["details"]["markets"]["ETH-USD"]["bankruptcy_quote_quantums"] == 294_000_000
    book_doc["accounts"][0]["positions"] = [{"symbol": "BTC-27MAR26-80000-C", "size": 1}]
    res = runner.invoke(app, ["compute", str(write_json("b3.json", book_doc)), str(market),
                              "--model", "dydx-v4", "--strict"])
    assert res.exit_code == 2
    assert "accounts[0].positions[0].symbol" in res.output and "option" in res.output
