"""Liquidation price along an underlying, solved over the whole margin unit.

For a unit and an underlying, the liquidation price is the underlying index price ``P`` at which
``equity(P) = maintenance_margin(P)``, every instrument on that underlying moved with it (options
repriced at unchanged implied vols) and everything else held. The nearest such price to today's is
reported as the position's liquidation price, and both sides as its ``liquidation_range`` (the
band of underlying prices within which the unit stays above maintenance); ``None`` on a side
where none exists between 1/100 and 100× today's price.

Two solvers give the same answer:

- :func:`solve_liquidation_band`, the reference: walks a log grid of 160 factors out from today's
  price on each side, re-margining the unit on a fully shifted market at each, and refines the
  first crossing with Brent's method (``xtol = rtol = 1e-12``). Up to 320 full evaluations for a
  unit that never reaches maintenance.
- :func:`fast_liquidation_band`, used by ``compute``: the same surplus function on a market in
  which only what the unit reads is moved (the index, the instruments the unit holds, the
  futures its options take their forward from: :class:`UnitShifter`), evaluated on a sparse
  schedule of the same grid (:data:`SCHEDULE`); the first scheduled point at or below
  maintenance is narrowed to one grid step by bisection on the grid and refined by Brent's
  method on exactly the bracket the reference would use, so the root agrees to Brent's
  tolerance. About 30 evaluations for a safe unit, about 20 for one with a root. It can differ
  from the reference only when the surplus crosses zero and comes back between two scheduled
  points before the first scheduled crossing (a negative dip narrower than the schedule's
  spacing), a shape the tests' randomised books check against.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator

import numpy as np

from margin_engine.domain.book import Account
from margin_engine.domain.instruments import Instrument
from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError
from margin_engine.models.core.base import MarginModel
from margin_engine.models.core.revaluation import shift_underlying
from margin_engine.models.core.units import MarginUnit
from margin_engine.models.core.valuation import model_option_price
from margin_engine.policy.health import HealthPolicy, unit_equity

#: Log-spaced factors searched on each side of today's price.
GRID = np.exp(np.linspace(0.0, math.log(100.0), 161)[1:])

#: Grid indices (1-based: factor ``GRID[i - 1]``) the fast solver evaluates on each side, in
#: order: dense near today's price (steps of 2.9%, 5.9%, 12%, then 26%), 58% from 6× out.
SCHEDULE = (1, 2, 4, *range(8, 72, 8), 80, 96, 112, 128, 144, 160)

Band = tuple[float | None, float | None]


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
                           policy: HealthPolicy) -> Band:
    """Factors on ``underlying``'s price below and above today's at which the unit first
    reaches its maintenance margin: the unit is safe strictly between them. ``None`` on a side
    where no such factor exists within 100×; ``(1.0, 1.0)`` when the unit is already there.

    The reference solver (every grid point, full shift); :func:`fast_liquidation_band` is the
    one ``compute`` uses."""
    f = surplus_function(model, unit, account, market, underlying, policy)
    if f(1.0) <= 0.0:
        return 1.0, 1.0
    band: list[float | None] = []
    for side in (1.0 / GRID, GRID):
        root, prev_x = None, 1.0
        for x in side:
            if f(float(x)) <= 0.0:
                from scipy.optimize import brentq  # here: closed-form models never need SciPy

                root = brentq(f, min(prev_x, x), max(prev_x, x), xtol=1e-12, rtol=1e-12)
                break
            prev_x = float(x)
        band.append(root)
    return band[0], band[1]


class UnitShifter:
    """Markets with one underlying moved, as :func:`shift_underlying` moves it, but moving only
    what a unit reads: the index, the instruments in ``symbols`` (those the unit holds) and the
    dated futures a held option takes its forward from (:meth:`MarketSnapshot.forward`).
    Everything else on the underlying keeps today's marks (margin models read only the
    instruments a unit holds; the tests check every model against the fully shifted market).

    Precomputes each moved option's forward and model price today, and the symbol table, so a
    move costs one Black-76 per held option, a copy per moved instrument and a dictionary copy.
    """

    def __init__(self, market: MarketSnapshot, underlying: str, symbols: set[str]) -> None:
        self.market, self.underlying = market, underlying
        self._base = list(market.instruments)
        self._by_symbol = dict(market._by_symbol)
        self._moved: list[tuple[int, Instrument, float, float]] = []
        expiries = {ins.expiry for ins in market.instruments
                    if ins.symbol in symbols and ins.is_option and ins.underlying_price is None}
        for k, ins in enumerate(market.instruments):
            if ins.underlying != underlying:
                continue
            if ins.is_option:
                if ins.symbol in symbols:
                    fwd = market.forward(ins)
                    self._moved.append((k, ins, fwd, model_option_price(ins, market, fwd)))
            elif ins.mark_price is not None and (
                    ins.symbol in symbols or (ins.expiry is not None and ins.expiry in expiries)):
                self._moved.append((k, ins, 0.0, 0.0))

    def at(self, factor: float) -> MarketSnapshot:
        """The market with the underlying's index and the moved instruments times ``factor``."""
        market = self.market
        if factor == 1.0:
            return market
        if not factor > 0.0:
            raise ValueError(f"factor: must be > 0, got {factor!r}")
        instruments = list(self._base)
        by_symbol = dict(self._by_symbol)
        for k, ins, fwd, v0 in self._moved:
            upd: dict[str, float]
            if ins.is_option:
                new = model_option_price(ins, market, fwd * factor)
                if ins.mark_price is not None:
                    new = max(ins.mark_price + new - v0, 0.0)
                upd = {"mark_price": new, "underlying_price": fwd * factor}
            else:
                assert ins.mark_price is not None
                upd = {"mark_price": ins.mark_price * factor}
            moved = ins.model_copy(update=upd)
            instruments[k] = moved
            by_symbol[ins.symbol] = moved
        index = {**market.index, self.underlying: market.index[self.underlying] * factor}
        out = MarketSnapshot.model_construct(**{**dict(market), "instruments": tuple(instruments),
                                                "index": index})
        out.__dict__["_by_symbol"] = by_symbol  # the cached symbol table, already built
        return out


