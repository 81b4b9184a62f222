"""Benchmark of Black-76 pricing: pure-Python reference loop vs NumPy vs numba parallel.

Run:  python -m bench.bench_black76 [--n 1000000] [--repeat 3] [--python-n N] [--iv-n N]
  or: python bench/bench_black76.py ...

Everything is measured in the same run on the same random inputs (BTC-like forwards, strikes
from deep ITM to deep OTM, T from one hour to 3 years, sigma 0.05..3.0, calls and puts mixed):

- python: a Python loop over ``black76.price_usd`` (the scalar reference, with its input check);
- numpy: ``black76_fast.price_usd`` (broadcasting, input check included);
- numba: ``black76_fast.price_usd_numba`` after a warm-up call (compilation excluded), with and
  without its one-pass input check;
- also NumPy Greeks (price + 4 Greeks) and the numba parallel implied-vol solver.

Times are the best of --repeat runs (the Python loop runs once). Ratios compare rates from this run.
The results of the fast paths are checked against the reference on a sample before timing.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numba
import numpy as np

if __package__ in (None, ""):  # run as a script: make `margin_engine` importable from src/
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from margin_engine.maths import black76 as ref
from margin_engine.maths import black76_fast as fast
from margin_engine.maths.implied_vol import implied_vol_array


def make_inputs(n: int, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    F = 73500.0 * np.exp(rng.normal(0.0, 0.05, n))
    K = F * np.exp(rng.uniform(-1.0, 1.0, n))
    T = 10.0 ** rng.uniform(math.log10(1.0 / 8760.0), math.log10(3.0), n)
    sigma = rng.uniform(0.05, 3.0, n)
    is_call = rng.random(n) < 0.5
    return {"F": F, "K": K, "T": T, "sigma": sigma, "is_call": is_call}


def best_of(fn: Callable[[], object], repeat: int) -> float:
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="evaluations per timed call")
    ap.add_argument("--repeat", type=int, default=3, help="best-of repeats (NumPy, numba)")
    ap.add_argument(
        "--python-n", type=int, default=None, help="evaluations in the Python loop (default --n)"
    )
    ap.add_argument("--iv-n", type=int, default=None, help="implied vols timed (default --n)")
    args = ap.parse_args(argv)
    n = args.n
    py_n = min(args.python_n or n, n)
    iv_n = min(args.iv_n or n, n)

    x = make_inputs(n)
    F, K, T, sigma, is_call = x["F"], x["K"], x["T"], x["sigma"], x["is_call"]

    # warm-up (numba compilation / cache load) and a correctness check on a sample
    t0 = time.perf_counter()
    fast.price_usd_numba(F[:10], K[:10], T[:10], sigma[:10], is_call[:10])
    implied_vol_array(np.full(2, 1.0), 100.0, 100.0, 1.0, np.array([True, False]))
    warm = time.perf_counter() - t0
    sample = slice(0, min(n, 2000))
    expected = np.array(
        [
            ref.price_usd(float(f), float(k), float(t), float(s), bool(c))
            for f, k, t, s, c in zip(
                F[sample], K[sample], T[sample], sigma[sample], is_call[sample], strict=True
            )
        ]
    )
    floor = 1e-12 * F[sample]
    for got in (
        fast.price_usd(F[sample], K[sample], T[sample], sigma[sample], is_call[sample]),
        fast.price_usd_numba(F[sample], K[sample], T[sample], sigma[sample], is_call[sample]),
    ):
        err = np.max(np.abs(got - expected) / np.maximum(expected, floor))
        if err > 1e-12:
            raise SystemExit(f"fast path disagrees with the reference: max rel diff {err:.3g}")

    def python_loop() -> None:
        price = ref.price_usd
        for i in range(py_n):
            price(float(F[i]), float(K[i]), float(T[i]), float(sigma[i]), bool(is_call[i]))

    lists = (F[:py_n].tolist(), K[:py_n].tolist(), T[:py_n].tolist(), sigma[:py_n].tolist())
    flags = is_call[:py_n].tolist()

    def python_loop_lists() -> None:
        price = ref.price_usd
        for f, k, t, s, c in zip(*lists, flags, strict=True):
            price(f, k, t, s, c)

    rows: list[tuple[str, int, float]] = []
    rows.append(("python loop (reference, floats from lists)", py_n, best_of(python_loop_lists, 1)))
    rows.append(("python loop (reference, from arrays)", py_n, best_of(python_loop, 1)))
    rows.append(
        (
            "numpy price_usd",
            n,
            best_of(lambda: fast.price_usd(F, K, T, sigma, is_call), args.repeat),
        )
    )
    rows.append(
        (
            "numba price_usd_numba",
            n,
            best_of(lambda: fast.price_usd_numba(F, K, T, sigma, is_call), args.repeat),
        )
    )
    rows.append(
        (
            "numba price_usd_numba (validate=False)",
            n,
            best_of(
                lambda: fast.price_usd_numba(F, K, T, sigma, is_call, validate=False), args.repeat
            ),
        )
    )
    rows.append(
        (
            "numpy greeks_usd (price + 4 Greeks)",
            n,
            best_of(lambda: fast.greeks_usd(F, K, T, sigma, is_call), args.repeat),
        )
    )
    prices = fast.price_usd_numba(F[:iv_n], K[:iv_n], T[:iv_n], sigma[:iv_n], is_call[:iv_n])
    rows.append(
        (
            "numba implied_vol_array",
            iv_n,
            best_of(
                lambda: implied_vol_array(
                    prices, F[:iv_n], K[:iv_n], T[:iv_n], is_call[:iv_n], errors="nan"
                ),
                args.repeat,
            ),
        )
    )

    print("Black-76 benchmark (float64)")
    print(
        f"  machine: {platform.machine()}, {os.cpu_count()} CPUs, numba threads "
        f"{numba.get_num_threads()}, python {platform.python_version()}, numpy {np.__version__}, "
        f"numba {numba.__version__}"
    )
    print(
        f"  n = {n:,}; python loop n = {py_n:,}; implied vol n = {iv_n:,}; repeat = {args.repeat}"
    )
    print(f"  numba warm-up (compile or cache load): {warm:.2f} s")
    print(f"  {'path':<44} {'n':>10} {'time [s]':>10} {'evals/s':>14}")
    rates: dict[str, float] = {}
    for name, count, secs in rows:
        rate = count / secs
        rates[name] = rate
        print(f"  {name:<44} {count:>10,} {secs:>10.4f} {rate:>14,.0f}")
    py = rates["python loop (reference, floats from lists)"]
    npy = rates["numpy price_usd"]
    nb = rates["numba price_usd_numba"]
    print("  ratios (same run):")
    print(f"    numpy / python loop        : {npy / py:8.1f}x")
    print(f"    numba / python loop        : {nb / py:8.1f}x")
    print(f"    numba / numpy              : {nb / npy:8.2f}x")
    print(
        f"    numba unchecked / checked  : "
        f"{rates['numba price_usd_numba (validate=False)'] / nb:8.2f}x"
    )


if __name__ == "__main__":
    main()
