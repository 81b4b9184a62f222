"""One numba kernel compiled twice: on every core for large calls, on one core for small ones.

A ``prange`` kernel compiled with ``parallel=True`` pays for it twice on a small book: starting
the threads costs more than they save on a few units (a tick, a what-if, the demo book), and
the parallel lowering is the slow part of the first compilation (seconds per kernel, once per
machine; the cache then loads it). :func:`twins` compiles the same Python function both ways,
lazily, each under its own cache entry (numba keys a cache by the function's qualified name,
so two ``njit`` of one function would share, and load, one compilation); a caller picks with
:meth:`Twins.for_units`.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numba

PARALLEL_FROM = 256
"""Units per call from which the parallel compilation runs (below it, the serial one)."""


@dataclass(frozen=True)
class Twins:
    """The serial and the parallel compilation of one kernel."""

    serial: Callable[..., Any]
    parallel: Callable[..., Any]

    def for_units(self, n: int) -> Callable[..., Any]:
        """The compilation to run on ``n`` units: parallel from :data:`PARALLEL_FROM` on."""
        return self.parallel if n >= PARALLEL_FROM else self.serial


def twins(fn: Callable[..., Any]) -> Twins:
    """``fn`` (a ``prange`` kernel) compiled on one core (``nogil``) and on every core, both
    cached on disk, each compiled on its first call."""
    copy = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__,
                              fn.__closure__)
    copy.__qualname__ = f"{fn.__qualname__}_parallel"
    copy.__module__ = fn.__module__
    copy.__doc__ = fn.__doc__
    return Twins(numba.njit(cache=True, nogil=True)(fn),
                 numba.njit(parallel=True, cache=True)(copy))
