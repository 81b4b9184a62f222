"""Hyperliquid perpetuals: margin tiers with a maintenance deduction; cross and isolated
(research/crypto-venues.md §5).

Per asset (one net position per symbol), with notional ``N = |size|·contract_size·mark`` in the
settlement currency (USDC):

- tier ``n`` = the last tier whose ``lower_bound ≤ N`` (a bound belongs to the tier it opens);
- ``MM = N·mmr_n − deduction_n`` with ``mmr_n = 1/(2·max_leverage_n)``, ``deduction_0 = 0`` and
  ``deduction_n = deduction_(n−1) + lower_bound_n·(mmr_n − mmr_(n−1))`` ("Margin tiers" [H1]);
- ``IM = N / leverage`` with the account's integer leverage for the symbol (default: the asset's
  maximum), capped at the maximum leverage of the tier holding ``N`` [H1, H3];
- ``transfer_margin_required = max(IM, 0.1·Σ N)`` [H3] and the backstop threshold ``⅔·MM`` [H2]
  are reported in the unit's details.

Cross: one unit per settlement currency (on Hyperliquid: the USDC cross account), positions in the
same symbol netted. Isolated: one unit per position, backed by its ``isolated_margin``.

The liquidation price is Hyperliquid's closed form [H2]
``liq = price − side·margin_available/size/(1 − l·side)`` generalised to tiers and to a cross
account: equity minus maintenance margin is piecewise linear in the price of the position's
underlying (other assets held at their marks, their margin included), so the root is solved
exactly on each tier segment and the one nearest today's price is reported.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

from margin_engine.domain.book import Account, MarginMode
from margin_engine.domain.instruments import Instrument
from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError
from margin_engine.models.core.base import (
    USD_STABLE,
    MarginModel,
    ModelParams,
    linear_perpetual_problem,
)
from margin_engine.models.core.registry import register
from margin_engine.models.core.results import PositionMargin, UnitMargin
from margin_engine.models.core.units import MarginUnit

SETTLE_CURRENCIES = USD_STABLE

#: Margin-table ids below this are one tier whose max leverage is the id ([H1]).
FLAT_TABLE_IDS_BELOW = 50


class MarginTier(BaseModel):
    """One tier: from ``lower_bound`` (USDC notional) on, at most ``max_leverage``."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    lower_bound: float = Field(ge=0.0, validation_alias=AliasChoices("lower_bound", "lowerBound"))
    max_leverage: int = Field(ge=1, validation_alias=AliasChoices("max_leverage", "maxLeverage"))


class MarginTable(BaseModel):
    """An asset's margin table, lowest tier first. An integer ``L`` is the one-tier table of
    max leverage ``L``; Hyperliquid's own ``{"marginTiers": [...]}`` form is accepted."""

    model_config = ConfigDict(frozen=True, extra="ignore", allow_inf_nan=False)

    tiers: tuple[MarginTier, ...] = Field(
        min_length=1, validation_alias=AliasChoices("tiers", "marginTiers", "margin_tiers"))

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, bool):
            return data  # rejected below as not a table
        if isinstance(data, int | float):
            if not float(data).is_integer():
                raise ValueError(f"{data!r}: a one-tier table is an integer max leverage")
            return {"tiers": [{"lower_bound": 0.0, "max_leverage": int(data)}]}
        if isinstance(data, list | tuple):
            return {"tiers": list(data)}
        return data

    @model_validator(mode="after")
    def _valid(self) -> MarginTable:
        t = self.tiers
        if t[0].lower_bound != 0.0:
            raise ValueError("tiers[0].lower_bound: the first tier must start at 0")
        for n in range(1, len(t)):
            if t[n].lower_bound <= t[n - 1].lower_bound:
                raise ValueError(f"tiers[{n}].lower_bound: not above the previous tier's bound")
            if t[n].max_leverage > t[n - 1].max_leverage:
                raise ValueError(f"tiers[{n}].max_leverage: increases with notional")
        return self

    @property
    def max_leverage(self) -> int:
        """The asset's maximum leverage (that of the first tier)."""
        return self.tiers[0].max_leverage

    def rates(self) -> list[float]:
        """Maintenance margin rate per tier: ``1/(2·max_leverage_n)``."""
        return [1.0 / (2.0 * tier.max_leverage) for tier in self.tiers]

    def deductions(self) -> list[float]:
        """Maintenance deduction per tier (USDC), by the [H1] recursion."""
        rates = self.rates()
        out = [0.0]
        for n in range(1, len(self.tiers)):
            out.append(out[-1] + self.tiers[n].lower_bound * (rates[n] - rates[n - 1]))
        return out

    def tier_index(self, notional: float) -> int:
        """Index of the tier holding ``notional`` (a bound belongs to the tier it opens)."""
        n = 0
        for i, tier in enumerate(self.tiers):
            if notional >= tier.lower_bound:
                n = i
        return n


