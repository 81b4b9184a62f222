"""Price histories for the risk-based models: from files (any recognised format) or the
embedded synthetic generator."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from margin_engine.demo.synthetic import generate_history
from margin_engine.domain.history import PriceSeries
from margin_engine.errors import InputError
from margin_engine.io.history import load_history

SYNTHETIC_DAYS = 1500


def load_price_series(paths: Sequence[str | Path], *, keep_vol: bool = False) -> PriceSeries:
    """Daily closes from one or more history files (merged on the date). DVOL columns
    (``BTC_DVOL``, annualised decimal) are dropped unless ``keep_vol`` (the risk-based models'
    implied-vol factor, docs/vol-factors.md)."""
    try:
        h = load_history(list(paths), frequency="1d")
    except (ValueError, OSError) as exc:
        raise InputError("--history", str(exc)) from None
    keep = [k for k, s in enumerate(h.symbols) if keep_vol or not s.endswith("_DVOL")]
    dates = h.dates.astype("datetime64[D]")
    return PriceSeries(dates, tuple(h.symbols[k] for k in keep), h.closes[:, keep],
                       " + ".join(sorted({Path(p).name for p in paths})))


def synthetic_series(until: date, *, seed: int = 7, days: int = SYNTHETIC_DAYS,
                     underlyings: tuple[str, ...] = ("BTC", "ETH")) -> PriceSeries:
    """The embedded synthetic history, ending the day before ``until``."""
    start = until - timedelta(days=days)
    doc = generate_history(seed=seed, start=start.isoformat(), days=days,
                           underlyings=underlyings)
    dates = np.array(doc["dates"], dtype="datetime64[D]")
    closes = np.column_stack([doc["closes"][u] for u in underlyings])
    return PriceSeries(dates, underlyings, closes, f"synthetic seed {seed}")
