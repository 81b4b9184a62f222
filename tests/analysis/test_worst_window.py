"""The headline traffic light: the worst rolling 250-day window (issue 11, item 5).

Expected counts are derived by hand from the constructed flag series (``derived``); the zones
from the BCBS (1996) table of ccp-standards §4.3 (green 0–4, yellow 5–9, red 10+ in 250 days,
``published``)."""

from __future__ import annotations

import numpy as np
import pytest

from margin_engine.analysis import backtest_stats as bs
from margin_engine.analysis.backtest import compute_statistics


def _flags(n: int, at: list[int]) -> np.ndarray:
    f = np.zeros(n, dtype=bool)
    f[at] = True
    return f


def test_the_worst_window_is_found_with_its_position():
    # 600 days: 3 exceptions early, a cluster of 7 between days 300 and 420, 2 at the end.
    # A 250-day window holds the whole cluster (121 days) and nothing else: 7 is the maximum;
    # the windows holding it start on days 171 … 300; the earliest is the headline — derived.
    at = [10, 25, 40, 300, 320, 340, 360, 380, 400, 420, 590, 599]
    w = bs.worst_window_traffic_light(_flags(600, at), 0.01, 250)
    assert w is not None
    assert w.traffic_light.n_exceptions == 7 and w.traffic_light.zone == "yellow"
    assert (w.first, w.last) == (171, 420)  # the earliest window with all 7: ends on day 420
    assert w.n_windows == 351
    assert w.traffic_light.plus_factor == 0.65  # BCBS 1996, 7 exceptions (published)


def test_the_last_window_can_be_green_while_the_worst_is_red():
    at = [*range(100, 111), 700]  # 11 exceptions in 11 days, then one
    f = _flags(1000, at)
    w = bs.worst_window_traffic_light(f, 0.01, 250)
    assert w is not None and w.traffic_light.zone == "red"
    assert w.traffic_light.n_exceptions == 11
    last = bs.basel_traffic_light(int(f[-250:].sum()), 250, 0.01)
    assert last.zone == "green"  # what the old headline showed


def test_no_light_on_fewer_days_than_the_window():
    assert bs.worst_window_traffic_light(_flags(249, [3]), 0.01, 250) is None
    w = bs.worst_window_traffic_light(_flags(250, [3]), 0.01, 250)
    assert w is not None and w.n_windows == 1 and (w.first, w.last) == (0, 249)


def test_bad_window_is_refused():
    with pytest.raises(ValueError, match="window"):
        bs.worst_window_traffic_light(_flags(300, [1]), 0.01, 0)


def test_statistics_carry_the_worst_window_dates_and_year_counts():
    # 2019-07-01 … 2021-03-31: 2019 has 184 days (no light), 2020 366 (a light), 2021 90.
    dates = np.arange(np.datetime64("2019-07-01"), np.datetime64("2021-04-01"))
    n = dates.size
    margin = np.ones(n)
    loss = np.zeros(n)
    loss[[5, 200, 201, 202, 203, 204, 205, 400]] = 2.0  # exceptions
    st = compute_statistics(dates, margin, loss, np.ones(n), confidence=0.99)
    years = {y.year: y for y in st.traffic_light_by_year}
    assert years[2019].n_obs == 184 and years[2019].traffic_light is None
    assert years[2021].n_obs == 90 and years[2021].traffic_light is None
    assert years[2020].n_obs == 366 and years[2020].traffic_light is not None
    assert years[2020].n_exceptions == 7  # days 200 … 205 (2020-01-17 … 22) and 400
    w = st.traffic_light_worst_250
    assert w is not None and w.traffic_light.n_exceptions == 7  # day 5 and the six: 201 d
    assert w.first_day == dates[0] and w.last_day == dates[249]