@dataclass(frozen=True)
class TierMargin:
    """Requirements of one net position (USDC amounts, notional at mark)."""

    notional: float
    tier: int
    lower_bound: float
    tier_max_leverage: int
    maintenance_margin_rate: float
    maintenance_deduction: float
    leverage: float
    initial_margin: float
    maintenance_margin: float


def maintenance_margin(table: MarginTable, notional: float) -> float:
    """``N·mmr_n − deduction_n`` of the tier holding ``notional`` (USDC)."""
    n = table.tier_index(notional)
    return max(notional * table.rates()[n] - table.deductions()[n], 0.0)


def tier_margin(table: MarginTable, notional: float, leverage: float) -> TierMargin:
    """IM and MM of a position of ``notional`` (USDC, ≥ 0) at the chosen ``leverage``.

    The leverage is capped at the max leverage of the tier holding the notional.
    """
    if not notional >= 0.0 or not math.isfinite(notional):
        raise ValueError(f"notional: must be a finite number >= 0, got {notional!r}")
    if not leverage >= 1.0:
        raise ValueError(f"leverage: must be >= 1, got {leverage!r}")
    n = table.tier_index(notional)
    rate, ded = table.rates()[n], table.deductions()[n]
    lev = min(leverage, float(table.tiers[n].max_leverage))
    mm = max(notional * rate - ded, 0.0)
    return TierMargin(notional=notional, tier=n, lower_bound=table.tiers[n].lower_bound,
                      tier_max_leverage=table.tiers[n].max_leverage,
                      maintenance_margin_rate=rate, maintenance_deduction=ded, leverage=lev,
                      initial_margin=notional / lev, maintenance_margin=mm)


def isolated_liquidation_price(entry_price: float, size: float, isolated_margin: float,
                               maintenance_margin_rate: float) -> float:
    """Hyperliquid's published closed form for one isolated position at one tier [H2].

    ``liq = E − side·margin_available/|size|/(1 − l·side)`` with ``margin_available =
    isolated_margin − |size|·E·l``, ``l`` = the maintenance margin rate, ``side`` = ±1. Prices in
    USDC per unit, ``size`` signed base units, margin in USDC. Equals
    ``(E − side·M/|size|)/(1 − l·side)``.
    """
    if size == 0.0:
        raise ValueError("size: must be non-zero")
    side = 1.0 if size > 0 else -1.0
    q = abs(size)
    available = isolated_margin - q * entry_price * maintenance_margin_rate
    return entry_price - side * available / q / (1.0 - maintenance_margin_rate * side)


DEFAULT_TABLES_SOURCE = ("Hyperliquid docs 'Margin tiers' (hyperliquid.gitbook.io/hyperliquid-docs/"
                         "trading/margin-tiers), mainnet table as read for research/crypto-venues "
                         "§5.2 in early 2026; the page is undated (UNCONFIRMED vintage)")

_GROUP_10X_20M = ("DOGE", "kPEPE", "SUI", "WLD", "TRUMP", "LTC", "ENA", "POPCAT", "WIF", "AAVE",
                  "kBONK", "LINK", "CRV", "AVAX", "ADA", "UNI", "NEAR", "TIA", "APT", "BCH", "HYPE",
                  "FARTCOIN")
_GROUP_10X_3M = ("OP", "ARB", "LDO", "TON", "MKR", "ONDO", "JUP", "INJ", "kSHIB", "SEI", "TRX",
                 "BNB", "DOT")


