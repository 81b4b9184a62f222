"""``margin-engine demo``: a synthetic market and book, every registered model, compared."""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import asdict
from datetime import date, timedelta
from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table

from margin_engine.analysis.compare import Comparison, compare_models
from margin_engine.analysis.optimise.run import top_hedge
from margin_engine.demo.synthetic import (
    generate_book,
    generate_history,
    generate_market,
    history_csv,
)
from margin_engine.domain.book import check_against_market
from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError
from margin_engine.io.loaders import load_book, load_market
from margin_engine.io.model_options import build_model
from margin_engine.models.core.registry import model_names


def command_name() -> str:
    """How to run ``margin-engine`` from here: its bare name when the shell finds this one on
    the PATH, else the path it was started by (``.venv/bin/margin-engine`` after ``make demo``)."""
    argv0 = Path(sys.argv[0])
    if argv0.name != "margin-engine":
        return "margin-engine"
    found = shutil.which("margin-engine")
    if found and Path(found).resolve() == argv0.resolve():
        return "margin-engine"
    try:
        return str(argv0.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(argv0)


def next_commands(book: Path, market: Path, model: str) -> list[str]:
    """What to try after the demo: margin the book, check an order, find a hedge, run a
    liquidation cascade, start the service and open its dashboard."""
    me = command_name()
    return [f"next: {me} compute {book} {market} --model {model}",
            f"      {me} whatif {book} {market} --model {model} --account btc-long-cross "
            f"--order BTCUSDT:1",
            f"      {me} optimise {book} {market} --model {model} --account {OPTIMISE_ACCOUNT}"
            f"   # hedges, mode split, collateral: docs/optimisation.md",
            f"      {me} simulate --market {market} --accounts 2000 --shock BTC:-15%~3 "
            f"--model hyperliquid --plot {market.parent / 'cascade.png'}   # docs/cascades.md",
            f"      {me} serve --model {model}   # the REST/WebSocket service, docs/service.md",
            "      then open http://127.0.0.1:8000/dashboard/ with the operator key it prints"
            "   # the web dashboard, docs/dashboard.md"]


#: The account whose best hedge the demo prints (``optimise``, docs/optimisation.md).
OPTIMISE_ACCOUNT = "btc-long-cross"


def demo_cascade(market: MarketSnapshot, console: Console) -> str | None:
    """A small liquidation cascade on the demo market (docs/cascades.md): 2,000 accounts
    drawn from the Hyperliquid fit, BTC −15 % over 3 steps, binance-usdm; one line, or None
    when the market has no linear perpetual."""
    from margin_engine.analysis.cascade.engine import simulate
    from margin_engine.analysis.cascade.population import generate_population
    from margin_engine.analysis.cascade.population_fit import HYPERLIQUID_FIT
    from margin_engine.analysis.cascade.shock import parse_shock

    try:
        pop = generate_population(2000, market, seed=7, fit=HYPERLIQUID_FIT)
        r = simulate(build_model("binance-usdm", {}, None, market)[0], pop, market,
                     parse_shock("BTC:-15%~3"))
    except InputError:
        return None
    line = (f"cascade (BTC -15% over 3 steps, 2,000 accounts, binance-usdm): "
            f"{r.accounts_liquidated:,} accounts liquidated for {r.liquidated_usd:,.0f} USD in "
            f"{r.rounds.shape[0]} rounds, bad debt {r.bad_debt_cents / 100:,.2f} USD, "
            f"ADL fills {r.adl_fills}")
    console.print(line, highlight=False, markup=False)
    return line


def write_sample(out: Path, seed: int) -> tuple[Path, Path, Path]:
    """Write ``market.json``, ``book.json`` and ``history.csv`` under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    market = generate_market(seed=seed)
    paths = (out / "market.json", out / "book.json", out / "history.csv")
    paths[0].write_text(json.dumps(market, indent=1))
    paths[1].write_text(json.dumps(generate_book(market, seed=seed), indent=1))
    # the history ends on the market's date, so `compute --history` finds it current
    days = 1000
    last = date.fromisoformat(market["timestamp"][:10])
    start = (last - timedelta(days=days - 1)).isoformat()
    paths[2].write_text(history_csv(generate_history(seed=seed, start=start, days=days)))
    return paths


def comparison_table(cmp: Comparison) -> Table:
    t = Table(title="initial margin in USD by model (— : the model does not margin this account)",
              title_justify="left", box=box.SIMPLE_HEAD)
    t.add_column("account", no_wrap=True)
    t.add_column("mode")
    for name in cmp.models:
        t.add_column(name, justify="right", no_wrap=True)
    style = {"healthy": "", "margin_call": "yellow", "liquidation": "bold red"}
    for acct, mode, row in zip(cmp.accounts, cmp.modes, cmp.cells, strict=True):
        cells = []
        for c in row:
            if c.initial_margin_usd is None:
                cells.append("[dim]—[/]")
            else:
                s = style[c.status or "healthy"]
                txt = f"{c.initial_margin_usd:,.0f}"
                cells.append(f"[{s}]{txt}[/]" if s else txt)
        t.add_row(acct, mode, *cells)
    return t


def run_demo(out: Path, *, seed: int, console: Console, as_json: bool) -> Comparison:
    market_path, book_path, history_path = write_sample(out, seed)
    market, book = load_market(market_path), load_book(book_path)
    check_against_market(book, market)
    models = [build_model(name, {}, None, market)[0] for name in model_names()]
    cmp = compare_models(models, book, market)
    (out / "comparison.json").write_text(json.dumps(asdict(cmp), indent=1))
    if as_json:
        console.print_json(json.dumps(asdict(cmp)))
        return cmp
    console.print(f"[bold]margin-engine demo[/] — synthetic market (seed {seed}) at "
                  f"{market.timestamp.isoformat()}: {len(market.instruments)} instruments, "
                  f"{len(book.accounts)} accounts")
    table = comparison_table(cmp)
    if not console.is_terminal:  # a file or a pipe: as wide as the table, never cut a number
        needed = Console(width=1000).measure(table).maximum
        Console(file=console.file, width=max(console.width, needed)).print(table)
    else:
        console.print(table)
    demo_cascade(market, console)
    console.print(f"files: {market_path}, {book_path}, {history_path}, "
                  f"{out / 'comparison.json'}")
    target = next(a for a in book.accounts if a.id == OPTIMISE_ACCOUNT)
    console.print(top_hedge(models[0], target, market), highlight=False, markup=False)
    for line in next_commands(book_path, market_path, models[0].name):
        console.print(line, highlight=False)
    return cmp
