"""The dynamic margin controller (``policy.dynamic``) on a cascade path: one multiplier per
step, applied to the maintenance margin.

The controller is daily; on an intraday path each step counts as one controller "day" (its
limits — notice, days between changes — are then counted in steps). Its inputs at step ``t``
are known at ``t`` (no look-ahead): the EWMA volatility of the path's step returns up to ``t``
(the first coin's), scaled to a day, against ``long_run_vol``. ``timing`` picks the policy the
comparison needs: ``never`` (multiplier 1), ``early`` (stress from a volatility ratio of 1.2,
an increase effective at once) or ``late`` (stress from the controller's default ratio 1.5,
the increase announced ``late_notice`` steps ahead).
"""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np

from margin_engine.analysis.cascade.shock import PricePath
from margin_engine.errors import InputError
from margin_engine.maths.volatility import ewma_variance
from margin_engine.policy.dynamic import DynamicConfig, RegimeInputs, run_controller

TIMINGS = ("never", "early", "late")
# Long-run daily volatility of BTC: RMS of daily log returns 2015-01-01 – 2026-02-13
# (../shared/data/real/btcusd_daily_close_volume_2015-01-01_2026-02-13_lukmol.csv, 4,061
# returns): 3.55 %/day; used for every coin (UNCONFIRMED for the others).
LONG_RUN_DAILY_VOL = 0.0355


def step_multipliers(path: PricePath, timing: str = "early", *,
                     long_run_vol: float = LONG_RUN_DAILY_VOL, late_notice: int = 3,
                     config: DynamicConfig | None = None) -> np.ndarray:
    """Maintenance multiplier at each step (shape ``steps + 1``).

    The controller raises margin in a stress regime only through its liquidity add-on and
    floor; in the volatility regime it *releases* its buffer (anti-procyclical, EMIR Art. 28).
    Here it is configured as a raise-in-stress controller: no buffer in normal times
    (``buffer = 0``), ``stressed_buffer`` 0.5 held in stress — a policy choice stated in
    docs/cascades.md, not a venue's rule.

    Raises
    ------
    InputError
        ``--dynamic``: an unknown timing.
    """
    if timing not in TIMINGS:
        raise InputError("--dynamic", f"unknown timing {timing!r} ({', '.join(TIMINGS)})")
    n = path.steps + 1
    if timing == "never":
        return np.ones(n)
    base = config or DynamicConfig(
        buffer=0.0, stressed_buffer=0.5, min_days_between_changes=0, max_step_up=0.5,
        floor="off", initial_multiplier=1.0, min_multiplier=1.0, max_multiplier=2.0,
        notice_days=0 if timing == "early" else late_notice,
        stress_enter=1.2 if timing == "early" else 1.5, stress_exit=1.1)
    r = np.diff(np.log(path.relative[:, 0]))
    per_day = math.sqrt(86_400.0 / path.step_seconds)
    var = ewma_variance(r, lam=0.94, initial_variance=(long_run_vol / per_day) ** 2)
    vol = np.sqrt(np.asarray(var, dtype=float)[:n]) * per_day
    inputs = [RegimeInputs(ewma_vol=max(float(v), 1e-6), long_run_vol=long_run_vol)
              for v in vol]
    days = [date(2000, 1, 1) + timedelta(days=k) for k in range(n)]
    run = run_controller(days, np.ones(n), inputs, base)
    return np.asarray(run.multiplier, dtype=float)
