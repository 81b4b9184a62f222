"""dYdX v4 subaccount state in quantums: perpetuals, positions, net collateral and requirements.

The integer arithmetic of ``protocol/x/perpetuals/lib/lib.go`` and ``protocol/lib/margin/risk.go``
(dydxprotocol/v4-chain ``84d4664``), on plain frozen dataclasses so that the liquidation and
deleveraging rules (:mod:`.dydx_liquidation`, :mod:`.dydx_deleveraging`) can be written as pure
functions. Margin requirements reuse :mod:`margin_engine.models.venues.dydx_v4` (IMR rounded up
from the OI-scaled IMF; MMR from the rounded-up *base* IMR).

Units: base quantums (position size; coins = quantums·10^atomic_resolution), quote quantums
(USDC, 1 USDC = 10⁶), oracle price = ``oracle_price``·10^``oracle_price_exponent`` USD per coin.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from fractions import Fraction

from margin_engine.models.venues.dydx_v4 import (
    LiquidityTier,
    initial_margin_qq,
    maintenance_margin_qq,
)
from margin_engine.models.venues.dydx_v4 import is_liquidatable as _risk_is_liquidatable

PPM = 1_000_000
QUOTE_ATOMIC_RESOLUTION = -6
MAX_UINT64 = 2**64 - 1


@dataclass(frozen=True)
class Perpetual:
    """A perpetual market with its oracle price and liquidity tier (dYdX field names).

    ``open_interest`` is in base quantums (used for OI-scaled IMF only when the tier has caps).
    """

    perpetual_id: int
    atomic_resolution: int
    oracle_price: int
    oracle_price_exponent: int
    initial_margin_ppm: int
    maintenance_fraction_ppm: int
    open_interest_lower_cap: int = 0
    open_interest_upper_cap: int = 0
    open_interest: int = 0

    @property
    def tier(self) -> LiquidityTier:
        """The perpetual's liquidity tier as :class:`~margin_engine.models.venues.dydx_v4`
        models it."""
        return LiquidityTier(initial_margin_ppm=self.initial_margin_ppm,
                             maintenance_fraction_ppm=self.maintenance_fraction_ppm,
                             open_interest_lower_cap=self.open_interest_lower_cap,
                             open_interest_upper_cap=self.open_interest_upper_cap)

    def quote_per_base(self) -> Fraction:
        """Exact quote quantums per base quantum at the oracle price."""
        return self.oracle_price * Fraction(10) ** (
            self.oracle_price_exponent + self.atomic_resolution - QUOTE_ATOMIC_RESOLUTION)

    def net_notional(self, quantums: int) -> int:
        """Signed notional in quote quantums, truncated toward zero (``GetNetNotional``)."""
        return int(quantums * self.quote_per_base())

    def quote_to_base(self, quote_quantums: int) -> int:
        """Quote quantums → base quantums at the oracle, truncated toward zero
        (``QuoteToBaseQuantums``)."""
        return int(quote_quantums / self.quote_per_base())

    def margin(self, quantums: int) -> tuple[int, int]:
        """``(IMR, MMR)`` of a position in quote quantums (``GetMarginRequirements``)."""
        notional = abs(self.net_notional(quantums))
        oi_qq = abs(self.net_notional(self.open_interest))
        return (initial_margin_qq(notional, self.tier, oi_qq),
                maintenance_margin_qq(notional, self.tier))


@dataclass(frozen=True)
class Subaccount:
    """A subaccount: USDC balance in quote quantums and perpetual positions in base quantums
    (``positions`` maps perpetual id → non-zero signed quantums)."""

    id: str
    usdc: int
    positions: Mapping[int, int] = field(default_factory=dict)

    def position(self, perpetual_id: int) -> int:
        """Signed size of the position in ``perpetual_id`` (0 when none)."""
        return self.positions.get(perpetual_id, 0)

    def apply(self, perpetual_id: int, delta_quantums: int, delta_usdc: int) -> Subaccount:
        """The subaccount after a perpetual fill; a position reaching zero is removed."""
        pos = dict(self.positions)
        new = pos.get(perpetual_id, 0) + delta_quantums
        if new == 0:
            pos.pop(perpetual_id, None)
        else:
            pos[perpetual_id] = new
        return replace(self, usdc=self.usdc + delta_usdc, positions=pos)


@dataclass(frozen=True)
class Risk:
    """Net collateral and margin requirements of a subaccount (``margin.Risk``)."""

    nc: int
    imr: int
    mmr: int

    def is_initial_collateralized(self) -> bool:
        """``NC >= IMR``."""
        return self.nc >= self.imr

    def is_liquidatable(self) -> bool:
        """``MMR > 0`` and ``NC < MMR`` (``Risk.IsLiquidatable``)."""
        return _risk_is_liquidatable(self.nc, self.mmr)


def perpetual_map(perpetuals: Iterable[Perpetual]) -> dict[int, Perpetual]:
    """Perpetuals by id."""
    return {p.perpetual_id: p for p in perpetuals}


def subaccount_risk(sub: Subaccount, perpetuals: Mapping[int, Perpetual]) -> Risk:
    """TNC, TIMR and TMMR of a subaccount (settled; funding ignored)."""
    nc, imr, mmr = sub.usdc, 0, 0
    for pid, q in sub.positions.items():
        perp = perpetuals[pid]
        nc += perp.net_notional(q)
        i, m = perp.margin(q)
        imr += i
        mmr += m
    return Risk(nc=nc, imr=imr, mmr=mmr)


def validate_reduction(position: int, delta_quantums: int) -> None:
    """dYdX's ``ErrInvalidPerpetualPositionSizeDelta``: the delta must be non-zero, opposite
    in sign to an open position and no larger than it."""
    if delta_quantums == 0:
        raise ValueError("delta_quantums: must not be zero")
    if position == 0:
        raise ValueError("delta_quantums: the subaccount has no open position in the perpetual")
    if (position > 0) == (delta_quantums > 0):
        raise ValueError("delta_quantums: must have the opposite sign of the position")
    if abs(delta_quantums) > abs(position):
        raise ValueError("delta_quantums: larger than the position")
