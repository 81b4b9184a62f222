"""``margin-engine simulate``: a liquidation cascade of a population on the live book.

    margin-engine simulate --market MARKET (--book BOOK | --accounts N)
        (--shock SPEC | --path [COIN=]FILE ... [--start WHEN] [--hours H])
        --model NAME [--dynamic] [--isolated] [--seed N] [--format json] [-o FILE]
        [--plot FILE.png]

Runs the cascade twice on the same population and path: with the fitted order-book impact
and without any (the exogenous path alone), so the amplification is measured, not assumed.
Shock grammar: docs/cascades.md (``analysis.cascade.shock``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import typer
from rich.table import Table

from margin_engine.cli.main import (
    Format,
    FormatOpt,
    HistoryOpt,
    JsonOutputOpt,
    ParamOpt,
    app,
    console,
    emit_document,
    err_console,
    fail,
)
from margin_engine.cli.params import parse_params
from margin_engine.errors import InputError
from margin_engine.io.loaders import load_book, load_market
from margin_engine.io.model_options import build_model
from margin_engine.io.price_path import load_path, parse_start

if TYPE_CHECKING:  # the cascade engine (and the live book it drives) load when a run starts
    from margin_engine.analysis.cascade.engine import CascadeConfig, CascadeResult
    from margin_engine.analysis.cascade.population import Population
    from margin_engine.analysis.cascade.shock import PricePath


def _num(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def summary(r: CascadeResult) -> dict[str, Any]:
    """The JSON of one run (USD; no NaN: undefined ratios are null)."""
    return {
        "rule": r.rule,
        "liquidated_usd": round(r.liquidated_usd, 2),
        "accounts_liquidated": r.accounts_liquidated,
        "liquidations": int(r.events.shape[0]),
        "rounds": int(r.rounds.shape[0]),
        "bad_debt_usd": r.bad_debt_cents / 100,
        "fund_start_usd": r.fund_start_cents / 100,
        "fund_end_usd": r.fund_end_cents / 100,
        "fund_draw_usd": r.fund_draw_cents / 100,
        "fees_usd": r.fees_cents / 100,
        "adl_fills": r.adl_fills,
        "adl_usd": round(float(r.rounds[:, 4].sum()) if r.rounds.size else 0.0, 2),
        "clawback_usd": r.clawback_cents / 100,
        "uncovered_usd": r.uncovered_cents / 100,
        "ledger_change_cents": r.ledger_end_cents - r.ledger_start_cents,
        "steps_at_round_limit": r.capped_steps,
        "liquidated_usd_by_step": [round(float(x), 2) for x in r.liquidated_by_step()],
        "drawdown": {s: _num(float(d)) for s, d in zip(r.symbols, r.drawdown(), strict=True)},
        "price": {s: [round(float(p), 6) for p in r.price_with[:, j]]
                  for j, s in enumerate(r.symbols)},
        "by_round": [{"step": int(x[0]), "round": int(x[1]), "accounts": int(x[2]),
                      "book_usd": round(float(x[3]), 2), "adl_usd": round(float(x[4]), 2),
                      "fees_usd": round(float(x[5]), 2), "fund_draw_usd": round(float(x[6]), 2)}
                     for x in r.rounds],
    }


def run_simulation(model: Any, pop: Population, market: Any, path: PricePath,
                   cfg: CascadeConfig, dynamic: str) -> tuple[dict[str, Any], CascadeResult]:
    """Both runs (with impact, and without) and the comparison, as the JSON document; and
    the run with impact."""
    from margin_engine.analysis.cascade.dynamic import step_multipliers
    from margin_engine.analysis.cascade.engine import CascadeConfig, simulate
    from margin_engine.analysis.cascade.impact import NO_IMPACT

    mult = step_multipliers(path, dynamic) if dynamic != "never" else None
    with_c = simulate(model, pop, market, path, cfg, mult)
    without = simulate(model, pop, market, path,
                       CascadeConfig(**{**cfg.__dict__, "impact": NO_IMPACT}), mult)
    amp = with_c.drawdown() / np.where(with_c.drawdown(False) > 0, with_c.drawdown(False),
                                       np.nan)
    ratio = (with_c.liquidated_usd / without.liquidated_usd if without.liquidated_usd > 0
             else math.nan)
    return {
        "model": model.name, "path": path.label, "steps": path.steps,
        "step_seconds": path.step_seconds,
        "population": {"accounts": pop.n, "isolated": pop.isolated,
                       "collateral_usd": round(float(pop.collateral.sum()), 2),
                       "notional_usd": round(float(np.abs(pop.sizes * pop.entries).sum()), 2),
                       "symbols": list(pop.symbols)},
        "initial_margin_usd": round(with_c.capital_usd, 2),
        "dynamic": dynamic,
        "dynamic_multipliers": None if mult is None else [float(x) for x in mult],
        "impact": {"y": cfg.impact.y, "depth": cfg.impact.depth,
                   "permanent": cfg.impact.permanent,
                   "half_life_s": cfg.impact.half_life_s},
        "price_without_cascade": {s: [round(float(p), 6) for p in with_c.price_without[:, j]]
                                  for j, s in enumerate(with_c.symbols)},
        "with_cascade": summary(with_c),
        "without_cascade": summary(without),
        "amplification": {
            "drawdown": {s: _num(float(a)) for s, a in zip(with_c.symbols, amp, strict=True)},
            "liquidated": _num(ratio)},
    }, with_c


def _print(doc: dict[str, Any]) -> None:
    w, o = doc["with_cascade"], doc["without_cascade"]
    t = Table(title=f"cascade: {doc['model']} ({w['rule']} rule), {doc['population']['accounts']:,}"
                    f" accounts, {doc['path']}")
    t.add_column("")
    t.add_column("with cascade", justify="right")
    t.add_column("without (no impact)", justify="right")
    rows = [("liquidated notional (USD)", "liquidated_usd", "{:,.2f}"),
            ("accounts liquidated", "accounts_liquidated", "{:,}"),
            ("liquidation rounds", "rounds", "{:,}"),
            ("bad debt (USD)", "bad_debt_usd", "{:,.2f}"),
            ("insurance fund draw (USD)", "fund_draw_usd", "{:,.2f}"),
            ("fees to the fund (USD)", "fees_usd", "{:,.2f}"),
            ("ADL fills", "adl_fills", "{:,}"),
            ("ADL notional (USD)", "adl_usd", "{:,.2f}"),
            ("clawed back (USD)", "clawback_usd", "{:,.2f}"),
            ("uncovered (USD)", "uncovered_usd", "{:,.2f}")]
    for label, key, fmt in rows:
        t.add_row(label, fmt.format(w[key]), fmt.format(o[key]))
    for s in w["drawdown"]:
        t.add_row(f"{s} largest fall", f"{(w['drawdown'][s] or 0) * 100:.2f} %",
                  f"{(o['drawdown'][s] or 0) * 100:.2f} %")
    console.print(t)
    amp = doc["amplification"]
    parts = [f"{s} ×{a:.3f}" for s, a in amp["drawdown"].items() if a is not None]
    liq = amp["liquidated"]
    console.print(f"amplification: fall {', '.join(parts) or 'n/a'}; liquidated notional "
                  f"{'n/a' if liq is None else f'×{liq:.3f}'}; initial margin demanded at "
                  f"start {doc['initial_margin_usd']:,.2f} USD", markup=False, highlight=False)


@app.command("simulate")
def simulate_cmd(
        market: Annotated[Path, typer.Option("--market", help="market snapshot JSON")],
        model: Annotated[str, typer.Option("--model", "-m", help="registered model name")],
        book: Annotated[Path | None, typer.Option(
            "--book", help="book JSON of linear-perpetual accounts")] = None,
        accounts: Annotated[int | None, typer.Option(
            "--accounts", help="generate N accounts (Hyperliquid-fitted) instead of --book")
        ] = None,
        shock: Annotated[str | None, typer.Option(
            "--shock", help="COIN:MOVE%[~STEPS][@START],... e.g. BTC:-10%")] = None,
        path: Annotated[list[str] | None, typer.Option(
            "--path", help="[COIN=]FILE hourly closes (timestamp, close); repeatable")] = None,
        start: Annotated[str | None, typer.Option(
            "--start", help="first time of the --path window (ISO, UTC)")] = None,
        hours: Annotated[int | None, typer.Option(
            "--hours", help="steps of the --path window")] = None,
        dynamic: Annotated[bool, typer.Option(
            "--dynamic", help="apply the dynamic margin controller")] = False,
        dynamic_timing: Annotated[str, typer.Option(
            "--dynamic-timing", help="early or late (with --dynamic)")] = "early",
        isolated: Annotated[bool, typer.Option(
            "--isolated", help="every position its own isolated account")] = False,
        seed: Annotated[int, typer.Option(help="seed of the population and ADL order")] = 0,
        fund: Annotated[float | None, typer.Option(
            "--fund", help="insurance fund at start, USD (default 1 % of collateral)")] = None,
        depth: Annotated[float, typer.Option(
            "--depth", help="book depth multiplier vs the Bitstamp fit")] = 1.0,
        param: ParamOpt = None,
        history: HistoryOpt = None,
        format: FormatOpt = Format.table,
        output: JsonOutputOpt = None,
        plot: Annotated[Path | None, typer.Option(
            "--plot", help="write a PNG of the cascade")] = None) -> None:
    """Liquidation cascade: rounds of re-margin, liquidation, impact and re-marking."""
    from margin_engine.analysis.cascade.engine import CascadeConfig
    from margin_engine.analysis.cascade.impact import ImpactModel
    from margin_engine.analysis.cascade.population import (
        from_book,
        generate_population,
        isolate,
    )
    from margin_engine.analysis.cascade.population_fit import HYPERLIQUID_FIT
    from margin_engine.analysis.cascade.shock import parse_shock

    try:
        if (shock is None) == (not path):
            raise InputError("--shock", "give either --shock SPEC or --path FILE")
        if (book is None) == (accounts is None):
            raise InputError("--book", "give either --book FILE or --accounts N")
        if not path and (start is not None or hours is not None):
            raise InputError("--start", "--start and --hours go with --path")
        if not (math.isfinite(depth) and depth > 0):
            raise InputError("--depth", f"must be a finite number > 0, got {depth!r}")
        if dynamic_timing not in ("early", "late"):
            raise InputError("--dynamic-timing", f"early or late, got {dynamic_timing!r}")
        if fund is not None and not (math.isfinite(fund) and fund >= 0):
            raise InputError("--fund", f"must be a finite number >= 0, got {fund!r}")
        snap = load_market(market)
        price_path = parse_shock(shock) if shock is not None else load_path(
            list(path or []), None if start is None else parse_start(start), hours)
        mdl, note = build_model(model, parse_params(param), history, snap)
        if note:
            err_console.print(f"note: {note}", style="dim")
        if book is not None:
            try:
                pop = from_book(load_book(book), snap)
            except InputError as exc:
                raise exc.within("--book") from None
        else:
            assert accounts is not None
            pop = generate_population(accounts, snap, seed=seed, fit=HYPERLIQUID_FIT)
        if isolated:
            pop = isolate(pop)
        cfg = CascadeConfig(fund_usd=fund, impact=ImpactModel(depth=depth), seed=seed)
        doc, with_c = run_simulation(mdl, pop, snap, price_path, cfg,
                                     dynamic_timing if dynamic else "never")
        if plot is not None:
            from margin_engine.analysis.cascade.plots import plot_cascade
            try:
                plot_cascade(with_c, plot)
            except OSError as exc:
                raise InputError("--plot", f"cannot write: {exc.strerror or exc}") from None
    except InputError as exc:
        fail(exc)
        return
    emit_document(doc, output, format, lambda: _print(doc))