def _raw_default_tables() -> dict[str, list[dict[str, float]]]:
    def two(split: float, lev0: int, lev1: int) -> list[dict[str, float]]:
        return [{"lower_bound": 0.0, "max_leverage": lev0},
                {"lower_bound": split, "max_leverage": lev1}]
    out = {"BTC": two(150e6, 40, 20), "ETH": two(100e6, 25, 15), "SOL": two(70e6, 20, 10),
           "XRP": two(40e6, 20, 10)}
    out |= {a: two(20e6, 10, 5) for a in _GROUP_10X_20M}
    out |= {a: two(3e6, 10, 5) for a in _GROUP_10X_3M}
    return out


def default_margin_tables() -> dict[str, MarginTable]:
    """The mainnet tables of [H1] by underlying (see :data:`DEFAULT_TABLES_SOURCE`)."""
    return {k: MarginTable.model_validate(v) for k, v in _raw_default_tables().items()}


def tables_from_meta(meta: Mapping[str, Any]) -> dict[str, Any]:
    """Tables by asset name from Hyperliquid's ``meta`` info response (``universe`` with
    ``marginTableId``, ``marginTables`` as ``[[id, {"marginTiers": ...}], ...]``)."""
    by_id: dict[int, Any] = {}
    for entry in meta.get("marginTables", []):
        table_id, table = entry
        by_id[int(table_id)] = table
    out: dict[str, Any] = {}
    for i, asset in enumerate(meta.get("universe", [])):
        name, tid = asset.get("name"), asset.get("marginTableId")
        if not isinstance(name, str) or tid is None:
            raise ValueError(f"universe[{i}]: needs name and marginTableId")
        tid = int(tid)
        if tid in by_id:
            out[name] = by_id[tid]
        elif tid < FLAT_TABLE_IDS_BELOW:
            out[name] = tid
        else:
            raise ValueError(f"universe[{i}].marginTableId: table {tid} not in marginTables")
    return out


class HyperliquidParams(ModelParams):
    margin_tables: dict[str, MarginTable] = Field(
        default_factory=default_margin_tables,
        description="Margin tables by underlying (USDC notional lower bounds → max leverage). "
                    "Default: " + DEFAULT_TABLES_SOURCE + ". Override per asset with JSON, e.g. "
                    "{\"BTC\": 50} (one tier) or {\"BTC\": [{\"lower_bound\": 0, \"max_leverage\":"
                    " 40}, ...]}, or a file holding Hyperliquid's `meta` response; given assets "
                    "replace the defaults, the others stay.")
    default_leverage: int | None = Field(
        None, ge=1, description="Leverage (integer) for symbols the account sets none for; null "
                                "= the asset's maximum leverage (UNCONFIRMED: the venue's UI "
                                "default is not documented in the research).")
    transfer_margin_fraction: float = Field(
        0.1, ge=0.0, le=1.0, description="Floor of the margin that must stay after a transfer, "
                                         "as a fraction of total position value ([H3], "
                                         "THIRD-PARTY copy of the Margining page).")
    backstop_fraction: float = Field(
        2.0 / 3.0, gt=0.0, le=1.0, description="Backstop liquidation when equity < this × MM "
                                               "([H2] Liquidations page).")

    @field_validator("margin_tables", mode="before")
    @classmethod
    def _merge(cls, v: Any) -> Any:
        if isinstance(v, str | Path):
            try:
                data = json.loads(Path(v).read_text())
            except (OSError, ValueError) as exc:
                raise ValueError(f"cannot read margin-table file {v}: {exc}") from None
            if isinstance(data, dict) and "universe" in data:
                try:
                    data = tables_from_meta(data)
                except (ValueError, TypeError, AttributeError) as exc:
                    raise ValueError(f"{v}: not a Hyperliquid meta response ({exc})") from None
            v = data
        if isinstance(v, Mapping):
            return {**_raw_default_tables(), **v}
        return v


