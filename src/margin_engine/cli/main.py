"""The ``margin-engine`` command line (DESIGN §4): files in, a table for people, JSON for programs.

Bad input never yields a number: the command prints ``error: <field path>: <reason>`` on stderr
and exits 2.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from margin_engine.analysis.stress_test import resolve, stress_book
from margin_engine.domain.book import check_against_market
from margin_engine.errors import InputError
from margin_engine.io.loaders import load_book, load_market
from margin_engine.io.model_options import build_model
from margin_engine.io.report_json import compute_json
from margin_engine.models.registry import model_class, model_names
from margin_engine.policy.assess import assess_book

from .params import parse_params
from .render import print_compute

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Margin requirements for crypto derivatives.")
def _console(stderr: bool = False) -> Console:
    """A console as wide as the terminal, or 160 columns when output is not a terminal."""
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else int(os.environ.get("COLUMNS", "160"))
    return Console(stderr=stderr, width=width)


console = _console()
err_console = _console(stderr=True)


class Format(StrEnum):
    table = "table"
    json = "json"


def fail(exc: InputError) -> None:
    for path, reason in exc.problems:
        err_console.print(f"error: {path}: {reason}", markup=False, highlight=False)
    raise typer.Exit(2)


FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="table or json")]
ParamOpt = Annotated[list[str] | None, typer.Option(
    "--param", "-p", help="model parameter key=value (repeatable)")]
HistoryOpt = Annotated[list[Path] | None, typer.Option(
    "--history", help="price history file(s) for risk-based models (repeatable)")]


@app.command()
def compute(book: Annotated[Path, typer.Argument(help="book JSON")],
            market: Annotated[Path, typer.Argument(help="market snapshot JSON")],
            model: Annotated[str, typer.Option("--model", "-m", help="registered model name")],
            param: ParamOpt = None,
            history: HistoryOpt = None,
            format: FormatOpt = Format.table) -> None:
    """Initial and maintenance margin, equity, status and liquidation prices per account."""
    try:
        snap = load_market(market)
        mdl, note = build_model(model, parse_params(param), history, snap)
        if note:
            err_console.print(f"note: {note}", style="dim")
        bk = load_book(book)
        check_against_market(bk, snap)
        reports = assess_book(mdl, bk, snap)
    except InputError as exc:
        fail(exc)
        return
    if format is Format.json:
        doc = compute_json(mdl, reports, mdl.stamp(snap).market_timestamp)
        sys.stdout.write(json.dumps(doc, indent=2, allow_nan=False) + "\n")
    else:
        print_compute(console, mdl, reports)


def model_catalogue() -> list[dict[str, Any]]:
    """Name, version, summary, source, modes and parameters (default, description) per model."""
    rows: list[dict[str, Any]] = []
    for name in model_names():
        cls = model_class(name)
        params = []
        for key, f in cls.Params.model_fields.items():
            default = f.get_default(call_default_factory=True)
            if isinstance(default, dict) and default and all(
                    hasattr(v, "model_dump") for v in default.values()):
                shown: object = sorted(default)  # tables keyed by symbol: list the keys
            elif hasattr(default, "model_dump"):
                shown = default.model_dump(mode="json")
            else:
                shown = default
            params.append({"name": key, "default": _jsonable(shown),
                           "description": f.description or ""})
        rows.append({"name": name, "version": cls.version, "summary": cls.summary,
                     "source": cls.source, "modes": sorted(m.value for m in cls.modes),
                     "parameters": params})
    return rows


@app.command()
def models(format: FormatOpt = Format.table) -> None:
    """Every registered model with its parameters, defaults and source."""
    rows = model_catalogue()
    if format is Format.json:
        sys.stdout.write(json.dumps({"models": rows}, indent=2) + "\n")
        return
    t = Table(title="registered models", show_lines=True)
    for col in ("model", "version", "modes", "what", "parameters (default)", "source"):
        t.add_column(col, overflow="fold")
    for r in rows:
        ps = "\n".join(f"{p['name']} = {_short(p['default'])}" for p in r["parameters"])
        t.add_row(r["name"], r["version"], ", ".join(r["modes"]), r["summary"], ps, r["source"])
    console.print(t)


def _jsonable(v: object) -> object:
    try:
        json.dumps(v)
        return v
    except TypeError:
        return str(v)


def _short(v: object) -> str:
    s = json.dumps(v) if not isinstance(v, str) else v
    return s if len(s) <= 60 else s[:57] + "..."


@app.command()
def stress(book: Annotated[Path, typer.Argument(help="book JSON")],
           market: Annotated[Path, typer.Argument(help="market snapshot JSON")],
           scenario: Annotated[list[str] | None, typer.Option(
               "--scenario", "-s", help="named stress (repeatable; default: the 8 crash days)")
           ] = None,
           model: Annotated[str, typer.Option("--model", "-m", help="margin model")
                            ] = "historical-var",
           param: ParamOpt = None,
           history: HistoryOpt = None,
           format: FormatOpt = Format.table) -> None:
    """Each account's P&L under named stresses and its margin coverage (margin ÷ loss)."""
    try:
        snap = load_market(market)
        bk = load_book(book)
        check_against_market(bk, snap)
        mdl, note = build_model(model, parse_params(param), history, snap)
        if note:
            err_console.print(f"note: {note}", style="dim")
        rows = stress_book(bk, snap, mdl, resolve(scenario))
    except InputError as exc:
        fail(exc)
        return
    if format is Format.json:
        sys.stdout.write(json.dumps({"model": mdl.name, "audit": asdict(mdl.stamp(snap)),
                                     "rows": [asdict(r) for r in rows]}, indent=2) + "\n")
        return
    t = Table(title=f"stress P&L (USD) and coverage by {mdl.name} initial margin",
              title_justify="left")
    for col in ("account", "scenario", "P&L", "positions", "collateral", "initial margin",
                "coverage"):
        t.add_column(col, justify="left" if col in ("account", "scenario") else "right")
    for r in rows:
        cov = "n/a" if r.coverage is None else f"{r.coverage:.0%}"
        style = "" if r.coverage is None or r.coverage >= 1 else "[red]"
        t.add_row(r.account, r.scenario, f"{r.pnl_usd:,.0f}", f"{r.positions_pnl_usd:,.0f}",
                  f"{r.collateral_pnl_usd:,.0f}", f"{r.initial_margin_usd:,.0f}",
                  f"{style}{cov}")
    console.print(t)


@app.command()
def demo(out: Annotated[Path, typer.Option(help="where to write the sample files")] = Path(
             "out/demo"),
         seed: Annotated[int, typer.Option(help="random seed of the synthetic market")] = 7,
         format: FormatOpt = Format.table) -> None:
    """Generate a synthetic market and book, run every registered model, compare."""
    from margin_engine.demo.run import run_demo

    try:
        run_demo(out, seed=seed, console=console, as_json=format is Format.json)
    except InputError as exc:
        fail(exc)


def main() -> None:  # pragma: no cover - console entry
    app()
