"""An independent Deribit portfolio-margin reference for the deribit-pm tests.

Written from the published text only (research/crypto-venues.md §1.5, Deribit's Portfolio
Margin article and API examples, and the third-party extended-table formula quoted in
docs/models/deribit-pm.md), on the raw JSON documents of a market and an account: its own
Black-76 (``scipy.stats.norm``), its own vol shocks, loops instead of arrays, and no import of
``margin_engine``. The published parameter values are restated here, not read from the model.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from scipy.stats import norm

#: Published parameters: btc_usd / btc of 2024-06-17 [D7]; eth_usd, eth, usd of 2026-02-15 [D8].
PAIRS = {
    "btc_usd": {"range": 0.16, "up": 0.5, "down": 0.25, "p_short": 0.3, "p_long": 0.13,
                "min_up": 0.5, "factor": 1.0},
    "eth_usd": {"range": 0.18, "up": 0.4, "down": 0.25, "p_short": 0.3, "p_long": 0.13,
                "min_up": 0.5, "factor": 1.0},
}
CURRENCIES = {
    "btc": {"min_move": 0.01, "move_risk": 0.075, "offset": 0.0, "damp": 100000.0, "cap": 0.0,
            "haircut": 0.0},
    "eth": {"min_move": 0.005, "move_risk": 0.05, "offset": 0.6, "damp": 200000.0,
            "cap": 2e7, "haircut": 0.0},
    "usd": {"min_move": 0.01, "move_risk": 0.1, "offset": 0.4, "damp": 25000.0, "cap": 1e6,
            "haircut": 0.0},
}
EXTENDED = (-0.66, -0.33, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0)
STABLE = ("USD", "USDC", "USDT")


def b76(F: float, K: float, T: float, sig: float, call: bool) -> float:
    """Black-76 with zero rates (USD per unit of underlying); intrinsic at T·σ = 0."""
    if T <= 0.0 or sig <= 0.0:
        return max(F - K, 0.0) if call else max(K - F, 0.0)
    s = sig * math.sqrt(T)
    d1 = (math.log(F / K) + 0.5 * s * s) / s
    d2 = d1 - s
    if call:
        return F * norm.cdf(d1) - K * norm.cdf(d2)
    return K * norm.cdf(-d2) - F * norm.cdf(-d1)


def shocks(sig: float, dte: float, pair: dict[str, float]) -> tuple[float, float]:
    """Vol up and down: σ·(1 + up·(30/DTE)^p) floored at min_up, σ·max(0, 1 − down·(30/DTE)^p),
    DTE floored at 1 day, p the short-term power up to 30 days."""
    d = max(dte, 1.0)
    m = (30.0 / d) ** (pair["p_short"] if d <= 30.0 else pair["p_long"])
    return max(sig * (1.0 + pair["up"] * m), pair["min_up"]), sig * max(0.0, 1.0 - pair["down"] * m)


def _time(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def scenarios(r: float, buckets: int = 4) -> list[tuple[float, str, bool]]:
    """(move, vol, extended) in Deribit's order: buckets from −r, (up, same, down) each."""
    out = [(r * (b - buckets) / buckets, v, False) for b in range(2 * buckets + 1)
           for v in ("up", "same", "down")]
    return out + [(x, "up", True) for x in EXTENDED]


def edge(x: float, r: float) -> float:
    return math.copysign(min(abs(x), r), x)


def position_vector(ins: dict[str, Any], size: float, market: dict[str, Any],
                    ) -> tuple[str, list[float], float]:
    """(pair, P&L per scenario in the settlement currency, roll shock) of one position."""
    und = ins["underlying"]
    pk = und.lower() + "_usd"
    pair = PAIRS[pk]
    r = pair["range"]
    inverse = ins.get("inverse", False)
    ck = "usd" if ins["settle"] in STABLE else ins["settle"].lower()
    ts = _time(market["timestamp"])
    T = 0.0
    if ins.get("expiry"):
        T = max((_time(ins["expiry"]) - ts).total_seconds(), 0.0) / (365 * 86400)
    out: list[float] = []
    roll = 0.0
    if ins["kind"] == "option":
        q = size * ins.get("contract_size", 1.0)
        F, K, sig, call = ins["underlying_price"], ins["strike"], ins["mark_iv"], \
            ins["option_type"] == "call"
        up, down = shocks(sig, T * 365.0, pair)
        v0 = b76(F, K, T, sig, call)
        for x, v, ext in scenarios(r):
            F1 = F * (1.0 + x)
            v1 = b76(F1, K, T, {"up": up, "same": sig, "down": down}[v], call)
            pnl = v1 / F1 - v0 / F if inverse else v1 - v0
            if ext:       # a fraction e/x of the P&L, coin valued at the edge price
                e = edge(x, r)
                pnl *= pair["factor"] * e / x * ((1.0 + x) / (1.0 + e) if inverse else 1.0)
            out.append(q * pnl)
    else:
        q = size * ins.get("contract_size", 1.0) / (ins["mark_price"] if inverse else 1.0)
        price = 1.0 if inverse else ins["mark_price"]
        for x, _v, ext in scenarios(r):
            m = edge(x, r) if ext else x
            out.append(q * (m / (1.0 + m) if inverse else price * m)
                       * (pair["factor"] if ext else 1.0))
        cp = CURRENCIES[ck]
        roll = abs(q) * price * max(cp["min_move"], cp["move_risk"] * T)
    return pk, out, roll


