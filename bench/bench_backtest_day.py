"""Where a backtest day goes, and whether the live book would re-margin it faster.

    python -m bench.bench_backtest_day [--models historical-var,filtered-es,span]
        [--days 150] [--profile]

One account (BTCUSDT long, ETHUSDT short, BTC-PERPETUAL short; USDT and BTC collateral) on a
synthetic BTC/ETH history (``io.series.synthetic_series``, 400 days to 2025-01-01), the
snapshots of ``--days`` days from 2024-06-01 built once (``HistoryMarketBuilder``). Per model:

- ``run_backtest`` over those days, ms per day (snapshot, margin, realised loss, VaR/ES);
- the margin alone as the backtest takes it: ``assess_account`` per day, ms per day;
- the same margins from one ``LiveBook`` re-margined by ``set_market`` per day, ms per day, and
  the largest relative difference of its IM from ``assess_account``'s.

``--profile`` adds the cProfile of one ``run_backtest`` (top 15 by cumulative time). No timed
assertion; the figures go in docs/performance.md.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from datetime import date

import numpy as np

from margin_engine.analysis.backtest import _forget, registered_model_factory, run_backtest
from margin_engine.analysis.market_builders import HistoryMarketBuilder
from margin_engine.domain.book import Book
from margin_engine.io.loaders import parse_model
from margin_engine.io.series import synthetic_series
from margin_engine.live.book import LiveBook
from margin_engine.policy.assess import assess_account

BOOK = {"accounts": [{"id": "a", "collateral": {"USDT": 1e6, "BTC": 2}, "positions": [
    {"symbol": "BTCUSDT", "size": 3}, {"symbol": "ETHUSDT", "size": -40},
    {"symbol": "BTC-PERPETUAL", "size": -1000}]}]}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="historical-var,filtered-es,span")
    ap.add_argument("--days", type=int, default=150)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args(argv)
    history = synthetic_series(date(2025, 1, 1), days=400)
    book = parse_model(Book, BOOK, "book")
    acct = book.accounts[0]
    builder = HistoryMarketBuilder(history, None)
    days = [d for d in builder.days() if d >= np.datetime64("2024-06-01")][:args.days]
    snaps = [builder.snapshot(d, [p.symbol for p in acct.positions]) for d in days]
    end = str(days[-1])
    print(f"{len(days)} days from 2024-06-01; ms per day")
    print(f"{'model':<18}{'run_backtest':>13}{'assess':>9}{'LiveBook':>10}{'live/assess':>13}"
          f"{'max rel diff':>14}")
    for name in [m for m in args.models.split(",") if m]:
        factory = registered_model_factory(name)
        t0 = time.perf_counter()
        res = run_backtest(book, factory, history, start="2024-06-01", end=end)
        t_run = (time.perf_counter() - t0) / len(days)
        model = factory(history)
        t0 = time.perf_counter()
        want = []
        for m in snaps:
            want.append(assess_account(model, acct, m, liquidation_prices=False).initial_margin)
            _forget(model)
        t_ref = (time.perf_counter() - t0) / len(snaps)
        model = factory(history)
        t0 = time.perf_counter()
        live = LiveBook(model, book, snaps[0])
        got = [live.states()[0].initial_margin]
        _forget(model)
        for m in snaps[1:]:
            live.set_market(m)
            got.append(live.states()[0].initial_margin)
            _forget(model)
        t_live = (time.perf_counter() - t0) / len(snaps)
        diff = max(abs(a - b) / max(1.0, abs(b)) for a, b in zip(got, want, strict=True))
        print(f"{name:<18}{t_run * 1e3:>13.2f}{t_ref * 1e3:>9.2f}{t_live * 1e3:>10.2f}"
              f"{t_live / t_ref:>12.1f}x{diff:>14.1e}  ({res.n_days} days backtested)",
              flush=True)
        if args.profile:
            prof = cProfile.Profile()
            prof.enable()
            run_backtest(book, factory, history, start="2024-06-01", end=end)
            prof.disable()
            pstats.Stats(prof).sort_stats("cumulative").print_stats(15)


if __name__ == "__main__":
    main()
