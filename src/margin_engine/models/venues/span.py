"""CME SPAN (classic) with risk arrays generated from a risk-parameter set (ccp-standards §1).

Positions are grouped into **combined commodities** (CC): every instrument on one underlying
(futures, perpetuals, options, spot; linear or inverse). Per CC, all amounts in USD:

1. Risk arrays (:func:`~margin_engine.models.venues.span_arrays.span_risk_array`): 16 scenarios
   of the
   price scan range ``PSR`` (price points, USD per unit of underlying) and volatility scan range
   ``VSR``, a one-day look-ahead, extreme moves ``±X·PSR`` counted at the cover fraction ``C``.
   ``PortRA_k = Σ_j q_j·RA_{j,k}``; ``ScanRisk = max(0, max_k PortRA_k)`` (§1.3).
2. Time / volatility / price risk: ``(PortRA_1 + PortRA_2)/2``, ``|PortRA_a − PortRA_b|/2`` of
   the active pair, the rest (§1.3); ``WFPR = max(PriceRisk, 0)/|net USD delta|`` (NORMAL).
3. Composite deltas (Black-76 delta one look-ahead later, in underlying units) netted per tier
   (expiry; perpetuals and spot form the front tier); opposite deltas form calendar spreads,
   nearest tiers first; ``IntraCharge = spreads·intra_spread_rate·S`` (§1.5).
4. Delivery (spot-month) charge on tiers expiring in the snapshot's calendar month:
   ``Σ consumed·r_spread·S + |remaining|·r_outright·S`` (§1.6).
5. Inter-commodity spread credits, in priority order, on the USD deltas left outside the spot
   month: ``credit_leg = n·ratio_leg·WFPR_leg·rate`` (§1.7).
6. ``SOM = som·PSR·max(short call units, short put units)`` (§1.8);
   ``CCRisk = max(ScanRisk + Intra + Spot − Credit, SOM, 0)`` (§1.9).

``maintenance = Σ_CC CCRisk`` (the SPAN requirement), ``initial = initial_factor ×
maintenance`` (CME: 110% for HRP accounts, §1.9). The net option value ``NOV = LOV − SOV`` is
reported with CME's ``total_span_requirement = SPANReq − NOV``: the engine's equity already
counts option market values, so ``equity ≥ SPANReq`` is the same test as CME's
``cash ≥ SPANReq − NOV``.
"""

from __future__ import annotations

import math
from collections.abc import MutableSequence, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike
from pydantic import BaseModel, ConfigDict, Field, field_validator

from margin_engine.domain.book import Account, MarginMode
from margin_engine.domain.instruments import Instrument, Kind
from margin_engine.domain.market import MarketSnapshot
from margin_engine.models.core.base import MarginModel, ModelParams
from margin_engine.models.core.registry import register
from margin_engine.models.core.results import PositionMargin, UnitMargin
from margin_engine.models.core.units import MarginUnit, Scope
from margin_engine.models.core.valuation import notional_usd, option_mark
from margin_engine.models.venues.span_arrays import (
    N_SCENARIOS,
    ValuationArrays,
    VolMode,
    partials,
    partials_many,
    span_risk_array,
    span_risk_arrays,
    valuation,
    valuations,
)

DAY = 1.0 / 365.0

# ---------------------------------------------------------------------------------------------
# SPAN arithmetic: pure functions on numbers (the §1.10 vectors test these directly)


def scan_risk(port_ra: ArrayLike) -> tuple[float, int]:
    """``(max(0, max_k PortRA_k), k*)``: the scan risk (USD) and the 1-based scenario of the
    largest value (the first one on ties), ccp-standards §1.3."""
    a = np.asarray(port_ra, dtype=np.float64)
    if a.shape != (N_SCENARIOS,):
        raise ValueError(f"port_ra: need {N_SCENARIOS} scenario values, got shape {a.shape}")
    k = int(np.argmax(a))
    return max(float(a[k]), 0.0), k + 1


def risk_split(port_ra: ArrayLike) -> tuple[float, float, float]:
    """``(TimeRisk, VolRisk, PriceRisk)`` of a portfolio risk array (§1.3).

    ``TimeRisk = (RA_1 + RA_2)/2``; ``VolRisk = |RA_a − RA_b|/2`` for the pair (a, b) holding the
    scan scenario (0 when it is 15 or 16); ``PriceRisk = ScanRisk − TimeRisk − VolRisk``.
    """
    a = np.asarray(port_ra, dtype=np.float64)
    scan, k = scan_risk(a)
    time = 0.5 * float(a[0] + a[1])
    if k <= 14:
        first = k - 1 if k % 2 == 1 else k - 2   # 0-based index of the pair's first scenario
        vol = 0.5 * abs(float(a[first] - a[first + 1]))
    else:
        vol = 0.0
    return time, vol, scan - time - vol


