"""Liquidation price along an underlying, solved over the whole margin unit.

For a unit and an underlying, the liquidation price is the underlying index price ``P`` at which
``equity(P) = maintenance_margin(P)``, every instrument on that underlying moved with it (options
repriced at unchanged implied vols) and everything else held. The nearest such price to today's is
reported as the position's liquidation price, and both sides as its ``liquidation_range`` (the
band of underlying prices within which the unit stays above maintenance); ``None`` on a side
where none exists between 1/100 and 100× today's price.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy.optimize import brentq

from margin_engine.domain.book import Account
from margin_engine.domain.market import MarketSnapshot
from margin_engine.models.core.base import MarginModel
from margin_engine.models.core.revaluation import shift_underlying
from margin_engine.models.core.units import MarginUnit
from margin_engine.policy.health import HealthPolicy, unit_equity

#: Log-spaced factors searched on each side of today's price.
GRID = np.exp(np.linspace(0.0, math.log(100.0), 161)[1:])


def surplus_function(model: MarginModel, unit: MarginUnit, account: Account,
                     market: MarketSnapshot, underlying: str,
                     policy: HealthPolicy) -> Callable[[float], float]:
    """``f(factor) = equity − MM`` of the unit with ``underlying`` moved by ``factor``."""
    def f(factor: float) -> float:
        moved = shift_underlying(market, underlying, factor)
        req = model.margin_unit(unit, account, moved)
        return unit_equity(unit, account, moved, policy) - req.maintenance_margin
    return f


def solve_liquidation_band(model: MarginModel, unit: MarginUnit, account: Account,
                           market: MarketSnapshot, underlying: str,
                           policy: HealthPolicy) -> tuple[float | None, float | None]:
    """Factors on ``underlying``'s price below and above today's at which the unit first
    reaches its maintenance margin: the unit is safe strictly between them. ``None`` on a side
    where no such factor exists within 100×; ``(1.0, 1.0)`` when the unit is already there."""
    f = surplus_function(model, unit, account, market, underlying, policy)
    if f(1.0) <= 0.0:
        return 1.0, 1.0
    band: list[float | None] = []
    for side in (1.0 / GRID, GRID):
        root, prev_x = None, 1.0
        for x in side:
            if f(float(x)) <= 0.0:
                root = brentq(f, min(prev_x, x), max(prev_x, x), xtol=1e-12, rtol=1e-12)
                break
            prev_x = float(x)
        band.append(root)
    return band[0], band[1]


def nearest(band: tuple[float | None, float | None]) -> float | None:
    """The side of a band closest to today's price (factor 1)."""
    found = [b for b in band if b is not None]
    return min(found, key=lambda b: abs(b - 1.0)) if found else None


def solve_liquidation_factor(model: MarginModel, unit: MarginUnit, account: Account,
                             market: MarketSnapshot, underlying: str,
                             policy: HealthPolicy) -> float | None:
    """Nearest factor on ``underlying``'s price at which the unit reaches its maintenance
    margin (1.0 when it already has; ``None`` when no such factor exists in [0.01, 100])."""
    return nearest(solve_liquidation_band(model, unit, account, market, underlying, policy))
