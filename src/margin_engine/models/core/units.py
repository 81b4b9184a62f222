"""Margin units: what one requirement covers.

- ``position`` (isolated): one unit per position, in its settlement currency, backed by its
  ``isolated_margin`` or else by the account's whole collateral (each position separately);
- ``currency`` (segregated cross, Deribit S:SM / S:PM): one unit per settlement currency, backed by
  the collateral held in that currency;
- ``account`` (cross-collateral, X:SM / X:PM): one unit in ``USD`` over every position and all
  collateral (converted at index/FX, with haircuts).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from margin_engine.domain.book import Account, MarginMode
from margin_engine.domain.market import MarketSnapshot

Scope = Literal["position", "currency", "account"]


@dataclass(frozen=True)
class MarginUnit:
    id: str
    scope: Scope
    currency: str
    position_indices: tuple[int, ...]
    collateral: Mapping[str, float]


def build_units(account: Account, market: MarketSnapshot, cross_scope: Scope,
                account_currency: str = "USD") -> list[MarginUnit]:
    """Group an account's positions into margin units.

    ``cross_scope`` applies to cross and portfolio mode (``currency`` or ``account``); isolated
    accounts always get one unit per position.
    """
    if account.margin_mode is MarginMode.ISOLATED or cross_scope == "position":
        units = []
        for j, pos in enumerate(account.positions):
            settle = market.instrument(pos.symbol).settle
            coll = ({settle: pos.isolated_margin} if pos.isolated_margin is not None
                    else dict(account.collateral))
            units.append(MarginUnit(f"{pos.symbol}#{j}", "position", settle, (j,), coll))
        return units
    if cross_scope == "account":
        return [MarginUnit(account_currency, "account", account_currency,
                           tuple(range(len(account.positions))), dict(account.collateral))]
    by_ccy: dict[str, list[int]] = {}
    for j, pos in enumerate(account.positions):
        by_ccy.setdefault(market.instrument(pos.symbol).settle, []).append(j)
    return [MarginUnit(ccy, "currency", ccy, tuple(idx), {ccy: account.collateral.get(ccy, 0.0)})
            for ccy, idx in by_ccy.items()]
