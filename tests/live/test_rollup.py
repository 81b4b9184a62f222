"""The compiled account roll-up (``live.rollup.unit_rollup``) against ``policy.assess``'s
account arithmetic written out in Python: currency, sums, spare, status and ratio."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from margin_engine.live.rollup import unit_rollup
from margin_engine.policy import health

_SEV = {health.Status.HEALTHY: 0, health.Status.MARGIN_CALL: 1, health.Status.LIQUIDATION: 2}
USD = 0
PRICES = np.array([1.0, 76_000.0, 2_900.0, 0.9998])  # USD, BTC, ETH, USDC


def _reference(units: list[tuple[int, float, float, float]]) -> tuple:
    if not units:
        return USD, 0.0, 0.0, math.inf, None, None
    ccys = {c for c, *_ in units}
    dest = ccys.pop() if len(ccys) == 1 else USD

    def conv(x: float, c: int) -> float:
        return x if c == dest else x * PRICES[c] / PRICES[dest]

    im = mm = 0.0
    for c, i, m, _ in units:
        im += conv(i, c)
        mm += conv(m, c)
    spare = min(conv(e - i, c) for c, i, _, e in units)
    sev = max(_SEV[health.status(i, m, e)] for _, i, m, e in units)
    ratios = [health.margin_ratio(m, e) for _, _, m, e in units]
    ratio = None if any(r is None for r in ratios) else max(r for r in ratios if r is not None)
    return dest, im, mm, spare, sev, ratio


amount = st.one_of(st.sampled_from([0.0, -0.0, 1.0, -5.0]), st.floats(-1e9, 1e9))
unit = st.tuples(st.integers(0, 3), st.floats(0, 1e9), st.floats(0, 1e9), amount)


@settings(max_examples=200, deadline=None)
@given(accounts=st.lists(st.lists(unit, max_size=5), min_size=1, max_size=6))
def test_rollup_is_the_account_arithmetic(accounts):
    flat = [u for a in accounts for u in a]
    cols = [np.array([u[k] for u in flat], dtype=np.int64 if k == 0 else np.float64)
            for k in range(4)]
    nu = np.array([len(a) for a in accounts], dtype=np.int64)
    accy, im, mm, spare, status, ratio = unit_rollup(nu, cols[0], cols[1], cols[2], cols[3],
                                                     PRICES, USD)
    for k, a in enumerate(accounts):
        dest, r_im, r_mm, r_spare, r_sev, r_ratio = _reference(a)
        assert accy[k] == dest and im[k] == r_im and mm[k] == r_mm and spare[k] == r_spare
        if a:
            assert status[k] == r_sev
            assert math.isnan(ratio[k]) if r_ratio is None else ratio[k] == r_ratio
