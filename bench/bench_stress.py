"""``margin-engine stress`` on large books, per model: the whole-book path against the
per-account reference, in the same run.

    python -m bench.bench_stress [--accounts 10000] [--models binance-usdm,deribit-pm]
        [--scenario NAME ...] [--repeat 1]

Books as in :mod:`bench.bench_compute_cli` (the demo market, seed 7; ``--accounts`` copies of
the demo accounts each model margins, collateral scaled by a seeded factor). Each run is the
``stress`` command in this process (``typer``'s runner: reading the files, building the model
with its embedded history, the stress rows, the JSON written to a file; interpreter start-up
not included), once with ``stress_book`` ("after") and once with
``analysis.stress_test.stress_book_reference`` put in its place ("before"), alternating; with
``--repeat N`` each cell is the median of N runs. Both runs' rows must agree to 1e-9 (the bench
stops otherwise). No timed assertion: the figures go in docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from bench.bench_compute_cli import model_books
from margin_engine.analysis import stress_test
from margin_engine.cli.main import app
from margin_engine.demo.synthetic import generate_book, generate_market

DEFAULT_MODELS = "binance-usdm,deribit-pm,filtered-es"


def run_stress(book: Path, market: Path, model: str, scenarios: list[str], out: Path,
               stress_fn: Callable[..., Any]) -> tuple[float, list[dict[str, Any]]]:
    """(wall s, rows) of one ``stress`` command with ``stress_fn`` as ``stress_book``."""
    kept = stress_test.stress_book
    stress_test.stress_book = stress_fn  # the command imports it from the module when it runs
    try:
        args = ["stress", str(book), str(market), "--model", model, "--format", "json",
                "--output", str(out)] + [a for s in scenarios for a in ("--scenario", s)]
        t0 = time.perf_counter()
        res = CliRunner().invoke(app, args)
        wall = time.perf_counter() - t0
    finally:
        stress_test.stress_book = kept
    if res.exit_code != 0:
        raise SystemExit(f"{model}: stress failed: {res.output[-500:]}")
    return wall, json.loads(out.read_text())["rows"]


def same_rows(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
    """Rows equal: ids and names exactly, numbers to 1e-9 (relative, absolute below 1)."""
    def close(x: Any, y: Any) -> bool:
        if x is None or y is None or isinstance(x, str):
            return x == y
        return bool(abs(x - y) <= 1e-9 * max(1.0, abs(y)))
    return len(a) == len(b) and all(close(r[k], s[k]) for r, s in zip(a, b, strict=True)
                                    for k in s)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--accounts", type=int, default=10000)
    ap.add_argument("--models", default=DEFAULT_MODELS, help="comma-separated")
    ap.add_argument("--scenario", action="append", default=[],
                    help="named stress (repeatable; default: the 8 crash days)")
    ap.add_argument("--repeat", type=int, default=1, help="median of this many runs")
    args = ap.parse_args(argv)
    market_doc = generate_market(seed=7)
    books = model_books(market_doc, generate_book(market_doc, seed=7), args.accounts)
    print(f"stress in-process (wall s, start-up excluded); {os.cpu_count()} CPUs; "
          f"{args.accounts:,} accounts; scenarios: {', '.join(args.scenario) or 'the 8 core'}")
    print(f"{'model':<18}{'accts':>7}{'before s':>11}{'after s':>10}{'ratio':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        market = Path(tmp) / "market.json"
        market.write_text(json.dumps(market_doc))
        out = Path(tmp) / "out.json"
        for name in [m for m in args.models.split(",") if m]:
            demo, large = books[name]
            path = Path(tmp) / f"{name}.json"
            path.write_text(json.dumps(demo))
            run_stress(path, market, name, args.scenario, out, stress_test.stress_book)  # warm
            path.write_text(json.dumps(large))
            before, after = [], []
            for _ in range(args.repeat):
                t_ref, ref = run_stress(path, market, name, args.scenario, out,
                                        stress_test.stress_book_reference)
                t_new, new = run_stress(path, market, name, args.scenario, out,
                                        stress_test.stress_book)
                if not same_rows(new, ref):
                    raise SystemExit(f"{name}: the whole-book rows differ from the reference")
                before.append(t_ref)
                after.append(t_new)
            b, a = statistics.median(before), statistics.median(after)
            print(f"{name:<18}{len(large['accounts']):>7}{b:>11.2f}{a:>10.2f}{b / a:>7.1f}x",
                  flush=True)


if __name__ == "__main__":
    main()
