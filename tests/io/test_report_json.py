"""The report conversion (``io/report_json._plain``): a container of plain leaves is copied
whole, everything else item by item; both give the reference recursion's value (``plain`` of
tests/cli/test_compute_fast_path.py) and refuse a non-finite number."""

from __future__ import annotations

import math
from types import MappingProxyType
from typing import Any

import numpy as np
import pytest

from margin_engine.io.report_json import _plain

from ..cli.test_compute_fast_path import plain as reference


def same(a: Any, b: Any) -> bool:
    """Equal values of identical types all the way down (``1 == 1.0 == True`` is not enough)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


CASES = [
    [0.1, -2.5, 3e-300],                                  # floats only: copied whole
    (1.0, 2.0),                                           # a tuple becomes a list
    {"a": 1.5, "b": "x", "c": 2, "d": None, "e": True},   # mixed leaves
    {"s": [], "t": {}},                                   # empty containers
    [1e308, 1e308, -1.0],                                 # finite, but the sum overflows
    {"a": 1e308, "b": 1e308},
    {1: 0.5, "k": 2.0},                                   # a non-string key
    [np.float64(0.25), 1.0],                              # a float subclass
    np.array([0.5, 1.5]),                                 # an array
    {"m": MappingProxyType({"x": 1.0}), "n": [[1.0, "a"], (2, None)]},
    [True, False, 3, "s"],
]


@pytest.mark.parametrize("value", CASES, ids=range(len(CASES)))
def test_plain_equals_the_item_by_item_recursion(value: Any) -> None:
    assert same(_plain(value), reference(value))


@pytest.mark.parametrize("bad", [[1.0, math.inf], [math.nan], {"a": 1.0, "b": -math.inf},
                                 {"a": "x", "b": math.nan}, (0.0, [1.0, math.nan])])
def test_a_non_finite_number_is_refused(bad: Any) -> None:
    with pytest.raises(AssertionError):
        reference(bad)  # the reference asserts every float finite
    with pytest.raises(ArithmeticError):
        _plain(bad)


def test_the_copy_is_not_the_input() -> None:
    src = [1.0, 2.0]
    out = _plain(src)
    out.append(3.0)
    assert src == [1.0, 2.0]
