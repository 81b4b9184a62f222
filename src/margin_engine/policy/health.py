"""Account health: equity, margin ratio, available balance and status.

Equity of a unit (in its currency) = collateral valued at index/FX, positive non-native balances
reduced by their haircut, + unrealised P&L of futures and perpetuals + market value of options and
spot. ``margin_ratio = maintenance_margin / equity`` (Binance/Deribit convention: ≥ 1 means
liquidation); ``null`` when equity ≤ 0. Status: ``liquidation`` when equity ≤ MM (and MM > 0 or
equity < 0), ``margin_call`` when equity < IM, else ``healthy``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from margin_engine.domain.book import Account
from margin_engine.domain.market import MarketSnapshot
from margin_engine.models.core.units import MarginUnit
from margin_engine.models.core.valuation import equity_value

#: Default collateral haircuts (fraction of USD value not counted). Documented defaults, not any
#: venue's: stablecoins 0, BTC/ETH 5%, any other coin 10%. Accounts may override per currency.
DEFAULT_HAIRCUTS: Mapping[str, float] = MappingProxyType(
    {"USD": 0.0, "USDT": 0.0, "USDC": 0.0, "BTC": 0.05, "ETH": 0.05})
OTHER_HAIRCUT = 0.10


class Status(StrEnum):
    HEALTHY = "healthy"
    MARGIN_CALL = "margin_call"
    LIQUIDATION = "liquidation"


@dataclass(frozen=True)
class HealthPolicy:
    """Haircuts applied to collateral not in the unit's own currency."""

    haircuts: Mapping[str, float] = field(default_factory=lambda: DEFAULT_HAIRCUTS)
    other_haircut: float = OTHER_HAIRCUT

    def haircut(self, account: Account, currency: str) -> float:
        if currency in account.haircuts:
            return account.haircuts[currency]
        return self.haircuts.get(currency, self.other_haircut)


def collateral_value(collateral: Mapping[str, float], currency: str, account: Account,
                     market: MarketSnapshot, policy: HealthPolicy) -> float:
    """Collateral in ``currency``: other currencies converted, positive balances haircut."""
    total = 0.0
    for ccy, amount in collateral.items():
        value = market.convert(amount, ccy, currency)
        if ccy != currency and amount > 0:
            value *= 1.0 - policy.haircut(account, ccy)
        total += value
    return total


def unit_equity(unit: MarginUnit, account: Account, market: MarketSnapshot,
                policy: HealthPolicy) -> float:
    """Equity backing one margin unit, in the unit's currency."""
    eq = collateral_value(unit.collateral, unit.currency, account, market, policy)
    for j in unit.position_indices:
        pos = account.positions[j]
        ins = market.instrument(pos.symbol)
        eq += market.convert(equity_value(ins, pos, market), ins.settle, unit.currency)
    return eq


def account_equity(account: Account, currency: str, market: MarketSnapshot,
                   policy: HealthPolicy) -> float:
    """Whole-account equity in ``currency`` (all collateral, all positions)."""
    whole = MarginUnit("account", "account", currency, tuple(range(len(account.positions))),
                       dict(account.collateral))
    return unit_equity(whole, account, market, policy)


def margin_ratio(maintenance: float, equity: float) -> float | None:
    """``MM / equity``; ``None`` when equity ≤ 0 and MM > 0 (unbounded)."""
    if equity > 0:
        return maintenance / equity
    return 0.0 if maintenance == 0 and equity == 0 else None


def status(initial: float, maintenance: float, equity: float) -> Status:
    if equity < 0 or (maintenance > 0 and equity <= maintenance):
        return Status.LIQUIDATION
    if equity < initial:
        return Status.MARGIN_CALL
    return Status.HEALTHY
