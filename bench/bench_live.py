"""The live engine's benchmarks (issue 9, benchmarks 1-4), every ratio measured in the same run.

    python -m bench.bench_live [--accounts 100000] [--per-account 10] [--instruments 5000]
                               [--ticks 1000] [--risk-ticks 20] [--whatif-calls 100000]
                               [--quick]

1. Full re-margin (``LiveBook.set_market``: a new snapshot → every instrument revalued → every
   unit and account's IM, MM, equity, status) of ``accounts × per-account`` positions over
   ``instruments`` instruments on 10 coins, for filtered-es, binance-usdm and deribit-pm (and,
   by ``--models``, hyperliquid and dydx-v4 on one linear perpetual per coin, deribit-standard
   on the Deribit market; their naive way is the per-unit reference path); time ÷
   the gather roofline of the same bytes (a numba kernel that only reads each position's
   instrument row) and ÷ the naive way (per-position scalar Black-76 in a Python loop,
   aggregation and measure in Python; timed on a sample, scaled linearly).
2. Tick-to-margin: a BTC index update (and the BTC perpetual's mark) re-margining every unit
   holding BTC, p50/p99 over ``--ticks`` (``--risk-ticks`` for filtered-es, whose ticks each
   re-margin ~65% of the book).
3. What-if: one order on a 50-position account, p50/p99 over ``--whatif-calls``.
4. Growth: full re-margin at 1/100, 1/10 and all of the positions; and at 35/350/3,500
   scenarios (filtered-es lookback) on 1/10 of the positions.

Books are built with ``model_construct`` (bench/live_book_data.py): a million validated pydantic
positions would take minutes to build and are well-formed by construction here.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import math
import os
import time
from collections.abc import Callable

import numba
import numpy as np
from numba import prange

from bench.live_book_data import (
    COINS,
    SPOT,
    deribit_market,
    derive_market,
    linear_market,
    model_for,
    random_book,
)
from margin_engine.domain.book import Account, Book, MarginMode, Position
from margin_engine.domain.market import MarketSnapshot
from margin_engine.live import LiveBook
from margin_engine.maths import black76
from margin_engine.models.core.base import MarginModel

#: Rule-based models (cross accounts; the naive way is their per-unit reference path).
RULE_BASED = frozenset({"binance-usdm", "hyperliquid", "dydx-v4", "deribit-standard"})
#: Models of linear perpetuals only: their market is one USDT perpetual per coin.
PERPS_ONLY = frozenset({"hyperliquid", "dydx-v4"})

@numba.njit(parallel=True, cache=True)
def _gather_rows(pnl, unit_ptr, rows, sizes, out):  # pragma: no cover - compiled
    """The roofline: read every position's instrument row once (what any aggregation must)."""
    n = pnl.shape[1]
    for u in prange(unit_ptr.shape[0] - 1):
        acc = 0.0
        for j in range(unit_ptr[u], unit_ptr[u + 1]):
            row = pnl[rows[j]]
            q = sizes[j]
            for s in range(n):
                acc += q * row[s]
        out[u] = acc


@numba.njit(parallel=True, cache=True)
def _gather_marks(mark, unit_ptr, rows, sizes, out):  # pragma: no cover - compiled
    for u in prange(unit_ptr.shape[0] - 1):
        acc = 0.0
        for j in range(unit_ptr[u], unit_ptr[u + 1]):
            acc += abs(sizes[j]) * mark[rows[j]]
        out[u] = acc


