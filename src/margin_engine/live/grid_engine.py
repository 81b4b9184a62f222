"""What the scenario-grid engines (``span``, ``okx-pm``) share: per-instrument scenario rows
cached and revalued only when their instrument moves, and each unit's legs as arrays.

A subclass says how instruments are revalued (:meth:`GridEngine._revalue`) and how many units
are margined at once from the rows (:meth:`GridEngine._kernel`); this class keeps

- ``rows`` (``[instruments (+ extra rows), width]``): one long contract's scenario figures, and
  per-instrument scalar columns the subclass allocates in :meth:`GridEngine._allocate`;
  computed on first use, recomputed in :meth:`on_market` for the instruments that moved (all
  held ones when the snapshot's time moves: expiries shorten);
- each unit's legs (instrument row, size) as the concatenation the live book keeps, so a
  re-margin of many units is one kernel call over arrays. The kernel aggregates each unit's
  scenario vectors afresh from the cached rows (a pass over the unit's positions, as cheap as
  reading a cached vector of the same width); units are re-margined when the live book asks:
  on a tick, those holding what moved; on a fill or deposit, the account's.

A what-if adds the orders to the unit's sizes and runs the one-unit kernel on the cached rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numba
import numpy as np

from margin_engine.live.engines import ReferenceEngine

if TYPE_CHECKING:
    from margin_engine.live.book import LiveBook

FloatArray = np.ndarray


class GridEngine(ReferenceEngine):
    """Cached instrument scenario rows and a many-units kernel (see the module docstring)."""

    #: columns of ``rows`` (set by the subclass)
    width: int = 0

    def __init__(self, live: LiveBook) -> None:
        super().__init__(live)
        self._n_ins = len(live.instruments.instruments)
        self._timestamp = live.market.timestamp
        n = self._n_ins + self._extra_rows()
        self.rows = np.zeros((n, self.width))
        self.have = np.zeros(n, dtype=bool)
        self._allocate(n)
        self.on_units(live.live_slots())

    # -- what a subclass provides ------------------------------------------------------------
    def _extra_rows(self) -> int:
        """Rows after the instruments' (pseudo-instruments such as coin balances)."""
        return 0

    def _allocate(self, n: int) -> None:
        """Allocate the per-row scalar columns (``n`` rows)."""

    def _revalue(self, rows: np.ndarray) -> None:
        """Compute ``self.rows[rows]`` and the scalar columns of ``rows`` at the current market."""
        raise NotImplementedError

    def _kernel(self, idx: np.ndarray, lens: np.ndarray, slots: Sequence[int],
                sizes: np.ndarray) -> tuple[FloatArray, FloatArray]:
        """(IM, MM) of ``slots`` whose positions are ``idx`` (``lens`` per unit) with sizes
        ``sizes`` (aligned with ``idx``)."""
        raise NotImplementedError

    def _market_moved(self) -> None:
        """Hook after a market change (rows that depend on the whole market)."""

    # -- the engine interface --------------------------------------------------------------------
    def on_market(self, moved: np.ndarray) -> None:
        lv = self.live
        if lv.market.timestamp != self._timestamp:  # every expiry moved: revalue all held
            self._timestamp = lv.market.timestamp
            moved = np.arange(self._n_ins, dtype=np.int64)
        stale = moved[self.have[moved]] if moved.size else moved
        if stale.size:
            self._revalue(stale)
        self._market_moved()

    def ensure(self, rows: np.ndarray) -> None:
        """Compute the rows of instruments never revalued yet."""
        have = self.have[rows]
        if have.all():  # the usual case (a what-if on held instruments): nothing to sort
            return
        missing = np.unique(rows[~have])
        if missing.size:
            self._revalue(missing)
            self.have[missing] = True

    def margins(self, slots: Sequence[int]) -> tuple[FloatArray, FloatArray]:
        lv = self.live
        if not len(slots):
            return np.empty(0), np.empty(0)
        idx, lens = lv.concat_positions(slots)
        self.ensure(lv.pos_ins[idx])
        return self._kernel(idx, lens, slots, lv.pos_size[idx])

    def what_if(self, slot: int, orders: Sequence[tuple[int, float]]
                ) -> tuple[float, float] | None:
        """(IM, MM) of ``slot`` with the orders added: the unit's legs re-aggregated from the
        cached instrument rows (no revaluation, no rebuild); ``None`` when an order names an
        instrument the unit does not hold (the book rebuilds then)."""
        got = self.legs_after(slot, orders)
        if got is None:
            return None
        im, mm = self._kernel(got[0], np.array([got[0].size], dtype=np.int64), [slot], got[1])
        return float(im[0]), float(mm[0])

    def legs_after(self, slot: int, orders: Sequence[tuple[int, float]]
                   ) -> tuple[np.ndarray, np.ndarray] | None:
        """The unit's positions and their sizes with ``orders`` added (rows computed), or
        ``None`` when an order names an instrument the unit does not hold."""
        lv = self.live
        idx = lv.unit_positions(slot)
        ins = lv.pos_ins[idx]
        sizes = lv.pos_size[idx].copy()
        for row, q in orders:
            hit = np.flatnonzero(ins == row)
            if not hit.size:
                return None
            sizes[hit[0]] += q
        self.ensure(ins)
        return idx, sizes


@numba.njit(cache=True, nogil=True)
def distinct_sorted(values, n, out):  # pragma: no cover - compiled
    """The distinct values of ``values[:n]`` into ``out``, ascending; returns how many (what
    ``np.unique`` gives, without allocating: the kernels call it per unit and group)."""
    m = 0
    for i in range(n):
        v = values[i]
        j = 0
        while j < m and out[j] < v:
            j += 1
        if j < m and out[j] == v:
            continue
        for t in range(m, j, -1):
            out[t] = out[t - 1]
        out[j] = v
        m += 1
    return m