def aggregate(vec: list[float], r: float, cp: dict[str, float], damp_at: list[float],
              cap: float) -> list[float]:
    """Extended |P&L| less min((|x|/r − 1)·dampener, |P&L|); gains × offset, capped."""
    out = []
    n_std = len(vec) - len(EXTENDED)
    for s, y in enumerate(vec):
        if s >= n_std:
            k = s - n_std
            adj = min(max(abs(EXTENDED[k]) / r - 1.0, 0.0) * damp_at[k], abs(y))
            y = y - adj if y > 0 else y + adj
        if y > 0:
            y = min(y * cp["offset"], cap)
        out.append(y)
    return out


def segregated(market: dict[str, Any], account: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """S:PM per settlement currency: vectors per pair_settle, worst, roll, IM, MM."""
    by_sym = {i["symbol"]: i for i in market["instruments"]}
    vecs: dict[str, list[float]] = {}
    rolls: dict[str, float] = {}
    for pos in account["positions"]:
        ins = by_sym[pos["symbol"]]
        _pair, v, roll = position_vector(ins, pos["size"], market)
        key = f"{ins['underlying'].lower()}_{ins['settle'].lower()}"
        vecs[key] = [a + b for a, b in zip(vecs.get(key, [0.0] * len(v)), v, strict=True)]
        rolls[key] = rolls.get(key, 0.0) + roll
    out: dict[str, dict[str, Any]] = {}
    for key, v in vecs.items():
        und, settle = key.split("_", 1)
        pair = PAIRS[und + "_usd"]
        r = pair["range"]
        ck = "usd" if settle.upper() in STABLE else settle
        cp = CURRENCIES[ck]
        if ck == "usd":
            damp_at = [cp["damp"]] * len(EXTENDED)
            cap = cp["cap"]
        else:
            S = market["index"][und.upper()]
            damp_at = [cp["damp"] / (S * (1.0 + edge(x, r))) for x in EXTENDED]
            cap = cp["cap"] / S
        agg = aggregate(v, r, cp, damp_at, cap)
        worst = max(0.0, -min(agg))
        c = out.setdefault(settle.upper(), {"vectors": {}, "rmm": 0.0})
        c["vectors"][key] = {"pre": v, "agg": agg, "worst": worst, "roll": rolls[key]}
        c["rmm"] += round(worst, 9) + rolls[key]
    for c in out.values():
        c["mm"] = 0.8 * c["rmm"]
        c["im"] = max(round(c["rmm"], 9), c["mm"])
    return out


def cross(market: dict[str, Any], account: dict[str, Any], joint: bool,
          haircuts: dict[str, float] | None = None) -> dict[str, Any]:
    """X:PM in USD: per pair one USD vector (coin P&L × S·(1+m), stablecoin P&L × 1, coin
    balances of pairs holding positions revalued b·S·m, gains less the haircut), aggregated with
    the pair coin's parameters in USD; pairs summed per scenario (joint) or worst cases added."""
    haircuts = haircuts or {}
    by_sym = {i["symbol"]: i for i in market["instruments"]}
    usd: dict[str, list[float]] = {}
    roll_usd = 0.0
    for pos in account["positions"]:
        ins = by_sym[pos["symbol"]]
        pk, v, roll = position_vector(ins, pos["size"], market)
        r = PAIRS[pk]["range"]
        S = market["index"][ins["underlying"]]
        if ins["settle"] in STABLE:
            row = list(v)
            roll_usd += roll
        else:
            row = [y * S * (1.0 + (edge(x, r) if ext else x))
                   for y, (x, _v, ext) in zip(v, scenarios(r), strict=True)]
            roll_usd += roll * S
        usd[pk] = [a + b for a, b in zip(usd.get(pk, [0.0] * len(row)), row, strict=True)]
    for ccy, bal in account.get("collateral", {}).items():
        pk = ccy.lower() + "_usd"
        if ccy in STABLE or pk not in usd:
            continue
        S = market["index"][ccy]
        r = PAIRS[pk]["range"]
        h = haircuts.get(ccy, 0.0)
        for s, (x, _v, ext) in enumerate(scenarios(r)):
            y = bal * S * (edge(x, r) if ext else x) * (PAIRS[pk]["factor"] if ext else 1.0)
            usd[pk][s] += y * (1.0 - h) if y > 0 else y
    agg = {}
    for pk, v in usd.items():
        cp = CURRENCIES[pk.split("_")[0]]
        agg[pk] = aggregate(v, PAIRS[pk]["range"], cp, [cp["damp"]] * len(EXTENDED), cp["cap"])
    if joint:
        total = [sum(col) for col in zip(*agg.values(), strict=True)]
        worst = max(0.0, -min(total))
    else:
        worst = sum(max(0.0, -min(v)) for v in agg.values())
    rmm = worst + roll_usd
    hc = sum(h * max(account["collateral"].get(c, 0.0), 0.0)
             * (1.0 if c in STABLE else market["index"][c]) for c, h in haircuts.items())
    return {"usd": usd, "agg": agg, "worst": worst, "roll": roll_usd, "rmm": rmm,
            "mm": 0.8 * rmm, "im": max(rmm + hc, 0.8 * rmm)}
