"""A plain, independent reference of the okx-pm risk-unit arithmetic, for tests and golden cases.

Written from the formulas in docs/models/okx-pm.md, not from the model's code: it reads the market
and book JSON directly, prices options with QuantLib (``BlackCalculator``), and loops over
scenarios one by one. Only the default parameters (and the overrides named in ``Ref``) are
supported. All amounts USD.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise

import QuantLib as ql  # noqa: N813

YEAR_S = 365.0 * 86400.0


@dataclass
class Ref:
    moves: tuple[float, ...] = (0.04, 0.08, 0.12)
    extreme: float = 0.24
    annual_basis: float = 0.05
    mr7_tiers: tuple[tuple[float | None, float], ...] = (     # from 2025-01-15 (docs/models)
        (250_000, 1), (500_000, 2), (1_000_000, 4), (2_000_000, 6), (3_000_000, 8),
        (4_000_000, 10), (None, 12))
    vol_table: tuple[tuple[float, float], ...] = (
        (0.0, 0.30), (7.0, 0.20), (30.0, 0.12), (90.0, 0.08), (365.0, 0.05))
    vol_floor: float = 0.01
    theta_days: float = 1.0
    mr3_fraction: float = 0.25
    min_tenor_days: float = 30.0
    rate_shock: float = 0.01
    mr6_fraction: float = 0.5
    delta_one_rate: float = 0.002
    option_rate: float = 0.002
    borrow_rate: float = 0.05
    borrow_im: float = 1.3
    mr9_tiers: tuple[tuple[float | None, float], ...] = (
        (1_000_000, 0.0075), (5_000_000, 0.0175), (None, 0.025))
    imr_factor: float = 1.3
    extra: dict[str, float] = field(default_factory=dict)


def _parse_time(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def _tiered(x: float, tiers) -> float:
    out, lo = 0.0, 0.0
    for hi, f in tiers:
        if hi is None or x <= hi:
            return out + (x - lo) * f
        out += (hi - lo) * f
        lo = hi
    raise AssertionError


def _vol_shock(days: float, table) -> float:
    if days <= table[0][0]:
        return table[0][1]
    for (d0, s0), (d1, s1) in pairwise(table):
        if days <= d1:
            return s0 + (s1 - s0) * (days - d0) / (d1 - d0)
    return table[-1][1]


def _black(F: float, K: float, T: float, vol: float, call: bool, r: float = 0.0):
    """(price, forward delta) with QuantLib; intrinsic at expiry."""
    kind = ql.Option.Call if call else ql.Option.Put
    if T <= 0.0:
        return max((F - K) if call else (K - F), 0.0), 0.0
    calc = ql.BlackCalculator(ql.PlainVanillaPayoff(kind, K), F, max(vol, 0.0) * math.sqrt(T),
                              math.exp(-r * T))
    return calc.value(), calc.deltaForward()


class Leg:
    def __init__(self, ins: dict, size: float, market: dict):
        now = _parse_time(market["timestamp"])
        self.symbol = ins["symbol"]
        self.kind = ins["kind"]
        self.inverse = bool(ins.get("inverse", False))
        self.cs = float(ins.get("contract_size", 1.0))
        self.size = size
        self.S = float(market["index"][ins["underlying"]])
        settle = ins["settle"]
        fx = market.get("fx", {})
        self.fx = 1.0 if self.inverse else (1.0 if settle == "USD" else float(
            fx.get(settle, market["index"].get(settle, 1.0))))
        self.quote = "USD" if self.inverse else settle
        self.T = 0.0
        if ins.get("expiry"):
            self.T = (_parse_time(ins["expiry"]) - now).total_seconds() / YEAR_S
        self.option = self.kind == "option"
        if self.option:
            self.K = float(ins["strike"])
            self.call = ins["option_type"] == "call"
            self.vol = float(ins["mark_iv"])
            self.F = float(ins["underlying_price"])
        else:
            self.F = float(ins["mark_price"])

    def value(self, f: float = 1.0, vol: float | None = None, T: float | None = None,
              r: float = 0.0) -> float:
        """USD value of the whole position at forward·f, index·f."""
        F1, S1 = self.F * f, self.S * f
        if not self.option:
            if self.inverse:
                return self.size * self.cs * (1 / self.F - 1 / F1) * S1
            return self.size * self.cs * (F1 - self.F) * self.fx
        p, _ = _black(F1, self.K, self.T if T is None else T, self.vol if vol is None else vol,
                      self.call, r)
        return self.size * self.cs * p * (S1 / F1 if self.inverse else self.fx)

    def pnl(self, **kw) -> float:
        return self.value(**kw) - self.value()

    def fwd_delta(self) -> float:
        """USD P&L per unit relative move of the forward alone (index held)."""
        if not self.option:
            return self.size * self.cs * (self.S / self.F if self.inverse else self.F * self.fx)
        p, d = _black(self.F, self.K, self.T, self.vol, self.call)
        if self.inverse:
            return self.size * self.cs * self.S * (d - p / self.F)
        return self.size * self.cs * self.F * d * self.fx

    def total_delta(self) -> float:
        """USD P&L per unit relative move of forward and index together."""
        if self.option and self.inverse:
            p, _ = _black(self.F, self.K, self.T, self.vol, self.call)
            return self.fwd_delta() + self.size * self.cs * p / self.F * self.S
        return self.fwd_delta()

    def notional(self) -> float:
        if self.option:
            return abs(self.size) * self.cs * self.S
        if self.inverse:
            return abs(self.size) * self.cs
        return abs(self.size) * self.cs * self.F * self.fx


def risk_unit(legs: list[Leg], ref: Ref) -> dict[str, float]:
    spot = [leg for leg in legs if leg.kind == "spot"]
    if spot:
        d_spot = sum(leg.total_delta() for leg in spot)
        d_der = sum(leg.total_delta() for leg in legs if leg.kind != "spot")
        frac = min(1.0, abs(d_der) / abs(d_spot)) if d_spot * d_der < 0 else 0.0
        for leg in spot:
            leg.size *= frac
    grid = [0.0] + [s * m for m in ref.moves for s in (1, -1)]
    out: dict[str, float] = {}
    # MR1
    worst = 0.0
    for m in grid:
        for side in (-1, 0, 1):
            total = 0.0
            for leg in legs:
                if leg.option and side:
                    shock = _vol_shock(leg.T * 365.0, ref.vol_table)
                    vol = max(leg.vol - shock, ref.vol_floor) if side < 0 else leg.vol + shock
                    total += leg.pnl(f=1 + m, vol=vol)
                else:
                    total += leg.pnl(f=1 + m)
            worst = max(worst, -total)
    out["mr1"] = worst
    # MR2
    h = ref.theta_days / 365.0
    out["mr2"] = max([0.0] + [-sum(leg.pnl(f=1 + m, T=max(leg.T - h, 0.0)) if leg.option
                                    else leg.pnl(f=1 + m) for leg in legs) for m in grid])
    # MR6
    out["mr6"] = ref.mr6_fraction * max(
        [0.0] + [-sum(leg.pnl(f=1 + m) for leg in legs) for m in (ref.extreme, -ref.extreme)])
    # MR3
    mr3 = 0.0
    for T in sorted({leg.T for leg in legs if leg.option}):
        group = [leg for leg in legs if leg.option and leg.T == T]
        shock = _vol_shock(T * 365.0, ref.vol_table)
        up = sum(leg.pnl(vol=leg.vol + shock) for leg in group)
        dn = sum(leg.pnl(vol=max(leg.vol - shock, ref.vol_floor)) for leg in group)
        mr3 += ref.mr3_fraction * max(0.0, -up, -dn)
    out["mr3"] = mr3
    # MR4
    buckets: dict[float, float] = {}
    for leg in legs:
        if leg.kind == "spot":
            continue
        tenor = max(leg.T, ref.min_tenor_days / 365.0)
        buckets[tenor] = buckets.get(tenor, 0.0) + leg.fwd_delta()
    out["mr4"] = sum(ref.annual_basis * t * abs(d) for t, d in buckets.items())
    # MR5
    out["mr5"] = max([0.0] + [-sum(leg.pnl(r=r) for leg in legs if leg.option)
                              for r in (ref.rate_shock, -ref.rate_shock)])
    # MR9
    cash: dict[str, float] = {}
    for leg in legs:
        if leg.quote:
            cash[leg.quote] = cash.get(leg.quote, 0.0) - leg.total_delta()
    mr9 = 0.0
    for a, b in (("USDT", "USD"), ("USDT", "USDC"), ("USDC", "USD")):
        ca, cb = cash.get(a, 0.0), cash.get(b, 0.0)
        if ca * cb < 0:
            hedge = min(abs(ca), abs(cb))
            cash[a] = ca - math.copysign(hedge, ca)
            cash[b] = cb - math.copysign(hedge, cb)
            mr9 += _tiered(hedge, ref.mr9_tiers)
    out["mr9"] = mr9
    # MR7
    raw = 0.0
    for leg in legs:
        if leg.kind == "spot":
            continue
        if leg.option:
            charge = ref.option_rate * leg.notional()
            if leg.size > 0:
                charge = min(charge, leg.value())
        else:
            charge = ref.delta_one_rate * leg.notional()
        raw += charge
    out["mr7_raw"] = raw
    out["mr7_adjusted"] = _tiered(raw, ref.mr7_tiers)
    out["stress"] = max(out["mr1"], out["mr2"], out["mr6"]) + out["mr3"] + out["mr4"] + \
        out["mr5"] + out["mr9"]
    out["derivatives_mmr"] = max(out["stress"], out["mr7_adjusted"])
    return out


def account_margin(market: dict, account: dict, ref: Ref | None = None) -> dict:
    """MMR/IMR of one account (one USD unit, risk units merged per underlying)."""
    ref = ref or Ref()
    by_symbol = {i["symbol"]: i for i in market["instruments"]}
    units: dict[str, list[Leg]] = {}
    for p in account["positions"]:
        ins = by_symbol[p["symbol"]]
        units.setdefault(ins["underlying"], []).append(Leg(ins, float(p["size"]), market))
    for ccy, amount in sorted(account.get("collateral", {}).items()):
        if amount > 0 and ccy in units:    # a coin balance offsets its risk unit (spot)
            px = float(market["index"][ccy])
            bal = Leg({"symbol": f"{ccy} balance", "kind": "spot", "underlying": ccy,
                       "settle": "USD", "mark_price": px}, float(amount), market)
            bal.quote = ""
            units[ccy].append(bal)
    rus = {name: risk_unit(legs, ref) for name, legs in units.items()}
    deriv = sum(r["derivatives_mmr"] for r in rus.values())
    prices = {"USD": 1.0, **market.get("fx", {}), **market["index"]}
    debt = sum(-amt * prices[c] for c, amt in account.get("collateral", {}).items() if amt < 0)
    mr8 = ref.borrow_rate * debt
    return {"risk_units": rus, "derivatives_mmr": deriv, "borrowing_mmr": mr8,
            "maintenance_margin": deriv + mr8,
            "initial_margin": ref.imr_factor * deriv + ref.borrow_im * mr8}
