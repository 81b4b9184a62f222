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
from pydantic_core import to_jsonable_python
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
            else:
                shown = to_jsonable_python(default, fallback=str)
            params.append({"name": key, "default": shown,
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
def backtest(
        history: Annotated[list[Path], typer.Option(
            "--history", help="price files (any recognised format; DVOL files give option "
                              "vols) and/or Deribit option-chain files (repeatable)")],
        book: Annotated[Path, typer.Option("--book", help="book JSON (one account)")],
        model: Annotated[list[str], typer.Option(
            "--model", "-m", help="registered model (repeatable: the runs are compared)")],
        param: Annotated[list[str] | None, typer.Option(
            "--param", "-p", help="model parameter key=value, or MODEL:key=value for one of "
                                  "several models (repeatable)")] = None,
        horizon: Annotated[int, typer.Option(
            "--horizon", help="days between the margin and the realised loss")] = 1,
        start: Annotated[str | None, typer.Option("--start", help="first day, YYYY-MM-DD")
                         ] = None,
        end: Annotated[str | None, typer.Option("--end", help="last day, YYYY-MM-DD")] = None,
        account: Annotated[str | None, typer.Option(
            "--account", help="account id (when the book has several)")] = None,
        confidence: Annotated[float, typer.Option(
            "--confidence", help="coverage target of the tests")] = 0.99,
        report: Annotated[Path | None, typer.Option(
            "--report", help="write an HTML report with PNG plots into this folder")] = None,
        format: FormatOpt = Format.table) -> None:
    """Backtest margin models on history: margin from data up to each day, realised loss over
    the horizon, exceedances, coverage tests, traffic light, ES test, procyclicality."""
    from margin_engine.analysis.backtest import (
        backtest_json,
        registered_model_factory,
        run_backtest,
    )

    try:
        runs = _bt_model_options(model, parse_params(param))
        factories = [(name, registered_model_factory(name, opts, horizon_days=horizon))
                     for name, opts in runs]
        bk = load_book(book)
        symbols = sorted({p.symbol for a in bk.accounts for p in a.positions})
        prices, vols, builder = _bt_market(history, symbols)
        results: list[Any] = []
        for name, factory in factories:
            with _BacktestProgress(name) as tick:
                results.append(run_backtest(
                    bk, factory, prices, horizon_days=horizon, start=start, end=end,
                    market_builder=builder, progress=tick, account=account,
                    confidence=confidence, vol_index=vols,
                    label=name if len(factories) == 1 or [n for n, _ in factories].count(
                        name) == 1 else f"{name} #{len(results) + 1}"))
    except InputError as exc:
        fail(exc)
        return
    path = None
    if report is not None:
        from margin_engine.analysis.report import write_report

        try:
            path = write_report(results, report)
        except (RuntimeError, OSError) as exc:
            fail(InputError("--report", str(exc)))
            return
    if format is Format.json:
        doc = {"backtests": [backtest_json(r) for r in results]}
        sys.stdout.write(json.dumps(doc, indent=1, allow_nan=False) + "\n")
        sys.stdout.flush()
    else:
        _bt_print(results)
    if path is not None:
        err_console.print(f"report: {path}", highlight=False)


def _bt_model_options(models: list[str], params: dict[str, Any]
                      ) -> list[tuple[str, dict[str, Any]]]:
    """Per model, its options: ``key`` applies to every model, ``MODEL:key`` to that one."""
    out: list[tuple[str, dict[str, Any]]] = [(m, {}) for m in models]
    for key, value in params.items():
        target, sep, name = key.partition(":")
        if sep and target not in models:
            raise InputError(f"--param {key}", f"{target!r} is not one of the --model names "
                             f"({', '.join(models)})")
        for m, opts in out:
            if not sep:
                opts[key] = value
            elif m == target:
                opts[name] = value
    return out


def _bt_market(paths: list[Path], symbols: list[str]) -> tuple[Any, Any, Any]:
    """(price history, DVOL history or None, market builder) from the --history files."""
    import numpy as np

    from margin_engine.analysis.market_builders import (
        ChainMarketBuilder,
        HistoryMarketBuilder,
        chain_index_series,
        is_option_chain,
        read_option_chain,
    )
    from margin_engine.domain.history import PriceSeries
    from margin_engine.io.history import load_history

    for p in paths:
        if not p.is_file():
            raise InputError("--history", f"{p}: no such file")
    chains = [p for p in paths if is_option_chain(p)]
    others = [p for p in paths if p not in chains]
    prices = vols = None
    if others:
        try:
            h = load_history(others, frequency="1d")
        except (ValueError, OSError) as exc:
            raise InputError("--history", str(exc)) from None
        dates = h.dates.astype("datetime64[D]")
        px = [k for k, s in enumerate(h.symbols) if not s.endswith("_DVOL")]
        dv = [k for k, s in enumerate(h.symbols) if s.endswith("_DVOL")]
        name = " + ".join(p.name for p in others)
        if px:
            prices = PriceSeries(dates, tuple(h.symbols[k] for k in px), h.closes[:, px], name)
        if dv:
            keep = ~np.all(np.isnan(h.closes[:, dv]), axis=1)
            vols = PriceSeries(dates[keep], tuple(h.symbols[k][:-5] for k in dv),
                               h.closes[keep][:, dv], name)
    if chains:
        try:
            chain = read_option_chain(chains, symbols=symbols)
        except (ValueError, OSError) as exc:
            raise InputError("--history", str(exc)) from None
        if prices is None:
            prices = chain_index_series(chain)
        return prices, vols, ChainMarketBuilder(chain)
    if prices is None:
        raise InputError("--history", "no price series in the files (only DVOL)")
    return prices, vols, HistoryMarketBuilder(prices, vols)


class _BacktestProgress:
    """A rich progress bar on stderr when it is a terminal; ``with`` gives the callback."""

    def __init__(self, name: str) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(TextColumn(f"backtest {name}"), BarColumn(), MofNCompleteColumn(),
                             TimeRemainingColumn(), console=err_console, transient=True,
                             disable=not err_console.is_terminal)
        self._task = self._bar.add_task(name, total=None)

    def tick(self, done: int, total: int) -> None:
        self._bar.update(self._task, completed=done, total=total)

    def __enter__(self) -> Any:
        self._bar.start()
        return self.tick

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()


def _bt_print(results: list[Any]) -> None:
    from margin_engine.analysis.backtest import summary_rows

    def pct(v: float | None) -> str:
        return "—" if v is None else f"{100 * v:.2f}%"

    def num(v: float | None, d: int = 4) -> str:
        return "—" if v is None else f"{v:.{d}f}"

    zone_style = {"green": "green", "yellow": "yellow", "red": "bold red"}
    rows = summary_rows(results)
    t = Table(title="backtest: coverage", title_justify="left")
    for col in ("run", "h", "days", "exceed.", "expected", "coverage", "Kupiec p",
                "Christ. ind p", "Christ. cc p", "last 250 d", "Z2"):
        t.add_column(col, justify="left" if col in ("run", "last 250 d") else "right")
    for row in rows:
        z = row["zone_last_250"]
        t.add_row(row["label"], str(row["horizon_days"]), str(row["days"]),
                  str(row["exceedances"]), f"{row['expected']:.1f}", pct(row["coverage"]),
                  num(row["kupiec_p"]), num(row["christoffersen_ind_p"]),
                  num(row["christoffersen_cc_p"]),
                  f"[{zone_style[z]}]{z}[/] ({row['exceptions_last_250']})", num(row["z2"]))
    console.print(t)
    c = Table(title="backtest: capital and procyclicality (of the margin, and of margin / "
              "notional)", title_justify="left")
    for col in ("run", "ccy", "mean margin", "margin/notional", "peak/trough", "max 1d",
                "max 5d", "max 30d", "peak/trough (share)", "max 5d (share)"):
        c.add_column(col, justify="left" if col in ("run", "ccy") else "right")
    for row, r in zip(rows, results, strict=True):
        ps = r.statistics.procyclicality_of_share
        c.add_row(row["label"], r.currency, f"{r.statistics.mean_margin:,.2f}",
                  pct(row["mean_margin_share"]), num(row["peak_to_trough"], 2),
                  pct(row["max_1d_increase"]), pct(row["max_5d_increase"]),
                  pct(row["max_30d_increase"]),
                  "—" if ps is None else f"{ps.peak_to_trough.ratio:.2f}",
                  "—" if ps is None or 5 not in [n.horizon for n in ps.n_day]
                  else pct(ps.ratio(5) - 1.0))
    console.print(c)
    years = sorted({y.year for r in results for y in r.statistics.traffic_light_by_year})
    y = Table(title="exceptions/days per year", title_justify="left")
    y.add_column("year")
    for r in results:
        y.add_column(r.label, justify="right")
    for year in years:
        cells = []
        for r in results:
            hit = next((x.traffic_light for x in r.statistics.traffic_light_by_year
                        if x.year == year), None)
            cells.append("—" if hit is None else
                         f"{hit.n_exceptions}/{hit.n_obs} [{zone_style[hit.zone]}]{hit.zone}[/]")
        y.add_row(str(year), *cells)
    console.print(y)
    for r in results:
        console.print(f"[dim]{r.label}: {r.n_days} days {r.dates[0]} … {r.dates[-1]}, "
                      f"{len(r.skipped)} skipped; margin in {r.currency}; params "
                      f"{r.params_hash}; history {r.history_source}[/]", highlight=False)


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