def form_intra_spreads(tier_deltas: Sequence[float]) -> tuple[float, list[float], list[float]]:
    """Calendar spreads between tiers, nearest first (§1.5).

    ``tier_deltas`` are net deltas per tier in priority (chronological) order. Each tier's delta
    is paired with opposite-signed deltas of later tiers, in order. Returns ``(spreads,
    consumed, remaining)``: the number of spreads (delta units per leg), the delta each tier gave
    to spreads (≥ 0), and each tier's signed delta left outright.
    """
    rem = [float(d) for d in tier_deltas]
    used = [0.0] * len(rem)
    return pair_tiers(rem, used, len(rem)), used, rem


def pair_tiers(rem: MutableSequence[float], used: MutableSequence[float], n: int) -> float:
    """:func:`form_intra_spreads`' pairing, in place: the first ``n`` tiers' signed deltas
    ``rem`` (left outright on return) and ``used`` (zeros on entry; the delta each gave to
    spreads on return). Returns the number of spreads. Plain loops over indexable sequences, so
    that the live SPAN engine runs the same function compiled by numba over its arrays.
    """
    spreads = 0.0
    for i in range(n):
        for j in range(i + 1, n):
            if rem[i] * rem[j] < 0.0:
                x = min(abs(rem[i]), abs(rem[j]))
                rem[i] -= math.copysign(x, rem[i])
                rem[j] -= math.copysign(x, rem[j])
                used[i] += x
                used[j] += x
                spreads += x
            if rem[i] == 0.0:
                break
    return spreads


def delivery_charge(consumed: Sequence[float], remaining: Sequence[float],
                    in_delivery: Sequence[bool], spread_rate: float,
                    outright_rate: float) -> float:
    """``Σ_{delivery tiers} consumed·spread_rate + |remaining|·outright_rate`` (§1.6); rates in
    USD per delta unit."""
    return float(sum(c * spread_rate + abs(r) * outright_rate
                     for c, r, d in zip(consumed, remaining, in_delivery, strict=True) if d))


def inter_spread_credit(n_spreads: float, legs: Sequence[tuple[float, float]],
                        rate: float) -> float:
    """``Σ_legs n·ratio·WFPR·rate`` for ``legs = [(ratio, wfpr), ...]`` (§1.7)."""
    return float(sum(n_spreads * ratio * wfpr * rate for ratio, wfpr in legs))


def short_option_minimum(short_calls: float, short_puts: float, rate: float) -> float:
    """``rate·max(short calls, short puts)`` (§1.8, CME advisory 99-65)."""
    return rate * max(short_calls, short_puts)


def calendar_spread_margin(outright_1: float, outright_2: float, intra_charge: float) -> float:
    """CME's 1:1 calendar-spread arithmetic ``|Outright₁ − Outright₂| + IntraCharge`` (§1.5)."""
    return abs(outright_1 - outright_2) + intra_charge


def cc_risk(scan: float, intra: float, spot: float, credit: float, som: float) -> float:
    """``max(ScanRisk + Intra + Spot − Credit, SOM, 0)`` (§1.9)."""
    return max(scan + intra + spot - credit, som, 0.0)


def total_requirement(span_requirement: float, net_option_value: float) -> float:
    """CME's total SPAN requirement ``SPANReq − NOV`` (§1.9), to be met by cash."""
    return span_requirement - net_option_value


# ---------------------------------------------------------------------------------------------
# parameters

#: BTC price scan range: CME's Bitcoin futures maintenance rate at launch (announced 2017-12-12,
#: effective 2017-12-18; ccp-standards §7.2 [S42]). CME's current rate: UNCONFIRMED.
BTC_PRICE_SCAN_RANGE = 0.43
#: ETH price scan range, DERIVED: 0.43 × 1.449 (ETH/BTC ratio of the 99th-percentile |daily log
#: return|, Binance USDⓈ-M perpetual daily closes 2024-01-10 … 2026-03-18, shared real data),
#: rounded up to 63%. No CME Ether rate was found: UNCONFIRMED as a CME figure.
ETH_PRICE_SCAN_RANGE = 0.63


