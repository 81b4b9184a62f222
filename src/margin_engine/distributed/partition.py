"""Accounts cut into contiguous partitions of about equal position counts."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np


def balanced_bounds(sizes: Sequence[int], parts: int) -> list[tuple[int, int]]:
    """``[start, stop)`` ranges over ``len(sizes)`` items, contiguous and in order:
    ``min(parts, len(sizes))`` ranges, none empty, each cut placed nearest to a multiple of
    ``sum(weight) / parts``, where an item weighs its size plus one (so empty accounts spread).

    Parameters
    ----------
    sizes : positions per account, in book order.
    parts : wanted number of partitions (≥ 1).
    """
    n = len(sizes)
    if parts < 1:
        raise ValueError(f"parts: must be ≥ 1, got {parts}")
    if n == 0:
        return []
    m = min(parts, n)
    cum = np.cumsum(np.asarray(sizes, dtype=np.int64) + 1)
    edges = [0]
    for k in range(1, m):
        t = cum[-1] * k / m
        i = int(np.searchsorted(cum, t, side="left"))  # first account reaching the target
        # cut before account i or after it, whichever lands nearer the target
        c = i + 1 if i == 0 or cum[i] - t <= t - cum[i - 1] else i
        edges.append(min(max(c, edges[-1] + 1), n - (m - k)))  # one account per part left
    edges.append(n)
    return list(itertools.pairwise(edges))
