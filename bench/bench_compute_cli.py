"""``margin-engine compute`` from the command line, per model: wall and CPU time, start-up included.

    python -m bench.bench_compute_cli [--accounts 10000] [--models historical-var,span]
        [--baseline /path/to/old/checkout] [--timeout 120] [--skip-large] [--no-liquidation]
        [--repeat 3]

For every registered model, two books on the demo market (``margin-engine demo``'s synthetic
market, seed 7):

- ``demo``: the demo book's accounts that the model margins (as ``demo``'s comparison table
  shows them: the others are refused by the model);
- ``large``: ``--accounts`` accounts generated from those, each a copy of one of them with its
  collateral scaled by a seeded factor in [0.8, 1.2] (so every copy has its own liquidation
  prices).

Each run is ``margin-engine compute BOOK MARKET --model M --format json`` in a subprocess (the
console script's entry point, with this checkout's ``src`` on ``PYTHONPATH``, or
``--baseline``'s for the "before" figures), timed from launch to exit; CPU is the child's user +
system time; with ``--repeat N`` each cell is the median of N runs, before and after
alternating. A run over ``--timeout`` seconds is killed and reported as ``>timeout``. No
assertion: the figures go in docs/performance-compute.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from margin_engine.demo.synthetic import generate_book, generate_market
from margin_engine.domain.book import Book
from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError
from margin_engine.io.loaders import parse_model
from margin_engine.io.model_options import build_model
from margin_engine.models.core.registry import model_names
from margin_engine.policy.assess import assess_account

SRC = Path(__file__).resolve().parents[1] / "src"
#: What the ``margin-engine`` console script runs.
ENTRY = "import sys; sys.argv[0] = 'margin-engine'; from margin_engine.cli.main import main; main()"


def model_books(market_doc: dict, book_doc: dict, n_large: int, seed: int = 11
                ) -> dict[str, tuple[dict, dict]]:
    """Per model: (demo sub-book, large generated book) as JSON documents."""
    market = parse_model(MarketSnapshot, market_doc, "market")
    book = parse_model(Book, book_doc, "book")
    out = {}
    for name in model_names():
        model, _ = build_model(name, {}, None, market)
        keep = []
        for raw, account in zip(book_doc["accounts"], book.accounts, strict=True):
            try:
                assess_account(model, account, market, liquidation_prices=False)
            except InputError:
                continue
            keep.append(raw)
        rng = np.random.default_rng(seed)
        large = []
        for k in range(n_large if keep else 0):
            src = keep[k % len(keep)]
            scale = float(rng.uniform(0.8, 1.2))
            acct = json.loads(json.dumps(src))
            acct["id"] = f"{src['id']}-{k}"
            acct["collateral"] = {c: v * scale for c, v in src["collateral"].items()}
            large.append(acct)
        out[name] = ({"accounts": keep}, {"accounts": large})
    return out


def time_compute(src: Path, book: Path, market: Path, model: str, timeout: float,
                 extra: tuple[str, ...] = ()) -> tuple[float | None, float | None, str]:
    """(wall s, child CPU s, last stderr line) of one ``compute`` run; ``None`` on timeout."""
    env = {**os.environ, "PYTHONPATH": str(src), "COLUMNS": "160"}
    cmd = [sys.executable, "-c", ENTRY, "compute", str(book), str(market), "--model", model,
           "--format", "json", *extra]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, None, "timeout"
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    err = [ln for ln in proc.stderr.splitlines() if not ln.startswith("note:")]
    return wall, cpu, (err[-1] if proc.returncode else "")


def _ratio(pair: list[float | None], timeout: float) -> str:
    """before ÷ after ('>N' when the before run timed out; '' without a baseline)."""
    if len(pair) != 2 or pair[0] is None:
        return ""
    return f"{pair[1] / pair[0]:.1f}x" if pair[1] is not None else f">{timeout / pair[0]:.0f}x"


def _median(xs: list[float | None]) -> float | None:
    """The median, a timed-out run (``None``) counting as the longest."""
    ranked = sorted(xs, key=lambda x: math.inf if x is None else x)
    return ranked[len(ranked) // 2]


def fmt(x: float | None, timeout: float) -> str:
    return f">{timeout:.0f}" if x is None else f"{x:.2f}"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--accounts", type=int, default=10000)
    ap.add_argument("--models", default="", help="comma-separated (default: every model)")
    ap.add_argument("--baseline", type=Path, default=None,
                    help="a checkout of the old code (its src/ is run for 'before')")
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--skip-large", action="store_true", help="demo book only")
    ap.add_argument("--repeat", type=int, default=1, help="median of this many runs")
    ap.add_argument("--no-liquidation", action="store_true",
                    help="pass --no-liquidation to compute (the generic solver's models)")
    args = ap.parse_args(argv)
    market_doc = generate_market(seed=7)
    books = model_books(market_doc, generate_book(market_doc, seed=7), args.accounts)
    names = [m for m in args.models.split(",") if m] or list(books)
    variants = [("after", SRC)] + ([("before", args.baseline / "src")] if args.baseline else [])
    print(f"compute from the command line (wall s / CPU s, start-up included); "
          f"{os.cpu_count()} CPUs; large book: {args.accounts:,} accounts"
          + ("; --no-liquidation" if args.no_liquidation else ""))
    print(f"{'model':<18}{'book':<7}{'accts':>7}" + "".join(
        f"{v + ' wall':>13}{v + ' cpu':>12}" for v, _ in variants) + (
        f"{'ratio':>9}{'cpu':>9}" if args.baseline else ""))
    with tempfile.TemporaryDirectory() as tmp:
        market = Path(tmp) / "market.json"
        market.write_text(json.dumps(market_doc))
        for name in names:
            for label, doc in zip(("demo", "large"), books[name], strict=True):
                if label == "large" and args.skip_large:
                    continue
                path = Path(tmp) / f"{name}-{label}.json"
                path.write_text(json.dumps(doc))
                runs: list[list[tuple[float | None, float | None]]] = [[] for _ in variants]
                notes: list[str] = []
                for _ in range(args.repeat):
                    for k, (_, src) in enumerate(variants):
                        wall, cpu, err = time_compute(
                            src, path, market, name, args.timeout,
                            ("--no-liquidation",) if args.no_liquidation else ())
                        runs[k].append((wall, cpu))
                        if err and err not in notes:
                            notes.append(err)
                cells, walls, cpus = "", [], []
                for r in runs:
                    wall, cpu = _median([w for w, _ in r]), _median([c for _, c in r])
                    cells += f"{fmt(wall, args.timeout):>13}{fmt(cpu, args.timeout):>12}"
                    walls.append(wall)
                    cpus.append(cpu)
                ratio = f"{_ratio(walls, args.timeout):>9}{_ratio(cpus, args.timeout):>9}"
                print(f"{name:<18}{label:<7}{len(doc['accounts']):>7}{cells}{ratio}"
                      + (f"  ({'; '.join(notes)})" if notes else ""), flush=True)


if __name__ == "__main__":
    main()
