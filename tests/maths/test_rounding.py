"""``round_decimals`` gives Python's ``round`` to the bit, near-ties and huge values included."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from margin_engine.maths.rounding import round_decimals


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=-1e12, max_value=1e12, allow_nan=False), min_size=1,
                max_size=20), st.integers(0, 12))
def test_equals_python_round(values, decimals):
    got = round_decimals(np.array(values), decimals)
    assert got.tolist() == [round(v, decimals) for v in values]


def test_near_ties_and_large_values():
    rng = np.random.default_rng(0)
    ties = (rng.integers(-10**6, 10**6, 2000) + 0.5) / 1e9  # x·1e9 at a half, as floats allow
    near = ties + rng.choice([-1, 1], 2000) * np.spacing(ties) * rng.integers(0, 4, 2000)
    large = rng.uniform(-1, 1, 500) * 1e10
    x = np.concatenate([ties, near, large, [0.0, -0.0, 1e-300, 2.5e-9, -3.5e-9]])
    for d in (0, 3, 9):
        assert [float(v) for v in round_decimals(x, d)] == [round(float(v), d) for v in x]
    assert round_decimals(x, None).tolist() == x.tolist()