def fast_surplus_function(model: MarginModel, unit: MarginUnit, account: Account,
                          market: MarketSnapshot, underlying: str,
                          policy: HealthPolicy) -> Callable[[float], float]:
    """:func:`surplus_function` on :class:`UnitShifter` markets, with the model's
    maintenance margin only (:meth:`MarginModel.maintenance_margin`)."""
    shifter = UnitShifter(market, underlying,
                          {account.positions[j].symbol for j in unit.position_indices})

    def f(factor: float) -> float:
        moved = shifter.at(factor)
        return (unit_equity(unit, account, moved, policy)
                - model.maintenance_margin(unit, account, moved))
    return f


def fast_liquidation_band(model: MarginModel, unit: MarginUnit, account: Account,
                          market: MarketSnapshot, underlying: str, policy: HealthPolicy, *,
                          surplus_today: float | None = None) -> Band:
    """The band of :func:`solve_liquidation_band` from far fewer evaluations (module
    docstring). ``surplus_today``: the unit's equity − MM at today's market, when known."""
    f = fast_surplus_function(model, unit, account, market, underlying, policy)
    s0 = f(1.0) if surplus_today is None else surplus_today
    if s0 <= 0.0:
        return 1.0, 1.0
    band: list[float | None] = []
    for side in (1.0 / GRID, GRID):
        band.append(_first_root(f, side, s0))
    return band[0], band[1]


def grid_factor(side: np.ndarray, i: int) -> float:
    """Factor of grid index ``i`` on ``side`` (``1 / GRID`` or ``GRID``); index 0 is today."""
    return 1.0 if i == 0 else float(side[i - 1])


def bracket_search() -> Generator[int, float, tuple[int, int] | None]:
    """The fast solver's walk to a one-step bracket, as a coroutine: it yields the grid index
    it needs next, is sent the surplus there, and returns ``(lo, hi)``, the grid step whose far
    end ``hi`` is the first at or below zero found through the schedule (``None``: none within
    100×). Index 0 is today's price, with a surplus > 0.

    Shared by :func:`fast_liquidation_band` (one unit) and the whole-book solver of the live
    engines, which feeds many units' walks from one market move per grid point."""
    lo = 0
    hi = None
    for i in SCHEDULE:
        if (yield i) <= 0.0:
            hi = i
            break
        lo = i
    if hi is None:
        return None
    while hi - lo > 1:  # bisect on the grid down to one step
        mid = (lo + hi) // 2
        if (yield mid) <= 0.0:
            hi = mid
        else:
            lo = mid
    return lo, hi


def root_in_step(f: Callable[[float], float], a: float, b: float) -> float:
    """Brent's method on the bracket between factors ``a`` and ``b`` (``xtol = rtol = 1e-12``,
    as the reference solver)."""
    from scipy.optimize import brentq  # here: closed-form models never need SciPy

    return float(brentq(f, min(a, b), max(a, b), xtol=1e-12, rtol=1e-12))


def _first_root(f: Callable[[float], float], side: np.ndarray, s0: float) -> float | None:
    """Root in the first grid step whose far end is at or below zero, found through the
    schedule (:func:`bracket_search`; grid index 0 is today's price, with surplus ``s0 > 0``).

    A scheduled point may lie beyond the reference's first crossing; should the model refuse the
    market there (an error), the side is scanned point by point as the reference does, so that
    the answer, or the error, is the reference's."""
    walk = bracket_search()
    try:
        i = next(walk)
        while True:
            i = walk.send(f(grid_factor(side, i)))
    except StopIteration as done:
        found: tuple[int, int] | None = done.value
    except (InputError, ValueError, ArithmeticError):
        found = None
        lo = 0
        for i in range(1, len(side) + 1):  # the reference's scan
            if f(grid_factor(side, i)) <= 0.0:
                found = (lo, i)
                break
            lo = i
    if found is None:
        return None
    return root_in_step(f, grid_factor(side, found[0]), grid_factor(side, found[1]))


def nearest(band: Band) -> float | None:
    """The side of a band closest to today's price (factor 1)."""
    found = [b for b in band if b is not None]
    return min(found, key=lambda b: abs(b - 1.0)) if found else None


def solve_liquidation_factor(model: MarginModel, unit: MarginUnit, account: Account,
                             market: MarketSnapshot, underlying: str,
                             policy: HealthPolicy) -> float | None:
    """Nearest factor on ``underlying``'s price at which the unit reaches its maintenance
    margin (1.0 when it already has; ``None`` when no such factor exists in [0.01, 100])."""
    return nearest(solve_liquidation_band(model, unit, account, market, underlying, policy))
