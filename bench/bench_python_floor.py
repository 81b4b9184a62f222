"""The machine's own latency tail: p50/p99 of a fixed pure-Python workload (no margin-engine code).

    python -m bench.bench_python_floor [--calls 100000] [--micros 25]

Times ``--calls`` repetitions of the same workload (dictionary reads, ``ndarray.item``, a list
comprehension), sized to about ``--micros`` µs by a calibration run, each call timed with
``perf_counter_ns`` after ``gc.freeze()``. Every call does the same work, so its p99/p50 is the
spread the machine and the interpreter add to any Python call of that size: the floor under
the live what-if's tail (benchmark 3 of ``bench.bench_live``). No assertion.
"""

from __future__ import annotations

import argparse
import gc
import os
import time

import numpy as np

TABLE = {i: float(i) for i in range(16)}
ROW = np.arange(16.0)


def work() -> float:
    """About 1–2 µs of the what-if's kind of Python."""
    s = 0.0
    for i in range(8):
        s += TABLE[i] * ROW.item(i)
    kept = [(k, v) for k, v in TABLE.items() if k % 3]
    return s + len(kept)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=100_000)
    ap.add_argument("--micros", type=float, default=25.0)
    args = ap.parse_args(argv)
    gc.collect()
    gc.freeze()
    clock = time.perf_counter_ns
    per = []
    for _ in range(5):  # the median of five timed blocks, the first a warm-up
        t0 = clock()
        for _ in range(5000):
            work()
        per.append((clock() - t0) / 5000)
    reps = max(1, round(args.micros * 1e3 / float(np.median(per))))
    took = np.empty(args.calls)
    for k in range(args.calls):
        t0 = clock()
        for _ in range(reps):
            work()
        took[k] = clock() - t0
    p50, p90, p99, p999 = np.percentile(took / 1e3, [50, 90, 99, 99.9])
    print(f"fixed pure-Python workload ({reps} x work(), {args.calls:,} calls, load average "
          f"{os.getloadavg()[0]:.1f}): p50 {p50:.1f} us, p90 {p90:.1f} us, p99 {p99:.1f} us, "
          f"p99.9 {p999:.1f} us; p99/p50 {p99 / p50:.2f}")


if __name__ == "__main__":
    main()