@register
class Hyperliquid(MarginModel):
    name = "hyperliquid"
    version = "2026-03.1"
    source = ("Hyperliquid docs: 'Margin tiers', 'Liquidations', 'Margining' "
              "(hyperliquid.gitbook.io/hyperliquid-docs/trading/…); research/crypto-venues.md §5")
    summary = ("Tiered MM = N·mmr − deduction (mmr = 1/(2·max lev)); IM = N/leverage; cross and "
               "isolated; closed-form liquidation price.")
    Params = HyperliquidParams
    modes = frozenset({MarginMode.ISOLATED, MarginMode.CROSS})
    params: HyperliquidParams

    # -- inputs ------------------------------------------------------------------------------
    def check_instrument(self, ins: Instrument) -> str | None:
        why = linear_perpetual_problem(ins, self.name, SETTLE_CURRENCIES)
        if why:
            return why
        if ins.underlying not in self.params.margin_tables:
            return (f"no margin table for underlying {ins.underlying!r} (pass --param "
                    f"margin_tables='{{\"{ins.underlying}\": MAX_LEVERAGE}}')")
        return None

    def table(self, ins: Instrument) -> MarginTable:
        return self.params.margin_tables[ins.underlying]

    def leverage(self, account: Account, ins: Instrument) -> int:
        """The account's leverage for ``ins`` (an integer from 1 to the asset's max)."""
        top = self.table(ins).max_leverage
        lev = account.leverage.get(ins.symbol)
        if lev is None:
            chosen = self.params.default_leverage
            return top if chosen is None else min(chosen, top)
        if not float(lev).is_integer() or lev < 1:
            raise InputError(f"leverage.{ins.symbol}", f"{lev:g}: Hyperliquid leverage is an "
                             f"integer from 1 to {top}")
        if lev > top:
            raise InputError(f"leverage.{ins.symbol}", f"{lev:g}× exceeds the maximum leverage "
                             f"{top}× of {ins.underlying}")
        return int(lev)

    @staticmethod
    def _groups(unit: MarginUnit, account: Account) -> dict[str, list[int]]:
        groups: dict[str, list[int]] = {}
        for j in unit.position_indices:
            groups.setdefault(account.positions[j].symbol, []).append(j)
        return groups

    @staticmethod
    def _unit_price(ins: Instrument, market: MarketSnapshot, currency: str) -> tuple[float, float]:
        """``(contract_size·mark in the settlement currency, settle→unit FX)``."""
        assert ins.mark_price is not None
        return ins.contract_size * ins.mark_price, market.convert(1.0, ins.settle, currency)

    # -- requirements ------------------------------------------------------------------------
    def margin_unit(self, unit: MarginUnit, account: Account,
                    market: MarketSnapshot) -> UnitMargin:
        rows: dict[int, PositionMargin] = {}
        symbols: dict[str, Any] = {}
        im_total = mm_total = notional_total = 0.0
        for sym, idx in self._groups(unit, account).items():
            ins = market.instrument(sym)
            table, lev = self.table(ins), self.leverage(account, ins)
            px, fx = self._unit_price(ins, market, unit.currency)
            net = sum(account.positions[j].size for j in idx)
            tm = tier_margin(table, abs(net) * px, lev)
            im, mm = tm.initial_margin * fx, tm.maintenance_margin * fx
            im_total += im
            mm_total += mm
            notional_total += tm.notional * fx
            symbols[sym] = {"net_size": net, "notional": tm.notional * fx, "tier": tm.tier,
                            "tier_max_leverage": tm.tier_max_leverage,
                            "maintenance_margin_rate": tm.maintenance_margin_rate,
                            "maintenance_deduction": tm.maintenance_deduction * fx,
                            "leverage": tm.leverage, "initial_margin": im,
                            "maintenance_margin": mm}
            for j in idx:
                size = account.positions[j].size
                own = tier_margin(table, abs(size) * px, lev)
                share = im * size / net if net != 0.0 else 0.0
                rows[j] = PositionMargin(
                    index=j, symbol=sym, size=size, initial_margin=own.initial_margin * fx,
                    maintenance_margin=own.maintenance_margin * fx, contribution=share,
                    notional=own.notional * fx,
                    details={"tier": own.tier, "tier_lower_bound": own.lower_bound,
                             "tier_max_leverage": own.tier_max_leverage,
                             "maintenance_margin_rate": own.maintenance_margin_rate,
                             "maintenance_deduction": own.maintenance_deduction * fx,
                             "leverage_chosen": lev, "leverage": own.leverage})
        details = {"symbols": symbols, "total_notional": notional_total,
                   "transfer_margin_required": max(
                       im_total, self.params.transfer_margin_fraction * notional_total),
                   "backstop_equity": self.params.backstop_fraction * mm_total}
        return UnitMargin(id=unit.id, currency=unit.currency, initial_margin=im_total,
                          maintenance_margin=mm_total,
                          components={"position_initial_margin": im_total},
                          positions=tuple(rows[j] for j in sorted(rows)), details=details)

    # -- liquidation price -------------------------------------------------------------------
    def liquidation_price(self, unit: MarginUnit, account: Account, market: MarketSnapshot,
                          position_index: int, equity: float) -> float | None:
        """Mark price of the position's symbol at which the unit's equity meets its MM.

        Every position in the unit on the same underlying moves by the same factor ``f``;
        the rest is held at its marks with its maintenance margin. ``equity(f) − MM(f)`` is
        linear on each tier segment, so each segment is solved exactly; the root nearest
        ``f = 1`` wins. ``None`` when no positive price solves it.
        """
        pos = account.positions[position_index]
        if pos.size == 0.0:
            return None
        target = market.instrument(pos.symbol)
        f = self._liquidation_factor(unit, account, market, target.underlying, equity)
        assert target.mark_price is not None
        return None if f is None else target.mark_price * f

    def liquidation_prices(self, unit: MarginUnit, account: Account, market: MarketSnapshot,
                           equity: float) -> dict[int, float | None]:
        """:meth:`liquidation_price` of every position of the unit, the factor solved once
        per underlying (the same numbers)."""
        factors: dict[str, float | None] = {}
        out: dict[int, float | None] = {}
        for j in unit.position_indices:
            pos = account.positions[j]
            if pos.size == 0.0:
                out[j] = None
                continue
            target = market.instrument(pos.symbol)
            if target.underlying not in factors:
                factors[target.underlying] = self._liquidation_factor(
                    unit, account, market, target.underlying, equity)
            f = factors[target.underlying]
            assert target.mark_price is not None
            out[j] = None if f is None else target.mark_price * f
        return out

    def _liquidation_factor(self, unit: MarginUnit, account: Account, market: MarketSnapshot,
                            underlying: str, equity: float) -> float | None:
        """The move ``f`` of ``underlying``'s marks nearest 1 at which the unit's equity meets
        its maintenance margin (``None``: none)."""
        exposure = fixed_mm = 0.0
        moving: list[tuple[MarginTable, float, float]] = []  # (table, notional at f=1, fx)
        for sym, idx in self._groups(unit, account).items():
            ins = market.instrument(sym)
            px, fx = self._unit_price(ins, market, unit.currency)
            net = sum(account.positions[j].size for j in idx)
            if ins.underlying == underlying:
                exposure += net * px * fx
                if net != 0.0:
                    moving.append((self.table(ins), abs(net) * px, fx))
            else:
                fixed_mm += maintenance_margin(self.table(ins), abs(net) * px) * fx
        roots = _piecewise_roots(equity - exposure - fixed_mm, exposure, moving)
        if not roots:
            return None
        return min(roots, key=lambda r: abs(r - 1.0))


def _piecewise_roots(const: float, slope: float,
                     moving: Sequence[tuple[MarginTable, float, float]]) -> list[float]:
    """Positive roots ``f`` of ``const + slope·f − Σ MM_m(N_m·f)·fx_m`` (tiered MM)."""
    cuts = sorted({tier.lower_bound / n for table, n, _ in moving for tier in table.tiers[1:]})
    edges = [0.0, *cuts, math.inf]
    roots: list[float] = []
    for lo, hi in itertools.pairwise(edges):
        probe = 0.5 * (lo + hi) if math.isfinite(hi) else max(2.0 * lo, 1.0)
        alpha, beta = const, slope
        for table, n, fx in moving:
            k = table.tier_index(n * probe)
            beta -= n * table.rates()[k] * fx
            alpha += table.deductions()[k] * fx
        if beta == 0.0:
            continue
        f = -alpha / beta
        if f > 0.0 and lo <= f <= hi:
            roots.append(f)
    return roots
