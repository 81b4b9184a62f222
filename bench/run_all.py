"""Run every benchmark in turn (``make bench``): pricing, then the aggregation kernel."""

from __future__ import annotations

import runpy


def main() -> None:
    for module in ("bench.bench_black76", "bench.bench_aggregation"):
        print(f"\n=== {module} ===", flush=True)
        runpy.run_module(module, run_name="__main__")


if __name__ == "__main__":
    main()
