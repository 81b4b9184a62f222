"""A manipulation-resistant index price from several venues' prices (docs/index-and-mark.md).

Three published protections, each a parameter of :class:`IndexRule`:

1. **Stale sources out.** A source whose last update is older than ``max_age_s`` gets weight 0
   (Deribit: "delayed order book data (3 minutes)", insights.deribit.com "New Deribit Index",
   2019-12-03; Binance USDⓈ-M: "no updates for 10 seconds → weight zero", Binance FAQ "Price
   Index", 2020-10-29).
2. **Outliers out** (Binance, same FAQ): a source deviating from the median of all fresh sources
   by more than ``exclude_band`` gets weight 0; if more than one source does, the index is the
   plain median of all fresh sources.
3. **Outliers capped** (Deribit, support.deribit.com "Index Prices", the capped median): every
   price is clamped into ``median × [1 − cap_band, 1 + cap_band]`` before the weighted average.

The index is then the weighted average ``Σ wᵢ pᵢ / Σ wᵢ`` of the remaining (clamped) prices.
:data:`DERIBIT` and :data:`BINANCE_USDM` are the two venues' published settings.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from margin_engine.errors import InputError


@dataclass(frozen=True)
class SourcePrice:
    """One venue's latest price: ``venue``, ``price``, ``timestamp`` (seconds), ``weight``."""

    venue: str
    price: float
    timestamp: float
    weight: float = 1.0


@dataclass(frozen=True)
class IndexRule:
    """How the index treats stale and outlying sources (see the module docstring).

    Attributes
    ----------
    max_age_s : float
        A source older than this (``now − timestamp``) is excluded as stale.
    exclude_band : float or None
        Relative deviation from the median beyond which a source is excluded (None: never).
    cap_band : float or None
        Relative band around the median into which every price is clamped (None: no cap).
    """

    max_age_s: float
    exclude_band: float | None = None
    cap_band: float | None = None


DERIBIT = IndexRule(max_age_s=180.0, cap_band=0.005)
"""Deribit: 3-minute staleness, ±0.5 % capped median (insights.deribit.com 2019-12-03;
support.deribit.com "Index Prices", read 2026-12)."""

BINANCE_USDM = IndexRule(max_age_s=10.0, exclude_band=0.05)
"""Binance USDⓈ-M: 10 s staleness, > 5 % from the median → weight 0, several such → median
(Binance FAQ "Price Index", 2020-10-29). Newer Binance pages cap a deviating source at ±3 %
(±1 % for BTC and ETH) instead: ``IndexRule(max_age_s=300, cap_band=0.01)``."""


@dataclass(frozen=True)
class IndexResult:
    """The index and what happened to each source (``used``, ``stale``, ``outlier``,
    ``capped``)."""

    price: float
    status: dict[str, str] = field(default_factory=dict)
    fallback_median: bool = False


def composite_index(sources: Sequence[SourcePrice], now: float,
                    rule: IndexRule = DERIBIT) -> IndexResult:
    """The index price at ``now`` from the venues' latest prices under ``rule``.

    Parameters
    ----------
    sources : sequence of SourcePrice
        Each venue's latest price (positive, finite) and its time.
    now : float
        The evaluation time, seconds on the sources' clock.
    rule : IndexRule
        :data:`DERIBIT` (default) or :data:`BINANCE_USDM` or a custom rule.

    Returns
    -------
    IndexResult

    Raises
    ------
    InputError
        ``sources[i].price``/``weight`` invalid, or ``sources``: no fresh source.
    """
    for i, s in enumerate(sources):
        if not (math.isfinite(s.price) and s.price > 0):
            raise InputError(f"sources[{i}].price", "must be a positive finite number")
        if not (math.isfinite(s.weight) and s.weight >= 0):
            raise InputError(f"sources[{i}].weight", "must be a non-negative finite number")
    status: dict[str, str] = {}
    fresh: list[SourcePrice] = []
    for s in sources:
        if now - s.timestamp > rule.max_age_s or s.weight == 0:
            status[s.venue] = "stale" if s.weight else "zero weight"
        else:
            fresh.append(s)
    if not fresh:
        raise InputError("sources", f"no source updated within {rule.max_age_s:g} s")
    prices = np.array([s.price for s in fresh])
    weights = np.array([s.weight for s in fresh])
    median = float(np.median(prices))
    keep = np.ones(len(fresh), dtype=bool)
    if rule.exclude_band is not None:
        far = np.abs(prices / median - 1.0) > rule.exclude_band
        if far.sum() > 1:
            for s in fresh:
                status[s.venue] = "used"
            return IndexResult(median, status, fallback_median=True)
        keep = ~far
    if rule.cap_band is not None:
        lo, hi = median * (1 - rule.cap_band), median * (1 + rule.cap_band)
        capped = np.clip(prices, lo, hi)
    else:
        capped = prices
    for s, k, p, c in zip(fresh, keep, prices, capped, strict=True):
        status[s.venue] = "outlier" if not k else ("capped" if c != p else "used")
    w = weights[keep]
    price = float(np.dot(w, capped[keep]) / w.sum())
    return IndexResult(price, status)
