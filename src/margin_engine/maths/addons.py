"""Add-ons for what a market-risk measure misses: liquidity, concentration, credit, minimums.

Pure functions on plain numbers; amounts in USD unless stated.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

#: Credit add-on as a fraction of (market risk + liquidity) by rating. A documented house
#: table (not a regulator's): investment grade ≤ 5%, then rising. An account without a rating
#: pays no credit add-on unless one is configured (``credit_addon(..., unrated=...)``): a
#: missing rating is missing information, not evidence of BBB credit.
CREDIT_ADDON: Mapping[str, float] = MappingProxyType({
    "AAA": 0.0, "AA": 0.0, "A": 0.05, "BBB": 0.10, "BB": 0.25, "B": 0.50, "CCC": 1.00})


@dataclass(frozen=True)
class CloseOutCost:
    """Cost of closing ``quantity`` into the book, against the mid (quote currency)."""

    cost: float
    filled_in_book: float
    beyond_book: float


def close_out_cost(levels: Sequence[tuple[float, float]], quantity: float,
                   mid: float) -> CloseOutCost:
    """Walk the opposite side of the book for ``quantity`` (> 0) contracts/units.

    Each level costs ``|price − mid|·size``. Beyond the visible depth ``D`` the remaining ``q``
    is charged at the last level's distance ``d`` grown by a square-root impact:
    ``q·d·sqrt((D + q)/D)`` (an empty book charges ``q·mid``, i.e. no value recovered).
    """
    if not quantity > 0 or not mid > 0:
        raise ValueError("quantity and mid must be > 0")
    left, cost, depth, last = quantity, 0.0, 0.0, 0.0
    for price, size in levels:
        take = min(left, size)
        last = abs(price - mid)
        cost += take * last
        depth += size
        left -= take
        if left <= 0:
            return CloseOutCost(cost, quantity, 0.0)
    if depth == 0:
        return CloseOutCost(quantity * mid, 0.0, quantity)
    cost += left * last * math.sqrt((depth + left) / depth)
    return CloseOutCost(cost, quantity - left, left)


def concentration_charge(notional: float, share_of_open_interest: float, *,
                         threshold: float, rate: float) -> float:
    """``notional·rate·max(0, share − threshold)``: grows with the share of open interest held
    beyond ``threshold``."""
    return notional * rate * max(0.0, share_of_open_interest - threshold)


def credit_addon(base: float, rating: str | None, table: Mapping[str, float], *,
                 unrated: float = 0.0) -> float:
    """``base × table[rating]``, or ``base × unrated`` without a rating (0 by default: the
    add-on is opt-in for unrated accounts); an unknown rating is an error."""
    if rating is None:
        return base * unrated
    if rating not in table:
        raise ValueError(f"credit_rating: unknown rating {rating!r} (known: {', '.join(table)})")
    return base * table[rating]


def minimum_charge(short_option_notionals: Sequence[float], contracts: float, *,
                   short_option_rate: float, per_contract: float) -> float:
    """A floor on the requirement: ``rate × Σ short-option underlying notional`` plus
    ``per_contract × contracts`` (SPAN's short option minimum, generalised)."""
    return short_option_rate * sum(short_option_notionals) + per_contract * contracts


def capped_offset(portfolio: float, standalone_sum: float, cap: float) -> float:
    """Diversification cap: offsets count for at most ``cap`` of ``standalone − portfolio``;
    returns the add-on ``(1 − cap)·max(0, standalone − portfolio)`` (EMIR RTS Art. 27: 80%)."""
    return (1.0 - cap) * max(0.0, standalone_sum - portfolio)
