"""Run every benchmark in turn (``make bench``): pricing, the aggregation kernel, a whole book,
the book on a 2-worker Dask cluster, ``compute`` from the command line, the live engine
(full re-margin, tick-to-margin, what-if, growth), ``stress`` on the whole-book path against the
per-account reference, a backtest day (the model's margin against the live book's), the cascade
simulator, the optimiser on a 200-position account, the service's what-if under load."""

from __future__ import annotations

import runpy


def main() -> None:
    for module in ("bench.bench_black76", "bench.bench_aggregation", "bench.bench_book_margin",
                   "bench.bench_dask", "bench.bench_compute_cli", "bench.bench_live",
                   "bench.bench_stress", "bench.bench_backtest_day", "bench.bench_optimise",
                   "bench.bench_python_floor",
                   "bench.bench_cascade", "bench.bench_service"):
        print(f"\n=== {module} ===", flush=True)
        runpy.run_module(module, run_name="__main__")


if __name__ == "__main__":
    main()
