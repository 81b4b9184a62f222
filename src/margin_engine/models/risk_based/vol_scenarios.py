"""Joint price and implied-vol scenarios for the risk-based family (docs/vol-factors.md).

The log of the 30-day implied vol (the history's ``<U>_DVOL`` column; the EWMA realised-vol
proxy before it starts, :func:`margin_engine.maths.vol_factors.vol_log_changes`) is one more
column of the daily returns handed to the model's own generator, so that:

- ``historical-var`` takes the joint ``h``-day price move and vol log-change of each window;
- ``filtered-es`` filters the vol log-changes by their own EWMA σ and revolatilises them by
  today's vol-of-vol, exactly as it does the prices;
- ``monte-carlo-es`` draws them from its Student-t copula with the correlation of the
  devolatilised price and vol changes (a fitted joint model) and t marginals.

A column's ``h``-day move ``y = exp(Σ Δln σ) − 1`` becomes the absolute 30-day shift
``σ_now·y`` with ``σ_now`` the index on the last return's date (the proxy level, scaled to
the index where both exist, when the index has stopped). The 30-day skew moves by
``skew_loading · ln(1 + y)``. Nothing after the day before the market date is read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from margin_engine.domain.history import PriceSeries
from margin_engine.domain.market import MarketSnapshot
from margin_engine.maths import vol_factors
from margin_engine.maths.scenarios import ScenarioSet

if TYPE_CHECKING:
    from margin_engine.models.risk_based.model import RiskBasedModel

#: Suffix of an implied-vol index column in a history (``BTC_DVOL``).
VOL_SUFFIX = "_DVOL"


def vol_symbol(underlying: str) -> str:
    return underlying + VOL_SUFFIX


def vol_factor_columns(history: PriceSeries, underlying: str, until: np.datetime64,
                       labels: list[str]) -> tuple[np.ndarray, float, int]:
    """The vol factor's daily log-changes on ``labels`` (return end dates), today's level and
    how many of them come from the proxy.

    Returns
    -------
    changes : float64 [len(labels)]
    level : float
        The index on the last return's date, or the scaled proxy level where it is missing.
    proxied : int
    """
    r, lab = history.log_returns((underlying,), until)
    keep = history.dates <= until
    d = history.dates[keep]
    lv = history.closes[keep][:, history.symbols.index(vol_symbol(underlying))]
    px = history.closes[keep][:, history.symbols.index(underlying)]
    # index levels on the return axis: level at the end of return i is at d[i + 1]
    ch, proxied = vol_factors.vol_log_changes(r[:, 0], lv)
    # a gap in the dates gives no price return, and then no vol change either
    at = {s: k for k, s in enumerate(lab)}
    rows = np.array([at[s] for s in labels], dtype=np.int64)
    out = ch[rows]
    level = float(lv[-1]) if lv.size and np.isfinite(lv[-1]) else float("nan")
    if not np.isfinite(level):
        with np.errstate(divide="ignore", invalid="ignore"):
            rr = np.diff(np.log(px))
        rr[np.diff(d.astype(np.int64)) != 1] = np.nan
        proxy = np.concatenate([[np.nan], vol_factors.ewma_vol(rr)])
        scale = vol_factors.proxy_scale(proxy, lv) if np.isfinite(lv).any() else 1.0
        level = float(scale * proxy[-1])
    return out, level, int(proxied[rows].sum())


Generator = Callable[[np.ndarray, list[str], tuple[str, ...]], ScenarioSet]


def joint_scenario_set(model: RiskBasedModel, market: MarketSnapshot,
                       underlyings: tuple[str, ...], returns: np.ndarray,
                       labels: list[str], generate: Generator | None = None) -> ScenarioSet:
    """The model's scenarios with the implied-vol factor drawn jointly (module docstring);
    the generator alone when no underlying has an index column or the factor is off. The
    set's ``surface_dynamics`` is the model's. ``generate`` defaults to the model's own (the
    APC floor passes the unfiltered historical one)."""
    p = model.params
    generate = generate or model.generate
    h = p.history
    with_vol = ([u for u in underlyings if vol_symbol(u) in h.symbols]
                if h is not None and p.vol_factor == "implied" else [])
    if not with_vol:
        scen = generate(returns, labels, underlyings)
        return _with_surface(scen, None, p.surface_dynamics)
    assert h is not None
    until = np.datetime64(market.timestamp.date(), "D") - np.timedelta64(1, "D")
    cols, levels = [], []
    for u in with_vol:
        ch, level, _ = vol_factor_columns(h, u, until, labels)
        cols.append(ch)
        levels.append(level)
    aug = np.column_stack([returns, *cols])
    names = underlyings + tuple(vol_symbol(u) for u in with_vol)
    scen = generate(aug, labels, names)
    m = len(underlyings)
    vol_shifts = np.array(scen.vol_shifts[:, :m])
    skew = np.zeros((scen.n, m))
    for k, u in enumerate(with_vol):
        j = underlyings.index(u)
        y = scen.price_moves[:, m + k]
        vol_shifts[:, j] = levels[k] * y
        skew[:, j] = p.skew_loading * np.log1p(y)
    return ScenarioSet(underlyings, np.array(scen.price_moves[:, :m]), vol_shifts,
                       scen.horizon_days, np.array(scen.weights), scen.labels,
                       scen.kind + "+implied-vol", skew, p.surface_dynamics)


def _with_surface(scen: ScenarioSet, skew: np.ndarray | None, dynamics: str) -> ScenarioSet:
    if skew is None and dynamics == scen.surface_dynamics:
        return scen
    return ScenarioSet(scen.underlyings, scen.price_moves, scen.vol_shifts, scen.horizon_days,
                       scen.weights, scen.labels, scen.kind, skew, dynamics)
