"""Scale-out on Dask (issue 9, benchmark 6): a generated book on a 2-worker LocalCluster vs
the single process, with the overhead taken apart.

    python -m bench.bench_dask [--accounts 10000] [--positions 10] [--workers 2]
                               [--model historical-var --model deribit-pm] [--partitions 2 4 8]

Per model, in one run on one machine: the single-process ``assess_book`` (the reference), the
same with the risk-based family's instrument P&L precomputed (what the workers receive), and
``assess_book_distributed`` on the cluster with each phase timed — preparing the P&L on the
client, broadcasting model + market + P&L, scattering the partitions, computing (wall, and the
sum of the workers' own compute seconds), gathering the reports — and the pickled size of what
crosses the wire. The reports are checked equal to the single process's (every float). Cluster
start and close, and the first task's warm-up on fresh workers, are timed once. Liquidation
prices are off (their solver is timed elsewhere); both paths run the same per-account code.
"""

from __future__ import annotations

import argparse
import os
import pickle
import time
from datetime import date

from bench.bench_book_margin import random_book
from margin_engine.demo.synthetic import generate_market
from margin_engine.distributed.assess import Context, assess_book_distributed, broadcast_model
from margin_engine.distributed.partition import balanced_bounds
from margin_engine.distributed.scheduler import SchedulerSpec, connect
from margin_engine.domain.book import Book
from margin_engine.domain.market import MarketSnapshot
from margin_engine.io.loaders import parse_model
from margin_engine.io.series import synthetic_series
from margin_engine.models.core.base import MarginModel
from margin_engine.models.core.registry import get_model
from margin_engine.models.risk_based.model import RiskBasedModel
from margin_engine.policy.assess import assess_book

HISTORY = synthetic_series(date(2026, 2, 4))


def fresh(name: str) -> MarginModel:
    """A new model instance (no cached scenarios: each path pays its own generation)."""
    model = get_model(name, {})
    if isinstance(model, RiskBasedModel):
        model = get_model(name, {"history": HISTORY})
    return model


def mb(n: int) -> str:
    return f"{n / 1e6:8.1f} MB"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--accounts", type=int, default=10_000)
    ap.add_argument("--positions", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--model", action="append", default=None)
    ap.add_argument("--partitions", type=int, nargs="+", default=[4])
    args = ap.parse_args(argv)
    models = args.model or ["historical-var", "deribit-pm"]
    load = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} CPUs, load average {load:.1f} at start")
    market = parse_model(MarketSnapshot, generate_market(seed=7), "market")
    t0 = time.perf_counter()
    book = random_book(market, args.accounts, args.positions, seed=1)
    n_pos = sum(len(a.positions) for a in book.accounts)
    print(f"book: {len(book.accounts):,} accounts, {n_pos:,} positions over "
          f"{len(market.instruments)} instruments (built in {time.perf_counter() - t0:.1f} s); "
          "liquidation prices off")
    t0 = time.perf_counter()
    with connect(SchedulerSpec(workers=args.workers)) as client:
        start = time.perf_counter() - t0
        t0 = time.perf_counter()
        warm = Book(accounts=book.accounts[: 4 * args.workers])
        assess_book_distributed(client, fresh(models[0]), warm, market,
                                liquidation_prices=False)
        warmup = time.perf_counter() - t0
        print(f"cluster: LocalCluster of {args.workers} worker processes × 1 thread: start "
              f"{start:.2f} s, first task on fresh workers (imports, numba cache) {warmup:.2f} s")
        for name in models:
            t0, c0 = time.perf_counter(), time.process_time()
            single = assess_book(fresh(name), book, market, liquidation_prices=False)
            t_single, c_single = time.perf_counter() - t0, time.process_time() - c0
            print(f"\n[{name}] single process: {t_single:8.2f} s wall, {c_single:8.2f} s CPU "
                  f"({c_single / n_pos * 1e6:.0f} CPU-µs per position)")
            model = fresh(name)
            t0 = time.perf_counter()
            shipped = broadcast_model(model, book, market)
            t_prep = time.perf_counter() - t0
            if shipped is not model:
                t0, c0 = time.perf_counter(), time.process_time()
                same = assess_book(shipped, book, market, liquidation_prices=False)
                t_pre, c_pre = time.perf_counter() - t0, time.process_time() - c0
                assert same == single
                print(f"  single process, P&L precomputed: {t_pre:8.2f} s wall, {c_pre:8.2f} s"
                      f" CPU (+ {t_prep:.2f} s to precompute it)")
            sizes = {
                "broadcast": len(pickle.dumps(Context(shipped, market, None, False),
                                              protocol=5)),
                "partitions": len(pickle.dumps(book.accounts, protocol=5)),
                "results": len(pickle.dumps(single, protocol=5))}
            print("  pickled: " + ", ".join(f"{k} {mb(v).strip()}" for k, v in sizes.items()))
            for parts in args.partitions:
                tm: dict[str, float] = {}
                w0 = client.run(time.process_time)
                t0, c0 = time.perf_counter(), time.process_time()
                got = assess_book_distributed(client, fresh(name), book, market,
                                              liquidation_prices=False, partitions=parts,
                                              timings=tm)
                total, c_client = time.perf_counter() - t0, time.process_time() - c0
                w1 = client.run(time.process_time)
                assert got == single, "distributed reports differ from the single process"
                w_cpu = {k: w1[k] - w0[k] for k in w1}
                sizes_p = [b - a for a, b in balanced_bounds(
                    [len(a.positions) for a in book.accounts], parts)]
                print(f"  dask, {int(tm['partitions'])} partitions ({min(sizes_p):,}–"
                      f"{max(sizes_p):,} accounts): {total:8.2f} s wall = single × "
                      f"{total / t_single:.2f}; identical reports")
                print(f"    wall: prepare {tm['prepare']:.2f} | broadcast {tm['broadcast']:.2f}"
                      f" | scatter {tm['scatter']:.2f} | compute {tm['compute']:.2f} | gather "
                      f"{tm['gather']:.2f} s")
                over = sum(w_cpu.values()) - tm["worker_cpu"]
                proj = c_client + max(w_cpu.values())
                print(f"    CPU: assessments on workers {tm['worker_cpu']:.2f} s | workers' "
                      f"other work (deserialise, serialise, comm) {over:.2f} s | client "
                      f"{c_client:.2f} s (prepare, pickle, send, receive)")
                print(f"    on {args.workers} idle cores: ≈ client CPU + busiest worker's CPU "
                      f"= {proj:.2f} s vs single-process CPU {c_single:.2f} s "
                      f"(speed-up ≈ {c_single / proj:.2f}×)")
        t0 = time.perf_counter()
    print(f"\ncluster close: {time.perf_counter() - t0:.2f} s; "
          f"load average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
