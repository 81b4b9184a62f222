"""Account size and leverage distributions fitted to Hyperliquid's 2023 records.

Data: ``../shared/data/real/hyperliquid_non_mm_trades_2023-02-27_2023-05-02.csv.gz`` (35,691
trades of 254 non-market-maker users) and ``hyperliquid_non_mm_ledger_updates_...csv`` (560
deposits and withdrawals), from github ``hyperliquid-dex/historical_data`` at ``984357d``
(SOURCES.md). ``studies/cascades.py`` rebuilds each user's position per coin (cumulative signed
size), its notional at each trade (``|position| × price``) and its collateral (cumulative net
deposits at that time: realised P&L is not in the ledger, so leverage is approximate), takes
each user's median notional and median leverage (notional ÷ collateral, floored at 1), and fits
a lognormal to the 245 users with both: :data:`HYPERLIQUID_FIT` (tests/studies checks that the
study reproduces these numbers).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from margin_engine.analysis.cascade.population import PopulationFit


def fit_lognormal(values: ArrayLike) -> tuple[float, float]:
    """``(mu, sigma)`` of ``log(values)`` (maximum likelihood: mean and population std of the
    logs of the positive, finite values).

    Raises
    ------
    ValueError
        With fewer than two usable values.
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    if v.size < 2:
        raise ValueError("values: need at least two positive finite values")
    lv = np.log(v)
    return float(lv.mean()), float(lv.std())


# studies/cascades.py on the 2023 records (2026-12-06): 245 users; per-user medians.
HYPERLIQUID_FIT = PopulationFit(
    notional_mu=6.071415042658191, notional_sigma=1.5315606351056514,
    leverage_mu=1.07995733890103, leverage_sigma=0.9721763549342594,
    long_share=0.537590017382667, notional_min=10.0, notional_max=5e7, leverage_max=50.0,
    source="Hyperliquid non-MM trades and ledger 2023-02-26 – 2023-05-02 (hyperliquid-dex/"
           "historical_data 984357d): lognormal per-user median notional (median "
           f"{math.exp(6.071415042658191):,.0f} USD) and leverage (median "
           f"{math.exp(1.07995733890103):.2f}×); max leverage 50× (Hyperliquid 2023 cap)")
