"""Liquidation prices of a whole book: the live engines' solver against the per-unit one.

    python -m bench.bench_liquidation [--models okx-pm,filtered-es] [--books demo,2k]
        [--dir /tmp/prof] [--market /tmp/prof/market.json] [--limit N] [--every-engine]

For each model without a closed-form liquidation price and each book ``DIR/{demo,2k,large}-
MODEL.json`` that exists, in one process: ``assess_book`` with ``band_solver=book_bands`` (new;
``--every-engine``: scanning with every model's engine, not only where ``compute`` does) and
without it (old: each unit on its own), on the accounts the model margins, after one warm-up
of both on two accounts (imports, Numba caches). Prints the CPU seconds of each, the ratio
new ÷ old (measured in the same run), and the largest relative difference of a
liquidation-range side (``None`` on one side only counts as a mismatch). ``--limit N``: the
first N margined accounts of each book (the per-unit solver takes minutes on 2,000).
No assertion: the figures go in docs/performance.md.
"""

from __future__ import annotations

import argparse
import math
import time
from functools import partial
from pathlib import Path

from margin_engine.domain.book import Book
from margin_engine.domain.market import MarketSnapshot
from margin_engine.io.loaders import load_book, load_market
from margin_engine.io.model_options import build_model
from margin_engine.live.liquidation import book_bands
from margin_engine.models.core.registry import model_class, model_names
from margin_engine.policy.assess import AccountReport, BandSolver, assess_book, split_margined

BOOKS = {"demo": "demo-{}.json", "2k": "2k-{}.json", "large": "large-{}.json"}


def timed(name: str, book: Book, market: MarketSnapshot, solver: BandSolver | None
          ) -> tuple[list[AccountReport], float]:
    """Reports and CPU seconds of this process (all threads) for ``assess_book`` on a freshly
    built model (CPU rather than wall seconds: the machine is shared)."""
    model, _ = build_model(name, {}, None, market)
    t0 = time.process_time()
    reports = assess_book(model, book, market, band_solver=solver)
    return reports, time.process_time() - t0


def worst(new: list[AccountReport], old: list[AccountReport]) -> tuple[float, int, int]:
    """Largest relative difference of a band side, sides compared, sides ``None`` on one only."""
    rel, n, bad = 0.0, 0, 0
    for a, b in zip(new, old, strict=True):
        for p, q in zip(a.positions, b.positions, strict=True):
            for x, y in zip(p.liquidation_range or (None, None),
                            q.liquidation_range or (None, None), strict=True):
                n += 1
                if x is None or y is None:
                    bad += (x is None) != (y is None)
                    continue
                rel = max(rel, abs(x - y) / abs(y) if y else abs(x))
    return rel, n, bad


def main() -> None:
    generic = [n for n in model_names() if not model_class(n).has_closed_form_liquidation()]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(generic))
    ap.add_argument("--books", default="demo,2k")
    ap.add_argument("--dir", default="/tmp/prof")
    ap.add_argument("--market", default="/tmp/prof/market.json")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--every-engine", action="store_true",
                    help="scan with every engine (compute scans with the scenario grids only)")
    args = ap.parse_args()
    market = load_market(args.market)
    solver = partial(book_bands, every_engine=args.every_engine)
    print(f"{'model':16} {'book':6} {'accounts':>8} {'new cpu':>8} {'old cpu':>8} {'new/old':>8}"
          f" {'sides':>6} {'worst rel':>9}")
    for name in args.models.split(","):
        books = []
        for key in args.books.split(","):
            path = Path(args.dir) / BOOKS[key].format(name)
            if path.exists():
                model, _ = build_model(name, {}, None, market)
                kept = split_margined(model, load_book(path), market)[0]
                books.append((key, kept.model_copy(
                    update={"accounts": kept.accounts[: args.limit]})))
        if not books:
            continue
        small = min(books, key=lambda kb: len(kb[1].accounts))[1]
        small = small.model_copy(update={"accounts": small.accounts[:2]})
        timed(name, small, market, solver)  # warm-up: imports, Numba caches
        timed(name, small, market, None)
        for key, book in books:
            new, t_new = timed(name, book, market, solver)
            old, t_old = timed(name, book, market, None)
            rel, n, bad = worst(new, old)
            shown = f"{rel:9.1e}" if not bad else f"{bad} None!"
            print(f"{name:16} {key:6} {len(book.accounts):8d} {t_new:8.2f} {t_old:8.2f}"
                  f" {t_new / t_old if t_old else math.nan:8.3f} {n:6d} {shown}", flush=True)


if __name__ == "__main__":
    main()
