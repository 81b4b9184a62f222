"""The optimiser's solver time on a 200-position account (issue 14), ratios measured in the same
run.

    python -m bench.bench_optimise [--positions 200] [--instruments 400] [--model filtered-es]
                                   [--naive-sample 40] [--repeat 3]

A portfolio account of ``--positions`` random USDT-margined perpetuals and dated futures on 10
coins (``linear_market`` of bench/live_book_data.py) under a risk-based model; with ``--model
deribit-pm`` or ``span``, of inverse perpetuals, futures and options (``deribit_market``) and the
worst-loss LP of ``exact_grid`` in step 3:

1. one greedy pass: every candidate trade (instrument × size of the default universe) evaluated
   by the live book's what-if on cached scenario vectors (``rank_hedges``'s inner loop), against
   the naive way — the account re-assessed from scratch with each trade filled
   (``assess_account``; timed on ``--naive-sample`` candidates, scaled to all) — ratio naive ÷
   fast;
2. the greedy plan (5 steps, each a full pass) end to end;
3. the exact solver: building the scenario problem and the HiGHS solve of the
   Rockafellar–Uryasev LP (variables, constraints, seconds), and the greedy plan's objective
   over the LP optimum.

Medians of ``--repeat`` runs; the machine's load shifts every figure (said in docs).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from bench.live_book_data import deribit_market, linear_market, model_for, random_book
from margin_engine.analysis.optimise import exact_grid, exact_lp
from margin_engine.analysis.optimise.candidates import candidate_sizes, default_universe
from margin_engine.analysis.optimise.costs import trade_cost
from margin_engine.analysis.optimise.greedy import greedy_plan, live_book, recompute_im
from margin_engine.domain.book import MarginMode
from margin_engine.models.venues.deribit_pm import DeribitPm
from margin_engine.models.venues.span import Span


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--positions", type=int, default=200)
    ap.add_argument("--instruments", type=int, default=400)
    ap.add_argument("--model", default="filtered-es")
    ap.add_argument("--naive-sample", type=int, default=40)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--budget", type=float, default=5000.0)
    a = ap.parse_args()
    market = (deribit_market(a.instruments) if a.model in ("deribit-pm", "span")
              else linear_market(a.instruments))
    acct = random_book(market, 1, a.positions, seed=14, mode=MarginMode.PORTFOLIO).accounts[0]
    model = model_for(a.model, market)
    cands = candidate_sizes(acct, market, default_universe(acct, market, model))
    costs = {s: trade_cost(market.instrument(s), market) for s in cands.symbols}
    trials = [(s, q) for s in cands.symbols for q in cands.sizes[s]]
    print(f"account: {len(acct.positions)} positions, {a.model}; universe "
          f"{len(cands.symbols)} instruments, {len(trials)} candidate trades")

    lv = live_book(model, acct, market, None, cands.symbols)
    lv.what_if(acct.id, [trials[0] + (None,)])  # compile / warm
    fast = []
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        for s, q in trials:
            lv.what_if(acct.id, [(s, q, None)])
        fast.append(time.perf_counter() - t0)
    t_fast = statistics.median(fast)
    sample = trials[:: max(1, len(trials) // a.naive_sample)][: a.naive_sample]
    recompute_im(model, acct, market, [sample[0]])
    t0 = time.perf_counter()
    for s, q in sample:
        recompute_im(model, acct, market, [(s, q)])
    t_naive = (time.perf_counter() - t0) / len(sample) * len(trials)
    print(f"1. greedy pass (what-if, cached vectors): {t_fast * 1e3:.1f} ms for {len(trials)} "
          f"trades ({t_fast / len(trials) * 1e6:.0f} µs each); naive re-assessment "
          f"{t_naive:.2f} s (sample of {len(sample)}, scaled); ratio naive/fast "
          f"{t_naive / t_fast:.0f}x")

    plans = []
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        plan = greedy_plan(model, acct, market, cands, costs, budget=a.budget, max_steps=5)
        plans.append(time.perf_counter() - t0)
    print(f"2. greedy plan, 5 steps, budget {a.budget:,.0f} USD: "
          f"{statistics.median(plans):.2f} s; IM {plan.initial_margin_before:,.0f} → "
          f"{plan.initial_margin_after:,.0f} {plan.currency}")

    if isinstance(model, DeribitPm | Span):
        _grid(a, model, acct, market, cands, costs, plan)
        return
    builds, solves = [], []
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        prob = exact_lp.build_problem(model, acct, market, cands.symbols)
        builds.append(time.perf_counter() - t0)
        h, bound, secs, nv, nc = exact_lp.solve(prob, cands, costs, a.budget)
        solves.append(secs)
    g = prob.objective(np.array([plan.trades.get(s, 0.0) for s in cands.symbols]))
    f = prob.objective(h)
    print(f"3. exact LP: build {statistics.median(builds):.2f} s, HiGHS solve "
          f"{statistics.median(solves):.2f} s ({nv} variables, {nc} constraints, "
          f"{prob.v.size} scenarios); objective {f:,.0f} (bound {bound:,.0f}) vs greedy "
          f"{g:,.0f}")


def _grid(a, model, acct, market, cands, costs, plan) -> None:  # type: ignore[no-untyped-def]
    """3. for a venue grid model: the worst-loss LP (exact_grid)."""
    builds, solves = [], []
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        prob = exact_grid.build_problem(model, acct, market, cands.symbols)
        builds.append(time.perf_counter() - t0)
        h, bound, secs, nv, nc = exact_grid.solve(prob, cands, costs, a.budget)
        solves.append(secs)
    g = exact_grid.scenario_part(model, acct, market, plan.trades)
    f = exact_grid.scenario_part(model, acct, market,
                                 {s: float(q) for s, q in zip(cands.symbols, h, strict=True) if q})
    n = sum(b.v.size for b in prob.blocks)
    print(f"3. exact worst-loss LP: build {statistics.median(builds):.2f} s, HiGHS solve "
          f"{statistics.median(solves):.2f} s ({nv} variables, {nc} constraints, "
          f"{len(prob.blocks)} grids, {n} scenarios); objective {f:,.0f} USD (bound "
          f"{bound:,.0f}) vs greedy {g:,.0f}")


if __name__ == "__main__":
    main()