def best(fn: Callable[[], object], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def moved(market: MarketSnapshot, f: float) -> MarketSnapshot:
    ins = tuple(i.model_copy(update={"mark_price": i.mark_price * f})
                if i.mark_price is not None and not i.is_option else i
                for i in market.instruments)
    return market.model_copy(update={"index": {k: v * f for k, v in market.index.items()},
                                      "instruments": ins})


def roofline(live: LiveBook, scen_n: int | None) -> tuple[float, float]:
    """(seconds, GB) of the gather roofline over the live book's positions."""
    slots = live.live_slots()
    pos = [live.unit_positions(s) for s in slots]
    ptr = np.zeros(len(pos) + 1, dtype=np.int64)
    np.cumsum([p.size for p in pos], out=ptr[1:])
    idx = np.concatenate(pos)
    rows = live.pos_ins[idx].copy()
    sizes = live.pos_size[idx].copy()
    out = np.empty(len(pos))
    if scen_n is None:
        mark = live.instruments.mark.copy()
        _gather_marks(mark, ptr, rows, sizes, out)
        t = best(lambda: _gather_marks(mark, ptr, rows, sizes, out), 5)
        return t, idx.size * 24 / 1e9
    pnl = np.random.default_rng(0).standard_normal((len(live.instruments.instruments), scen_n))
    _gather_rows(pnl, ptr, rows, sizes, out)
    t = best(lambda: _gather_rows(pnl, ptr, rows, sizes, out), 3)
    return t, idx.size * scen_n * 8 / 1e9


def naive_scenario(book: Book, market: MarketSnapshot, moves: np.ndarray, measure: str,
                   sample: int) -> float:
    """Seconds per account of the naive way: scalar Black-76 per position per scenario in a
    Python loop, the account's P&L and its measure in Python."""
    accounts = book.accounts[:sample]
    t0 = time.perf_counter()
    col = {c: k for k, c in enumerate(COINS)}
    for a in accounts:
        pnl = [0.0] * moves.shape[0]
        for p in a.positions:
            ins = market.instrument(p.symbol)
            xs = moves[:, col[ins.underlying]].tolist()
            if ins.is_option:
                F = market.index[ins.underlying]
                T = market.years_to_expiry(ins)
                v0 = black76.price_usd(F, ins.strike, T, ins.mark_iv, ins.is_call)
                for s, x in enumerate(xs):
                    pnl[s] += p.size * (black76.price_usd(F * (1 + x), ins.strike, T,
                                                          ins.mark_iv, ins.is_call) - v0)
            else:
                m = ins.mark_price
                for s, x in enumerate(xs):
                    pnl[s] += p.size * ins.contract_size * m * x
        losses = sorted((-v for v in pnl), reverse=True)
        if measure == "es":
            k = max(1, int(0.025 * len(losses)))
            _ = sum(losses[:k]) / k
        else:
            _ = losses[0]
    return (time.perf_counter() - t0) / len(accounts)


def naive_brackets(book: Book, market: MarketSnapshot, model: object, sample: int) -> float:
    tables = model.params.brackets  # type: ignore[attr-defined]
    accounts = book.accounts[:sample]
    t0 = time.perf_counter()
    for a in accounts:
        im = mm = 0.0
        for p in a.positions:
            ins = market.instrument(p.symbol)
            n = abs(p.size) * ins.contract_size * ins.mark_price
            row = tables[p.symbol].at(n)
            m = max(n * row.maintMarginRatio - row.cum, 0.0)
            im += max(n / min(20.0, row.initialLeverage), m)
            mm += m
    return (time.perf_counter() - t0) / len(accounts)


def naive_reference(book: Book, market: MarketSnapshot, model: MarginModel,
                    sample: int) -> float:
    """Seconds per account of the per-unit reference path (``model.margin_unit`` on each of
    the account's units), on the first ``sample`` accounts."""
    accounts = book.accounts[:sample]
    t0 = time.perf_counter()
    for a in accounts:
        for u in model.units(a, market):
            model.margin_unit(u, a, market)
    return (time.perf_counter() - t0) / len(accounts)


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.array(xs), q))


CPU: list[float] = []
"""Thread CPU seconds of each timed call of the last :func:`ticks` / :func:`whatif_latency`
(on a machine shared with other jobs, wall time includes waiting for a core; CPU time
does not)."""


