"""Generates tests/golden/dydx-v4/*.json: dYdX v4-chain's own test expectations (copied from the
Go tests) and DERIVED cases, with intermediates in plain integer arithmetic (no margin_engine
import)."""
import json
from fractions import Fraction
from pathlib import Path

OUT = Path(__file__).resolve().parent
PPM = 10**6


def ceil_ppm(x, ppm):
    return -((-x * ppm) // PPM)


# ---- liquidity_tier_test.go --------------------------------------------------------------------
imr_cases = [  # name, imf ppm, lower, upper, oi notional qq, quote quantums, expected IMR
    ("initial margin 20%", 200_000, 0, 0, 0, 500_000, 100_000),
    ("initial margin 50%", 500_000, 0, 0, 0, 1_000_000, 500_000),
    ("initial margin 10%, quote quantums = 1, should round up to 1", 100_000, 0, 0, 0, 1, 1),
    ("initial margin 56.7243%, quote quantums = 123_456, should round up to 70_030", 567_243, 0,
     0, 0, 123_456, 70_030),
    ("base IMF = 20%, no OIMF since lower_cap = upper_cap = 0", 200_000, 0, 0,
     1_500_000_000_000, 500_000, 100_000),
    ("base IMF = 20%, scaling_factor = 0.5", 200_000, 1_000_000_000_000, 2_000_000_000_000,
     1_500_000_000_000, 500_000, 300_000),
    ("base IMF = 10%, scaling_factor = 1 since open_interest >> upper_cap", 200_000,
     25_000_000_000_000, 50_000_000_000_000, 80_000_000_000_000, 500_000, 500_000),
    ("base IMF = 10%, open_interest = lower_cap so scaling_factor = 0", 200_000,
     25_000_000_000_000, 50_000_000_000_000, 25_000_000_000_000, 500_000, 100_000),
    ("base IMF = 10%, lower_cap < open_interest < upper_cap, realistic numbers", 200_000,
     25_000_000_000_000, 60_000_000_000_000, 28_123_456_789_123, 500_000, 135_697),
]
ppm_cases = [  # name, imf, lower, upper, oi, expected ppm
    ("Zero open interest", 200_000, 1_000_000, 2_000_000, 0, 200_000),
    ("Open interest within bounds", 200_000, 1_000_000, 2_000_000, 1_500_000, 600_000),
    ("Open interest within bounds, rounded", 200_000, 1_000_000, 2_000_000, 1_234_567, 387_653),
    ("Open interest at lower bound", 200_000, 1_000_000, 2_000_000, 1_000_000, 200_000),
    ("Open interest at upper bound", 200_000, 1_000_000, 2_000_000, 2_000_000, 1_000_000),
    ("Open interest above upper bound", 200_000, 1_000_000, 2_000_000, 2_500_000, 1_000_000),
    ("No upper bound, no increase", 200_000, 0, 0, 1_500_000, 200_000),
]


def oi_ppm_exact(imf, lo, hi, oi):
    """The unrounded OI-scaled IMF in ppm (for the record)."""
    if hi == 0 or oi <= lo:
        return Fraction(imf)
    if oi >= hi:
        return Fraction(PPM)
    return imf + Fraction((PPM - imf) * (oi - lo), hi - lo)


tier_doc = {
    "id": "dYdX-LT", "provenance": "published", "research_id": "research/crypto-venues.md §4.6",
    "source": "dydxprotocol/v4-chain protocol/x/perpetuals/types/liquidity_tier_test.go: "
              "TestGetInitialMarginQuoteQuantums, TestGetAdjustedInitialMarginPpm (CODE test "
              "expectations; no custom IMF)",
    "rounding": "IMF ppm rounded down; IMR = ceil(quote_quantums * IMF / 1e6)",
    "initial_margin_cases": [
        {"name": n, "initial_margin_ppm": imf, "open_interest_lower_cap": lo,
         "open_interest_upper_cap": hi, "open_interest_notional": oi, "quote_quantums": qq,
         "intermediate": {"imf_ppm_unrounded": float(oi_ppm_exact(imf, lo, hi, oi)),
                          "imr_unrounded": float(qq * oi_ppm_exact(imf, lo, hi, oi) / PPM)},
         "expected_initial_margin_quote_quantums": exp}
        for n, imf, lo, hi, oi, qq, exp in imr_cases],
    "adjusted_imf_cases": [
        {"name": n, "initial_margin_ppm": imf, "open_interest_lower_cap": lo,
         "open_interest_upper_cap": hi, "open_interest_notional": oi,
         "intermediate": {"imf_ppm_unrounded": float(oi_ppm_exact(imf, lo, hi, oi))},
         "expected_ppm": exp}
        for n, imf, lo, hi, oi, exp in ppm_cases]}
(OUT / "code-liquidity-tier.json").write_text(json.dumps(tier_doc, indent=1) + "\n")

# ---- liquidations_test.go TestGetBankruptcyPriceInQuoteQuantums ---------------------------------
# Test perpetuals: BtcUsd/EthUsd_20PercentInitial_10PercentMaintenance (liquidity tier 3 of the
# test tiers: IMF 20%, maintenance fraction 50%); test markets BTC $50,000, ETH $3,000;
# atomic resolution BTC -8, ETH -9. Positions: OneTenthBTC = 10_000_000, OneBTC = 100_000_000,
# FourThousandthsBTC = 400_000 (base quantums, -8); OneTenthEth = 100_000_000 (-9).
MARKETS = {"BTC": (50_000, -8), "ETH": (3_000, -9)}


def nc(base_quantums, mkt):
    price, res = MARKETS[mkt]
    v = Fraction(base_quantums) * 10**res * price * PPM
    return int(v)  # toward zero


def mmr(base_quantums, mkt):
    n = abs(nc(abs(base_quantums), mkt))
    return ceil_ppm(ceil_ppm(n, 200_000), 500_000)


bp_raw = [  # name, market, delta, usdc dollars, positions [(mkt, base quantums)], expected
    ("fully closing one long position slightly below maintenance", "BTC", -10_000_000, -4_501,
     [("BTC", 10_000_000)], 4_501_000_000),
    ("fully closing one short position slightly below maintenance", "BTC", 10_000_000, 5_499,
     [("BTC", -10_000_000)], -5_499_000_000),
    ("fully closing one long position at the bankruptcy price", "BTC", -10_000_000, -5_000,
     [("BTC", 10_000_000)], 5_000_000_000),
    ("partially closing one long position at the bankruptcy price", "BTC", -5_000_000, -5_000,
     [("BTC", 10_000_000)], 2_500_000_000),
    ("partially closing one short position at the bankruptcy price", "BTC", 5_000_000, 5_000,
     [("BTC", -10_000_000)], -2_500_000_000),
    ("fully closing one short position at the bankruptcy price", "BTC", 10_000_000, 5_000,
     [("BTC", -10_000_000)], -5_000_000_000),
    ("fully closing one long position below the bankruptcy price", "BTC", -10_000_000, -5_100,
     [("BTC", 10_000_000)], 5_100_000_000),
    ("fully closing one short position below the bankruptcy price", "BTC", 10_000_000, 4_900,
     [("BTC", -10_000_000)], -4_900_000_000),
    ("fully closing one long position, multiple long positions", "ETH", -100_000_000, -490,
     [("BTC", 400_000), ("ETH", 100_000_000)], 294_000_000),
    ("fully closing one short position, multiple short positions", "ETH", 100_000_000, 510,
     [("BTC", -400_000), ("ETH", -100_000_000)], -306_000_000),
    ("fully closing one short position, a long and a short position", "ETH", 100_000_000, 110,
     [("BTC", 400_000), ("ETH", -100_000_000)], -306_000_000),
    ("rounds up, partially closing one long position", "BTC", -21_347, -13,
     [("BTC", 100_000_000)], 2_776),
    ("rounds up, partially closing one short position", "BTC", 21_347, 13,
     [("BTC", -100_000_000)], -2_775),
    ("long position that cannot be liquidated at a loss", "BTC", -100_000_000, 1,
     [("BTC", 100_000_000)], -1_000_000),
]
bp_cases = []
for name, mkt, delta, usdc, positions, exp in bp_raw:
    tnc = usdc * PPM + sum(nc(q, m) for m, q in positions)
    tmmr = sum(mmr(q, m) for m, q in positions)
    q0 = dict((m, q) for m, q in positions)[mkt]
    pnnv, pnnvad = nc(q0, mkt), nc(q0 + delta, mkt)
    pmmr, pmmrad = mmr(q0, mkt), mmr(q0 + delta, mkt)
    res = MARKETS[mkt][1]
    bp_cases.append({
        "name": name, "market": mkt, "delta_base_quantums": delta,
        "delta_size": float(Fraction(delta) * Fraction(10) ** res),
        "usdc_balance": usdc,
        "positions": [{"market": m, "base_quantums": q,
                       "size": float(Fraction(q) * Fraction(10) ** MARKETS[m][1])}
                      for m, q in positions],
        "intermediate": {"tnc": tnc, "tmmr": tmmr, "pnnv": pnnv, "pnnv_after": pnnvad,
                         "pmmr": pmmr, "pmmr_after": pmmrad,
                         "tnc_x_abs_dmmr_over_tmmr": float(Fraction(tnc * abs(pmmrad - pmmr),
                                                                    tmmr))},
        "expected_bankruptcy_price_quote_quantums": exp})
err_cases = [
    {"name": "delta quantums zero", "market": "BTC", "delta_size": 0.0, "size": 1.0},
    {"name": "no open position", "market": "BTC", "delta_size": -0.1, "size": 0.0},
    {"name": "delta and position have the same sign", "market": "BTC", "delta_size": 0.1,
     "size": 1.0},
    {"name": "abs delta greater than position size", "market": "BTC", "delta_size": -1.00000001,
     "size": 1.0}]
bp_doc = {
    "id": "dYdX-BP", "provenance": "published", "research_id": "research/crypto-venues.md §4.6",
    "source": "dydxprotocol/v4-chain protocol/x/clob/keeper/liquidations_test.go::"
              "TestGetBankruptcyPriceInQuoteQuantums (CODE test expectations)",
    "setup": {"liquidity_tier": {"initial_margin_ppm": 200_000,
                                 "maintenance_fraction_ppm": 500_000},
              "oracle_price": {"BTC": 50_000, "ETH": 3_000},
              "atomic_resolution": {"BTC": -8, "ETH": -9}},
    "formula": "BP = -(PNNV_after - PNNV) - floor(TNC * |PMMR_after - PMMR| / TMMR)",
    "cases": bp_cases, "error_cases": err_cases}
(OUT / "code-bankruptcy-price.json").write_text(json.dumps(bp_doc, indent=1) + "\n")

# ---- DERIVED (§4.6) through the model, books in DESIGN §4 format ----------------------
def mk(price, sym="BTC-USD", und="BTC"):
    return {"symbol": sym, "kind": "perpetual", "underlying": und, "settle": "USDC",
            "mark_price": price}


derived = {
    "id": "dYdX-DERIVED", "provenance": "derived",
    "research_id": "research/crypto-venues.md §4.6 DERIVED",
    "source": "research/crypto-venues.md §4.6 DERIVED: books worked by hand from dYdX v4's "
              "liquidity tiers (IMF, MMF, open-interest caps) and custom IMF; intermediates "
              "recomputed here in plain integer arithmetic (no margin_engine import)",
    "cases": [
        {"name": "1 BTC at $60,000 on Large-Cap", "params": {},
         "market": {"timestamp": "2026-03-01T00:00:00Z", "index": {"BTC": 60000.0},
                    "fx": {"USDC": 1.0}, "instruments": [mk(60000.0)]},
         "book": {"accounts": [{"id": "a", "margin_mode": "cross",
                                "collateral": {"USDC": 5000},
                                "positions": [{"symbol": "BTC-USD", "size": 1.0}]}]},
         "intermediate": {"notional_qq": 60_000_000_000, "imf_ppm": 20_000,
                          "maintenance_fraction_ppm": 600_000,
                          "base_imr_qq": 1_200_000_000},
         "expected": {"initial_margin": 1200.0, "maintenance_margin": 720.0}},
        {"name": "Mid-Cap (5%, 40M-100M) with OI at 70M: IMF 52.5%, $10,000 position",
         "params": {"market_liquidity_tier": {"MID": 5}, "open_interest": {"MID-USD": 700000}},
         "market": {"timestamp": "2026-03-01T00:00:00Z", "index": {"MID": 100.0},
                    "fx": {"USDC": 1.0}, "instruments": [mk(100.0, "MID-USD", "MID")]},
         "book": {"accounts": [{"id": "a", "margin_mode": "cross",
                                "collateral": {"USDC": 20000},
                                "positions": [{"symbol": "MID-USD", "size": 100.0}]}]},
         "intermediate": {"open_interest_qq": 70_000_000_000_000,
                          "imf_oi_ppm": 50_000 + 950_000 * 30 // 60,
                          "notional_qq": 10_000_000_000},
         "expected": {"initial_margin": 5250.0, "maintenance_margin": 300.0}},
        {"name": "Long 0.1 BTC, USDC -4,501, MMF 10%: P_liq = 4,501/(0.1 x 0.9)",
         "params": {"market_liquidity_tier": {"BTC": 7},
                    "liquidity_tiers": {"7": {"name": "test 20/10",
                                              "initial_margin_ppm": 200_000,
                                              "maintenance_fraction_ppm": 500_000}}},
         "market": {"timestamp": "2026-03-01T00:00:00Z", "index": {"BTC": 50000.0},
                    "fx": {"USDC": 1.0}, "instruments": [mk(50000.0)]},
         "book": {"accounts": [{"id": "a", "margin_mode": "cross",
                                "collateral": {"USDC": 499},
                                "positions": [{"symbol": "BTC-USD", "size": 0.1,
                                               "entry_price": 50000}]}]},
         "intermediate": {"quote_balance_qq": -4_501_000_000, "tnc_qq": 499_000_000,
                          "tmmr_qq": 500_000_000},
         "expected": {"initial_margin": 1000.0, "maintenance_margin": 500.0,
                      "liquidatable": True, "liquidation_price": 4501 / (0.1 * 0.9),
                      "published_liquidation_price": 50011.11,
                      "bankruptcy_quote_quantums": 4_501_000_000,
                      "bankruptcy_price": 45010.0}},
        {"name": "Bankruptcy of ETH in a subaccount also long 0.004 BTC (CODE vector via the book)",
         "params": {"market_liquidity_tier": {"BTC": 7, "ETH": 7},
                    "liquidity_tiers": {"7": {"name": "test 20/10",
                                              "initial_margin_ppm": 200_000,
                                              "maintenance_fraction_ppm": 500_000}}},
         "market": {"timestamp": "2026-03-01T00:00:00Z", "index": {"BTC": 50000.0,
                                                                   "ETH": 3000.0},
                    "fx": {"USDC": 1.0},
                    "instruments": [mk(50000.0), mk(3000.0, "ETH-USD", "ETH")]},
         "book": {"accounts": [{"id": "a", "margin_mode": "cross",
                                "collateral": {"USDC": 10},
                                "positions": [{"symbol": "BTC-USD", "size": 0.004},
                                              {"symbol": "ETH-USD", "size": 0.1}]}]},
         "intermediate": {"quote_balance_qq": -490_000_000, "tnc_qq": 10_000_000,
                          "tmmr_qq": 50_000_000},
         "expected": {"initial_margin": 100.0, "maintenance_margin": 50.0, "liquidatable": True,
                      "bankruptcy_quote_quantums": {"ETH-USD": 294_000_000},
                      "bankruptcy_price": {"ETH-USD": 2940.0}}}]}
(OUT / "derived-book-cases.json").write_text(json.dumps(derived, indent=1) + "\n")
print("ok")
