"""Generates tests/golden/hyperliquid/*.json with plain arithmetic (no margin_engine import)."""
import json
from pathlib import Path

OUT = Path(__file__).resolve().parent

# freqtrade tests/exchange/test_hyperliquid.py (commit 3b1fb5a), live ccxt fetch_positions()
# values: (symbol, entryPrice, side, contracts, collateral, leverage, liquidationPrice)
ROWS = [
("ETH", 2458.5, "long", 0.015, 36.864593, 1.0, 0.86915825),
("BTC", 63287.0, "long", 0.00039, 24.673292, 1.0, 22.37166537),
("SOL", 146.82, "long", 0.16, 23.482979, 1.0, 0.05269872),
("SOL", 145.83, "long", 0.33, 24.045107, 2.0, 74.83696193),
("ETH", 2459.5, "long", 0.0199, 24.454895, 2.0, 1243.0411908),
("BTC", 62739.0, "long", 0.00077, 24.137992, 2.0, 31708.03843631),
("DOGE", 0.11586, "long", 437.0, 25.29769, 2.0, 0.05945697),
("ETH", 2642.8, "short", 0.019, 25.091876, 2.0, 3924.18322043),
("SOL", 155.89, "short", 0.32, 24.924941, 2.0, 228.07847866),
("DOGE", 0.14333, "short", 351.0, 25.136807, 2.0, 0.20970228),
("BTC", 68595.0, "short", 0.00069, 23.64871, 2.0, 101849.99354283),
("BTC", 65536.0, "short", 0.00099, 21.604172, 3.0, 86493.46174617),
("SOL", 173.06, "long", 0.6, 20.735658, 5.0, 142.05186667),
("ETH", 2545.5, "long", 0.0329, 20.909894, 4.0, 1929.23322895),
("BTC", 67400.0, "short", 0.00031, 20.887308, 1.0, 133443.97317151),
("ETH", 2552.0, "short", 0.0327, 20.833393, 4.0, 3157.53150453),
("BTC", 66930.0, "long", 0.0015, 20.043862, 5.0, 54108.51043771),
("BTC", 67033.0, "long", 0.00121, 20.251817, 4.0, 50804.00091827),
("ETH", 2521.9, "long", 0.0237, 19.902091, 3.0, 1699.14071943),
("BTC", 68139.0, "short", 0.00145, 19.72573, 5.0, 80933.61590987),
("SOL", 178.29, "short", 0.11, 19.605036, 1.0, 347.82205322),
("SOL", 176.23, "long", 0.33, 19.364946, 3.0, 120.56240404),
("SOL", 173.08, "short", 0.33, 19.01881, 3.0, 225.08561715),
("BTC", 68240.0, "short", 0.00105, 17.887922, 4.0, 84431.79820839),
("ETH", 2518.4, "short", 0.007, 17.62263, 1.0, 4986.05799151),
("ETH", 2533.2, "long", 0.0347, 17.555195, 5.0, 2047.7642302),
("DOGE", 0.13284, "long", 360.0, 15.943218, 3.0, 0.09082388),
("SOL", 163.11, "short", 0.48, 15.650731, 5.0, 190.94213618),
("BTC", 67141.0, "long", 0.00067, 14.979079, 3.0, 45236.52992613),
("XYZ-AAPL", 250.0, "long", 0.5, 25.0, 5.0, 210.5263157894737),
("XYZ-GOOGL", 190.0, "short", 0.5, 9.5, 10.0, 199.04761904761904),
("XYZ-TSLA", 350.0, "long", 1.0, 50.0, 7.0, 315.7894736842105),
]
MAX_LEV = {"BTC": 50, "ETH": 50, "SOL": 20, "DOGE": 20, "XYZ-AAPL": 10, "XYZ-GOOGL": 10,
           "XYZ-TSLA": 10}
# The five rows research/crypto-venues.md §5.4 lists as TV-H1.
TV_H1 = {("ETH", 2458.5), ("BTC", 62739.0), ("ETH", 2642.8), ("SOL", 155.89), ("XYZ-AAPL", 250.0)}

