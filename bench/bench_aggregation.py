"""Benchmark of the fused aggregation + risk-measure kernel (DESIGN §6, issue 4).

Run:  python -m bench.bench_aggregation [--positions 1000000 --scenarios 1000
      --instruments 2000 --units 100000]

Everything is measured in the same run on the same random book:

(a) rooflines for "the same bytes": the kernel reads, for every position, its instrument's scenario
    row (n_scenarios float64), i.e. positions x scenarios x 8 bytes of logical traffic
    (8 GB at the default size). Two floors are timed:
    - stream: a numba parallel sum over a large fresh array (DRAM streaming bandwidth), converted
      to the time to stream those bytes;
    - gather: a numba parallel kernel that reads exactly the kernel's rows in the kernel's order
      and only sums them (no scratch row, no measure). The instrument matrix is small
      (instruments x scenarios x 8 B = 16 MB) and stays in cache, so this can beat DRAM.
(b) the fused kernel (after a warm-up call that compiles it) for worst loss, VaR 99 %, ES 99 %
    (equal weights; the three selection methods), and ES 99 % with stressed-period weights;
(c) the reference: one scipy.sparse product (materialising the unit P&L, block by block) then
    the NumPy row-wise measure;
(d) the naive approach: a Python loop over positions adding size x instrument row with NumPy,
    then the measure per unit, timed on the first units holding --naive-positions positions and
    extrapolated linearly in positions (stated in the output); and a pure-Python scalar loop
    (positions x scenarios, no NumPy in the loop) on --scalar-positions positions, extrapolated
    the same way.

Times are the best of --repeat rounds, the cases timed round-robin. Ratios compare times from
this run only.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from functools import partial

import numba
import numpy as np
from numba import prange

from margin_engine.maths import aggregation as ag
from margin_engine.maths.risk_measures import (
    expected_shortfall,
    expected_shortfall_rows,
    stressed_weights,
)


@numba.njit(parallel=True, fastmath=True, cache=True)
def _stream_sum(a: np.ndarray) -> float:  # pragma: no cover - compiled
    n_blocks = 1024
    n = a.shape[0]
    part = np.zeros(n_blocks)
    for b in prange(n_blocks):
        lo = n * b // n_blocks
        hi = n * (b + 1) // n_blocks
        acc = 0.0
        for i in range(lo, hi):
            acc += a[i]
        part[b] = acc
    return float(part.sum())


@numba.njit(parallel=True, fastmath=True, cache=True)
def _gather_sum(
    pnl: np.ndarray,
    unit_ptr: np.ndarray,
    pos_instrument: np.ndarray,
    pos_size: np.ndarray,
    chunk_ptr: np.ndarray,
) -> float:  # pragma: no cover - compiled
    n_scen = pnl.shape[1]
    n_chunks = chunk_ptr.shape[0] - 1
    part = np.zeros(n_chunks)
    for c in prange(n_chunks):
        acc = 0.0
        for j in range(unit_ptr[chunk_ptr[c]], unit_ptr[chunk_ptr[c + 1]]):
            row = pnl[pos_instrument[j]]
            q = pos_size[j]
            s_row = 0.0
            for s in range(n_scen):
                s_row += row[s]
            acc += q * s_row
        part[c] = acc
    return float(part.sum())


def _make_book(
    n_pos: int, n_scen: int, n_inst: int, n_units: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    # heavy-tailed instrument P&L per contract
    pnl = rng.standard_t(3, size=(n_inst, n_scen)) * rng.lognormal(0.0, 1.0, size=(n_inst, 1))
    # skewed book: many small accounts, a few with thousands of positions, some empty
    raw = rng.lognormal(0.0, 1.5, size=n_units)
    counts = rng.multinomial(n_pos, raw / raw.sum())
    unit_ptr = np.zeros(n_units + 1, dtype=np.int64)
    np.cumsum(counts, out=unit_ptr[1:])
    inst = rng.integers(0, n_inst, size=n_pos, dtype=np.int64)
    size = rng.normal(0.0, 10.0, size=n_pos)
    return np.ascontiguousarray(pnl), unit_ptr, inst, size


def _naive(
    pnl: np.ndarray,
    unit_ptr: np.ndarray,
    inst: np.ndarray,
    size: np.ndarray,
    n_units: int,
    confidence: float,
) -> np.ndarray:
    out = np.zeros(n_units)
    for u in range(n_units):
        acc = np.zeros(pnl.shape[1])
        for j in range(unit_ptr[u], unit_ptr[u + 1]):
            acc += size[j] * pnl[inst[j]]
        out[u] = expected_shortfall(acc, confidence)
    return out


def _scalar_loop(
    pnl_rows: list[list[float]],
    unit_ptr: list[int],
    inst: list[int],
    size: list[float],
    n_units: int,
    confidence: float,
) -> list[float]:
    out = []
    n_scen = len(pnl_rows[0])
    for u in range(n_units):
        acc = [0.0] * n_scen
        for j in range(unit_ptr[u], unit_ptr[u + 1]):
            row = pnl_rows[inst[j]]
            q = size[j]
            for s in range(n_scen):
                acc[s] += q * row[s]
        out.append(expected_shortfall(acc, confidence))
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--positions", type=int, default=1_000_000)
    ap.add_argument("--scenarios", type=int, default=1000)
    ap.add_argument("--instruments", type=int, default=2000)
    ap.add_argument("--units", type=int, default=100_000)
    ap.add_argument("--confidence", type=float, default=0.99)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--stream-mb", type=int, default=2048, help="array size for the stream read")
    ap.add_argument("--naive-positions", type=int, default=20_000)
    ap.add_argument("--scalar-positions", type=int, default=500)
    ap.add_argument(
        "--reference-units",
        type=int,
        default=0,
        help="units for the reference (0 = all); extrapolated by positions",
    )
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    n_pos, n_scen, n_inst, n_units = args.positions, args.scenarios, args.instruments, args.units
    conf = args.confidence
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"numba threads {numba.get_num_threads()}, numpy {np.__version__}, "
        f"numba {numba.__version__}"
    )
    print(
        f"book: {n_pos:,} positions, {n_units:,} units, {n_inst:,} instruments, "
        f"{n_scen:,} scenarios, confidence {conf}"
    )
    pnl, unit_ptr, inst, size = _make_book(n_pos, n_scen, n_inst, n_units, args.seed)
    counts = np.diff(unit_ptr)
    print(
        f"units: {int((counts == 0).sum()):,} empty, {int((counts == 1).sum()):,} with one "
        f"position, largest {int(counts.max()):,} positions"
    )
    logical_bytes = n_pos * n_scen * 8
    print(
        f"logical bytes read by the kernel: {logical_bytes / 1e9:.2f} GB "
        f"(instrument matrix {pnl.nbytes / 1e6:.1f} MB)"
    )

    # (a) rooflines and (b) the kernel, timed round-robin (best of --repeat rounds) so that a
    # burst of load from other processes hits every case alike
    stream = np.random.default_rng(1).random(args.stream_mb * 1024 * 1024 // 8)
    chunk_ptr = ag._chunks(unit_ptr, 64 * numba.get_num_threads())
    stressed = np.zeros(n_scen, dtype=bool)
    stressed[: max(1, n_scen // 5)] = True
    w = stressed_weights(stressed, 0.25)
    es_label = f"ES {conf:g} (auto: insertion)"
    kernel_cases: list[tuple[str, str, float | None, np.ndarray | None, int | None]] = [
        ("worst loss", "worst_loss", None, None, None),
        (f"VaR {conf:g}", "var", conf, None, None),
        (es_label, "es", conf, None, None),
        (f"ES {conf:g} partition", "es", conf, None, ag.SELECT_PARTITION),
        (f"ES {conf:g} full sort", "es", conf, None, ag.SELECT_SORT),
        (f"ES {conf:g} stressed weights (auto)", "es", conf, w, None),
    ]
    timed: dict[str, Callable[[], object]] = {
        "stream": lambda: _stream_sum(stream),
        "gather": lambda: _gather_sum(pnl, unit_ptr, inst, size, chunk_ptr),
    }
    for label, meas, c, ww, method in kernel_cases:
        a = ag._validate(pnl, unit_ptr, inst, size, meas, c, ww)
        timed[label] = partial(ag._run_kernel, a, method=method)
    es_values = ag._run_kernel(ag._validate(pnl, unit_ptr, inst, size, "es", conf, None)).values
    for fn in timed.values():  # warm-up: compiles on first use
        fn()
    best = dict.fromkeys(timed, float("inf"))
    for _ in range(args.repeat):
        for label, fn in timed.items():
            t0 = time.perf_counter()
            fn()
            best[label] = min(best[label], time.perf_counter() - t0)
    bw = stream.nbytes / best["stream"]
    t_roof = logical_bytes / bw
    t_gather = best["gather"]
    results = [(label, best[label]) for label, *_ in kernel_cases]

    # (c) reference: scipy.sparse product + NumPy measure
    ref_units = n_units if args.reference_units <= 0 else min(n_units, args.reference_units)
    ref_pos = int(unit_ptr[ref_units])
    ref_ptr = unit_ptr[: ref_units + 1]
    t0 = time.perf_counter()
    x = ag.unit_pnl_reference(pnl, ref_ptr, inst[:ref_pos], size[:ref_pos])
    t_prod = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref_es = np.concatenate(
        [expected_shortfall_rows(x[i : i + 8192], conf) for i in range(0, ref_units, 8192)]
    )
    t_meas = time.perf_counter() - t0
    del x
    scale_ref = n_pos / max(ref_pos, 1)
    err = float(np.max(np.abs(ref_es - es_values[:ref_units]), initial=0.0))

    # (d) naive per-position Python loop, on a sample
    nv_units = int(np.searchsorted(unit_ptr, args.naive_positions, side="right")) - 1
    nv_units = max(1, min(nv_units, n_units))
    nv_pos = int(unit_ptr[nv_units])
    t0 = time.perf_counter()
    naive = _naive(pnl, unit_ptr, inst, size, nv_units, conf)
    t_naive_sample = time.perf_counter() - t0
    t_naive = t_naive_sample * n_pos / max(nv_pos, 1)
    naive_err = float(np.max(np.abs(naive - es_values[:nv_units]), initial=0.0))
    sc_units = int(np.searchsorted(unit_ptr, args.scalar_positions, side="right")) - 1
    sc_units = max(1, min(sc_units, n_units))
    sc_pos = int(unit_ptr[sc_units])
    rows_py = pnl.tolist()
    t0 = time.perf_counter()
    _scalar_loop(rows_py, unit_ptr.tolist(), inst.tolist(), size.tolist(), sc_units, conf)
    t_scalar_sample = time.perf_counter() - t0
    t_scalar = t_scalar_sample * n_pos / max(sc_pos, 1)

    # report
    t_es = best[es_label]
    print()
    print(f"{'step':44s} {'time s':>9s} {'GB/s':>8s} {'/stream':>8s} {'/gather':>8s}")

    def row(label: str, t: float) -> None:
        print(
            f"{label:44s} {t:9.3f} {logical_bytes / t / 1e9:8.1f} {t / t_roof:8.2f} "
            f"{t / t_gather:8.2f}"
        )

    print(f"{'roofline: stream read (DRAM, converted)':44s} {t_roof:9.3f} {bw / 1e9:8.1f}")
    row("roofline: gather read of the same rows", t_gather)
    for label, t in results:
        row("kernel " + label, t)
    row(f"reference product+ES ({ref_units:,} units, scaled)", (t_prod + t_meas) * scale_ref)
    print(
        f"    of which sparse product {t_prod * scale_ref:.3f} s "
        f"({n_pos * n_scen / (t_prod * scale_ref) / 1e9:.2f} G multiply-adds/s), "
        f"ES {t_meas * scale_ref:.3f} s"
    )
    row(f"naive Python loop (extrapolated from {nv_pos:,} pos)", t_naive)
    row(f"scalar Python loop (extrapolated from {sc_pos:,} pos)", t_scalar)
    print()
    print(f"ES kernel / stream roofline   = {t_es / t_roof:.2f}")
    print(f"ES kernel / gather roofline   = {t_es / t_gather:.2f}")
    print(f"reference / ES kernel         = {(t_prod + t_meas) * scale_ref / t_es:.1f}")
    print(
        f"naive / ES kernel             = {t_naive / t_es:.0f}  (naive timed on {nv_pos:,} "
        f"positions, {t_naive_sample:.2f} s, scaled by positions)"
    )
    print(
        f"scalar / ES kernel            = {t_scalar / t_es:.0f}  (scalar timed on {sc_pos:,} "
        f"positions, {t_scalar_sample:.2f} s, scaled by positions)"
    )
    print(f"max |kernel - reference| ES   = {err:.3g}; max |kernel - naive| = {naive_err:.3g}")


if __name__ == "__main__":
    main()
