"""The cascade simulator's benchmark (issue 12): a population through a 24-hour hourly path.

    python -m bench.bench_cascade [--accounts 100000] [--naive-accounts 300] [--quick]

1. The vectorised simulator (``analysis.cascade.simulate``: the live book re-margins every
   account each round, liquidations sized and settled over arrays, one batch of fills per
   round) on ``--accounts`` accounts generated with the Hyperliquid fit, binance-usdm, the real
   BTC and ETH hourly perpetual closes of 2025-10-10 12:00 UTC + 24 h (the 2025-10-10 crash;
   a −15 % shock over 24 steps when ../shared/data/real is absent).
2. The naive way on ``--naive-accounts``: per step and round, every account margined alone
   (``policy.assess.assess_account``), each liquidation applied alone; the same rule (whole
   position, dydx), no impact, a fund large enough for no ADL, so both must liquidate the same
   accounts for the same notional (checked and printed). Timed on the small population, scaled
   linearly to ``--accounts``; the vectorised run is also timed on the small population, so
   the ratio is measured in this run on the same machine.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from margin_engine.analysis.cascade.engine import CascadeConfig, simulate
from margin_engine.analysis.cascade.impact import NO_IMPACT
from margin_engine.analysis.cascade.population import Population, generate_population, to_book
from margin_engine.analysis.cascade.population_fit import HYPERLIQUID_FIT
from margin_engine.analysis.cascade.shock import PricePath, parse_shock
from margin_engine.domain.market import MarketSnapshot
from margin_engine.io.loaders import load_market
from margin_engine.io.price_path import load_path, parse_start
from margin_engine.live.market_update import apply_update, parse_update
from margin_engine.models.core.registry import get_model
from margin_engine.policy.assess import assess_account

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "real"
MARKET = ROOT / "docs" / "examples" / "market-2026-02-04.json"


def the_path() -> PricePath:
    files = [REAL / f"binance_usdm_perp_1h_{c}USDT_2025-09-13_2026-03-19.csv.gz"
             for c in ("BTC", "ETH")]
    if all(f.exists() for f in files):
        return load_path([str(f) for f in files], parse_start("2025-10-10T12:00"), 24)
    return parse_shock("BTC:-15%~24,ETH:-15%~24")


def naive(model_name: str, pop: Population, market: MarketSnapshot, path: PricePath,
          fee_rate: float) -> tuple[float, int, float]:
    """(seconds, accounts liquidated, notional liquidated) of the per-account loop."""
    model = get_model(model_name, {})
    accounts = list(to_book(pop).accounts)
    syms = pop.symbols
    coins = [market.instrument(s).underlying for s in syms]
    mark0 = [float(market.instrument(s).mark_price or 0.0) for s in syms]
    idx0 = [market.usd_price(c) for c in coins]
    col = {c: path.coins.index(c) if c in path.coins else -1 for c in coins}
    done: set[int] = set()
    notional = 0.0
    t0 = time.perf_counter()
    for t in range(path.steps + 1):
        rel = [float(path.relative[t, col[c]]) if col[c] >= 0 else 1.0 for c in coins]
        upd = {"index": {c: i * r for c, i, r in zip(coins, idx0, rel, strict=True)},
               "instruments": [{"symbol": s, "mark_price": m * r}
                               for s, m, r in zip(syms, mark0, rel, strict=True)]}
        mk, _, _ = apply_update(market, parse_update(upd, market))
        marks = {s: m * r for s, m, r in zip(syms, mark0, rel, strict=True)}
        while True:
            hit = False
            for i, a in enumerate(accounts):
                if not a.positions:
                    continue
                rep = assess_account(model, a, mk, liquidation_prices=False)
                e, mm = rep.equity, rep.maintenance_margin
                if not (e < 0 or (mm > 0 and e <= mm)):
                    continue
                hit = True
                done.add(i)
                p = max(a.positions, key=lambda p: abs(p.size) * marks[p.symbol])
                value = abs(p.size) * marks[p.symbol]
                notional += value
                realised = p.size * (marks[p.symbol] - (p.entry_price or marks[p.symbol]))
                share = value / sum(abs(q.size) * marks[q.symbol] for q in a.positions)
                fee = min(max(e * share, 0.0), fee_rate * value)
                coll = dict(a.collateral)
                ccy = next(iter(coll))
                coll[ccy] = coll[ccy] + realised - fee
                accounts[i] = a.model_copy(update={
                    "positions": tuple(q for q in a.positions if q is not p),
                    "collateral": coll})
            if not hit:
                break
    return time.perf_counter() - t0, len(done), notional


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=100_000)
    ap.add_argument("--naive-accounts", type=int, default=300)
    ap.add_argument("--quick", action="store_true", help="10,000 accounts, 100 naive")
    args = ap.parse_args()
    if args.quick:
        args.accounts, args.naive_accounts = 10_000, 100
    market = load_market(MARKET)
    path = the_path()
    model = get_model("binance-usdm", {})
    print(f"path: {path.label}; model binance-usdm; population: Hyperliquid fit")
    pop = generate_population(args.accounts, market, seed=1, fit=HYPERLIQUID_FIT)
    t0 = time.perf_counter()
    r = simulate(model, pop, market, path, CascadeConfig())
    big = time.perf_counter() - t0
    print(f"vectorised, {args.accounts:,} accounts x {path.steps} steps: {big:.1f} s "
          f"({r.rounds.shape[0]} liquidation rounds, {r.accounts_liquidated:,} accounts "
          f"liquidated, {r.liquidated_usd / 1e6:,.1f} m USD; ledger change "
          f"{r.ledger_end_cents - r.ledger_start_cents} cents)")
    small = generate_population(args.naive_accounts, market, seed=2, fit=HYPERLIQUID_FIT)
    cfg = CascadeConfig(rule="dydx", impact=NO_IMPACT, fund_usd=1e12)
    t0 = time.perf_counter()
    v = simulate(model, small, market, path, cfg)
    vec_small = time.perf_counter() - t0
    secs, n_liq, notional = naive("binance-usdm", small, market, path, cfg.fee_rate)
    same = n_liq == v.accounts_liquidated and np.isclose(notional, v.liquidated_usd, rtol=1e-9)
    print(f"naive per-account loop, {args.naive_accounts:,} accounts: {secs:.2f} s "
          f"(vectorised on the same: {vec_small:.2f} s, ratio {secs / vec_small:.1f}x; same "
          f"liquidations: {same}: {n_liq} vs {v.accounts_liquidated} accounts, "
          f"{notional:,.2f} vs {v.liquidated_usd:,.2f} USD)")
    scaled = secs * args.accounts / args.naive_accounts
    print(f"naive scaled to {args.accounts:,} accounts: {scaled:,.0f} s; vectorised "
          f"{big:.1f} s: ratio {scaled / big:,.0f}x")


if __name__ == "__main__":
    main()
