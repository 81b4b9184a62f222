"""Execution of a liquidation order against order-book depth, with square-root impact beyond it.

A book side is a tuple of :class:`Level` (price, size), best first. A market order walks it
level by level; the part larger than the displayed depth is filled beyond the last level at a
price moved by the square-root law ``impact(q) = Y·√(q/q_ref)`` (relative; Tóth et al. 2011,
"Anomalous price impact and the critical nature of liquidity", Phys. Rev. X 1, 021006), fitted on
the Bitstamp capture in ``studies/orderbook_model.py`` (docs/liquidation.md). Depth consumed by
a trade replenishes with a half-life (:func:`replenish`, the resilience measured there).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class Level:
    """One price level: price (USD) and size (base units), both exact."""

    price: Fraction
    size: Fraction


@dataclass(frozen=True)
class SqrtImpact:
    """Relative impact ``Y·√(q/q_ref)`` of the part of an order beyond displayed depth.

    ``y`` is dimensionless (fraction of price), ``q_ref`` in base units; ``y = 0`` gives no
    impact (the residual fills at the last displayed price).
    """

    y: float
    q_ref: float = 1.0

    def relative(self, q: float) -> float:
        """Price move, as a fraction of price, of trading ``q`` base units."""
        if q < 0 or not math.isfinite(q):
            raise ValueError(f"q: {q} must be a finite non-negative size")
        return self.y * math.sqrt(q / self.q_ref)


@dataclass(frozen=True)
class Execution:
    """A market order's fill: filled size, cash value (USD, exact), worst price reached and
    the book side left after it."""

    filled: Fraction
    value: Fraction
    worst_price: Fraction
    beyond_depth: Fraction
    remaining_book: tuple[Level, ...]

    @property
    def average_price(self) -> Fraction:
        """Volume-weighted fill price."""
        return self.value / self.filled if self.filled else Fraction(0)


def walk_book(side: Sequence[Level], qty: Fraction, is_sell: bool, impact: SqrtImpact,
              reference_price: Fraction | None = None) -> Execution:
    """Fill ``qty`` base units against ``side`` (bids for a sell, asks for a buy), best first;
    the residual beyond the displayed depth fills at the last price moved by ``impact`` of the
    residual: the marginal price is ``P·(1 ∓ I(x))`` after ``x`` of it, so the residual's
    average price is ``P·(1 ∓ ⅔·I(q))`` (the mean of ``√`` over ``[0, q]``)."""
    if qty <= 0:
        raise ValueError(f"qty: {qty} must be > 0")
    left = qty
    value = Fraction(0)
    book = list(side)
    worst = reference_price if reference_price is not None else (
        book[0].price if book else Fraction(0))
    while left > 0 and book:
        lvl = book[0]
        take = min(left, lvl.size)
        value += take * lvl.price
        worst = lvl.price
        left -= take
        if take == lvl.size:
            book.pop(0)
        else:
            book[0] = Level(lvl.price, lvl.size - take)
    beyond = left
    if left > 0:
        if worst <= 0:
            raise ValueError("side: no price to extend the book from")
        move = Fraction(impact.relative(float(left))).limit_denominator(10**12)
        sign = -1 if is_sell else 1
        avg = worst * (1 + sign * Fraction(2, 3) * move)
        end = worst * (1 + sign * move)
        value += left * max(avg, Fraction(0))
        worst = max(end, Fraction(0))
    return Execution(filled=qty, value=value, worst_price=worst, beyond_depth=beyond,
                     remaining_book=tuple(book))


def replenish(consumed: Sequence[Level], full: Sequence[Level], dt: float,
              half_life: float) -> tuple[Level, ...]:
    """Book side ``dt`` seconds after a trade left ``consumed``: each level of ``full``
    recovers its missing size by ``1 − 2^(−dt/half_life)`` (exponential resilience)."""
    if half_life <= 0 or dt < 0:
        raise ValueError("half_life must be > 0 and dt >= 0")
    f = Fraction(1 - 2.0 ** (-dt / half_life)).limit_denominator(10**9)
    now = {lvl.price: lvl.size for lvl in consumed}
    out = []
    for lvl in full:
        have = now.get(lvl.price, Fraction(0))
        out.append(Level(lvl.price, have + (lvl.size - have) * f if have < lvl.size else have))
    return tuple(level for level in out if level.size > 0)
