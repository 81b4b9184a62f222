"""Writes the ``span`` golden cases. Every expected number is either copied from the research
note (ccp-standards.md §1.10: TV-SPAN-1, -2, -3, printed to 4 dp) or worked out by hand arithmetic
in this file (the DERIVED cases, futures only, where every step is a product or a sum). Nothing
here calls the model. Run: ``python tests/golden/span/generate_span_golden.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).parent
TS = "2026-02-04T00:00:00Z"


def write(name: str, doc: dict) -> None:
    """published: numbers a source printed (McMillan, CME's pubspan examples); derived: worked
    out by hand here or in the research note's synthetic example."""
    prov = "published" if name.startswith(("TV-SPAN-1", "TV-SPAN-2")) else "derived"
    doc = {"id": doc["id"], "provenance": prov, **{k: v for k, v in doc.items() if k != "id"}}
    (HERE / f"{name}.json").write_text(json.dumps(doc, indent=1) + "\n")


def future(symbol: str, und: str, cs: float, expiry: str, mark: float, settle: str = "USD",
           inverse: bool = False) -> dict:
    return {"symbol": symbol, "kind": "future", "underlying": und, "settle": settle,
            "inverse": inverse, "contract_size": cs, "expiry": expiry, "mark_price": mark}


def book(positions: dict[str, float], collateral: dict[str, float] | None = None) -> dict:
    return {"accounts": [{"id": "golden", "margin_mode": "portfolio",
                          "collateral": collateral or {"USD": 1_000_000},
                          "positions": [{"symbol": s, "size": q} for s, q in positions.items()]}]}


# --- TV-SPAN-1 (McMillan): published risk arrays, profit-positive sign ------------------------
FUT_1 = [0, 0, 3330, 3330, -3330, -3330, 6670, 6670, -6670, -6670, 10000, 10000, -10000, -10000,
         7000, -7000]
CALL_1 = [460, -610, 2640, 1730, -1270, -2340, 5210, 4540, -2540, -3430, 8060, 7640, -3380, -3990,
          3130, -1500]
write("TV-SPAN-1", {
    "id": "TV-SPAN-1", "research_id": "TV-SPAN-1",
    "source": "ccp-standards.md §1.10 TV-SPAN-1: McMillan, Options as a Strategic Investment, "
              "ch. 34, S&P 500 future and Dec 410 call [S7]",
    "sign": "risk arrays as published, profit positive; SPAN loss = -profit",
    "risk_arrays_profit": {"future": FUT_1, "call_410": CALL_1},
    "portfolios": {"long call": {"call_410": 1}, "covered write": {"future": 1, "call_410": -1},
                   "long future": {"future": 1}},
    "expected": {
        "long call": {"scan_risk": 3990, "scan_scenario": 14},
        "covered write": {"scan_risk": 6620, "scan_scenario": 13, "pnl": [
            -460, 610, 690, 1600, -2060, -990, 1460, 2130, -4130, -3240, 1940, 2360, -6620,
            -6010, 3870, -5500]},
        "long future": {"scan_risk": 10000, "scan_scenario": 13}},
    "model_case": {
        "note": "The future's array regenerated: PSR = 20 points × 500 = $10,000, extreme 2×PSR "
                "at 35% = $7,000; McMillan prints the 1/3 and 2/3 points rounded to $10.",
        "params": {"combined_commodities": {"SP": {
            "price_scan_points": 20.0, "extreme_move": 2.0, "extreme_cover": 0.35}},
            "inter_spreads": [], "initial_factor": 1.0},
        "market": {"timestamp": TS, "index": {"SP": 400.0},
                   "instruments": [future("SP-DEC", "SP", 500, "2026-12-18T00:00:00Z", 400.0)]},
        "book": book({"SP-DEC": 1}),
        "tolerance_abs_risk_array": 5.0,
        "expected": {"maintenance_margin": 10000.0}},
})

# --- TV-SPAN-2 (CME spread arithmetic) ----------------------------------------------------------
# Inter: 2 corn ($1,750 outright each) vs 1 soy ($2,500), 55% → credit $3,300, margin $2,700.
# Model form: corn index 350, 10 units per contract (USD delta 3,500 per contract), PSR 175 points
# = $1,750 per contract; soy index 700, 10 units (USD delta 7,000), PSR 250 points = $2,500.
# 2 corn : 1 soy is then 1 : 1 in USD delta. Scan corn = 2·1,750 = 3,500 (price down), soy = 2,500
# (price up); price risk = scan (no options); WFPR corn = 3,500/7,000, soy = 2,500/7,000; spreads
# n = 7,000 USD; credits 7,000·(3,500/7,000)·0.55 = 1,925 and 7,000·(2,500/7,000)·0.55 = 1,375.
write("TV-SPAN-2-inter", {
    "id": "TV-SPAN-2-inter", "research_id": "TV-SPAN-2",
    "source": "ccp-standards.md §1.10 TV-SPAN-2 (CME 'Inter/Intra spread calculations' [S5])",
    "arithmetic": {"legs": [[2, 1750], [1, 2500]], "rate": 0.55,
                   "expected": {"outright": 6000, "credit": 3300, "margin": 2700}},
    "params": {"combined_commodities": {
        "CORN": {"price_scan_points": 175.0, "extreme_move": 2.0, "extreme_cover": 0.35,
                 "intra_spread_rate": 0.0, "spot_charge_spread_rate": 0.0,
                 "spot_charge_outright_rate": 0.0},
        "SOY": {"price_scan_points": 250.0, "extreme_move": 2.0, "extreme_cover": 0.35,
                "intra_spread_rate": 0.0, "spot_charge_spread_rate": 0.0,
                "spot_charge_outright_rate": 0.0}},
        "inter_spreads": [{"legs": ["CORN", "SOY"], "ratios": [1.0, 1.0], "rate": 0.55}],
        "initial_factor": 1.0},
    "market": {"timestamp": TS, "index": {"CORN": 350.0, "SOY": 700.0},
               "instruments": [future("CORN-MAR", "CORN", 10, "2026-03-13T00:00:00Z", 350.0),
                               future("SOY-MAR", "SOY", 10, "2026-03-13T00:00:00Z", 700.0)]},
    "book": book({"CORN-MAR": 2, "SOY-MAR": -1}),
    "intermediate": {"combined_commodities": {
        "CORN": {"scan_risk": 3500.0, "price_risk": 3500.0, "net_delta_usd": 7000.0,
                 "weighted_futures_price_risk": 0.5, "inter_spread_credit": 1925.0,
                 "cc_risk": 1575.0},
        "SOY": {"scan_risk": 2500.0, "price_risk": 2500.0, "net_delta_usd": -7000.0,
                "weighted_futures_price_risk": 2500.0 / 7000.0, "inter_spread_credit": 1375.0,
                "cc_risk": 1125.0}}},
    "expected": {"maintenance_margin": 2700.0, "initial_margin": 2700.0,
                 "components": {"scan_risk": 6000.0, "inter_spread_credit": -3300.0}},
})

# Intra: 1:1 calendar spread, CME arithmetic |Outright1 − Outright2| + IntraCharge.
# Model form: CC "CAL", index 1,000, PSR 100 points; leg 1 has 5 units per contract ($500
# outright), leg 2 5 or 7.5 units ($500 / $750). The spread count is 5 units, so a charge of $c
# per spread is a rate of c/5 USD per unit = c/5,000 of the index.
for n, (o1, o2, charge, margin) in enumerate([(500, 500, 200, 200), (500, 750, 50, 300),
                                              (500, 750, 0, 250)], start=1):
    cs2 = o2 / 100.0
    write(f"TV-SPAN-2-intra-{n}", {
        "id": f"TV-SPAN-2-intra-{n}", "research_id": "TV-SPAN-2",
        "source": "ccp-standards.md §1.10 TV-SPAN-2 (CME 'Inter/Intra spread calculations' "
                  "[S5])",
        "arithmetic": {"outright_1": o1, "outright_2": o2, "intra_charge": charge,
                       "expected": {"margin": margin}},
        "params": {"combined_commodities": {"CAL": {
            "price_scan_points": 100.0, "extreme_move": 2.0, "extreme_cover": 0.35,
            "intra_spread_rate": charge / 5.0 / 1000.0, "spot_charge_spread_rate": 0.0,
            "spot_charge_outright_rate": 0.0}}, "inter_spreads": [], "initial_factor": 1.0},
        "market": {"timestamp": TS, "index": {"CAL": 1000.0},
                   "instruments": [future("CAL-MAR", "CAL", 5, "2026-03-13T00:00:00Z", 1000.0),
                                   future("CAL-JUN", "CAL", cs2, "2026-06-12T00:00:00Z",
                                          1000.0)]},
        "book": book({"CAL-MAR": 1, "CAL-JUN": -1}),
        "intermediate": {"combined_commodities": {"CAL": {
            "scan_risk": float(abs(o1 - o2)), "intra_spreads": 5.0,
            "intra_spread_charge": float(charge)}}},
        "expected": {"maintenance_margin": float(margin), "initial_margin": float(margin)},
    })

# --- TV-SPAN-3 (synthetic, Black-76) ------------------------------------------------------------
EXP = "2026-03-06T00:00:00Z"   # 30 days after TS: T = 30/365 exactly
TV3_MARKET = {"timestamp": TS, "index": {"XYZ": 100.0}, "instruments": [
    future("XYZ-F", "XYZ", 10, EXP, 100.0),
    {"symbol": "XYZ-C105", "kind": "option", "underlying": "XYZ", "settle": "USD",
     "contract_size": 10, "expiry": EXP, "strike": 105, "option_type": "call", "mark_iv": 0.30,
     "underlying_price": 100.0},
    {"symbol": "XYZ-P95", "kind": "option", "underlying": "XYZ", "settle": "USD",
     "contract_size": 10, "expiry": EXP, "strike": 95, "option_type": "put", "mark_iv": 0.30,
     "underlying_price": 100.0}]}
RA3 = {  # ccp-standards §1.10 table, scenarios 1..16, multiplier 10 applied
    "XYZ-F": [0.0, 0.0, -26.6667, -26.6667, 26.6667, 26.6667, -53.3333, -53.3333, 53.3333,
              53.3333, -80.0, -80.0, 80.0, 80.0, -84.0, 84.0],
    "XYZ-C105": [-4.4892, 5.2170, -14.5733, -3.3242, 3.0050, 10.5409, -27.3981, -15.5913, 8.2279,
                 13.4621, -42.9298, -31.6289, 11.6133, 14.8493, -61.3305, 5.4821],
    "XYZ-P95": [-4.2076, 4.8611, 2.2353, 9.4553, -13.0886, -2.7327, 6.7038, 11.9819, -24.7835,
                -14.1385, 9.6705, 13.2478, -39.4956, -29.7410, 4.9685, -61.5569]}
X2 = {"XYZ-F": (-56.0, 56.0), "XYZ-C105": (-34.9323, 5.4466), "XYZ-P95": (4.8809, -34.3812)}


def tv3_params(som_per_contract: float, extreme_move: float) -> dict:
    # SOM is per underlying unit as a fraction of PSR points: (rate per contract / 10) / 8.
    return {"combined_commodities": {"XYZ": {
        "price_scan_points": 8.0, "vol_scan_range": 0.05, "vol_scan_mode": "absolute",
        "extreme_move": extreme_move, "extreme_cover": 0.35, "lookahead_days": 1.0,
        "short_option_minimum": som_per_contract / 10.0 / 8.0}},
        "inter_spreads": [], "initial_factor": 1.0}


write("TV-SPAN-3-A", {
    "id": "TV-SPAN-3-A", "research_id": "TV-SPAN-3",
    "source": "ccp-standards.md §1.10 TV-SPAN-3, portfolio A (+1 future, −1 call 105); "
              "synthetic, Black-76 r = 0, X = 3, C = 0.35; values printed to 4 dp",
    "params": tv3_params(10.0, 3.0), "market": TV3_MARKET,
    "book": book({"XYZ-F": 1, "XYZ-C105": -1}),
    "tolerance_abs": 2e-4,
    "intermediate": {
        "risk_arrays": {k: RA3[k] for k in ("XYZ-F", "XYZ-C105")},
        "option_values": {"XYZ-C105": 15.6644},
        "combined_commodities": {"XYZ": {
            "port_risk_array": [4.4892, -5.2170, -12.0934, -23.3425, 23.6617, 16.1258, -25.9352,
                                -37.7420, 45.1054, 39.8712, -37.0702, -48.3711, 68.3867,
                                65.1507, -22.6695, 78.5179],
            "scan_risk": 78.5179, "scan_scenario": 16, "time_risk": -0.3639,
            "volatility_risk": 0.0, "price_risk": 78.8818, "short_option_minimum": 10.0,
            "net_option_value": -15.6644, "cc_risk": 78.5179}}},
    "expected": {"maintenance_margin": 78.5179, "initial_margin": 78.5179,
                 "unit_details": {"net_option_value": -15.6644,
                                  "total_span_requirement": 94.1823}},
})
write("TV-SPAN-3-B", {
    "id": "TV-SPAN-3-B", "research_id": "TV-SPAN-3",
    "source": "ccp-standards.md §1.10 TV-SPAN-3, portfolio B (+1 future, −2 call 105, +1 put "
              "95), SOM rate 50 per short option; values printed to 4 dp",
    "params": tv3_params(50.0, 3.0), "market": TV3_MARKET,
    "book": book({"XYZ-F": 1, "XYZ-C105": -2, "XYZ-P95": 1}),
    "tolerance_abs": 2e-4,
    "intermediate": {
        "risk_arrays": RA3,
        "option_values": {"XYZ-C105": 15.6644, "XYZ-P95": 14.2160},
        "combined_commodities": {"XYZ": {
            "port_risk_array": [4.7708, -5.5729, 4.7152, -10.5630, 7.5681, 2.8522, 8.1667,
                                -10.1688, 12.0940, 12.2706, 15.5301, -3.4944, 17.2778, 20.5604,
                                43.6295, 11.4789],
            "scan_risk": 43.6295, "scan_scenario": 15, "short_option_minimum": 100.0,
            "net_option_value": -17.1127, "cc_risk": 100.0}}},
    "expected": {"maintenance_margin": 100.0, "initial_margin": 100.0,
                 "unit_details": {"net_option_value": -17.1127,
                                  "total_span_requirement": 117.1127}},
})
for port, pos, som, ra15, ra16, scan, k, mm in [
        ("A", {"XYZ-F": 1, "XYZ-C105": -1}, 10.0, -21.0677, 50.5534, 68.3867, 13, 68.3867),
        ("B", {"XYZ-F": 1, "XYZ-C105": -2, "XYZ-P95": 1}, 50.0, 18.7456, 10.7256, 20.5604, 14,
         100.0)]:
    write(f"TV-SPAN-3-{port}-X2", {
        "id": f"TV-SPAN-3-{port}-X2", "research_id": "TV-SPAN-3",
        "source": "ccp-standards.md §1.10 TV-SPAN-3, sensitivity to the extreme move X = 2, "
                  "C = 0.35 (recomputed there)",
        "params": tv3_params(som, 2.0), "market": TV3_MARKET, "book": book(pos),
        "tolerance_abs": 2e-4,
        "intermediate": {
            "extreme_scenarios": {s: list(X2[s]) for s in pos},
            "combined_commodities": {"XYZ": {"scan_risk": scan, "scan_scenario": k,
                                             "port_risk_array_15_16": [ra15, ra16]}}},
        "expected": {"maintenance_margin": mm, "initial_margin": mm},
    })

# --- DERIVED: calendar spread into the spot month, inter-commodity credit ------------------------
# BTC index 100,000, PSR 43% = 43,000 points; ETH index 2,000, PSR 50% = 1,000 points.
# +3 BTC-MAR, −1 BTC-FEB (spot month: February 2026), −100 ETH-MAR; linear, 1 unit per contract.
# BTC: net delta +2 → scan = 2·43,000 = 86,000 (scenario 13; extreme 2·2·0.35·43,000 = 60,200);
#   time = vol = 0, price risk 86,000; WFPR = 86,000 / 200,000 = 0.43.
#   Tiers (FEB, MAR) = (−1, +3): 1 spread; intra = 1·0.03·100,000 = 3,000;
#   spot month FEB: consumed 1 → 1·0.005·100,000 = 500; remaining outside it +2 → $200,000.
# ETH: net −100 → scan 100·1,000 = 100,000 (scenario 11); WFPR = 100,000 / 200,000 = 0.5.
# Inter BTC/ETH 1:1 at 50%: n = 200,000; credits BTC 200,000·0.43·0.5 = 43,000,
#   ETH 200,000·0.5·0.5 = 50,000.
# CCRisk BTC = 86,000 + 3,000 + 500 − 43,000 = 46,500; ETH = 50,000; SPAN = 96,500; IM = 1.1×.
write("DERIVED-calendar-delivery-inter", {
    "id": "DERIVED-calendar-delivery-inter", "research_id": "DERIVED",
    "source": "ccp-standards.md §1.3–§1.9 applied by hand to a futures book: BTC PSR 43%, ETH "
              "PSR 50% (named here), the other BTC/ETH defaults and the default BTC/ETH "
              "inter-commodity spread",
    "params": {"combined_commodities": {"BTC": {"price_scan_range": 0.43},
                                        "ETH": {"price_scan_range": 0.50}}},
    "market": {"timestamp": TS, "index": {"BTC": 100000.0, "ETH": 2000.0},
               "fx": {"USDT": 1.0}, "instruments": [
        future("BTC-F-FEB", "BTC", 1, "2026-02-27T08:00:00Z", 100000.0, "USDT"),
        future("BTC-F-MAR", "BTC", 1, "2026-03-27T08:00:00Z", 100000.0, "USDT"),
        future("ETH-F-MAR", "ETH", 1, "2026-03-27T08:00:00Z", 2000.0, "USDT")]},
    "book": book({"BTC-F-MAR": 3, "BTC-F-FEB": -1, "ETH-F-MAR": -100}, {"USDT": 200000}),
    "intermediate": {"combined_commodities": {
        "BTC": {"scan_risk": 86000.0, "scan_scenario": 13, "price_risk": 86000.0,
                "net_delta_usd": 200000.0, "weighted_futures_price_risk": 0.43,
                "intra_spreads": 1.0, "intra_spread_charge": 3000.0, "delivery_charge": 500.0,
                "inter_spread_delta_usd": 200000.0, "inter_spread_credit": 43000.0,
                "cc_risk": 46500.0},
        "ETH": {"scan_risk": 100000.0, "scan_scenario": 11, "price_risk": 100000.0,
                "net_delta_usd": -200000.0, "weighted_futures_price_risk": 0.5,
                "inter_spread_credit": 50000.0, "cc_risk": 50000.0}}},
    "expected": {"maintenance_margin": 96500.0, "initial_margin": 106150.0,
                 "components": {"scan_risk": 186000.0, "intra_spread_charge": 3000.0,
                                "delivery_charge": 500.0, "inter_spread_credit": -93000.0,
                                "initial_addon": 9650.0}},
})

# --- DERIVED: linear perpetual hedged by an inverse perpetual (index = marks) -------------------
# Inverse value in USD = 10·(1/F₀ − 1/F₁)·S₁ per contract; with S = F it is 10·(F₁ − F₀)/F₀, so
# −10,000 contracts lose exactly what +1 BTC linear gains: the portfolio risk array is 0.
write("DERIVED-inverse-linear-hedge", {
    "id": "DERIVED-inverse-linear-hedge", "research_id": "DERIVED",
    "source": "USD valuation of inverse instruments (docs/models/span.md): a coin-settled "
              "perpetual hedges a linear one exactly when index = marks; BTC PSR 43% named",
    "params": {"combined_commodities": {"BTC": {"price_scan_range": 0.43}}},
    "market": {"timestamp": TS, "index": {"BTC": 100000.0}, "fx": {"USDT": 1.0},
               "instruments": [
        {"symbol": "BTCUSDT", "kind": "perpetual", "underlying": "BTC", "settle": "USDT",
         "contract_size": 1, "mark_price": 100000.0},
        {"symbol": "BTC-PERPETUAL", "kind": "perpetual", "underlying": "BTC", "settle": "BTC",
         "inverse": True, "contract_size": 10, "mark_price": 100000.0}]},
    "book": book({"BTCUSDT": 1, "BTC-PERPETUAL": -10000}, {"USDT": 50000}),
    "tolerance_abs": 1e-6,
    "intermediate": {"combined_commodities": {"BTC": {
        "scan_risk": 0.0, "net_delta": 0.0, "intra_spreads": 0.0}}},
    "expected": {"maintenance_margin": 0.0, "initial_margin": 0.0,
                 "positions": {"BTCUSDT": {"maintenance_margin": 43000.0},
                               "BTC-PERPETUAL": {"maintenance_margin": 43000.0}}},
})