def ticks(live: LiveBook, n: int, perp: str | None) -> list[float]:
    rng = np.random.default_rng(3)
    out = []
    CPU.clear()
    px = live.market.index["BTC"]
    for _ in range(n):
        px *= math.exp(rng.normal(0, 0.002))
        upd: dict[str, object] = {"index": {"BTC": px}}
        if perp:
            upd["instruments"] = [{"symbol": perp, "mark_price": px}]
        c0, t0 = time.thread_time(), time.perf_counter()
        live.update_market(upd)
        out.append(time.perf_counter() - t0)
        CPU.append(time.thread_time() - c0)
    return out


def whatif_latency(live: LiveBook, account: str, symbol: str, calls: int) -> list[float]:
    out = []
    order = [(symbol, 1.0, None)]
    CPU.clear()
    for k in range(calls):
        c0, t0 = time.thread_time(), time.perf_counter()
        live.what_if(account, order)
        out.append(time.perf_counter() - t0)
        CPU.append(time.thread_time() - c0)
        if k == 0:
            out.clear()
            CPU.clear()
    return out


def engine_cpu(live: LiveBook, run: Callable[[], object],
               names: tuple[str, ...] = ("on_market", "margins")) -> tuple[float, float]:
    """(thread CPU seconds in the engine's methods ``names``, in all of ``run()``): how much of
    a tick, a full re-margin or a what-if is the engine's, the rest being the book's."""
    eng = live.engine
    spent = [0.0]

    def timed(f: Callable[..., object]) -> Callable[..., object]:
        def call(*a: object) -> object:
            c0 = time.thread_time()
            out = f(*a)
            spent[0] += time.thread_time() - c0
            return out
        return call

    for k in names:
        setattr(eng, k, timed(getattr(eng, k)))
    c0 = time.thread_time()
    try:
        run()
    finally:
        for k in names:
            vars(eng).pop(k)
    return spent[0], time.thread_time() - c0


def with_whale(book: Book, market: MarketSnapshot, n: int, seed: int = 9) -> Book:
    """The book plus one account of ``n`` positions (the what-if account)."""
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(market.instruments), n, replace=False)
    pos = tuple(Position.model_construct(symbol=market.instruments[k].symbol,
                                         size=float(rng.integers(1, 20)), entry_price=None,
                                         isolated_margin=None) for k in picks.tolist())
    a = book.accounts[0]
    whale = Account.model_construct(id="whale", margin_mode=a.margin_mode,
                                    collateral=dict(a.collateral) | {c: 1e3 for c in COINS},
                                    positions=pos, leverage={}, credit_rating=None,
                                    haircuts={})
    return Book.model_construct(accounts=(*book.accounts, whale))


def bench_market(name: str, instruments: int) -> MarketSnapshot:
    """The market a model is benchmarked on (its venue's instruments)."""
    if name in PERPS_ONLY:  # linear perpetuals only: one per coin
        return linear_market(len(COINS))
    if name == "binance-usdm":
        return linear_market(instruments)
    if name == "derive-pmrm":
        return derive_market(instruments)
    return deribit_market(instruments)


def bench_book(name: str, market: MarketSnapshot, n_accounts: int, per_account: int) -> Book:
    """``n_accounts`` random accounts and the 50-position ``whale`` (fewer on a small market)."""
    mode = MarginMode.CROSS if name in RULE_BASED else MarginMode.PORTFOLIO
    return with_whale(random_book(market, n_accounts, min(per_account, len(market.instruments)),
                                  mode=mode, coin_collateral=name == "deribit-pm"),
                      market, min(50, len(market.instruments)))


