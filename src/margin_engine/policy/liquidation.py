"""Liquidation price along an underlying, solved over the whole margin unit.

For a unit and an underlying, the liquidation price is the underlying index price ``P`` at which
``equity(P) = maintenance_margin(P)``, every instrument on that underlying moved with it (options
repriced at unchanged implied vols) and everything else held. The nearest such price to today's is
reported; ``None`` when none exists between 1/100 and 100× today's price.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy.optimize import brentq

from margin_engine.domain.book import Account
from margin_engine.domain.market import MarketSnapshot
from margin_engine.models.base import MarginModel
from margin_engine.models.revaluation import shift_underlying
from margin_engine.models.units import MarginUnit
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


def solve_liquidation_factor(model: MarginModel, unit: MarginUnit, account: Account,
                             market: MarketSnapshot, underlying: str,
                             policy: HealthPolicy) -> float | None:
    """Nearest factor on ``underlying``'s price at which the unit reaches its maintenance
    margin (1.0 when it already has; ``None`` when no such factor exists in [0.01, 100])."""
    f = surplus_function(model, unit, account, market, underlying, policy)
    f0 = f(1.0)
    if f0 <= 0.0:
        return 1.0
    best: float | None = None
    for side in (1.0 / GRID, GRID):
        prev_x = 1.0
        for x in side:
            fx = f(float(x))
            if fx <= 0.0:
                root = brentq(f, min(prev_x, x), max(prev_x, x), xtol=1e-12, rtol=1e-12)
                if best is None or abs(root - 1.0) < abs(best - 1.0):
                    best = root
                break
            prev_x = float(x)
            if best is not None and abs(x - 1.0) > abs(best - 1.0):
                break
    return best
