"""The hot loop: positions -> margin-unit P&L -> risk measure, fused (DESIGN §1, §6).

Inputs are the instrument scenario P&L (each instrument revalued once per scenario set) and the
positions in CSR form grouped by margin unit:

- ``instrument_pnl`` float64 [n_instruments, n_scenarios], C-contiguous: P&L of one unit of size
  (one contract) of each instrument in each scenario, already in the margin unit's currency;
- ``unit_ptr`` int64 [n_units + 1]: positions of unit ``u`` are ``unit_ptr[u]:unit_ptr[u+1]``;
- ``pos_instrument`` int64 [n_positions]: row of ``instrument_pnl`` each position holds;
- ``pos_size`` float64 [n_positions]: signed size (contracts, long > 0).

:func:`aggregate` runs a numba ``parallel=True`` kernel: for each unit it accumulates the unit's
loss row in a thread-local scratch of ``n_scenarios`` float64 (it stays in L1) and applies the
measure at once, so the [n_units x n_scenarios] account matrix never exists. The VaR / ES tail is
found with a partial selection: an insertion buffer holding the ``m`` worst losses, where ``m``
is the largest number of scenarios the tail can need (``floor(n p) + 1`` with equal weights;
with weights, the smallest ``m`` whose ``m`` smallest weights exceed ``p``). When ``m`` is large
the kernel uses ``np.partition`` (equal weights) or sorts the row (weights) instead.
:func:`aggregate_reference` is the plain NumPy/SciPy path (one ``scipy.sparse`` product, then
:mod:`margin_engine.maths.risk_measures`); tests cross-check them.

The measures and their tie and tolerance rules are those of
:mod:`margin_engine.maths.risk_measures`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numba
import numpy as np
import scipy.sparse as sp
from numba import prange
from numpy.typing import ArrayLike, NDArray

from margin_engine.maths.risk_measures import (
    TAIL_TOLERANCE,
    expected_shortfall_rows,
    normalise_weights,
    value_at_risk_rows,
    worst_loss_rows,
)

__all__ = [
    "UnitRisk",
    "aggregate",
    "aggregate_reference",
    "positions_to_csr",
    "unit_pnl_reference",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
Measure = Literal["worst_loss", "var", "es"]

_MEASURE_CODE = {"worst_loss": 0, "var": 1, "es": 2}
# selection methods of the kernel (the bench compares them; `aggregate` picks automatically)
SELECT_INSERTION = 0  # insertion buffer of the m worst losses
SELECT_SORT = 1  # stable argsort of the whole row
SELECT_PARTITION = 2  # np.partition (equal weights only)
# Above these buffer sizes the insertion buffer loses (measured on the 2-core box, 1,000
# scenarios, docs/risk-kernel.md): to np.partition with equal weights, to a sort with weights.
_INSERTION_MAX_M_EQUAL = 128
_INSERTION_MAX_M_WEIGHTED = 256


def choose_method(m: int, weighted: bool) -> int:
    """Selection method for a tail buffer of ``m`` scenarios."""
    if weighted:
        return SELECT_INSERTION if m <= _INSERTION_MAX_M_WEIGHTED else SELECT_SORT
    return SELECT_INSERTION if m <= _INSERTION_MAX_M_EQUAL else SELECT_PARTITION


@dataclass(frozen=True)
class UnitRisk:
    """A risk measure per margin unit.

    Attributes
    ----------
    measure : {"worst_loss", "var", "es"}
    confidence : float or None
        ``None`` for ``worst_loss``.
    values : float64 array [n_units]
        The non-negative loss per unit, in the units' currency (that of ``instrument_pnl``).
    worst_scenario : int64 array [n_units]
        Index of each unit's worst scenario (largest loss, lowest index on ties); -1 for a unit
        with no positions.
    """

    measure: Measure
    confidence: float | None
    values: FloatArray
    worst_scenario: IntArray


# --------------------------------------------------------------------------------------------
# validation and set-up shared by the kernel and the reference


@dataclass(frozen=True)
class _Inputs:
    pnl: FloatArray
    unit_ptr: IntArray
    pos_instrument: IntArray
    pos_size: FloatArray
    measure: Measure
    confidence: float | None
    weights: FloatArray | None  # normalised; None = equal weights


def _validate(
    instrument_pnl: ArrayLike,
    unit_ptr: ArrayLike,
    pos_instrument: ArrayLike,
    pos_size: ArrayLike,
    measure: str,
    confidence: float | None,
    weights: ArrayLike | None,
) -> _Inputs:
    pnl = np.ascontiguousarray(instrument_pnl, dtype=np.float64)
    if pnl.ndim != 2 or pnl.shape[1] == 0:
        raise ValueError(
            "instrument_pnl: expected a 2-D array [n_instruments x n_scenarios] with at least one"
            f" scenario, got shape {pnl.shape}"
        )
    if not np.all(np.isfinite(pnl)):
        raise ValueError("instrument_pnl: contains a value that is not a finite number")
    ptr = np.ascontiguousarray(unit_ptr, dtype=np.int64)
    inst = np.ascontiguousarray(pos_instrument, dtype=np.int64)
    size = np.ascontiguousarray(pos_size, dtype=np.float64)
    if ptr.ndim != 1 or ptr.size < 1:
        raise ValueError("unit_ptr: expected a 1-D array of n_units + 1 offsets")
    if inst.ndim != 1 or size.ndim != 1 or inst.shape != size.shape:
        raise ValueError(
            f"pos_instrument, pos_size: expected 1-D arrays of equal length, got shapes"
            f" {inst.shape} and {size.shape}"
        )
    n_pos = inst.shape[0]
    if ptr[0] != 0 or ptr[-1] != n_pos:
        raise ValueError(f"unit_ptr: must start at 0 and end at n_positions ({n_pos})")
    if np.any(np.diff(ptr) < 0):
        raise ValueError("unit_ptr: offsets must be non-decreasing")
    if n_pos and (inst.min() < 0 or inst.max() >= pnl.shape[0]):
        raise ValueError(
            f"pos_instrument: indices must lie in [0, {pnl.shape[0]}) (rows of instrument_pnl)"
        )
    if not np.all(np.isfinite(size)):
        raise ValueError("pos_size: contains a value that is not a finite number")
    if measure not in _MEASURE_CODE:
        raise ValueError(f"measure: must be 'worst_loss', 'var' or 'es', got {measure!r}")
    if measure == "worst_loss":
        if confidence is not None or weights is not None:
            raise ValueError("confidence/weights: not used by measure 'worst_loss'; pass None")
        w = None
        conf = None
    else:
        if confidence is None:
            raise ValueError(f"confidence: required for measure {measure!r}")
        conf = float(confidence)
        if not np.isfinite(conf) or not 0.0 < conf < 1.0:
            raise ValueError(
                f"confidence: must be a number strictly between 0 and 1, got {confidence!r}"
            )
        w = normalise_weights(weights, pnl.shape[1])
    return _Inputs(pnl, ptr, inst, size, measure, conf, w)  # type: ignore[arg-type]


def positions_to_csr(
    unit_index: ArrayLike, pos_instrument: ArrayLike, pos_size: ArrayLike, n_units: int
) -> tuple[IntArray, IntArray, FloatArray, IntArray]:
    """Group positions by margin unit into the CSR layout the kernel reads.

    Parameters
    ----------
    unit_index : int array [n_positions]
        Margin unit of each position, in ``[0, n_units)``.
    pos_instrument : int array [n_positions]
        Instrument row of each position.
    pos_size : float array [n_positions]
        Signed size in contracts.
    n_units : int

    Returns
    -------
    unit_ptr, pos_instrument, pos_size, order
        The CSR arrays and ``order`` (int64 [n_positions]) such that the CSR arrays are the inputs
        taken at ``order`` (stable: positions keep their input order inside a unit).
    """
    u = np.asarray(unit_index, dtype=np.int64)
    inst = np.asarray(pos_instrument, dtype=np.int64)
    size = np.asarray(pos_size, dtype=np.float64)
    if u.ndim != 1 or u.shape != inst.shape or u.shape != size.shape:
        raise ValueError("unit_index, pos_instrument, pos_size: expected 1-D arrays of one length")
    if n_units < 0 or (u.size and (u.min() < 0 or u.max() >= n_units)):
        raise ValueError(f"unit_index: values must lie in [0, n_units={n_units})")
    order = np.argsort(u, kind="stable").astype(np.int64)
    ptr = np.zeros(n_units + 1, dtype=np.int64)
    np.cumsum(np.bincount(u, minlength=n_units), out=ptr[1:])
    return ptr, inst[order], size[order], order


# --------------------------------------------------------------------------------------------
# the reference


def unit_pnl_reference(
    instrument_pnl: ArrayLike, unit_ptr: ArrayLike, pos_instrument: ArrayLike, pos_size: ArrayLike
) -> FloatArray:
    """Materialised unit P&L [n_units x n_scenarios] as one ``scipy.sparse`` product.

    ``(positions as a sparse [n_units x n_instruments] matrix) @ instrument_pnl``; P&L, gains
    positive, in the currency of ``instrument_pnl``.
    """
    a = _validate(instrument_pnl, unit_ptr, pos_instrument, pos_size, "worst_loss", None, None)
    return _unit_pnl(a, 0, a.unit_ptr.shape[0] - 1)


def _unit_pnl(a: _Inputs, u0: int, u1: int) -> FloatArray:
    ptr = a.unit_ptr[u0 : u1 + 1]
    lo, hi = int(ptr[0]), int(ptr[-1])
    mat = sp.csr_matrix(
        (a.pos_size[lo:hi], a.pos_instrument[lo:hi], ptr - lo), shape=(u1 - u0, a.pnl.shape[0])
    )
    out: FloatArray = np.asarray(mat @ a.pnl, dtype=np.float64)
    return out


def aggregate_reference(
    instrument_pnl: ArrayLike,
    unit_ptr: ArrayLike,
    pos_instrument: ArrayLike,
    pos_size: ArrayLike,
    *,
    measure: Measure = "es",
    confidence: float | None = None,
    weights: ArrayLike | None = None,
    block_units: int = 8192,
) -> UnitRisk:
    """Plain NumPy/SciPy reference for :func:`aggregate` (same arguments and result).

    Materialises the unit P&L ``block_units`` units at a time with a ``scipy.sparse`` product and
    applies the row-wise measures of :mod:`margin_engine.maths.risk_measures`.
    """
    a = _validate(instrument_pnl, unit_ptr, pos_instrument, pos_size, measure, confidence, weights)
    n_units = a.unit_ptr.shape[0] - 1
    values = np.zeros(n_units)
    worst = np.full(n_units, -1, dtype=np.int64)
    step = max(1, int(block_units))
    for u0 in range(0, n_units, step):
        u1 = min(n_units, u0 + step)
        x = _unit_pnl(a, u0, u1)
        if a.measure == "worst_loss":
            values[u0:u1] = worst_loss_rows(x)
        elif a.measure == "var":
            assert a.confidence is not None
            values[u0:u1] = value_at_risk_rows(x, a.confidence, a.weights)
        else:
            assert a.confidence is not None
            values[u0:u1] = expected_shortfall_rows(x, a.confidence, a.weights)
        worst[u0:u1] = np.argmin(x, axis=1)
    empty = np.diff(a.unit_ptr) == 0
    worst[empty] = -1
    return UnitRisk(a.measure, a.confidence, values, worst)


# --------------------------------------------------------------------------------------------
# the fused kernel


@numba.njit(cache=True, nogil=True, fastmath=True)
def _max_8lane(loss: FloatArray) -> float:  # pragma: no cover - compiled
    """Largest value of a finite row; eight independent lanes so that it vectorises."""
    n = loss.shape[0]
    lanes = np.empty(8)
    for t in range(8):
        lanes[t] = loss[0]
    nb = n // 8
    for b in range(nb):
        for t in range(8):
            x = loss[b * 8 + t]
            lanes[t] = x if x > lanes[t] else lanes[t]
    best = lanes[0]
    for t in range(1, 8):
        best = lanes[t] if lanes[t] > best else best
    for s in range(nb * 8, n):
        best = loss[s] if loss[s] > best else best
    return best


@numba.njit(cache=True, nogil=True)
def _argmax_first(loss: FloatArray) -> tuple[float, int]:  # pragma: no cover - compiled
    """(largest loss, its first index): a vectorised max, then a scan for its first position."""
    best = _max_8lane(loss)
    for s in range(loss.shape[0]):
        if loss[s] == best:
            return loss[s], s
    return loss[0], 0  # unreachable for finite rows


@numba.njit(cache=True, nogil=True)
def _clamp(es: float, var: float, worst: float) -> float:  # pragma: no cover - compiled
    """A tail mean lies in [VaR, worst loss]; guards the last-ulp rounding of the mean."""
    if es < var:
        return var
    if es > worst:
        return worst
    return es


@numba.njit(cache=True, nogil=True)
def _insert_top(
    loss: FloatArray, m: int, buf_v: FloatArray, buf_i: IntArray
) -> None:  # pragma: no cover - compiled
    """Fill buf_v/buf_i with the m largest losses, largest first, stable (lower index first)."""
    filled = 0
    for s in range(loss.shape[0]):
        x = loss[s]
        if filled == m:
            if not x > buf_v[m - 1]:
                continue
            j = m - 1
        else:
            j = filled
            filled += 1
        # shift smaller entries down; equal entries stay ahead (stability)
        while j > 0 and buf_v[j - 1] < x:
            buf_v[j] = buf_v[j - 1]
            buf_i[j] = buf_i[j - 1]
            j -= 1
        buf_v[j] = x
        buf_i[j] = s


@numba.njit(cache=True, nogil=True)
def _select(a: FloatArray, k: int) -> None:  # pragma: no cover - compiled
    """Reorder ``a`` in place so that ``a[k]`` is its k-th smallest value, none after it
    smaller and none before it larger (Hoare's quickselect, median-of-three pivots).

    The value at ``k`` and the values after it are those of ``np.partition(a, k)``; written
    out because numba's ``np.partition`` costs seconds to compile on first use."""
    lo = 0
    hi = a.shape[0] - 1
    while hi > lo:
        mid = (lo + hi) >> 1
        if a[mid] < a[lo]:
            a[mid], a[lo] = a[lo], a[mid]
        if a[hi] < a[lo]:
            a[hi], a[lo] = a[lo], a[hi]
        if a[hi] < a[mid]:
            a[hi], a[mid] = a[mid], a[hi]
        pivot = a[mid]
        i = lo
        j = hi
        while i <= j:
            while a[i] < pivot:
                i += 1
            while a[j] > pivot:
                j -= 1
            if i <= j:
                a[i], a[j] = a[j], a[i]
                i += 1
                j -= 1
        # a[lo..j] <= pivot <= a[i..hi]; anything between equals the pivot
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            return


@numba.njit(cache=True, nogil=True)
def _sift_down(a: FloatArray, root: int, end: int) -> None:  # pragma: no cover - compiled
    while True:
        child = 2 * root + 1
        if child >= end:
            return
        if child + 1 < end and a[child] < a[child + 1]:
            child += 1
        if not a[root] < a[child]:
            return
        a[root], a[child] = a[child], a[root]
        root = child


@numba.njit(cache=True, nogil=True)
def _heapsort(a: FloatArray) -> None:  # pragma: no cover - compiled
    """Sort ``a`` ascending in place (the values of ``np.sort(a)``; quick to compile)."""
    n = a.shape[0]
    for root in range(n // 2 - 1, -1, -1):
        _sift_down(a, root, n)
    for end in range(n - 1, 0, -1):
        a[0], a[end] = a[end], a[0]
        _sift_down(a, 0, end)


@numba.njit(cache=True, nogil=True)
def measure_row(
    loss: FloatArray,
    code: int,
    p: float,
    tol: float,
    weights: FloatArray,
    k_eq: int,
    atom_eq: float,
    m: int,
    method: int,
    buf_v: FloatArray,
    buf_i: IntArray,
) -> tuple[float, int]:  # pragma: no cover - compiled
    """(raw measure, worst scenario) of one loss row. Mirrors risk_measures._tail_rows."""
    n = loss.shape[0]
    equal = weights.shape[0] == 0
    if code == 0:
        return _argmax_first(loss)
    if method == SELECT_PARTITION and equal:
        vw, iw = _argmax_first(loss)
        # k_eq + 1 worst losses: partition so the (k_eq+1)-th largest sits at n-1-k_eq
        part = loss.copy()
        _select(part, n - 1 - k_eq)
        var = part[n - 1 - k_eq]
        if code == 1:
            return var, iw
        head = 0.0
        # the k_eq worst losses are the entries after n-1-k_eq; sort them to sum in the
        # same (worst first) order as the reference
        top = part[n - k_eq :]
        _heapsort(top)
        for j in range(k_eq - 1, -1, -1):
            head += top[j]
        den = k_eq + atom_eq * n
        es = (head + atom_eq * n * var) / den
        return _clamp(es, var, vw), iw
    if method == SELECT_SORT or m > n:
        order = np.argsort(-loss, kind="mergesort")
        mm = n
        for j in range(n):
            buf_v[j] = loss[order[j]]
            buf_i[j] = order[j]
    else:
        _insert_top(loss, m, buf_v, buf_i)
        mm = m
    # the buffer holds the worst losses, worst first, lower index first on ties
    iw = buf_i[0]
    vw = buf_v[0]
    if equal:
        var = buf_v[k_eq]
        if code == 1:
            return var, iw
        head = 0.0
        for j in range(k_eq):
            head += buf_v[j]
        den = k_eq + atom_eq * n
        es = (head + atom_eq * n * var) / den
        return _clamp(es, var, vw), iw
    # weighted: walk the worst scenarios until their probability exceeds p
    cum = 0.0
    num = 0.0
    k = -1
    for j in range(mm):
        wj = weights[buf_i[j]]
        if cum + wj > p + tol:
            k = j
            break
        cum += wj
        num += wj * buf_v[j]
    if k < 0:
        # not reached inside the buffer (rounding): redo on the fully sorted row
        order = np.argsort(-loss, kind="mergesort")
        cum = 0.0
        num = 0.0
        k = n - 1
        for j in range(n):
            wj = weights[order[j]]
            if j == n - 1 or cum + wj > p + tol:
                k = j
                break
            cum += wj
            num += wj * loss[order[j]]
        var = loss[order[k]]
        wk = weights[order[k]]
    else:
        var = buf_v[k]
        wk = weights[buf_i[k]]
    if code == 1:
        return var, iw
    atom = p - cum
    if k > 0 and atom < tol:
        atom = 0.0
    atom = min(max(atom, 0.0), wk)
    es = (num + atom * var) / (cum + atom)
    return _clamp(es, var, vw), iw


@numba.njit(parallel=True, cache=True)
def _aggregate_kernel(
    pnl: FloatArray,
    unit_ptr: IntArray,
    pos_instrument: IntArray,
    pos_size: FloatArray,
    chunk_ptr: IntArray,
    code: int,
    p: float,
    tol: float,
    weights: FloatArray,
    k_eq: int,
    atom_eq: float,
    m: int,
    method: int,
    out_value: FloatArray,
    out_worst: IntArray,
) -> None:  # pragma: no cover - compiled
    n_scen = pnl.shape[1]
    n_chunks = chunk_ptr.shape[0] - 1
    buf_len = n_scen if (method == SELECT_SORT or m > n_scen) else max(m, 1)
    for c in prange(n_chunks):
        loss = np.empty(n_scen)
        buf_v = np.empty(buf_len)
        buf_i = np.empty(buf_len, dtype=np.int64)
        for u in range(chunk_ptr[c], chunk_ptr[c + 1]):
            a = unit_ptr[u]
            b = unit_ptr[u + 1]
            if a == b:
                out_value[u] = 0.0
                out_worst[u] = -1
                continue
            # loss row = -(sum of size * instrument P&L), first position assigns; then four
            # positions per pass over the scratch row (same left-to-right order of operations)
            row = pnl[pos_instrument[a]]
            q = -pos_size[a]
            for s in range(n_scen):
                loss[s] = q * row[s]
            j = a + 1
            while j + 4 <= b:
                r0 = pnl[pos_instrument[j]]
                r1 = pnl[pos_instrument[j + 1]]
                r2 = pnl[pos_instrument[j + 2]]
                r3 = pnl[pos_instrument[j + 3]]
                q0 = pos_size[j]
                q1 = pos_size[j + 1]
                q2 = pos_size[j + 2]
                q3 = pos_size[j + 3]
                for s in range(n_scen):
                    loss[s] = (((loss[s] - q0 * r0[s]) - q1 * r1[s]) - q2 * r2[s]) - q3 * r3[s]
                j += 4
            while j < b:
                row = pnl[pos_instrument[j]]
                q = pos_size[j]
                for s in range(n_scen):
                    loss[s] -= q * row[s]
                j += 1
            val, iw = measure_row(
                loss, code, p, tol, weights, k_eq, atom_eq, m, method, buf_v, buf_i
            )
            out_worst[u] = iw
            out_value[u] = val if val > 0.0 else 0.0


def _chunks(unit_ptr: IntArray, n_chunks: int) -> IntArray:
    """Unit boundaries of chunks of about equal cost (one unit ~ one position of work)."""
    n_units = unit_ptr.shape[0] - 1
    if n_units == 0:
        return np.zeros(1, dtype=np.int64)
    n_chunks = max(1, min(n_chunks, n_units))
    cost = unit_ptr[1:] + np.arange(1, n_units + 1)  # cumulative cost after each unit
    targets = np.linspace(0, cost[-1], n_chunks + 1)[1:-1]
    cuts = np.searchsorted(cost, targets, side="left") + 1
    bounds = np.unique(np.concatenate([[0], cuts, [n_units]])).astype(np.int64)
    return bounds


def tail_plan(n: int, p: float, w: FloatArray | None) -> tuple[int, float, int]:
    """(k_eq, atom_eq, m): equal-weight VaR position and atom, and the selection size m."""
    if w is None:
        k_eq = min(int(np.floor(p * n + TAIL_TOLERANCE * n)), n - 1)
        atom = p - k_eq / n
        if k_eq > 0 and atom < TAIL_TOLERANCE:
            atom = 0.0
        atom = min(max(atom, 0.0), 1.0 / n)
        return k_eq, atom, k_eq + 1
    # any m scenarios weigh at least the m smallest weights: once those exceed p the tail
    # (and the VaR scenario) lie among the m worst; +2 guards rounding, the kernel re-checks
    cum = np.cumsum(np.sort(w))
    above = np.nonzero(cum > p + TAIL_TOLERANCE)[0]
    m = int(above[0]) + 1 if above.size else n
    return 0, 0.0, min(m + 2, n)


def _run_kernel(a: _Inputs, method: int | None = None, n_chunks: int | None = None) -> UnitRisk:
    n_units = a.unit_ptr.shape[0] - 1
    n_scen = a.pnl.shape[1]
    code = _MEASURE_CODE[a.measure]
    p = 1.0 - a.confidence if a.confidence is not None else 0.0
    k_eq, atom_eq, m = tail_plan(n_scen, p, a.weights) if code else (0, 0.0, 1)
    if method is None:
        method = choose_method(m, a.weights is not None)
    if method == SELECT_PARTITION and a.weights is not None:
        raise ValueError("selection: partition supports equal weights only")
    if n_chunks is None:
        n_chunks = 64 * numba.get_num_threads()
    chunk_ptr = _chunks(a.unit_ptr, n_chunks)
    w = a.weights if a.weights is not None else np.empty(0)
    values = np.empty(n_units)
    worst = np.empty(n_units, dtype=np.int64)
    _aggregate_kernel(
        a.pnl,
        a.unit_ptr,
        a.pos_instrument,
        a.pos_size,
        chunk_ptr,
        code,
        p,
        TAIL_TOLERANCE,
        w,
        k_eq,
        atom_eq,
        m,
        method,
        values,
        worst,
    )
    return UnitRisk(a.measure, a.confidence, values, worst)


def aggregate(
    instrument_pnl: ArrayLike,
    unit_ptr: ArrayLike,
    pos_instrument: ArrayLike,
    pos_size: ArrayLike,
    *,
    measure: Measure = "es",
    confidence: float | None = None,
    weights: ArrayLike | None = None,
) -> UnitRisk:
    """Risk measure of every margin unit, aggregation fused with the measure (numba, parallel).

    Parameters
    ----------
    instrument_pnl : float64 array [n_instruments, n_scenarios]
        P&L per contract per scenario, gains positive, in the units' currency.
    unit_ptr : int64 array [n_units + 1]
        CSR offsets: unit ``u`` holds positions ``unit_ptr[u]:unit_ptr[u + 1]``.
    pos_instrument : int64 array [n_positions]
        Row of ``instrument_pnl`` for each position.
    pos_size : float64 array [n_positions]
        Signed size in contracts.
    measure : {"es", "var", "worst_loss"}
    confidence : float or None
        In (0, 1) for ``var`` and ``es``; ``None`` for ``worst_loss``.
    weights : array [n_scenarios] or None
        Scenario weights (``var``/``es``), normalised internally; equal if ``None``.

    Returns
    -------
    UnitRisk
        Non-negative measure per unit and each unit's worst-scenario index.
    """
    a = _validate(instrument_pnl, unit_ptr, pos_instrument, pos_size, measure, confidence, weights)
    return _run_kernel(a)