def run_model(name: str, args: argparse.Namespace) -> float | None:
    market = bench_market(name, args.instruments)
    n_acc = args.accounts
    book = bench_book(name, market, n_acc, args.per_account)
    model = model_for(name, market)
    t0 = time.perf_counter()
    live = LiveBook(model, book, market)
    setup = time.perf_counter() - t0
    gc.collect()
    gc.freeze()  # the book's million objects out of the collector's way (as a service would)
    n_pos = sum(len(a.positions) for a in book.accounts)
    other = moved(market, 1.01)
    flip = [other, market]
    k = [0]

    def full(lv: LiveBook = live) -> None:
        k[0] ^= 1
        lv.set_market(flip[k[0]])

    full()
    t_full = best(full, 3)
    print(f"\n--- {name}: {n_acc:,} accounts, {n_pos:,} positions, {len(market.instruments):,} "
          f"instruments; live book built in {setup:.1f} s (engine "
          f"{type(live.engine).__name__})")
    n_scen = None
    if name == "filtered-es":
        fam = next(iter(live.engine._families.values()))  # type: ignore[attr-defined]
        n_scen = fam.scen.n
    elif name == "deribit-pm":
        n_scen = model.grid("BTC").n_scenarios  # type: ignore[attr-defined]
    elif name == "derive-pmrm":
        n_scen = len(model.params.scenarios) + 3  # type: ignore[attr-defined]
    elif name in ("span", "okx-pm"):  # the cached row: SPAN's 16, OKX's stress grid
        n_scen = live.engine.width  # type: ignore[attr-defined]
    print(f"1. full re-margin: {t_full:.3f} s")
    t_roof, gb = roofline(live, n_scen)
    print(f"   gather roofline of the same bytes ({gb:.2f} GB): {t_roof:.3f} s -> ratio "
          f"{t_full / t_roof:.1f}x (goal <= 2x)")
    if name == "binance-usdm":
        per = naive_brackets(book, market, model, min(2000, n_acc))
    elif name in RULE_BASED:
        per = naive_reference(book, market, model, min(2000, n_acc))
    else:
        if name == "filtered-es":
            moves = fam.scen.price_moves  # type: ignore[union-attr]
        else:
            moves = np.linspace(-0.16, 0.16, n_scen or 35)[:, None].repeat(len(COINS), 1)
        per = naive_scenario(book, market, moves, "es" if name == "filtered-es" else "worst",
                             args.naive_sample)
    naive = per * n_acc
    print(f"   naive (per-position scalar pricing + Python aggregation, sample scaled): "
          f"{naive:.2f} s -> {naive / t_full:,.1f}x faster (goal >= 1,000x)")
    perp = "BTCUSDT" if name == "binance-usdm" or name in PERPS_ONLY else "BTC-PERPETUAL"
    n_ticks = args.risk_ticks if name in ("filtered-es", "span", "okx-pm") else args.ticks
    tk = ticks(live, n_ticks, perp)
    cpu_tick = pct(CPU, 50)
    held = len(live._by_ccy.get("BTC", ()))
    print(f"2. tick-to-margin (BTC index + {perp}; {held:,} units hold BTC): p50 "
          f"{pct(tk, 50) * 1e3:.1f} ms, p99 {pct(tk, 99) * 1e3:.1f} ms over {len(tk)} ticks "
          f"(goal p99 <= 50 ms); thread CPU time p50 {pct(CPU, 50) * 1e3:.1f} ms, "
          f"p99 {pct(CPU, 99) * 1e3:.1f} ms; load average {os.getloadavg()[0]:.1f}")
    if name == "deribit-pm":  # what the engine costs, beside the book's own work
        n_share = min(n_ticks, 50)
        eng_t, all_t = engine_cpu(live, lambda lv=live: ticks(lv, n_share, perp))
        eng_f, all_f = engine_cpu(live, full)
        print(f"   of which the engine (on_market + margins): {eng_t / n_share * 1e3:.1f} ms "
              f"thread CPU a tick of {all_t / n_share * 1e3:.1f} ms; in a full re-margin "
              f"{eng_f:.3f} s of {all_f:.3f} s (the rest: the book's equity, collateral and "
              f"status work)")
    if name == "binance-usdm":  # the same ticks re-summing every touched unit and account
        eng = live.engine
        incremental = eng.on_market

        def resum(moved: np.ndarray, e: object = eng, lv: LiveBook = live) -> None:
            """The tick as before the incremental sums: the moved positions re-priced (the
            per-position cache), then every touched unit's and account's totals re-summed."""
            incremental(moved)
            for sums in (e._uim, e._umm, lv._u_peq):  # type: ignore[attr-defined]
                sums.invalidate(slice(None))
            lv._a_peq_ccy[:] = -1  # type: ignore[attr-defined]

        eng.on_market = resum  # type: ignore[method-assign]
        tk0 = ticks(live, min(n_ticks, 200), perp)
        eng.on_market = incremental  # type: ignore[method-assign]
        print(f"   re-summing the touched units and accounts instead ({len(tk0)} ticks): "
              f"p50 {pct(tk0, 50) * 1e3:.1f} ms, p99 {pct(tk0, 99) * 1e3:.1f} ms; thread CPU "
              f"time p50 {pct(CPU, 50) * 1e3:.1f} ms -> incremental sums save "
              f"{pct(CPU, 50) / max(cpu_tick, 1e-9):.2f}x CPU at the median")
    whale = book.accounts[-1]
    wl = whatif_latency(live, "whale", whale.positions[0].symbol, args.whatif_calls)
    print(f"3. what-if ({len(whale.positions)} positions, 1 order): p50 "
          f"{pct(wl, 50) * 1e6:.0f} us, p99 "
          f"{pct(wl, 99) * 1e6:.0f} us over {len(wl):,} calls (goal p99 <= 50 us); thread CPU "
          f"time p50 {pct(CPU, 50) * 1e6:.0f} us, p99 {pct(CPU, 99) * 1e6:.0f} us")
    gc.disable()  # the collector off as well (the bench only: the library never turns it off)
    try:
        wg = whatif_latency(live, "whale", whale.positions[0].symbol, args.whatif_calls)
    finally:
        gc.enable()
    print(f"   with gc.disable() too: p50 {pct(wg, 50) * 1e6:.0f} us, p99 "
          f"{pct(wg, 99) * 1e6:.0f} us (the book frozen, gc.freeze, in both)")
    if name == "deribit-pm":
        n_share = min(args.whatif_calls, 20000)
        eng_w, all_w = engine_cpu(live, lambda lv=live: whatif_latency(
            lv, "whale", whale.positions[0].symbol, n_share), ("what_if",))
        print(f"   of which the engine's what_if (vectors, aggregation): "
              f"{eng_w / n_share * 1e6:.0f} us thread CPU a call of "
              f"{all_w / n_share * 1e6:.0f} us (mean)")
    del live
    gc.unfreeze()
    gc.collect()
    return t_full