cases = []
for i, (sym, e, side, q, m, lev, lp) in enumerate(ROWS):
    s = 1.0 if side == "long" else -1.0
    rate = 1.0 / (2 * MAX_LEV[sym])
    mm = q * e * rate
    avail = m - mm
    formula = e - s * avail / q / (1 - rate * s)
    formula_hi = e - s * (avail + 1e-6) / q / (1 - rate * s)
    cases.append({
        "name": f"freqtrade-{i:02d}-{sym}-{side}",
        "research_id": "TV-H1" if (sym, e) in TV_H1 else "TV-H1-ext",
        "ccxt_position": {"symbol": f"{sym}/USDC:USDC", "entryPrice": e, "side": side,
                          "contracts": q, "collateral": m, "leverage": lev,
                          "liquidationPrice": lp},
        "max_leverage_at_capture": MAX_LEV[sym],
        "intermediate": {"maintenance_margin_rate": rate, "maintenance_margin_at_entry": mm,
                         "margin_available": avail},
        "formula_liquidation_price": formula,
        "formula_liquidation_price_margin_plus_1e-6": formula_hi,
        "published_liquidation_price": lp})

doc = {
    "id": "TV-H1", "provenance": "published",
    "source": "research/crypto-venues.md §5.4 [H4]: live Hyperliquid liquidation prices captured "
              "via ccxt, fixtures of freqtrade/freqtrade tests/exchange/test_hyperliquid.py::"
              "test_hyperliquid_dry_run_liquidation_price (commit 3b1fb5a). XYZ-* rows are HIP-3 "
              "markets.",
    "formula": "[H2] liq = E - side*margin_available/size/(1 - l*side), margin_available = "
               "isolated_margin - size*E*l, l = 1/(2*max_leverage)",
    "rounding": "published liquidation prices are rounded to 8 decimals; published isolated "
                "margins (ccxt collateral) are truncated to 6 decimals (USDC), so the venue's "
                "margin lies in [collateral, collateral + 1e-6). A case is reproduced when its "
                "published price is within 5e-9 of the interval the formula spans over that "
                "margin range.",
    "setup": "isolated; mark = index = entry price (each capture had pnl = 0); the position's "
             "isolated_margin = ccxt collateral; params margin_tables = max_leverage_at_capture",
    "params": {"margin_tables": MAX_LEV},
    "cases": cases}
(OUT / "tv-h1-isolated-liquidation-prices.json").write_text(json.dumps(doc, indent=1) + "\n")

# ---- TV-H2 / TV-H3 (DERIVED from [H1]) with the default mainnet tables ----------------------
def market(price):
    return {"timestamp": "2026-03-01T00:00:00Z", "index": {"BTC": price}, "fx": {"USDC": 1.0},
            "instruments": [{"symbol": "BTC", "kind": "perpetual", "underlying": "BTC",
                             "settle": "USDC", "contract_size": 1, "mark_price": price}]}

r0, r1 = 1 / 80, 1 / 40
ded1 = 150e6 * (r1 - r0)
h2 = {
    "id": "TV-H2", "provenance": "derived",
    "source": "research/crypto-venues.md §5.4 (DERIVED from [H1] BTC tiers: "
    "0-150M -> 40x, >150M -> 20x)",
    "params": {},
    "tiers": {"maintenance_margin_rate": [r0, r1], "maintenance_deduction": [0.0, ded1]},
    "market": market(100000.0),
    "cases": [
        {"name": "MM(200M)", "research_id": "TV-H2", "size": 2000.0, "leverage": None,
         "notional": 200e6, "tier": 1, "maintenance_margin": 200e6 * r1 - ded1,
         "published_maintenance_margin": 3125000.0, "initial_margin": 200e6 / 20},
        {"name": "MM(150M), upper tier", "research_id": "TV-H2", "size": 1500.0, "leverage": None,
         "notional": 150e6, "tier": 1, "maintenance_margin": 150e6 * r1 - ded1,
         "published_maintenance_margin": 1875000.0, "initial_margin": 150e6 / 20},
        {"name": "MM(150M), lower-tier formula", "research_id": "TV-H2", "size": 1500.0,
         "leverage": None, "notional": 150e6, "lower_tier_maintenance_margin": 150e6 * r0,
         "published_maintenance_margin": 1875000.0},
        {"name": "just below 150M (tier 0)", "research_id": "DERIVED", "size": 1499.99,
         "leverage": None, "notional": 1499.99 * 100000.0, "tier": 0,
         "maintenance_margin": 1499.99 * 100000.0 * r0,
         "initial_margin": 1499.99 * 100000.0 / 40}]}