class CombinedCommodity(BaseModel):
    """Risk parameters of one combined commodity (one underlying)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    price_scan_range: float = Field(
        BTC_PRICE_SCAN_RANGE, gt=0.0, le=10.0,
        description="PSR as a fraction of the index price (USD points per unit of underlying = "
                    "this × index); PSR = the outright maintenance requirement (§1.1). BTC "
                    "default 43%: the CME Bitcoin futures maintenance rate CME announced for the "
                    "launch (message to clearing firms 2017-12-12, launch 2017-12-18; "
                    "ccp-standards §7.2 [S42]) — the only CME rate found in a dated source. "
                    "CME's current rate is UNCONFIRMED and kept at this conservative figure; "
                    "pass CME's daily risk-parameter file with --param risk_parameters=FILE to "
                    "run current parameters.")
    price_scan_points: float | None = Field(
        None, gt=0.0,
        description="PSR in USD per unit of underlying; overrides price_scan_range when set "
                    "(a risk-parameter file's futures price scan range, type B record).")
    vol_scan_range: float = Field(
        0.35, ge=0.0, le=5.0,
        description="VSR: implied-vol shift of scenarios 1-14. UNCONFIRMED: the one CME figure "
                    "found is a teaching example, 'VSR for SP 500 is 35%' (relative), §1.2.")
    vol_scan_mode: VolMode = Field(
        "relative",
        description="'relative' (σ·(1 ± VSR)) or 'absolute' (σ ± VSR vol points, decimal); "
                    "set per product by CME, UNCONFIRMED (§1.2).")
    extreme_move: float = Field(
        2.0, ge=0.0, le=20.0,
        description="Extreme move X in units of PSR (scenarios 15, 16). UNCONFIRMED as a CME "
                    "default: X = 2 fits the McMillan S&P and NSE examples; '3×' is also "
                    "quoted (§1.2).")
    extreme_cover: float = Field(
        0.35, ge=0.0, le=1.0,
        description="Cover fraction C of the extreme-move loss (35%: §1.2 [S7][S8]).")
    lookahead_days: float = Field(
        1.0, ge=0.0, le=30.0,
        description="Look-ahead time of the scenarios, days (one trading day, §1.1 [S1]).")
    intra_spread_rate: float = Field(
        0.03, ge=0.0, le=1.0,
        description="Calendar-spread charge per spread of one underlying unit, as a fraction of "
                    "the index (flat rate, §1.5). UNCONFIRMED value.")
    spot_charge_spread_rate: float = Field(
        0.005, ge=0.0, le=1.0,
        description="Delivery-month charge per delta unit consumed by spreads, fraction of the "
                    "index (§1.6). UNCONFIRMED value.")
    spot_charge_outright_rate: float = Field(
        0.01, ge=0.0, le=1.0,
        description="Delivery-month charge per delta unit remaining outright, fraction of the "
                    "index (§1.6). UNCONFIRMED value.")
    short_option_minimum: float = Field(
        0.10, ge=0.0, le=10.0,
        description="SOM per underlying unit of short options, as a fraction of PSR points (CME "
                    "sets it as a % of one outright future's margin, §1.8). UNCONFIRMED value.")
    intra_spread_points: float | None = Field(
        None, ge=0.0,
        description="Calendar-spread charge in USD per spread of one underlying unit; overrides "
                    "intra_spread_rate (a risk-parameter file's type C rate ÷ multiplier).")
    spot_charge_spread_points: float | None = Field(
        None, ge=0.0,
        description="Delivery-month charge in USD per delta unit consumed by spreads; overrides "
                    "spot_charge_spread_rate (type 4 record ÷ multiplier).")
    spot_charge_outright_points: float | None = Field(
        None, ge=0.0,
        description="Delivery-month charge in USD per delta unit remaining outright; overrides "
                    "spot_charge_outright_rate (type 4 record ÷ multiplier).")
    short_option_minimum_points: float | None = Field(
        None, ge=0.0,
        description="SOM in USD per underlying unit of short options; overrides "
                    "short_option_minimum (type 4 record ÷ multiplier).")
    delivery_months: tuple[int, ...] | None = Field(
        None,
        description="Contract months (CCYYMM) in delivery (type 4 record). None: the month of "
                    "the market snapshot.")

    def psr_points(self, index: float) -> float:
        """PSR in USD per unit of underlying at index price ``index``."""
        return self.price_scan_points if self.price_scan_points is not None \
            else self.price_scan_range * index

    def intra_points(self, index: float) -> float:
        """Calendar-spread charge, USD per spread of one underlying unit."""
        return self.intra_spread_points if self.intra_spread_points is not None \
            else self.intra_spread_rate * index

    def spot_points(self, index: float) -> tuple[float, float]:
        """Delivery charges (consumed by spreads, remaining outright), USD per delta unit."""
        sp = self.spot_charge_spread_points
        op = self.spot_charge_outright_points
        return (sp if sp is not None else self.spot_charge_spread_rate * index,
                op if op is not None else self.spot_charge_outright_rate * index)

    def som_points(self, index: float) -> float:
        """Short option minimum, USD per underlying unit of short options."""
        if self.short_option_minimum_points is not None:
            return self.short_option_minimum_points
        return self.short_option_minimum * self.psr_points(index)

    def in_delivery(self, expiry: datetime, now: datetime) -> bool:
        """Whether a tier expiring at ``expiry`` is in its delivery (spot) month."""
        if self.delivery_months is not None:
            return expiry.year * 100 + expiry.month in self.delivery_months
        return (expiry.year, expiry.month) == (now.year, now.month)


class InterSpread(BaseModel):
    """One inter-commodity spread: two CCs, USD-delta ratios, a credit rate (§1.7)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    legs: tuple[str, str]
    ratios: tuple[float, float] = Field(
        (1.0, 1.0), description="delta per spread per leg, in ratio_unit")
    rate: float = Field(ge=0.0, le=1.0, description="credit as a fraction of both legs' WFPR")
    ratio_unit: Literal["usd", "underlying"] = Field(
        "usd", description="'usd': ratios in USD delta; 'underlying': in units of each leg's "
                           "underlying (a risk-parameter file's contract delta ratios × the "
                           "contracts' multipliers)")

    def usd_ratios(self, index_a: float, index_b: float) -> tuple[float, float]:
        """The ratios in USD delta at the legs' index prices."""
        if self.ratio_unit == "usd":
            return self.ratios
        return self.ratios[0] * index_a, self.ratios[1] * index_b

    @field_validator("ratios")
    @classmethod
    def _positive(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not (v[0] > 0 and v[1] > 0):
            raise ValueError("ratios must be > 0")
        return v


def default_ccs() -> dict[str, CombinedCommodity]:
    """BTC: 43% (CME's launch maintenance rate, the only dated CME figure; current UNCONFIRMED);
    ETH: 63% = 43% × 1.449, the ratio of ETH's to BTC's 99th-percentile absolute daily log
    return (Binance USDⓈ-M perpetual closes 2024-01-10 … 2026-03-18, DERIVED, rounded up)."""
    return {"BTC": CombinedCommodity(),
            "ETH": CombinedCommodity(price_scan_range=ETH_PRICE_SCAN_RANGE)}


def _merge_ccs(v: Any) -> Any:
    """Partial overrides: ``{"BTC": {"price_scan_range": 0.2}}`` keeps BTC's other defaults and
    the other CCs."""
    if not isinstance(v, dict):
        return v
    out: dict[str, Any] = {k: c.model_dump() for k, c in default_ccs().items()}
    for name, cfg in v.items():
        if isinstance(cfg, CombinedCommodity):
            cfg = cfg.model_dump()
        out[name] = {**out.get(name, {}), **cfg} if isinstance(cfg, dict) else cfg
    return out


class PublishedArray(BaseModel):
    """A risk array published in a risk-parameter file for one contract (type 8 records)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    values: tuple[float, ...] = Field(
        min_length=N_SCENARIOS, max_length=N_SCENARIOS,
        description="Loss of one long contract per scenario, USD (positive = loss), the extreme "
                    "scenarios already at their cover fraction.")
    composite_delta: float = Field(description="Delta of one contract, underlying units.")
    contract_units: float = Field(gt=0.0, description="Underlying units per contract.")
    combined_commodity: str


class SpanParams(ModelParams):
    combined_commodities: dict[str, CombinedCommodity] = Field(
        default_factory=default_ccs,
        description="Risk-parameter set per underlying (combined commodity). Given CCs are "
                    "merged field by field into the defaults (BTC, ETH). BTC PSR: CME launch, "
                    "2017-12 [S42]; the other values UNCONFIRMED (see each field).")
    inter_spreads: tuple[InterSpread, ...] = Field(
        (InterSpread(legs=("BTC", "ETH"), rate=0.50),),
        description="Inter-commodity spreads in priority order; ratios in USD delta. Default: "
                    "BTC/ETH 1:1 at a 50% credit, UNCONFIRMED (CME lists a BTC/ETH spread; "
                    "its rate is not in the sources read).")
    initial_factor: float = Field(
        1.10, ge=1.0, le=10.0,
        description="Initial = factor × maintenance: 110% for CME heightened-risk-profile "
                    "accounts, 100% otherwise (CME advisory 23-376, §1.9 [S11]).")
    scope: Literal["account", "currency"] = Field(
        "account",
        description="Cross/portfolio margin unit: 'account' (all positions, USD) or 'currency' "
                    "(per settlement currency).")
    risk_arrays: dict[str, PublishedArray] = Field(
        default_factory=dict,
        description="Published risk arrays by instrument symbol (from a risk-parameter file: "
                    "PRODUCT-CCYYMM for futures, PRODUCT-CCYYMM-C|P-STRIKE for options); an "
                    "instrument with one is margined on it instead of a generated array.")
    parameter_source: str = Field(
        "defaults",
        description="Where the parameters come from ('defaults', or the risk-parameter file "
                    "with its exchange complex and business date).")

    @field_validator("combined_commodities", mode="before")
    @classmethod
    def _merge(cls, v: Any) -> Any:
        return _merge_ccs(v)


# ---------------------------------------------------------------------------------------------
# the combined-commodity calculation


@dataclass(frozen=True)
class _Leg:
    """One position prepared for SPAN (amounts for the whole position, USD)."""

    index: int
    symbol: str
    size: float
    ra: np.ndarray            # size × per-contract risk array [16]
    ra_contract: np.ndarray   # per-contract risk array [16]
    delta: float              # size × composite delta, underlying units
    tier: tuple[int, float]   # sort key: (0, 0) front (perpetual/spot), (1, expiry timestamp)
    tier_name: str
    delivery: bool
    short_calls: float        # underlying units
    short_puts: float
    option_value: float       # size × market value (options), USD
    notional: float           # USD


@dataclass(frozen=True)
class CCResult:
    """Every intermediate of one combined commodity (USD)."""

    name: str
    index: float
    psr_points: float
    port_ra: tuple[float, ...]
    scan_risk: float
    scan_scenario: int
    time_risk: float
    vol_risk: float
    price_risk: float
    net_delta: float
    net_delta_usd: float
    wfpr: float
    tiers: tuple[dict[str, Any], ...]
    intra_spreads: float
    intra_charge: float
    delivery_charge: float
    inter_delta_usd: float
    short_calls: float
    short_puts: float
    som: float
    net_option_value: float
    inter_credit: float = 0.0
    credits: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    @property
    def core(self) -> float:
        return self.scan_risk + self.intra_charge + self.delivery_charge - self.inter_credit

    @property
    def risk(self) -> float:
        return cc_risk(self.scan_risk, self.intra_charge, self.delivery_charge,
                       self.inter_credit, self.som)

    def as_dict(self) -> dict[str, Any]:
        return {
            "combined_commodity": self.name, "index": self.index,
            "price_scan_points": self.psr_points, "port_risk_array": list(self.port_ra),
            "scan_risk": self.scan_risk, "scan_scenario": self.scan_scenario,
            "time_risk": self.time_risk, "volatility_risk": self.vol_risk,
            "price_risk": self.price_risk, "net_delta": self.net_delta,
            "net_delta_usd": self.net_delta_usd, "weighted_futures_price_risk": self.wfpr,
            "tiers": list(self.tiers), "intra_spreads": self.intra_spreads,
            "intra_spread_charge": self.intra_charge, "delivery_charge": self.delivery_charge,
            "inter_spread_delta_usd": self.inter_delta_usd, "inter_spread_credit":
            self.inter_credit, "inter_spreads": list(self.credits),
            "short_calls": self.short_calls, "short_puts": self.short_puts,
            "short_option_minimum": self.som, "net_option_value": self.net_option_value,
            "cc_risk": self.risk}


def _cc_result(name: str, legs: Sequence[_Leg], cc: CombinedCommodity,
               index: float) -> CCResult:
    port = np.zeros(N_SCENARIOS)
    for leg in legs:
        port += leg.ra
    scan, k = scan_risk(port)
    time, vol, price = risk_split(port)
    tiers: dict[tuple[int, float], list[Any]] = {}
    for leg in legs:
        t = tiers.setdefault(leg.tier, [leg.tier_name, leg.delivery, 0.0])
        t[2] += leg.delta
    keys = sorted(tiers)
    deltas = [tiers[k][2] for k in keys]
    spreads, used, rem = form_intra_spreads(deltas)
    flags = [bool(tiers[k][1]) for k in keys]
    spot = delivery_charge(used, rem, flags, *cc.spot_points(index))
    net = float(sum(deltas))
    net_usd = net * index
    wfpr = max(price, 0.0) / abs(net_usd) if net_usd != 0.0 else 0.0
    inter_usd = float(sum(r for r, d in zip(rem, flags, strict=True) if not d)) * index
    psr = cc.psr_points(index)
    calls = sum(leg.short_calls for leg in legs)
    puts = sum(leg.short_puts for leg in legs)
    tier_rows = tuple({"tier": tiers[k][0], "delivery_month": flags[i], "delta": deltas[i],
                       "consumed_by_spreads": used[i], "remaining": rem[i]}
                      for i, k in enumerate(keys))
    return CCResult(
        name=name, index=index, psr_points=psr, port_ra=tuple(float(x) for x in port),
        scan_risk=scan, scan_scenario=k, time_risk=time, vol_risk=vol, price_risk=price,
        net_delta=net, net_delta_usd=net_usd, wfpr=wfpr, tiers=tier_rows,
        intra_spreads=spreads, intra_charge=spreads * cc.intra_points(index),
        delivery_charge=spot, inter_delta_usd=inter_usd, short_calls=calls, short_puts=puts,
        som=short_option_minimum(calls, puts, cc.som_points(index)),
        net_option_value=float(sum(leg.option_value for leg in legs)))


def _apply_inter_spreads(results: dict[str, CCResult],
                         spreads: Sequence[InterSpread]) -> dict[str, CCResult]:
    """Inter-commodity credits in priority order on the deltas outside the spot month."""
    avail = {n: r.inter_delta_usd for n, r in results.items()}
    credit = dict.fromkeys(results, 0.0)
    rows: dict[str, list[dict[str, Any]]] = {n: [] for n in results}
    for s in spreads:
        a, b = s.legs
        if a not in results or b not in results or a == b:
            continue
        da, db = avail[a], avail[b]
        if da * db >= 0.0:
            continue
        ratios = s.usd_ratios(results[a].index, results[b].index)
        n = min(abs(da) / ratios[0], abs(db) / ratios[1])
        for leg, ratio, other in ((a, ratios[0], b), (b, ratios[1], a)):
            c = inter_spread_credit(n, [(ratio, results[leg].wfpr)], s.rate)
            credit[leg] += c
            avail[leg] -= math.copysign(n * ratio, avail[leg])
            rows[leg].append({"with": other, "spreads": n, "ratio": ratio, "rate": s.rate,
                              "credit": c})
    return {n: _with_credit(r, credit[n], rows[n]) for n, r in results.items()}


def _with_credit(r: CCResult, credit: float, rows: list[dict[str, Any]]) -> CCResult:
    return replace(r, inter_credit=credit, credits=tuple(rows))


def _contributions(legs: Sequence[_Leg], r: CCResult) -> list[float]:
    """Each leg's share of ``CCRisk`` (they add up to it)."""
    total = r.risk
    n = len(legs)
    if total == 0.0 or n == 0:
        return [0.0] * n
    if r.som > r.core and r.som > 0.0:
        side = [leg.short_calls if r.short_calls >= r.short_puts else leg.short_puts
                for leg in legs]
        s = sum(side)
        return [total * x / s for x in side]
    k = r.scan_scenario - 1
    out = [float(leg.ra[k]) if r.scan_risk > 0.0 else 0.0 for leg in legs]
    rest = total - sum(out)
    w = [abs(leg.delta) for leg in legs]
    sw = sum(w)
    return [o + (rest * x / sw if sw > 0 else rest / n) for o, x in zip(out, w, strict=True)]


# ---------------------------------------------------------------------------------------------
# the model


def _tier(ins: Instrument, now: datetime,
          cc: CombinedCommodity) -> tuple[tuple[int, float], str, bool]:
    if ins.expiry is None:
        return (0, 0.0), "front (perpetual/spot)", False
    return ((1, ins.expiry.timestamp()), ins.expiry.strftime("%Y-%m-%d"),
            cc.in_delivery(ins.expiry, now))


@register
class Span(MarginModel):
    name = "span"
    version = "2017-12.2"
    source = ("CME SPAN methodology (cmegroup.com span-overview; pubspan risk-array, intra/inter "
              "spread and requirement pages; advisories 99-65, 23-376); research "
              "ccp-standards.md §1; CME risk-parameter files (expanded pa2 layouts) via "
              "--param risk_parameters=FILE")
    summary = ("CME SPAN: 16-scenario risk arrays from a risk-parameter set, calendar, spot-month "
               "and inter-commodity spreads, short option minimum, net option value.")
    Params = SpanParams
    modes = frozenset(MarginMode)
    params: SpanParams
    _risk_memo: tuple[MarketSnapshot, SpanParams, dict[str, tuple[np.ndarray, float]]] | None = None

    def cross_scope(self, account: Account) -> Scope:
        return self.params.scope

    def combined_commodity(self, underlying: str) -> CombinedCommodity | None:
        """The risk-parameter set of ``underlying`` (the ``*`` entry when not listed)."""
        ccs = self.params.combined_commodities
        return ccs.get(underlying, ccs.get("*"))

    def check_instrument(self, ins: Instrument) -> str | None:
        pub = self.params.risk_arrays.get(ins.symbol)
        if pub is not None and not math.isclose(pub.contract_units, ins.contract_size,
                                                rel_tol=1e-12):
            return (f"the published risk array of {ins.symbol} is per contract of "
                    f"{pub.contract_units:g} {ins.underlying}, the instrument's contract_size is "
                    f"{ins.contract_size:g}")
        if pub is not None and (ins.inverse or ins.settle not in ("USD", "USDC", "USDT")):
            return "a published risk array is in USD: the instrument must be linear, USD-settled"
        if self.combined_commodity(ins.underlying) is None:
            return (f"no SPAN risk-parameter set for underlying {ins.underlying!r} (have "
                    f"{', '.join(sorted(self.params.combined_commodities))}; pass --param "
                    f"combined_commodities='{{\"{ins.underlying}\": {{...}}}}')")
        if ins.kind is Kind.SPOT and ins.inverse:
            return "an inverse spot instrument has no meaning"
        return None

    def contract_risk(self, ins: Instrument, market: MarketSnapshot) -> tuple[np.ndarray, float]:
        """One long contract's risk array (USD, loss positive, [16], read-only) and composite
        delta (underlying units): the published array when there is one, else generated.

        Memoised per instrument of the market (and parameters) last seen: every account
        holding an instrument needs the same array, and generating it (17 Black-76
        revaluations) was a third of span's time on a large book. The memo holds what the
        computation returns, so results do not change by a bit."""
        memo = self._risk_memo
        if memo is None or memo[0] is not market or memo[1] is not self.params:
            memo = self._risk_memo = (market, self.params, {})
        if not (market.has(ins.symbol) and market.instrument(ins.symbol) is ins):
            return self._contract_risk(ins, market)  # not the market's own: not memoised
        got = memo[2].get(ins.symbol)
        if got is None:
            got = memo[2][ins.symbol] = self._contract_risk(ins, market)
            got[0].flags.writeable = False
        return got

    def _contract_risk(self, ins: Instrument, market: MarketSnapshot
                       ) -> tuple[np.ndarray, float]:
        cc = self._cc_checked(ins.underlying)
        pub = self.params.risk_arrays.get(ins.symbol)
        if pub is not None:     # published: USD per contract (linear, USD-settled: checked)
            ra = np.asarray(pub.values, dtype=np.float64) * market.usd_price(ins.settle)
            return ra, pub.composite_delta + 0.0
        v = valuation(ins, market)
        la = cc.lookahead_days * DAY
        ra = span_risk_array(v, price_scan=cc.psr_points(v.spot),
                             vol_scan=cc.vol_scan_range, vol_mode=cc.vol_scan_mode,
                             extreme_move=cc.extreme_move, extreme_cover=cc.extreme_cover,
                             lookahead_years=la)
        d_f, d_s = partials(v, max(v.years - la, 0.0) if v.is_option else None)
        return ra, d_f + d_s

    def contract_risks(self, instruments: Sequence[Instrument], market: MarketSnapshot
                       ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`contract_risk` of many instruments at once (arrays ``[n, 16]`` and ``[n]``),
        the generated arrays valued over arrays
        (:func:`~margin_engine.models.venues.span_arrays.span_risk_arrays`)."""
        n = len(instruments)
        ra = np.empty((n, N_SCENARIOS))
        cd = np.empty(n)
        gen = []
        for k, ins in enumerate(instruments):
            if ins.symbol in self.params.risk_arrays:
                ra[k], cd[k] = self.contract_risk(ins, market)
            else:
                gen.append(k)
        if not gen:
            return ra, cd
        vs = valuations([instruments[k] for k in gen], market)
        ccs = [self._cc_checked(instruments[k].underlying) for k in gen]
        la = np.array([cc.lookahead_days * DAY for cc in ccs])
        va = ValuationArrays.of(vs)
        ra[gen] = span_risk_arrays(
            va, price_scan=np.array([cc.psr_points(v.spot)
                                                         for cc, v in zip(ccs, vs, strict=True)]),
            vol_scan=np.array([cc.vol_scan_range for cc in ccs]),
            relative=np.array([cc.vol_scan_mode == "relative" for cc in ccs]),
            extreme_move=np.array([cc.extreme_move for cc in ccs]),
            extreme_cover=np.array([cc.extreme_cover for cc in ccs]), lookahead_years=la)
        d_f, d_s = partials_many(va, np.maximum(va.years - la, 0.0))
        cd[gen] = d_f + d_s
        return ra, cd

    def tier(self, ins: Instrument, market: MarketSnapshot) -> tuple[tuple[int, float], str, bool]:
        """``(sort key, name, in delivery month)`` of the calendar tier ``ins`` belongs to."""
        return _tier(ins, market.timestamp, self._cc_checked(ins.underlying))

    def _leg(self, j: int, account: Account, market: MarketSnapshot) -> _Leg:
        pos = account.positions[j]
        ins = market.instrument(pos.symbol)
        ra, composite = self.contract_risk(ins, market)
        key, tname, delivery = self.tier(ins, market)
        units = abs(pos.size) * ins.contract_size if ins.is_option and pos.size < 0 else 0.0
        value = (pos.size * ins.contract_size * option_mark(ins, market)
                 * market.usd_price(ins.settle)) if ins.is_option else 0.0
        return _Leg(index=j, symbol=ins.symbol, size=pos.size, ra=pos.size * ra,
                    ra_contract=ra, delta=pos.size * composite, tier=key, tier_name=tname,
                    delivery=delivery, short_calls=units if ins.is_call else 0.0,
                    short_puts=0.0 if ins.is_call else units, option_value=value,
                    notional=notional_usd(ins, pos.size, market))

    def margin_unit(self, unit: MarginUnit, account: Account,
                    market: MarketSnapshot) -> UnitMargin:
        legs = [self._leg(j, account, market) for j in unit.position_indices]
        by_cc: dict[str, list[_Leg]] = {}
        for leg in legs:
            und = market.instrument(leg.symbol).underlying
            by_cc.setdefault(und, []).append(leg)
        results = {n: _cc_result(n, ls, self._cc_checked(n), market.index[n])
                   for n, ls in by_cc.items()}
        results = _apply_inter_spreads(results, self.params.inter_spreads)
        usd_to_unit = market.convert(1.0, "USD", unit.currency)
        f = self.params.initial_factor
        contrib: dict[int, float] = {}
        for n, ls in by_cc.items():
            for leg, c in zip(ls, _contributions(ls, results[n]), strict=True):
                contrib[leg.index] = c
        positions = []
        for leg in legs:
            ins = market.instrument(leg.symbol)
            alone = _cc_result(ins.underlying, [leg], self._cc_checked(ins.underlying),
                               market.index[ins.underlying]).risk
            positions.append(PositionMargin(
                index=leg.index, symbol=leg.symbol, size=leg.size,
                initial_margin=f * alone * usd_to_unit,
                maintenance_margin=alone * usd_to_unit,
                contribution=f * contrib[leg.index] * usd_to_unit,
                notional=leg.notional * usd_to_unit,
                details={"risk_array": [float(x) for x in leg.ra_contract],
                         "risk_array_source": ("published" if leg.symbol in
                                               self.params.risk_arrays else "generated"),
                         "composite_delta": leg.delta, "tier": leg.tier_name,
                         "option_value_usd": leg.option_value}))
        mm = sum(r.risk for r in results.values())
        scan = sum(r.scan_risk for r in results.values())
        intra = sum(r.intra_charge for r in results.values())
        spot = sum(r.delivery_charge for r in results.values())
        credit = sum(r.inter_credit for r in results.values())
        extra = mm - (scan + intra + spot - credit)   # SOM excess and the floor at 0
        nov = sum(r.net_option_value for r in results.values())
        comps = {"scan_risk": scan, "intra_spread_charge": intra, "delivery_charge": spot,
                 "inter_spread_credit": -credit if credit else 0.0,
                 "short_option_minimum_excess": extra,
                 "initial_addon": (f - 1.0) * mm}
        return UnitMargin(
            id=unit.id, currency=unit.currency, initial_margin=f * mm * usd_to_unit,
            maintenance_margin=mm * usd_to_unit,
            components={k: v * usd_to_unit for k, v in comps.items()},
            positions=tuple(positions),
            details={"currency_of_details": "USD", "span_requirement": mm,
                     "parameter_source": self.params.parameter_source,
                     "net_option_value": nov,
                     "total_span_requirement": total_requirement(mm, nov),
                     "initial_factor": f,
                     "combined_commodities": [results[n].as_dict() for n in sorted(results)]})

    def _cc_checked(self, underlying: str) -> CombinedCommodity:
        cc = self.combined_commodity(underlying)
        assert cc is not None
        return cc
