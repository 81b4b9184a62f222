"""The perpetual mark price of Binance USDⓈ-M futures (docs/index-and-mark.md).

Binance FAQ "What Are Mark Price and Price Index in USDⓈ-Margined Futures" and the announcement of
2025-09-16 (effective 2025-09-18 08:01 UTC)::

    mark    = median(price1, price2, last price)
    price1  = index × (1 + last funding rate × time until funding / funding interval)
    price2  = index + moving average of the basis ((bid1 + ask1)/2 − index), 30 one-second points

The median of three makes the mark follow the index (with its funding carry and recent basis)
unless the last trade lies between those two anchors: a single trade far from the index cannot
move it. ``cap`` optionally bounds the mark to ``index × [1 − cap, 1 + cap]``; that bound is our
addition for venues that publish one (Binance does not state one for USDⓈ-M perpetuals), off by
default.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from margin_engine.errors import InputError


def basis_moving_average(mids: Sequence[float], indices: Sequence[float]) -> float:
    """The mean of ``mid_i − index_i`` over the window given (Binance: 30 one-second points).

    Raises
    ------
    InputError
        ``mids``: empty, of another length than ``indices``, or not finite.
    """
    if not mids or len(mids) != len(indices):
        raise InputError("mids", "must be non-empty and as long as indices")
    diffs = [m - i for m, i in zip(mids, indices, strict=True)]
    if not all(math.isfinite(d) for d in diffs):
        raise InputError("mids", "must be finite")
    return sum(diffs) / len(diffs)


@dataclass(frozen=True)
class MarkPrice:
    """The mark and its three candidates."""

    price: float
    price1: float
    price2: float
    last: float


def perpetual_mark_price(index: float, last_price: float, basis_ma: float, funding_rate: float,
                         time_to_funding_s: float, funding_interval_s: float = 8 * 3600.0,
                         cap: float | None = None) -> MarkPrice:
    """``median(price1, price2, last)`` of the Binance USDⓈ-M perpetual (module docstring).

    Parameters
    ----------
    index : float
        The index price now (:func:`margin_engine.policy.index_price.composite_index`).
    last_price : float
        The contract's last traded price.
    basis_ma : float
        :func:`basis_moving_average` of the recent order-book mid minus index.
    funding_rate : float
        The last funding rate (per interval, e.g. 0.0001).
    time_to_funding_s, funding_interval_s : float
        Seconds to the next funding and the funding interval (8 h by default).
    cap : float or None
        Optional relative bound around the index.

    Raises
    ------
    InputError
        Non-positive prices, non-finite inputs, time outside ``[0, interval]``.
    """
    for name, v in (("index", index), ("last_price", last_price)):
        if not (math.isfinite(v) and v > 0):
            raise InputError(name, "must be a positive finite number")
    for name, v in (("basis_ma", basis_ma), ("funding_rate", funding_rate)):
        if not math.isfinite(v):
            raise InputError(name, "must be finite")
    if not (math.isfinite(funding_interval_s) and funding_interval_s > 0):
        raise InputError("funding_interval_s", "must be > 0")
    if not 0 <= time_to_funding_s <= funding_interval_s:
        raise InputError("time_to_funding_s", "must lie within [0, funding_interval_s]")
    price1 = index * (1 + funding_rate * time_to_funding_s / funding_interval_s)
    price2 = index + basis_ma
    mark = sorted((price1, price2, last_price))[1]
    if cap is not None:
        if not (math.isfinite(cap) and cap >= 0):
            raise InputError("cap", "must be a non-negative number")
        mark = min(max(mark, index * (1 - cap)), index * (1 + cap))
    return MarkPrice(mark, price1, price2, last_price)
