"""Price impact of the liquidation flow, with resilience (the fitted order-book model).

A round's net liquidation flow in a market, ``F`` USD of notional, moves the price by
``I = Y·√(F / (V_ref·depth))`` (relative; square-root law, Tóth et al. 2011) in the flow's
direction, and fills at the average ``⅔·I`` (the mean of the square root over the order, as
``analysis.liquidation.book.walk_book`` beyond displayed depth). Of the move, a share
``permanent`` stays; the rest is transient and decays with the book's resilience half-life.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Bitstamp BTC/USD L3 capture 2026-05-02 02:36–03:06 UTC (studies/orderbook_model.py,
# docs/liquidation.md §3): square-root fit Y at 1 BTC, the mid at the start, resilience.
FIT_Y = 1.392798097839561e-4
FIT_REFERENCE_USD = 78_318.5
FIT_HALF_LIFE_S = 0.6028466321389611


@dataclass(frozen=True)
class ImpactModel:
    """Square-root impact with a permanent share and exponential resilience.

    Parameters
    ----------
    y : float
        Relative move for one reference lot (dimensionless); 0 disables impact.
        Default: the Bitstamp fit (1.39 bps at 1 BTC), 2026-05-02, source above.
    reference_usd : float
        Notional of the reference lot (USD): 1 BTC at the fit's mid.
    depth : float
        Depth multiplier (dimensionless) relative to the Bitstamp book: a venue ``k`` times
        deeper moves ``√k`` times less. Default 1 (UNCONFIRMED for other venues and coins:
        conservative for the large perpetual venues, whose books are deeper than Bitstamp's).
    permanent : float
        Share of the move that stays after the order (dimensionless, [0, 1]). Default 2/3:
        price relaxes to about two thirds of the peak impact after a metaorder (Bershova and
        Rakhlin 2013, "The non-linear market impact of large trades", Quantitative Finance
        13(11); UNCONFIRMED for liquidation flow).
    half_life_s : float
        Resilience of the transient part (s), fitted on the capture (0.60 s).
    round_seconds : float
        Time between two liquidation rounds (s): the transient part decays over it.
        Default 1 s (UNCONFIRMED: venues' liquidation engines run every block or second).
    """

    y: float = FIT_Y
    reference_usd: float = FIT_REFERENCE_USD
    depth: float = 1.0
    permanent: float = 2.0 / 3.0
    half_life_s: float = FIT_HALF_LIFE_S
    round_seconds: float = 1.0

    def __post_init__(self) -> None:
        for name in ("y", "reference_usd", "depth", "permanent", "half_life_s",
                     "round_seconds"):
            v = getattr(self, name)
            if not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
                raise ValueError(f"{name}: must be a finite number >= 0, got {v!r}")
        if self.reference_usd <= 0 or self.depth <= 0 or self.half_life_s <= 0:
            raise ValueError("reference_usd, depth and half_life_s must be > 0")
        if self.permanent > 1:
            raise ValueError("permanent: must be in [0, 1]")

    def move(self, flow_usd: np.ndarray) -> np.ndarray:
        """Relative price move (≥ 0) of ``flow_usd`` (≥ 0) of notional traded at once."""
        f = np.maximum(np.asarray(flow_usd, dtype=float), 0.0)
        return self.y * np.sqrt(f / (self.reference_usd * self.depth))

    def decay(self, seconds: float) -> float:
        """Share of the transient move left after ``seconds``."""
        return float(2.0 ** (-seconds / self.half_life_s))


NO_IMPACT = ImpactModel(y=0.0)
