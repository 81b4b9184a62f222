"""Contiguous partitions balanced by position count: every account once, in order."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from margin_engine.distributed.partition import balanced_bounds


@given(st.lists(st.integers(0, 50), max_size=60), st.integers(1, 12))
def test_bounds_cover_every_account_once_in_order(sizes, parts):
    bounds = balanced_bounds(sizes, parts)
    flat = [k for a, b in bounds for k in range(a, b)]
    assert flat == list(range(len(sizes)))
    assert all(b > a for a, b in bounds)
    assert len(bounds) == min(parts, len(sizes))


@given(st.lists(st.integers(0, 50), min_size=1, max_size=60), st.integers(1, 12))
def test_no_partition_exceeds_the_even_share_by_more_than_one_account(sizes, parts):
    bounds = balanced_bounds(sizes, parts)
    w = np.asarray(sizes) + 1
    share = w.sum() / len(bounds)
    for a, b in bounds:
        assert w[a:b].sum() <= share + w.max()


def test_even_accounts_split_evenly():
    assert balanced_bounds([10] * 8, 4) == [(0, 2), (2, 4), (4, 6), (6, 8)]
    # one large account first: it fills the first partition alone
    assert balanced_bounds([97, 1, 1, 1], 2) == [(0, 1), (1, 4)]


def test_parts_must_be_positive():
    with pytest.raises(ValueError, match="parts: must be ≥ 1"):
        balanced_bounds([1, 2], 0)
