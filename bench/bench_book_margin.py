"""End-to-end market risk of a whole book (DESIGN §1): revalue once, fused aggregation.

    python -m bench.bench_book_margin [--accounts 20000] [--positions 5] [--model historical-var]

Times ``book_market_risk`` (every instrument revalued once, then the numba kernel over all
units) against the naive path — assessing each account on its own (per-unit revaluation and
measure, add-ons included), timed on a sample and scaled by the account count — in the same run.
"""

from __future__ import annotations

import argparse
import time
from datetime import date

import numpy as np

from margin_engine.demo.synthetic import generate_market
from margin_engine.domain.book import Book
from margin_engine.domain.market import MarketSnapshot
from margin_engine.io.loaders import parse_model
from margin_engine.io.series import synthetic_series
from margin_engine.models.core.registry import get_model
from margin_engine.models.risk_based.book_risk import book_market_risk
from margin_engine.policy.assess import assess_account


def random_book(market: MarketSnapshot, n_accounts: int, per_account: int, seed: int) -> Book:
    rng = np.random.default_rng(seed)
    symbols = [i.symbol for i in market.instruments]
    accounts = []
    for a in range(n_accounts):
        picks = rng.choice(len(symbols), size=per_account, replace=False)
        accounts.append({"id": f"acct-{a}", "margin_mode": "portfolio",
                         "collateral": {"USDT": 1e6}, "credit_rating": "A",
                         "positions": [{"symbol": symbols[k],
                                        "size": float(rng.integers(-20, 21) or 1)}
                                       for k in picks]})
    return parse_model(Book, {"accounts": accounts}, "book")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--accounts", type=int, default=20000)
    ap.add_argument("--positions", type=int, default=5)
    ap.add_argument("--model", default="historical-var")
    ap.add_argument("--sample", type=int, default=200)
    args = ap.parse_args(argv)
    market = parse_model(MarketSnapshot, generate_market(seed=7), "market")
    book = random_book(market, args.accounts, args.positions, seed=1)
    history = synthetic_series(date(2026, 2, 4))
    model = get_model(args.model, {"history": history})
    book_market_risk(model, random_book(market, 10, args.positions, 2), market)  # compile
    t0 = time.perf_counter()
    risk = book_market_risk(model, book, market)
    fused = time.perf_counter() - t0
    sample = Book(accounts=book.accounts[: args.sample])
    t0 = time.perf_counter()
    for account in sample.accounts:
        assess_account(model, account, market, liquidation_prices=False)
    naive = (time.perf_counter() - t0) * len(book.accounts) / len(sample.accounts)
    print(f"book: {len(book.accounts):,} accounts, {risk.n_positions:,} positions, "
          f"{risk.n_instruments} instruments, {risk.n_scenarios} scenarios ({args.model})")
    print(f"fused book path (revalue once + kernel): {fused:8.3f} s")
    print(f"naive per-account assessment (sample of {len(sample.accounts)}, scaled): "
          f"{naive:8.3f} s")
    print(f"ratio naive / fused: {naive / fused:,.0f}x")


if __name__ == "__main__":
    main()