def versus_reference(name: str, args: argparse.Namespace) -> None:
    """The model's engine against the per-unit reference engine (``margin_unit`` per unit) on
    the same ``--reference-accounts`` accounts, in this run: full re-margin, tick, what-if."""
    market = bench_market(name, args.instruments)
    book = bench_book(name, market, args.reference_accounts, args.per_account)
    model = model_for(name, market)
    other = moved(market, 1.01)
    perp = "BTCUSDT" if name == "binance-usdm" or name in PERPS_ONLY else "BTC-PERPETUAL"
    sym = book.accounts[-1].positions[0].symbol
    got = {}
    for engine in ("reference", "auto"):
        live = LiveBook(model, book, market, engine=engine)
        live.set_market(other)
        markets = itertools.cycle([market, other])
        got[engine] = (best(lambda lv=live, m=markets: lv.set_market(next(m)), 3),
                       pct(ticks(live, 20, perp), 50),
                       pct(whatif_latency(live, "whale", sym, 200), 50),
                       type(live.engine).__name__)
        del live
        gc.collect()
    (fr, tr, wr, _), (fa, ta, wa, eng) = got["reference"], got["auto"]
    print(f"\n--- {name} vs the reference engine, {args.reference_accounts:,} accounts "
          f"(+ the 50-position account), same run: full re-margin {fr:.3f} s -> {fa:.3f} s "
          f"({fr / fa:,.0f}x); tick p50 {tr * 1e3:.1f} -> {ta * 1e3:.1f} ms ({tr / ta:,.0f}x); "
          f"what-if p50 {wr * 1e6:,.0f} -> {wa * 1e6:,.0f} us ({wr / wa:,.0f}x) ({eng})")


