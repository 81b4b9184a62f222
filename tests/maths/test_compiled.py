"""A kernel compiled serially and in parallel (``maths.compiled.twins``)."""

from __future__ import annotations

import numpy as np
from numba import prange

from margin_engine.maths import compiled


def _row_sums(x, out):  # pragma: no cover - compiled
    for i in prange(x.shape[0]):
        s = 0.0
        for j in range(x.shape[1]):
            s += x[i, j]
        out[i] = s


TWINS = compiled.twins(_row_sums)


def test_twins_agree_and_are_cached_apart(monkeypatch):
    x = np.random.default_rng(1).normal(size=(300, 17))
    a, b = np.empty(300), np.empty(300)
    TWINS.serial(x, a)
    TWINS.parallel(x, b)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, [sum(row) for row in x.tolist()])  # left to right, as the loop
    assert TWINS.serial.targetoptions.get("parallel") is None
    assert TWINS.parallel.targetoptions["parallel"] is True
    # numba keys its disk cache by qualified name: one name each, or they would share one
    assert TWINS.serial.py_func.__qualname__ != TWINS.parallel.py_func.__qualname__
    assert TWINS.for_units(compiled.PARALLEL_FROM - 1) is TWINS.serial
    assert TWINS.for_units(compiled.PARALLEL_FROM) is TWINS.parallel
    monkeypatch.setattr(compiled, "PARALLEL_FROM", 1)
    assert TWINS.for_units(1) is TWINS.parallel
