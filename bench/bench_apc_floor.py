"""What the APC floor (the CCP default ``apc="floor"``) costs the live risk engine.

    python -m bench.bench_apc_floor [--accounts 20000] [--ticks 10] [--whatif-calls 2000]

The bench book of ``bench_live`` (10 random positions an account, 5,000 instruments on 10
coins) under filtered-es with ``apc="none"`` and with ``apc="floor"`` (a second scenario set,
unfiltered historical over the whole history, each unit's stressed vector kept): the live
book's build, a full re-margin (``set_market``), BTC ticks (p50 of wall and process CPU time,
numba's threads included) and a what-if, each with the ratio floor ÷ none measured in the
same run, and the memory the stressed vectors take.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import time
from typing import Any

import numpy as np

from bench.bench_live import best, moved, pct
from bench.live_book_data import deribit_market, history, random_book
from margin_engine.live import LiveBook
from margin_engine.models.core.registry import get_model


def run(apc: str, args: argparse.Namespace) -> dict[str, Any]:
    market = deribit_market(5000)
    model = get_model("filtered-es", {"history": history(1500), "apc": apc,
                                      "horizon_days": 1})
    book = random_book(market, args.accounts, 10)
    t0 = time.perf_counter()
    live = LiveBook(model, book, market)
    out: dict[str, Any] = {"build": time.perf_counter() - t0}
    other = moved(market, 1.01)
    live.set_market(other)
    out["full"] = best(lambda lv=live: lv.set_market(other), 2)
    gc.freeze()
    px = live.market.index["BTC"]
    rng = np.random.default_rng(3)
    wall, cpu = [], []
    for _ in range(args.ticks + 2):
        px *= math.exp(rng.normal(0, 0.002))
        c0, t1 = time.process_time(), time.perf_counter()
        live.update_market({"index": {"BTC": px},
                            "instruments": [{"symbol": "BTC-PERPETUAL", "mark_price": px}]})
        wall.append(time.perf_counter() - t1)
        cpu.append(time.process_time() - c0)
    out["tick"], out["tick_cpu"] = pct(wall[2:], 50), pct(cpu[2:], 50)
    acct = book.accounts[0]
    wi = []
    for _ in range(args.whatif_calls):
        t1 = time.perf_counter()
        live.what_if(acct.id, [(acct.positions[0].symbol, 1.0, None)])
        wi.append(time.perf_counter() - t1)
    out["whatif"] = pct(wi, 50)
    eng = live.engine
    out["stressed_mb"] = sum(f.vec.nbytes for f in getattr(eng, "_stressed", {}).values()) / 1e6
    out["scen"] = [f.scen.n for f in getattr(eng, "_stressed", {}).values()][:1]
    del live
    gc.unfreeze()
    gc.collect()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=20000)
    ap.add_argument("--ticks", type=int, default=10)
    ap.add_argument("--whatif-calls", type=int, default=2000)
    args = ap.parse_args()
    none = run("none", args)
    floor = run("floor", args)
    print(f"filtered-es, {args.accounts:,} accounts x 10 positions, 5,000 instruments; "
          f"stressed set {floor['scen']} scenarios, its unit vectors "
          f"{floor['stressed_mb']:,.0f} MB")
    for key, label, unit in (("build", "live book built", 1), ("full", "full re-margin", 1),
                             ("tick", "BTC tick p50 (wall)", 1e3),
                             ("tick_cpu", "BTC tick p50 (process CPU)", 1e3),
                             ("whatif", "what-if p50", 1e6)):
        u = {1: "s", 1e3: "ms", 1e6: "us"}[unit]
        print(f"  {label:<28} none {none[key] * unit:10.1f} {u}   floor "
              f"{floor[key] * unit:10.1f} {u}   floor / none {floor[key] / none[key]:.2f}x")
    print(f"  load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