def growth(args: argparse.Namespace, t_top: float | None) -> None:
    print("\n--- 4. growth (filtered-es, full re-margin)")
    market = deribit_market(args.instruments)
    model = model_for("filtered-es", market)
    times = []
    for frac in (100, 10):
        book = random_book(market, max(1, args.accounts // frac), args.per_account)
        live = LiveBook(model, book, market)
        other = moved(market, 1.01)
        live.set_market(other)
        times.append(best(lambda lv=live, o=other: lv.set_market(o), 3))
        del live
        gc.collect()
    if t_top is not None:
        times.append(t_top)
    sizes = [args.accounts * args.per_account // f for f in (100, 10, 1)][: len(times)]
    for n, t in zip(sizes, times, strict=False):
        print(f"   {n:>10,} positions: {t:.3f} s ({t / n * 1e9:.0f} ns/position)")
    for (n0, t0), (n1, t1) in itertools.pairwise(list(zip(sizes, times, strict=False))):
        print(f"   slope {n0:,} -> {n1:,}: time x{t1 / t0:.2f} for positions x{n1 / n0:.0f} "
              f"(linear within 20%: {abs(t1 / t0 / (n1 / n0) - 1) <= 0.2})")
    book = random_book(market, max(1, args.accounts // 10), args.per_account)
    st = []
    for look in (36, 351, 3501):
        mdl = model_for("filtered-es", market, lookback_days=look, history_days=3700)
        live = LiveBook(mdl, book, market)
        n = next(iter(live.engine._families.values())).scen.n  # type: ignore[attr-defined]
        other = moved(market, 1.01)
        live.set_market(other)
        t = best(lambda lv=live, o=other: lv.set_market(o), 3)
        st.append((n, t))
        print(f"   {n:>6,} scenarios ({len(book.accounts) * args.per_account:,} positions): "
              f"{t:.3f} s")
        del live
        gc.collect()
    for (n0, t0), (n1, t1) in itertools.pairwise(st):
        print(f"   slope {n0:,} -> {n1:,} scenarios: time x{t1 / t0:.2f} for x{n1 / n0:.1f} "
              f"(linear within 20%: {abs(t1 / t0 / (n1 / n0) - 1) <= 0.2})")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--accounts", type=int, default=100_000)
    ap.add_argument("--per-account", type=int, default=10)
    ap.add_argument("--instruments", type=int, default=5000)
    ap.add_argument("--ticks", type=int, default=1000)
    ap.add_argument("--risk-ticks", type=int, default=20,
                    help="ticks for filtered-es (each re-margins every unit holding BTC)")
    ap.add_argument("--whatif-calls", type=int, default=100_000)
    ap.add_argument("--naive-sample", type=int, default=3)
    ap.add_argument("--models", default="filtered-es,binance-usdm,deribit-pm")
    ap.add_argument("--no-growth", action="store_true")
    ap.add_argument("--reference-accounts", type=int, default=0,
                    help="also time each model's engine against the per-unit reference "
                         "engine on this many accounts (0: skip)")
    ap.add_argument("--quick", action="store_true",
                    help="small sizes (2,000 accounts, 20 ticks, 2,000 what-ifs)")
    args = ap.parse_args(argv)
    if args.quick:
        args.accounts = 2000
        args.ticks, args.risk_ticks, args.whatif_calls = 20, 10, 2000
    print(f"machine: {os.cpu_count()} CPUs, numba threads {numba.get_num_threads()}; "
          f"coins {', '.join(COINS)} (spot {SPOT['BTC']:,.0f} BTC)")
    top = None
    for name in args.models.split(","):
        t = run_model(name, args)
        if name == "filtered-es":
            top = t
        if args.reference_accounts:
            versus_reference(name, args)
    if not args.no_growth:
        growth(args, top)


if __name__ == "__main__":
    main()
