"""Run every benchmark in turn (``make bench``): pricing, the aggregation kernel, a whole book,
the live engine (full re-margin, tick-to-margin, what-if, growth)."""

from __future__ import annotations

import runpy


def main() -> None:
    for module in ("bench.bench_black76", "bench.bench_aggregation", "bench.bench_book_margin",
                   "bench.bench_live"):
        print(f"\n=== {module} ===", flush=True)
        runpy.run_module(module, run_name="__main__")


if __name__ == "__main__":
    main()
