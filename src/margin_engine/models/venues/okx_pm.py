"""OKX portfolio margin: MR1…MR9 stress components per risk unit (research/crypto-venues §2).

A **risk unit** is every perpetual, expiry future and option on one underlying, USDT-, USDC- and
USD(coin)-margined alike, plus spot when spot hedging is on (the Jan-2025 risk-unit merge, §2.2;
``risk_unit_merge=False`` gives the older per-quote units such as ``BTC-USDT``). Per risk unit,
in USD (each instrument valued as in :mod:`margin_engine.models.venues.span_arrays`;
coin amounts at the scenario's index):

- **MR1** spot shock: the largest loss over the price moves ``0, ±m₁, ±m₂, ±m₃`` (BTC/ETH ±4, 8,
  12% since 2025-01-06, PUBLISHED) × vol down / same / up for options (vol shock by days to
  expiry: UNCONFIRMED table; only "0 days: 30 points" is visible).
- **MR2** theta decay: the largest loss over the MR1 price moves with the clock advanced by
  ``mr2_time_decay_days`` (UNCONFIRMED formula and horizon).
- **MR6** extreme move: ``mr6_fraction`` × the larger loss at ``±extreme`` (BTC/ETH ±24%,
  PUBLISHED; the fraction UNCONFIRMED).
- **MR3** vega term structure: ``mr3_fraction × Σ_expiry max(0, loss at vol up, loss at vol
  down)``, each expiry shocked on its own (UNCONFIRMED formula).
- **MR4** basis: ``annual_basis × Σ_bucket |USD forward delta| × max(tenor, min tenor)``: the
  worst case of each expiry's forward moving by ``annual_basis × tenor`` on its own (rates
  PUBLISHED, 5% BTC/ETH; formula UNCONFIRMED). Spot is the reference and carries none.
- **MR5** interest rate: the larger option loss when the discount rate moves ±``mr5_rate_shock``
  (UNCONFIRMED).
- **MR9** stablecoin depeg: cash deltas per quote currency matched USDT–USD, then USDT–USDC, then
  USDC–USD; each hedge charged with the tiered factors (published example, TV-O3).
- **MR7** minimum charge: raw charge (UNCONFIRMED per-position rates) scaled tier by tier, only
  the increment inside each tier multiplied by its multiplier (PUBLISHED logic, TV-O1/TV-O2;
  BTC/ETH tier table in force from 2025-01-15).

One dated parameter set: OKX's announcement "OKX will further adjust portfolio margin
parameters" of 2025-01-02 — MR1 and MR6 from 2025-01-06, MR4 and MR9 immediately, MR7 from
2025-01-15 08:00–10:00 UTC — i.e. the parameters in force from **2025-01-15**. The MR7 table
before that date stays available as :data:`MR7_TIERS_PRE_2025_01_15` (the published TV-O1/TV-O2
examples use it).

``Derivatives MMR = max(max(MR1, MR2, MR6) + MR3 + MR4 + MR5 + MR9, MR7_adj)`` (§2.3 [O1]);
``MMR = Σ_risk units MMR + MR8`` (borrowing, UNCONFIRMED rate on negative collateral balances);
``IMR = 1.3 × Derivatives MMR + mr8_initial_factor × MR8``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from itertools import pairwise
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from margin_engine.domain.book import Account, MarginMode
from margin_engine.domain.instruments import Instrument, Kind
from margin_engine.domain.market import MarketSnapshot
from margin_engine.models.core.base import MarginModel, ModelParams
from margin_engine.models.core.registry import register
from margin_engine.models.core.results import PositionMargin, UnitMargin
from margin_engine.models.core.units import MarginUnit, Scope
from margin_engine.models.core.valuation import notional_usd
from margin_engine.models.venues.span_arrays import (
    Valuation,
    ValuationArrays,
    partials,
    valuation,
    value_usd,
    value_usd_many,
    values_now,
)

DAYS_PER_YEAR = 365.0
#: Order in which opposite stablecoin cash deltas are matched (MR9, §2.4 [O8]).
MR9_ORDER: tuple[tuple[str, str], ...] = (("USDT", "USD"), ("USDT", "USDC"), ("USDC", "USD"))

# ---------------------------------------------------------------------------------------------
# published arithmetic: pure functions (the §2.7 vectors test these directly)


def tiered_sum(amount: float, tiers: Sequence[tuple[float | None, float]]) -> float:
    """``Σ_i factor_i × (part of amount inside tier i)``.

    ``tiers`` are ``(upper bound, factor)`` in increasing order, the last bound ``None`` (+∞).
    MR7 scaling (each increment × its tier's multiplier, TV-O1/TV-O2) and MR9 (each slice of a
    hedge × its tier's factor, TV-O3) both have this shape.
    """
    if not amount >= 0.0:
        raise ValueError(f"amount: must be >= 0, got {amount!r}")
    total, lower = 0.0, 0.0
    for upper, factor in tiers:
        top = amount if upper is None else min(amount, upper)
        if top > lower:
            total += (top - lower) * factor
        if upper is None or amount <= upper:
            return total
        lower = upper
    raise ValueError("tiers: the last tier must be unbounded (upper bound None)")


def derivatives_mmr(mr1: float, mr2: float, mr3: float, mr4: float, mr5: float, mr6: float,
                    mr9: float, mr7_adjusted: float) -> float:
    """``max(max(MR1, MR2, MR6) + MR3 + MR4 + MR5 + MR9, MR7_adj)`` (§2.3 [O1])."""
    return max(max(mr1, mr2, mr6) + mr3 + mr4 + mr5 + mr9, mr7_adjusted)


def match_stablecoin_hedges(cash_deltas: Mapping[str, float],
                            order: Sequence[tuple[str, str]] = MR9_ORDER
                            ) -> list[tuple[str, str, float]]:
    """Opposite cash deltas matched pair by pair in ``order``: ``[(a, b, hedge USD), ...]``."""
    left = {k: float(v) for k, v in cash_deltas.items()}
    out = []
    for a, b in order:
        ca, cb = left.get(a, 0.0), left.get(b, 0.0)
        if ca * cb < 0.0:
            h = min(abs(ca), abs(cb))
            left[a] = ca - math.copysign(h, ca)
            left[b] = cb - math.copysign(h, cb)
            out.append((a, b, h))
    return out


def standard_option_margin(is_call: bool, forward: float, strike: float, mark: float, *,
                           margin_factor: float = 1.0, a: float = 0.1, b: float = 0.15,
                           c: float = 0.03, index: float | None = None) -> tuple[float, float]:
    """OKX non-PM short-option ``(IMR, MMR)`` per unit of underlying (§2.6 [O7], TV-O5).

    ``IMR = max(a, b − OTM/F)·factor + mark``; ``MMR`` call ``c·factor + mark``, put
    ``max(c, c·mark)·factor + mark``; ``OTM = max(K − F, 0)`` (call) or ``max(F − K, 0)`` (put)
    against the same-expiry forward ``F``. Coin-margined amounts are in coin (``mark`` in coin);
    with ``index`` (USDⓈ-margined) the non-mark term is multiplied by the index (USD).
    """
    if not (forward > 0 and strike > 0 and mark >= 0 and margin_factor > 0):
        raise ValueError("forward, strike, margin_factor: must be > 0; mark: must be >= 0")
    otm = max(strike - forward, 0.0) if is_call else max(forward - strike, 0.0)
    scale = margin_factor * (index if index is not None else 1.0)
    im = max(a, b - otm / forward) * scale + mark
    mm = (c if is_call else max(c, c * mark)) * scale + mark
    return im, mm


# ---------------------------------------------------------------------------------------------
# parameters


#: A tier table: ``(upper bound USD or None = unbounded, factor)`` rows in increasing order.
Tiers = tuple[tuple[float | None, float], ...]


def _check_tiers(tiers: Tiers, what: str) -> None:
    if not tiers or tiers[-1][0] is not None:
        raise ValueError(f"{what}: the last tier must have upper bound null (unbounded)")
    bounds = [t[0] for t in tiers[:-1]]
    if any(b is None or not b > 0 for b in bounds) or any(
            x >= y for x, y in pairwise(b for b in bounds if b is not None)):
        raise ValueError(f"{what}: tier bounds must be > 0, increase, and only the last may "
                         f"be null")
    if any(not f >= 0 for _, f in tiers):
        raise ValueError(f"{what}: factors must be >= 0")


#: MR7 multipliers, BTC and ETH, before 2025-01-15 (§2.4 [O2], PUBLISHED).
MR7_TIERS_PRE_2025_01_15: Tiers = ((10_000.0, 1.0), (70_000.0, 2.0), (170_000.0, 4.0),
                                   (300_000.0, 6.0), (470_000.0, 8.0), (700_000.0, 10.0),
                                   (None, 12.0))
#: MR7 multipliers, BTC and ETH, from 2025-01-15 (OKX announcement of 2025-01-02; the table as
#: summarised by scallope.com/6757 — the official page's new table was cut off in the mirror read,
#: research/crypto-venues.md §2.4): 0–250K ×1, –500K ×2, –1M ×4, –2M ×6, –3M ×8, –4M ×10, ×12.
MR7_TIERS_2025_01_15: Tiers = ((250_000.0, 1.0), (500_000.0, 2.0), (1_000_000.0, 4.0),
                               (2_000_000.0, 6.0), (3_000_000.0, 8.0), (4_000_000.0, 10.0),
                               (None, 12.0))
#: MR9 tier factors of the published example (TV-O3 [O8]): 0–1M 0.75%, 1–5M 1.75%, 5M+ 2.5%.
MR9_TIERS_EXAMPLE: Tiers = ((1_000_000.0, 0.0075), (5_000_000.0, 0.0175), (None, 0.025))


class OkxUnderlying(BaseModel):
    """Per-underlying stress parameters (§2.4 [O2], announcement of 2 Jan 2025)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    mr1_price_moves: tuple[float, ...] = Field(
        (0.04, 0.08, 0.12), min_length=1,
        description="MR1 price moves (each ±; 0 is always included), fraction of price.")
    mr6_extreme_move: float = Field(0.24, gt=0.0, lt=1.0,
                                    description="MR6 extreme move (±), fraction of price.")
    mr4_annual_basis: float = Field(0.05, ge=0.0, le=5.0,
                                    description="MR4 annualised basis move.")
    mr7_tiers: Tiers = Field(
        MR7_TIERS_2025_01_15,
        description="MR7 multipliers on the raw minimum charge: [upper bound USD (null = "
                    "unbounded), multiplier] rows. Default: the BTC/ETH table from 2025-01-15 "
                    "(OKX 2 Jan 2025 announcement, via a third-party summary).")

    @model_validator(mode="after")
    def _valid(self) -> OkxUnderlying:
        if any(not 0.0 < m < 1.0 for m in self.mr1_price_moves):
            raise ValueError("mr1_price_moves: each move must be in (0, 1)")
        _check_tiers(self.mr7_tiers, "mr7_tiers")
        return self


_MR1_GROUP = ("LTC", "BCH", "EOS", "OKB", "DOT", "BSV", "LINK", "FIL", "ADA", "TRX", "UNI", "XRP")
_MR6_GROUP = ("SOL", "DOGE", "PEPE", "XRP", "BNB", "SHIB", "LTC", "ORDI", "WLD", "BCH", "ADA")


def default_underlyings() -> dict[str, OkxUnderlying]:
    """The parameter set in force from 2025-01-15: BTC/ETH; the named second groups of MR1 and of
    MR6/MR4; ``*`` = others. MR7 tiers: the BTC/ETH table from 2025-01-15 for all (the other
    underlyings' tables UNCONFIRMED)."""
    out = {"BTC": OkxUnderlying(), "ETH": OkxUnderlying()}
    for name in sorted(set(_MR1_GROUP) | set(_MR6_GROUP)):
        out[name] = OkxUnderlying(
            mr1_price_moves=(0.06, 0.12, 0.18) if name in _MR1_GROUP else (0.08, 0.16, 0.25),
            mr6_extreme_move=0.36 if name in _MR6_GROUP else 0.50,
            mr4_annual_basis=0.15 if name in _MR6_GROUP else 0.30)
    out["*"] = OkxUnderlying(mr1_price_moves=(0.08, 0.16, 0.25), mr6_extreme_move=0.50,
                             mr4_annual_basis=0.30)
    return out


def _merge_underlyings(v: Any) -> Any:
    if not isinstance(v, dict):
        return v
    out: dict[str, Any] = {k: u.model_dump() for k, u in default_underlyings().items()}
    for name, cfg in v.items():
        if isinstance(cfg, OkxUnderlying):
            cfg = cfg.model_dump()
        out[name] = {**out.get(name, out["*"]), **cfg} if isinstance(cfg, dict) else cfg
    return out


class OkxPmParams(ModelParams):
    underlyings: dict[str, OkxUnderlying] = Field(
        default_factory=default_underlyings,
        description="Per-underlying MR1 moves, MR6 extreme move, MR4 annual basis and MR7 tier "
                    "table: one dated set, in force from 2025-01-15 (OKX announcement of 2 Jan "
                    "2025: MR1/MR6 from 6 Jan, MR4 at once, MR7 from 15 Jan; the MR7 table via "
                    "a third-party summary, other underlyings' MR7 UNCONFIRMED). '*' = every "
                    "other underlying. Given entries merge into the defaults.")
    mr1_vol_shock: tuple[tuple[float, float], ...] = Field(
        ((0.0, 0.30), (7.0, 0.20), (30.0, 0.12), (90.0, 0.08), (365.0, 0.05)),
        min_length=1,
        description="MR1/MR3 implied-vol shock (± absolute, decimal) by days to expiry, "
                    "[days, shock] rows, linear between, flat outside. UNCONFIRMED: only "
                    "'0 days: 30 points' is visible in the source (§2.4).")
    vol_floor: float = Field(0.01, gt=0.0, lt=1.0,
                             description="Floor of a shocked implied vol. UNCONFIRMED.")
    mr2_time_decay_days: float = Field(
        1.0, ge=0.0, le=30.0,
        description="MR2 theta decay: days the clock moves on the MR1 price grid (vol "
                    "unchanged). UNCONFIRMED formula and value.")
    mr3_fraction: float = Field(
        0.25, ge=0.0, le=1.0,
        description="MR3 vega term structure: fraction of Σ_expiry worst single-expiry vol-shock "
                    "loss. UNCONFIRMED formula and value.")
    mr4_min_tenor_days: float = Field(
        30.0, ge=0.0, le=3650.0,
        description="MR4 basis: shortest tenor charged (perpetuals count at this tenor). "
                    "UNCONFIRMED (the post-2025 MR4 formula is not published).")
    mr5_rate_shock: float = Field(
        0.01, ge=0.0, le=1.0,
        description="MR5 interest rate: ± shift of the option discount rate. UNCONFIRMED.")
    mr6_fraction: float = Field(
        0.5, ge=0.0, le=1.0,
        description="MR6: fraction of the extreme-move loss counted. UNCONFIRMED (default 0.5 "
                    "makes MR6 equal MR1 for a linear position at BTC's ±24% / ±12%).")
    mr7_delta_one_rate: float = Field(
        0.002, ge=0.0, le=1.0,
        description="MR7 raw minimum charge of a perpetual/future, fraction of its USD "
                    "notional. UNCONFIRMED.")
    mr7_option_rate: float = Field(
        0.002, ge=0.0, le=1.0,
        description="MR7 raw minimum charge of an option, fraction of its underlying notional "
                    "(USD; a long option's capped at its value). UNCONFIRMED.")
    mr8_borrow_rate: float = Field(
        0.05, ge=0.0, le=1.0,
        description="MR8 borrowing MMR: fraction of the USD value of negative collateral "
                    "balances. UNCONFIRMED (borrowing tiers not in the sources read).")
    mr8_initial_factor: float = Field(
        1.3, ge=1.0, le=10.0,
        description="Borrowing IMR = factor × MR8. UNCONFIRMED ([O1] gives IMR = 1.3 × MMR; a "
                    "third-party summary adds a separate borrowing IMR).")
    mr9_tiers: Tiers = Field(
        MR9_TIERS_EXAMPLE,
        description="MR9 factors by hedge size per matched stablecoin pair, [upper bound USD "
                    "(null = unbounded), factor] rows: the published "
                    "example's 0.75% / 1.75% / 2.5% (TV-O3 [O8]). The dependence on the "
                    "stablecoin index is UNCONFIRMED and not modelled.")
    imr_factor: float = Field(1.3, ge=1.0, le=10.0,
                              description="IMR = factor × derivatives MMR (PUBLISHED [O1]).")
    spot_hedging: bool = Field(
        True, description="Spot positions join their underlying's risk unit (spot-derivatives "
                          "risk offset). Off: spot carries no margin.")
    risk_unit_merge: bool = Field(
        True, description="True: one risk unit per underlying (since 2025-01-21, §2.2). False: "
                          "per underlying and quote (BTC-USDT, BTC-USDC, BTC-USD).")
    scope: Literal["account", "currency"] = Field(
        "account", description="Margin unit: 'account' (USD, cross-collateral) or 'currency'.")

    @field_validator("underlyings", mode="before")
    @classmethod
    def _merge(cls, v: Any) -> Any:
        return _merge_underlyings(v)

    @model_validator(mode="after")
    def _valid(self) -> OkxPmParams:
        days = [d for d, _ in self.mr1_vol_shock]
        if any(d < 0 for d in days) or any(x >= y for x, y in pairwise(days)):
            raise ValueError("mr1_vol_shock: days must be >= 0 and strictly increasing")
        if any(not 0.0 <= s <= 5.0 for _, s in self.mr1_vol_shock):
            raise ValueError("mr1_vol_shock: shocks must be in [0, 5]")
        _check_tiers(self.mr9_tiers, "mr9_tiers")
        if "*" not in self.underlyings:
            raise ValueError("underlyings: needs a '*' entry for other underlyings")
        return self


# ---------------------------------------------------------------------------------------------
# one risk unit


@dataclass(frozen=True)
class _Leg:
    index: int
    symbol: str
    size: float
    v: Valuation
    quote: str              # USDT, USDC or USD (coin-margined)
    notional: float         # USD
    raw_min_charge: float   # USD
    in_risk_unit: bool


def _vol_shock(params: OkxPmParams, years: float) -> float:
    days, shocks = zip(*params.mr1_vol_shock, strict=True)
    return float(np.interp(years * DAYS_PER_YEAR, days, shocks))


def _pnl(leg: _Leg, f: float = 1.0, vol: float | None = None, years: float | None = None,
         rate: float = 0.0) -> float:
    return leg.size * _contract_pnl(leg.v, f, vol, years, rate)


@lru_cache(maxsize=1 << 16)
def _contract_pnl(v: Valuation, f: float = 1.0, vol: float | None = None,
                  years: float | None = None, rate: float = 0.0) -> float:
    """USD P&L of one long contract when forward and index move by the factor ``f``.

    Memoised (a pure function of a frozen valuation and the scenario): every account holding
    an instrument prices it in the same scenarios, its unit and each position alone, so a
    book's ``compute`` repeats the same few hundred Black-76 revaluations per instrument
    thousands of times (``value_usd`` was two thirds of okx-pm's time on 2,000 accounts). The
    cached float is the one the call computes, so results do not change by a bit."""
    base = value_usd(v, v.forward, v.spot)
    return value_usd(v, v.forward * f, v.spot * f, vol, years, rate) - base


def price_grid(und: OkxUnderlying) -> list[float]:
    """The MR1/MR2 relative price moves, ascending (0 included)."""
    return sorted({0.0, *und.mr1_price_moves, *(-m for m in und.mr1_price_moves)})


def contract_scenarios_many(va: ValuationArrays, unds: Sequence[OkxUnderlying],
                            params: OkxPmParams, grid_width: int) -> np.ndarray:
    """One long contract's P&L (USD) in every scenario :func:`_risk_unit` prices, for many
    instruments at once (``unds[i]``: instrument ``i``'s underlying parameters), valued by
    :func:`~margin_engine.models.venues.span_arrays.value_usd_many`; for the live engine
    (:mod:`margin_engine.live.okx_pm_engine`: a position's P&L is its size times its row).

    Columns, with ``G = grid_width`` (≥ each underlying's grid; the columns past it are 0, which
    no worst loss ever takes): ``3g + d`` MR1 at grid point ``g`` and vol down / same / up
    (``d`` = 0, 1, 2); ``3G + g`` MR2; ``4G``, ``4G+1`` MR6 at ``±x``; ``4G+2``, ``4G+3`` MR3
    (vol down, up at the current price); ``4G+4``, ``4G+5`` MR5 (rate ``±shock``); the last
    four are 0 for delta-one instruments.

    Returns
    -------
    float array [n, 4·grid_width + 6]
        USD per long contract.
    """
    n, g_w = va.forward.size, grid_width
    w = 4 * g_w + 6
    f = np.ones((n, w))
    vol = np.full((n, w), np.nan)
    years = np.repeat(va.years[:, None], w, axis=1)
    rate = np.zeros((n, w))
    keep = np.zeros((n, w), dtype=bool)
    shock = np.where(va.is_option, np.interp(va.years * DAYS_PER_YEAR,
                                             [d for d, _ in params.mr1_vol_shock],
                                             [x for _, x in params.mr1_vol_shock]), 0.0)
    down = np.maximum(va.vol - shock, params.vol_floor)
    up = va.vol + shock
    decayed = np.maximum(va.years - params.mr2_time_decay_days / DAYS_PER_YEAR, 0.0)
    opt = va.is_option
    groups: dict[int, tuple[OkxUnderlying, list[int]]] = {}
    for i, und in enumerate(unds):
        groups.setdefault(id(und), (und, []))[1].append(i)
    for und, rows in groups.values():
        r = np.array(rows)[:, None]
        for g, m in enumerate(price_grid(und)):
            f[r, [3 * g, 3 * g + 1, 3 * g + 2, 3 * g_w + g]] = 1.0 + m
            keep[r, [3 * g, 3 * g + 1, 3 * g + 2, 3 * g_w + g]] = True
        x = und.mr6_extreme_move
        f[r, 4 * g_w], f[r, 4 * g_w + 1] = 1.0 + x, 1.0 - x
    vol[opt, 0: 3 * g_w: 3] = down[opt, None]
    vol[opt, 2: 3 * g_w: 3] = up[opt, None]
    years[:, 3 * g_w: 4 * g_w] = decayed[:, None]
    b = 4 * g_w
    keep[:, b: b + 2] = True
    vol[opt, b + 2], vol[opt, b + 3] = down[opt], up[opt]
    rate[:, b + 4], rate[:, b + 5] = params.mr5_rate_shock, -params.mr5_rate_shock
    keep[opt, b + 2: b + 6] = True
    base = values_now(va)
    value = value_usd_many(va, va.forward[:, None] * f, va.spot[:, None] * f, vol, years,
                           rate)
    return np.where(keep, value - base, 0.0)


@dataclass(frozen=True)
class RiskUnitResult:
    """Every intermediate of one risk unit (USD) and each leg's loss in the binding scenarios."""

    name: str
    mr1: float
    mr2: float
    mr3: float
    mr4: float
    mr5: float
    mr6: float
    mr7_raw: float
    mr7_adjusted: float
    mr9: float
    details: dict[str, Any]
    attribution: dict[int, float]   # leg index → share of the derivatives MMR

    @property
    def stress(self) -> float:
        return max(self.mr1, self.mr2, self.mr6) + self.mr3 + self.mr4 + self.mr5 + self.mr9

    @property
    def mmr(self) -> float:
        return derivatives_mmr(self.mr1, self.mr2, self.mr3, self.mr4, self.mr5, self.mr6,
                               self.mr9, self.mr7_adjusted)

    @property
    def binding(self) -> str:
        """Which of MR1, MR2, MR6 sets the max term (first on ties)."""
        top = max(self.mr1, self.mr2, self.mr6)
        return "mr1" if self.mr1 == top else "mr2" if self.mr2 == top else "mr6"


def _worst(legs: Sequence[_Leg], scen: Sequence[tuple[str, dict[int, float]]]
           ) -> tuple[float, str, dict[int, float]]:
    """``(max(0, largest loss), label, per-leg losses there)`` over labelled scenarios."""
    best, label, per = 0.0, "", {leg.index: 0.0 for leg in legs}
    for name, pnl in scen:
        loss = -sum(pnl.values())
        if loss > best:
            best, label, per = loss, name, {k: -x for k, x in pnl.items()}
    return best, label, per


def _total_delta(leg: _Leg) -> float:
    """USD P&L of the position per unit relative move of forward and index together."""
    d_f, d_s = partials(leg.v)
    return leg.size * (leg.v.forward * d_f + leg.v.spot * d_s)


def _offsetting_spot(legs: Sequence[_Leg]) -> tuple[list[_Leg], float | None]:
    """Spot counts only as far as it offsets the derivatives' delta: each spot leg is scaled by
    ``min(1, |Δ_derivatives| / |Δ_spot|)`` when the two deltas have opposite signs, else by 0
    (``None``: the unit holds no spot)."""
    spot = [leg for leg in legs if leg.v.kind is Kind.SPOT]
    if not spot:
        return list(legs), None
    d_spot = sum(_total_delta(leg) for leg in spot)
    d_der = sum(_total_delta(leg) for leg in legs if leg.v.kind is not Kind.SPOT)
    frac = min(1.0, abs(d_der) / abs(d_spot)) if d_spot * d_der < 0.0 else 0.0
    return [replace(leg, size=leg.size * frac) if leg.v.kind is Kind.SPOT else leg
            for leg in legs], frac


def _risk_unit(name: str, legs: Sequence[_Leg], und: OkxUnderlying,
               params: OkxPmParams) -> RiskUnitResult:
    """MR1…MR7 and MR9 of one risk unit (module docstring), with a per-leg attribution."""
    legs, spot_fraction = _offsetting_spot(legs)
    opts = [leg for leg in legs if leg.v.is_option]
    grid = price_grid(und)
    vol_sc: dict[int, tuple[float, float]] = {}
    for leg in opts:
        s = _vol_shock(params, leg.v.years)
        vol_sc[leg.index] = (max(leg.v.vol - s, params.vol_floor), leg.v.vol + s)

    # MR1: price grid × vol down / same / up
    scen1: list[tuple[str, dict[int, float]]] = []
    table: dict[str, dict[str, float]] = {"vol_shock_down": {}, "vol_same": {},
                                          "vol_shock_up": {}}
    for m in grid:
        for vi, vname in enumerate(("vol_shock_down", "vol_same", "vol_shock_up")):
            pnl = {}
            for leg in legs:
                vol = None if vi == 1 or not leg.v.is_option else vol_sc[leg.index][vi // 2]
                pnl[leg.index] = _pnl(leg, 1.0 + m, vol)
            scen1.append((f"{m:+.4g} {vname}", pnl))
            table[vname][f"{m:+.4g}"] = sum(pnl.values())
    mr1, mr1_at, mr1_per = _worst(legs, scen1)

    # MR2: price grid, clock advanced
    h = params.mr2_time_decay_days / DAYS_PER_YEAR
    scen2 = [(f"{m:+.4g}", {leg.index: _pnl(leg, 1.0 + m, None, max(leg.v.years - h, 0.0))
                            for leg in legs}) for m in grid]
    mr2, mr2_at, mr2_per = _worst(legs, scen2)

    # MR6: extreme moves, counted at the fraction
    x = und.mr6_extreme_move
    scen6 = [(f"{m:+.4g}", {leg.index: _pnl(leg, 1.0 + m) for leg in legs}) for m in (x, -x)]
    mr6_full, mr6_at, mr6_per = _worst(legs, scen6)
    mr6 = params.mr6_fraction * mr6_full
    mr6_per = {k: params.mr6_fraction * v for k, v in mr6_per.items()}

    # MR3: each expiry's vols shocked on their own
    by_exp: dict[float, list[_Leg]] = {}
    for leg in opts:
        by_exp.setdefault(leg.v.years, []).append(leg)
    mr3 = 0.0
    mr3_per = {leg.index: 0.0 for leg in legs}
    mr3_rows = []
    for years in sorted(by_exp):
        group = by_exp[years]
        pnl_dn = {leg.index: _pnl(leg, 1.0, vol_sc[leg.index][0]) for leg in group}
        pnl_up = {leg.index: _pnl(leg, 1.0, vol_sc[leg.index][1]) for leg in group}
        loss, side, per = _worst(group, [("down", pnl_dn), ("up", pnl_up)])
        mr3 += params.mr3_fraction * loss
        for k, val in per.items():
            mr3_per[k] += params.mr3_fraction * val
        mr3_rows.append({"days": years * DAYS_PER_YEAR, "loss": loss, "side": side})

    # MR4: forward deltas per tenor bucket (spot is the reference)
    floor_years = params.mr4_min_tenor_days / DAYS_PER_YEAR
    buckets: dict[float, dict[int, float]] = {}
    for leg in legs:
        if leg.v.kind is Kind.SPOT:
            continue
        d_f, _ = partials(leg.v)
        buckets.setdefault(max(leg.v.years, floor_years), {})[leg.index] = \
            leg.size * leg.v.forward * d_f
    mr4 = 0.0
    mr4_per = {leg.index: 0.0 for leg in legs}
    mr4_rows = []
    for tenor in sorted(buckets):
        d = sum(buckets[tenor].values())
        rate = und.mr4_annual_basis * tenor
        mr4 += rate * abs(d)
        for i, dj in buckets[tenor].items():
            mr4_per[i] += rate * dj * (1.0 if d >= 0 else -1.0)
        mr4_rows.append({"tenor_days": tenor * DAYS_PER_YEAR, "delta_usd": d,
                         "charge": rate * abs(d)})

    # MR5: option discount rate ± shock
    s5 = params.mr5_rate_shock
    scen5 = [(f"{r:+.4g}", {leg.index: _pnl(leg, rate=r) for leg in opts}) for r in (s5, -s5)]
    mr5, mr5_at, mr5_per = _worst(opts, scen5)

    # MR9: stablecoin cash deltas
    cash: dict[str, float] = {}
    d_tot: dict[int, float] = {}
    for leg in legs:
        d_tot[leg.index] = _total_delta(leg)
        if leg.quote:   # coin balances are quoted in no stablecoin
            cash[leg.quote] = cash.get(leg.quote, 0.0) - d_tot[leg.index]
    hedges = match_stablecoin_hedges(cash)
    charges = [tiered_sum(hh, params.mr9_tiers) for _, _, hh in hedges]
    mr9 = sum(charges)
    involved = {c for a, b, _ in hedges for c in (a, b)}
    w9 = {leg.index: abs(d_tot[leg.index]) if leg.quote in involved else 0.0 for leg in legs}

    # MR7
    raw = sum(leg.raw_min_charge for leg in legs)
    adj = tiered_sum(raw, und.mr7_tiers)

    res = RiskUnitResult(name=name, mr1=mr1, mr2=mr2, mr3=mr3, mr4=mr4, mr5=mr5, mr6=mr6,
                         mr7_raw=raw, mr7_adjusted=adj, mr9=mr9, details={}, attribution={})
    # attribution of the derivatives MMR to legs (adds up to it)
    idx = [leg.index for leg in legs]
    if adj > res.stress:
        attr = _pro_rata(adj, {leg.index: leg.raw_min_charge for leg in legs}, idx)
    else:
        top = {"mr1": mr1_per, "mr2": mr2_per, "mr6": mr6_per}[res.binding]
        attr = {i: top.get(i, 0.0) + mr3_per[i] + mr4_per[i] + mr5_per.get(i, 0.0) for i in idx}
        for i, val in _pro_rata(mr9, w9, idx).items():
            attr[i] += val
    details = {
        "risk_unit": name, "spot_offset_fraction": spot_fraction,
        "balances_offsetting": {leg.symbol: leg.size for leg in legs if leg.index < 0},
        "mr1_spot_shock": mr1, "mr1_scenario": mr1_at,
        "mr1_scenarios": table, "mr2_theta_decay": mr2, "mr2_scenario": mr2_at,
        "mr3_vega_term_structure": mr3, "mr3_expiries": mr3_rows,
        "mr4_basis": mr4, "mr4_buckets": mr4_rows, "mr5_interest_rate": mr5,
        "mr5_scenario": mr5_at, "mr6_extreme_move": mr6, "mr6_full_loss": mr6_full,
        "mr6_scenario": mr6_at, "mr7_raw": raw, "mr7_adjusted": adj,
        "mr9_stablecoin_depeg": mr9, "cash_deltas": cash,
        "mr9_hedges": [{"pair": f"{a}-{b}", "hedge": hh, "charge": c}
                       for (a, b, hh), c in zip(hedges, charges, strict=True)],
        "stress": res.stress, "binding": "mr7" if adj > res.stress else res.binding,
        "derivatives_mmr": res.mmr}
    return RiskUnitResult(name=name, mr1=mr1, mr2=mr2, mr3=mr3, mr4=mr4, mr5=mr5, mr6=mr6,
                          mr7_raw=raw, mr7_adjusted=adj, mr9=mr9, details=details,
                          attribution=attr)


def _pro_rata(total: float, weights: Mapping[int, float], idx: Sequence[int]) -> dict[int, float]:
    """``total`` split over ``idx`` by ``weights`` (equally when they are all 0)."""
    if not idx:
        return {}
    s = sum(weights.get(i, 0.0) for i in idx)
    if s > 0.0:
        return {i: total * weights.get(i, 0.0) / s for i in idx}
    return {i: total / len(idx) for i in idx}


# ---------------------------------------------------------------------------------------------
# the model


@register
class OkxPm(MarginModel):
    name = "okx-pm"
    version = "2025-01-15.1"
    source = ("OKX help: 'Multi-currency margin mode vs. Portfolio margin mode' (9 Jul 2025), "
              "'OKX will further adjust portfolio margin parameters' (2 Jan 2025), risk-unit "
              "merge (Dec 2024), scaling-factor logic; position-builder API; research "
              "crypto-venues.md §2")
    summary = ("OKX portfolio margin: MR1-MR9 stress components per underlying risk unit, "
               "tiered minimum charge, IMR = 1.3 × MMR.")
    Params = OkxPmParams
    modes = frozenset({MarginMode.CROSS, MarginMode.PORTFOLIO})
    params: OkxPmParams

    def cross_scope(self, account: Account) -> Scope:
        return self.params.scope

    def check_instrument(self, ins: Instrument) -> str | None:
        if ins.kind is Kind.SPOT and ins.inverse:
            return "an inverse spot instrument has no meaning"
        return None

    def underlying_params(self, name: str) -> OkxUnderlying:
        """The stress parameters of underlying ``name`` (the ``*`` entry when not listed)."""
        u = self.params.underlyings
        return u.get(name, u["*"])

    def _valuation(self, symbol: str, market: MarketSnapshot) -> Valuation:
        """``valuation`` of ``market``'s instrument ``symbol``, one object per instrument of the
        market last seen: the memo of :func:`_contract_pnl` then finds it by identity instead
        of comparing every field (a tenth of okx-pm's margin time)."""
        memo: tuple[MarketSnapshot, dict[str, Valuation]] | None = self.__dict__.get(
            "_valuation_memo")
        if memo is None or memo[0] is not market:
            memo = self.__dict__["_valuation_memo"] = (market, {})
        got = memo[1].get(symbol)
        if got is None:
            got = memo[1][symbol] = valuation(market.instrument(symbol), market)
        return got

    def _leg(self, j: int, account: Account, market: MarketSnapshot) -> _Leg:
        pos = account.positions[j]
        ins = market.instrument(pos.symbol)
        v = self._valuation(pos.symbol, market)
        n = notional_usd(ins, pos.size, market)
        p = self.params
        if ins.kind is Kind.SPOT:
            raw = 0.0
        elif ins.is_option:
            raw = p.mr7_option_rate * abs(pos.size) * ins.contract_size * v.spot
            if pos.size > 0:
                raw = min(raw, pos.size * value_usd(v, v.forward, v.spot))
        else:
            raw = p.mr7_delta_one_rate * n
        return _Leg(index=j, symbol=ins.symbol, size=pos.size, v=v,
                    quote="USD" if ins.inverse else ins.settle, notional=n,
                    raw_min_charge=raw,
                    in_risk_unit=ins.kind is not Kind.SPOT or p.spot_hedging)

    def risk_unit_name(self, ins: Instrument) -> str:
        """The risk unit ``ins`` belongs to (its underlying, or underlying-quote unmerged)."""
        if self.params.risk_unit_merge:
            return ins.underlying
        return f"{ins.underlying}-{'USD' if ins.inverse else ins.settle}"

    def _add_balances(self, unit: MarginUnit, market: MarketSnapshot,
                      groups: dict[str, list[_Leg]]) -> None:
        """Positive coin balances join their underlying's risk unit as spot (offset only)."""
        for n, (ccy, amount) in enumerate(sorted(unit.collateral.items())):
            name = ccy if self.params.risk_unit_merge else f"{ccy}-USDT"
            if amount <= 0 or ccy not in market.index or name not in groups:
                continue
            px = market.index[ccy]
            v = Valuation(symbol=f"{ccy} balance", kind=Kind.SPOT, inverse=False,
                          is_call=False, strike=0.0, contract_size=1.0, fx=1.0, spot=px,
                          forward=px, vol=0.0, years=0.0)
            groups[name].append(_Leg(index=-1 - n, symbol=v.symbol, size=amount, v=v, quote="",
                                     notional=amount * px, raw_min_charge=0.0,
                                     in_risk_unit=True))

    def borrowing_mmr(self, collateral: Mapping[str, float], market: MarketSnapshot) -> float:
        """MR8: ``mr8_borrow_rate × Σ USD value of negative balances``."""
        debt = sum(-amt * market.usd_price(c) for c, amt in collateral.items() if amt < 0)
        return self.params.mr8_borrow_rate * debt

    def margin_unit(self, unit: MarginUnit, account: Account,
                    market: MarketSnapshot) -> UnitMargin:
        p = self.params
        legs = [self._leg(j, account, market) for j in unit.position_indices]
        groups: dict[str, list[_Leg]] = {}
        for leg in legs:
            if leg.in_risk_unit:
                ins = market.instrument(leg.symbol)
                groups.setdefault(self.risk_unit_name(ins), []).append(leg)
        results = {}
        if p.spot_hedging:
            self._add_balances(unit, market, groups)
        for name, group in groups.items():
            und = market.instrument(group[0].symbol).underlying
            results[name] = _risk_unit(name, group, self.underlying_params(und), p)
        deriv = sum(r.mmr for r in results.values())
        mr8 = self.borrowing_mmr(unit.collateral, market)
        mm = deriv + mr8
        im = p.imr_factor * deriv + p.mr8_initial_factor * mr8
        conv = market.convert(1.0, "USD", unit.currency)

        attr = {leg.index: 0.0 for leg in legs}
        for r in results.values():
            # a coin balance's share goes to the positions it offsets
            real = {i: v for i, v in r.attribution.items() if i >= 0}
            extra = sum(v for i, v in r.attribution.items() if i < 0)
            spread = _pro_rata(extra, {i: abs(v) for i, v in real.items()}, sorted(real))
            for i, val in real.items():
                attr[i] += p.imr_factor * (val + spread[i])
        for i, val in _pro_rata(p.mr8_initial_factor * mr8,
                                {leg.index: leg.notional for leg in legs},
                                [leg.index for leg in legs]).items():
            attr[i] += val

        positions = []
        for leg in legs:
            ins = market.instrument(leg.symbol)
            alone = (_risk_unit(self.risk_unit_name(ins), [leg],
                                self.underlying_params(ins.underlying), p).mmr
                     if leg.in_risk_unit else 0.0)
            positions.append(PositionMargin(
                index=leg.index, symbol=leg.symbol, size=leg.size,
                initial_margin=p.imr_factor * alone * conv, maintenance_margin=alone * conv,
                contribution=attr[leg.index] * conv, notional=leg.notional * conv,
                details={"risk_unit": self.risk_unit_name(ins) if leg.in_risk_unit else None,
                         "mr7_raw": leg.raw_min_charge, "quote": leg.quote}))

        comps = dict.fromkeys(("mr1_spot_shock", "mr2_theta_decay", "mr6_extreme_move",
                               "mr3_vega_term_structure", "mr4_basis", "mr5_interest_rate",
                               "mr9_stablecoin_depeg", "mr7_minimum_charge_excess"), 0.0)
        for r in results.values():
            key = {"mr1": "mr1_spot_shock", "mr2": "mr2_theta_decay",
                   "mr6": "mr6_extreme_move"}[r.binding]
            comps[key] += max(r.mr1, r.mr2, r.mr6)
            comps["mr3_vega_term_structure"] += r.mr3
            comps["mr4_basis"] += r.mr4
            comps["mr5_interest_rate"] += r.mr5
            comps["mr9_stablecoin_depeg"] += r.mr9
            comps["mr7_minimum_charge_excess"] += max(r.mr7_adjusted - r.stress, 0.0)
        comps["mr8_borrowing"] = mr8
        comps["initial_addon"] = im - mm
        return UnitMargin(
            id=unit.id, currency=unit.currency, initial_margin=im * conv,
            maintenance_margin=mm * conv,
            components={k: v * conv for k, v in comps.items()}, positions=tuple(positions),
            details={"currency_of_details": "USD", "derivatives_mmr": deriv,
                     "borrowing_mmr": mr8, "mmr": mm, "imr": im,
                     "risk_units": [results[n].details for n in sorted(results)]})
