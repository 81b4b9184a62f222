"""Where a full re-margin of the live book spends its time (issue 9, benchmarks 1 and 4).

    python -m bench.profile_live [--accounts 10000] [--model filtered-es] [--ticks N]

Builds the bench's book (``bench.live_book_data``: 10 random positions per account over 5,000
instruments on 10 coins), then times the phases of ``LiveBook.set_market`` separately, each the
best of three: the instrument revaluation (``engine.on_market``: every instrument's scenario
P&L), the whole re-margin, and, for filtered-es, the fused unit kernel with and without the
diversification cap's per-underlying measures. Prints a pyinstrument profile of one full
re-margin when pyinstrument is installed. With ``--ticks N``: instead, cProfile over N
tick-to-margin updates (the BTC index and the BTC perpetual's mark, as ``bench_live``'s
benchmark 2). No assertion: the figures go in docs/performance.md.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats

import numpy as np

from bench.bench_live import CPU, best, moved, pct, ticks
from bench.live_book_data import (
    deribit_market,
    history,
    linear_market,
    model_for,
    random_book,
)
from margin_engine.domain.book import MarginMode
from margin_engine.live import LiveBook
from margin_engine.models.core.registry import get_model


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--accounts", type=int, default=10_000)
    ap.add_argument("--instruments", type=int, default=5000)
    ap.add_argument("--model", default="filtered-es")
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument("--ticks", type=int, default=0,
                    help="cProfile this many BTC ticks instead of the full re-margin")
    args = ap.parse_args(argv)
    linear = args.model == "binance-usdm"
    market = linear_market(args.instruments) if linear else deribit_market(args.instruments)
    book = random_book(market, args.accounts, 10,
                       mode=MarginMode.CROSS if linear else MarginMode.PORTFOLIO)
    live = LiveBook(model_for(args.model, market), book, market)
    gc.collect()
    gc.freeze()
    if args.ticks:
        perp = "BTCUSDT" if linear else "BTC-PERPETUAL"
        ticks(live, 5, perp)  # the tick plan built, the first re-sums done
        prof = cProfile.Profile()
        prof.enable()
        ticks(live, args.ticks, perp)
        prof.disable()
        print(f"{args.model}: {args.ticks} ticks, thread CPU time p50 {pct(CPU, 50) * 1e3:.1f} "
              f"ms (under the profiler)")
        pstats.Stats(prof).sort_stats("tottime").print_stats(20)
        return
    flip = [moved(market, 1.01), market]
    k = [0]

    def full() -> None:
        k[0] ^= 1
        live.set_market(flip[k[0]])

    full()
    t_full = best(full, 3)
    every = np.arange(len(market.instruments), dtype=np.int64)
    t_reval = best(lambda: live.engine.on_market(every), 3)
    n_pos = sum(len(a.positions) for a in book.accounts)
    print(f"{args.model}: {len(book.accounts):,} accounts, {n_pos:,} positions, "
          f"{len(market.instruments):,} instruments")
    print(f"full re-margin (set_market): {t_full:.3f} s")
    print(f"  instrument revaluation (engine.on_market): {t_reval:.3f} s "
          f"({t_reval / t_full:.0%})")
    eng = live.engine
    if hasattr(eng, "margins"):
        slots = live.live_slots()
        t_marg = best(lambda: eng.margins(slots), 3)
        print(f"  unit margins (engine.margins over {len(slots):,} units): {t_marg:.3f} s "
              f"({t_marg / t_full:.0%})")
        print(f"  the rest (account equity, status, events, Python assembly): "
              f"{t_full - t_reval - t_marg:.3f} s ({(t_full - t_reval - t_marg) / t_full:.0%})")
        params = getattr(live.model, "params", None)
        if params is not None and getattr(params, "diversification_cap", None) is not None:
            nocap = LiveBook(get_model(args.model, {"history": history(),
                                                    "diversification_cap": None}), book, market)
            t_nc = best(lambda: nocap.engine.margins(nocap.live_slots()), 3)
            print(f"  unit margins without the diversification cap: {t_nc:.3f} s "
                  f"(the cap's per-underlying measures: {t_marg - t_nc:.3f} s)")
    if args.no_profile:
        return
    try:
        from pyinstrument import Profiler
    except ImportError:
        print("(pyinstrument not installed: no profile)")
        return
    prof = Profiler(interval=0.001)
    prof.start()
    full()
    prof.stop()
    print(prof.output_text(unicode=True, color=False, show_all=False))


if __name__ == "__main__":
    main()
