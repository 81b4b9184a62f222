"""The dynamic controller on a cascade path: one multiplier per step, no look-ahead.

Derived by hand for ``BTC:-20%~6``: each hourly log return is ln(0.8)/6 = −0.03719; the EWMA
(λ 0.94) seeded at the long-run 3.55 %/day (per hour: 0.0355/√24) gives after one return
σ² = 0.94·(0.0355²/24) + 0.06·0.03719² = 1.3234e-4 per hour, i.e. 0.0563 per day: a ratio of
1.59 to the long-run 3.55 %. That is ≥ 1.2 (early) and ≥ 1.5 (late): early raises the
multiplier to 1.5 at step 1; late announces it at step 1 with 3 steps' notice (step 4)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from margin_engine.analysis.cascade.dynamic import step_multipliers
from margin_engine.analysis.cascade.shock import parse_shock
from margin_engine.errors import InputError


def test_ratio_by_hand():
    r = math.log(0.8) / 6
    var = 0.94 * 0.0355**2 / 24 + 0.06 * r**2
    assert math.sqrt(var * 24) / 0.0355 == pytest.approx(1.59, abs=0.005)


def test_early_late_never():
    p = parse_shock("BTC:-20%~6")
    assert step_multipliers(p, "never").tolist() == [1.0] * 7
    assert step_multipliers(p, "early").tolist() == [1.0] + [1.5] * 6
    assert step_multipliers(p, "late").tolist() == [1.0] * 4 + [1.5] * 3


def test_calm_path_stays_at_one_and_no_look_ahead():
    calm = parse_shock("BTC:-1%~6")
    assert np.all(step_multipliers(calm, "early") == 1.0)
    # a crash at step 5 cannot change the multiplier before step 5
    late_crash = parse_shock("BTC:-1%~4,BTC:-20%@5")
    m = step_multipliers(late_crash, "early")
    assert np.all(m[:5] == 1.0) and m[5] == 1.5


def test_unknown_timing():
    with pytest.raises(InputError) as err:
        step_multipliers(parse_shock("BTC:-5%"), "soon")
    assert err.value.path == "--dynamic"
