"""Frozen result types every margin model returns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class AuditStamp:
    """Which model, version and parameters produced a number, on which market snapshot."""

    model: str
    model_version: str
    params_hash: str
    market_timestamp: str
    engine_version: str


@dataclass(frozen=True)
class PositionMargin:
    """One position's requirement, in its unit's currency.

    ``initial_margin``/``maintenance_margin`` are the position margined on its own (for rule-based
    models, its own requirement); ``contribution`` is its share of the unit's initial margin (the
    contributions of a unit add up to the unit's initial margin).
    """

    index: int
    symbol: str
    size: float
    initial_margin: float
    maintenance_margin: float
    contribution: float
    notional: float
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class UnitMargin:
    """Requirement of one margin unit (a position, a settlement currency, or the account)."""

    id: str
    currency: str
    initial_margin: float
    maintenance_margin: float
    components: Mapping[str, float]
    positions: tuple[PositionMargin, ...]
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.initial_margin >= self.maintenance_margin >= 0.0:
            raise ArithmeticError(f"unit {self.id}: IM {self.initial_margin} >= MM "
                                  f"{self.maintenance_margin} >= 0 does not hold")