(OUT / "tv-h2-btc-tiers.json").write_text(json.dumps(h2, indent=1) + "\n")

h3 = {
    "id": "TV-H3", "provenance": "derived",
    "source": "research/crypto-venues.md §5.4 (DERIVED): $10,000 BTC position",
    "params": {}, "market": market(100000.0),
    "cases": [
        {"name": "10x", "research_id": "TV-H3", "size": 0.1, "leverage": 10, "notional": 10000.0,
         "initial_margin": 1000.0, "maintenance_margin": 125.0},
        {"name": "40x", "research_id": "TV-H3", "size": 0.1, "leverage": 40, "notional": 10000.0,
         "initial_margin": 250.0, "maintenance_margin": 125.0}]}
(OUT / "tv-h3-btc-10k.json").write_text(json.dumps(h3, indent=1) + "\n")

# ---- cross account, liquidation prices by [H2]'s cross formula ------------------------------
E = 1000 + 0.2 * (62739 - 60000) + (-2) * (2458.5 - 2400)
mm_btc, mm_eth = 0.2 * 62739 / 80, 2 * 2458.5 / 50
im_btc, im_eth = 0.2 * 62739 / 10, 2 * 2458.5 / 25
avail = E - mm_btc - mm_eth
cross = {
    "id": "HL-CROSS-1", "provenance": "derived", "research_id": "DERIVED",
    "source": "[H2] liquidation price with margin_available (cross) = account_value - "
              "maintenance_margin_required; [H1] default mainnet tables (BTC 40x, ETH 25x)",
    "params": {},
    "market": {"timestamp": "2026-03-01T00:00:00Z", "index": {"BTC": 62739.0, "ETH": 2458.5},
               "fx": {"USDC": 1.0},
               "instruments": [
                   {"symbol": "BTC", "kind": "perpetual", "underlying": "BTC", "settle": "USDC",
                    "mark_price": 62739.0},
                   {"symbol": "ETH", "kind": "perpetual", "underlying": "ETH", "settle": "USDC",
                    "mark_price": 2458.5}]},
    "book": {"accounts": [{"id": "cross-1", "margin_mode": "cross", "collateral": {"USDC": 1000},
                           "positions": [{"symbol": "BTC", "size": 0.2, "entry_price": 60000},
                                         {"symbol": "ETH", "size": -2, "entry_price": 2400}],
                           "leverage": {"BTC": 10}}]},
    "intermediate": {"account_value": E, "maintenance_margin": {"BTC": mm_btc, "ETH": mm_eth},
                     "maintenance_margin_rate": {"BTC": 1 / 80, "ETH": 1 / 50},
                     "leverage": {"BTC": 10, "ETH": 25},
                     "margin_available": avail},
    "expected": {"initial_margin": im_btc + im_eth, "maintenance_margin": mm_btc + mm_eth,
                 "equity": E, "status": "margin_call",
                 "positions": {"BTC": {"initial_margin": im_btc, "maintenance_margin": mm_btc,
                                       "liquidation_price":
                                           62739 - avail / 0.2 / (1 - 1 / 80)},
                               "ETH": {"initial_margin": im_eth, "maintenance_margin": mm_eth,
                                       "liquidation_price":
                                           2458.5 + avail / 2 / (1 + 1 / 50)}},
                 "transfer_margin_required": max(im_btc + im_eth, 0.1 * (0.2 * 62739 + 2 * 2458.5)),
                 "backstop_equity": 2 / 3 * (mm_btc + mm_eth)}}
(OUT / "cross-account-liquidation.json").write_text(json.dumps(cross, indent=1) + "\n")
print("ok")
