"""The ``margin-engine`` command line (DESIGN §4): files in, a table for people, JSON for programs.

Bad input never yields a number: the command prints ``error: <field path>: <reason>`` on stderr
and exits 2.
"""

from __future__ import annotations

import gc
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic_core import to_jsonable_python
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from margin_engine import __version__
from margin_engine.distributed.assess import assess_book_on
from margin_engine.domain.book import check_against_market
from margin_engine.errors import InputError, error_line, first_non_finite
from margin_engine.io.json_text import dumps_indent2
from margin_engine.io.loaders import load_book, load_market
from margin_engine.io.model_options import build_model, expand_file_parameters
from margin_engine.io.report_json import compute_json
from margin_engine.models.core.registry import model_class, model_names
from margin_engine.policy.assess import (
    NotMargined,
    assess_margined,
    margined_only,
    select_accounts,
)

from .params import parse_params
from .render import print_compute, print_not_margined


class _Typer(typer.Typer):
    """The app, with a last-resort handler: an exception no command turned into an
    :class:`InputError` (a bug) prints ``error: internal: <type>: <message>`` and exits 2
    instead of a traceback. Commands name the bad field themselves; this is only a safety net."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except Exception as exc:
            sys.stderr.write(error_line(InputError(
                "internal", f"{type(exc).__name__}: {exc}")) + "\n")
            sys.exit(2)


app = _Typer(add_completion=True, no_args_is_help=True, pretty_exceptions_enable=False,
             context_settings={"help_option_names": ["-h", "--help"]},
             help="Margin requirements for crypto derivatives.")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"margin-engine {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option(
        "--version", help="print the version and exit", callback=_version,
        is_eager=True)] = False) -> None:
    """Margin requirements for crypto derivatives."""

def _console(stderr: bool = False) -> Console:
    """A console as wide as the terminal, or 160 columns when output is not a terminal; no
    emoji codes (``:x:`` stays text) and no automatic highlighting."""
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else int(os.environ.get("COLUMNS", "160"))
    return Console(stderr=stderr, width=width, emoji=False, highlight=False)


console = _console()
err_console = _console(stderr=True)


class Format(StrEnum):
    table = "table"
    json = "json"


def fail(exc: InputError) -> NoReturn:
    """Print the one line ``error: <path>: <reason>`` (several problems joined by ``; ``) on
    stderr, unwrapped and without markup, and exit 2."""
    sys.stderr.write(error_line(exc) + "\n")
    sys.stderr.flush()
    raise typer.Exit(2)


def warn(lines: list[str]) -> None:
    """``warning: ...`` lines on stderr, printed only once a command has succeeded so that a
    failing command prints exactly one line."""
    for line in lines:
        sys.stderr.write(f"warning: {line}\n")


def check_finite(doc: Any) -> None:
    """Refuse (exit 2) a result holding a non-finite number before it is shown or written."""
    bad = first_non_finite(doc)
    if bad is not None:
        fail(InputError(f"output.{bad}" if not bad.startswith("[") else f"output{bad}",
                        "the result is not a finite number (input outside the model's range)"))


def emit_document(doc: Any, output: Path | None, format: Format, show: Callable[[], None]) -> None:
    """Write ``doc`` as JSON to ``output`` when given (JSON whatever ``--format`` says); show it
    on stdout as the table (``show``), or as JSON when no ``output`` takes it."""
    text = json.dumps(doc, indent=2, allow_nan=False) + "\n"
    if output is not None:
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(text)
        except OSError as exc:
            fail(InputError("--output", f"cannot write: {exc.strerror or exc}"))
    if format is not Format.json:
        show()
    elif output is None:
        sys.stdout.write(text)


FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="table or json")]
ParamOpt = Annotated[list[str] | None, typer.Option(
    "--param", "-p", help="model parameter key=value (repeatable)")]
HistoryOpt = Annotated[list[Path] | None, typer.Option(
    "--history", help="price history file(s) for risk-based models (repeatable)")]
OutputOpt = Annotated[Path | None, typer.Option(
    "--output", "-o", help="write the output to this file instead of stdout")]
JsonOutputOpt = Annotated[Path | None, typer.Option(
    "--output", "-o", help="write the JSON answer to this file (the table still shows)")]


@contextmanager
def _output_to(path: Path | None) -> Iterator[None]:
    """Send what the command prints (table or JSON) to ``path`` instead of stdout."""
    global console
    if path is None:
        yield
        return
    try:
        fh = path.open("w", encoding="utf-8")
    except OSError as exc:
        fail(InputError("--output", f"{path}: cannot write ({exc.strerror or exc})"))
        return
    saved = console
    console = Console(file=fh, width=int(os.environ.get("COLUMNS", "160")), no_color=True)
    try:
        yield
    finally:
        console = saved
        fh.close()


def _write(text: str) -> None:
    """Plain text (JSON) to stdout, or to the ``--output`` file."""
    console.file.write(text)
    console.file.flush()


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off while a one-shot command builds its reports and their
    document (reference counting still frees everything that is not in a cycle).

    Every container the book, the reports and the document allocate counts towards the
    collector's thresholds, and its full passes walk the whole growing heap again and again:
    about a third of the report conversion's time and a tenth of the assessment's on a
    deribit-pm book of 1,000-2,000 accounts, for nothing to collect. Back on (as it was) on
    exit, exceptions included.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


@app.command()
def compute(book: Annotated[Path, typer.Argument(help="book JSON")],
            market: Annotated[Path, typer.Argument(help="market snapshot JSON")],
            model: Annotated[str, typer.Option("--model", "-m", help="registered model name")],
            param: ParamOpt = None,
            history: HistoryOpt = None,
            account: Annotated[list[str] | None, typer.Option(
                "--account", "-a", help="only this account id (repeatable)")] = None,
            strict: Annotated[bool, typer.Option(
                "--strict", help="an account the model does not margin is an error (exit 2) "
                                 "instead of being listed as not margined")] = False,
            no_liquidation: Annotated[bool, typer.Option(
                "--no-liquidation", help="skip the liquidation prices (faster)")] = False,
            output: OutputOpt = None,
            format: FormatOpt = Format.table,
            scheduler: Annotated[str | None, typer.Option(help=(
                "run on Dask: local[:N] (a local cluster of N worker processes) or "
                "tcp://HOST:PORT (a running scheduler)"))] = None) -> None:
    """Initial and maintenance margin, equity, status and liquidation prices per account.

    Accounts the model does not margin (a margin mode or an instrument the venue does not
    offer) are listed as not margined with the reason, unless --strict."""
    with _cyclic_gc_paused(), ExitStack() as stack:
        try:
            snap = load_market(market)
            mdl, note = build_model(model, parse_params(param), history, snap)
            warnings = [note] if note else []
            bk = select_accounts(load_book(book), account, what="--account")
            check_against_market(bk, snap)
            solver = None
            if not no_liquidation and not mdl.has_closed_form_liquidation():
                # every unit's bands at once through the live engines (imported only here)
                from margin_engine.live.liquidation import book_bands
                solver = book_bands
            # a bar on a terminal: 10,000 portfolio accounts take tens of seconds
            extra = {} if scheduler else {"progress": stack.enter_context(
                _Progress(f"compute {mdl.name}: accounts"))}
            reports, refused = assess_margined(mdl, bk, snap, strict=strict,
                                               liquidation_prices=not no_liquidation,
                                               assess=partial(assess_book_on, scheduler,
                                                              band_solver=solver, **extra))
        except InputError as exc:
            fail(exc)
        except ArithmeticError as exc:  # a model's IM >= MM >= 0 check on input out of range
            fail(InputError("output", f"{exc} (input outside the model's range)"))
        doc = compute_json(mdl, reports, mdl.stamp(snap).market_timestamp, refused, warnings)
    text = None
    if format is Format.json:
        try:  # the writer refuses NaN/Inf itself: the document is walked once, not twice
            text = dumps_indent2(doc) + "\n"
        except ValueError:
            check_finite(doc)  # exits naming the culprit
            raise
    else:
        check_finite(doc)
    warn(warnings)
    with _output_to(output):
        if text is not None:
            _write(text)
        else:
            print_compute(console, mdl, reports, refused)


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
def models(name: Annotated[str | None, typer.Argument(
               help="only this model (default: every registered model)")] = None,
           output: OutputOpt = None,
           format: FormatOpt = Format.table) -> None:
    """Every registered model: version, modes, source, and each parameter's default and
    description (assumptions not confirmed by the venue are marked UNCONFIRMED)."""
    try:
        if name is not None:
            model_class(name)  # an unknown name lists the known ones
    except InputError as exc:
        fail(exc)
        return
    rows = [r for r in model_catalogue() if name is None or r["name"] == name]
    with _output_to(output):
        if format is Format.json:
            _write(json.dumps({"models": rows}, indent=2) + "\n")
            return
        t = Table(title="registered models", show_lines=True, title_justify="left")
        for col in ("model", "version", "modes", "what", "source"):
            t.add_column(col, overflow="fold")
        for r in rows:
            t.add_row(r["name"], r["version"], ", ".join(r["modes"]), r["summary"], r["source"])
        console.print(t)
        p = Table(title="parameters (! = rests on an UNCONFIRMED assumption)", show_lines=True,
                  title_justify="left")
        for col in ("model", "parameter", "!", "default", "description"):
            p.add_column(col, overflow="fold", no_wrap=col in ("!",))
        for r in rows:
            for prm in r["parameters"]:
                desc = prm["description"]
                mark = "!" if "UNCONFIRMED" in desc.upper() else ""
                p.add_row(r["name"], prm["name"], f"[bold yellow]{mark}[/]" if mark else "",
                          _short(prm["default"]), desc or "—")
        console.print(p)


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
           account: Annotated[list[str] | None, typer.Option(
               "--account", "-a", help="only this account id (repeatable)")] = None,
           strict: Annotated[bool, typer.Option(
               "--strict", help="an account the model does not margin is an error (exit 2) "
                                "instead of being listed as not margined")] = False,
           output: OutputOpt = None,
           format: FormatOpt = Format.table) -> None:
    """Each account's P&L under named stresses and its margin coverage (margin ÷ loss).

    Accounts the model does not margin (a margin mode or an instrument the venue does not
    offer) are listed as not margined with the reason, unless --strict."""
    try:
        snap = load_market(market)
        bk = select_accounts(load_book(book), account, what="--account")
        check_against_market(bk, snap)
        mdl, note = build_model(model, parse_params(param), history, snap)
        warnings = [note] if note else []
        from margin_engine.analysis.stress_test import resolve, stress_book

        stresses = resolve(scenario)
        rows, refused = margined_only(mdl, bk, snap, lambda kept: stress_book(
            kept, snap, mdl, stresses), strict=strict)
    except InputError as exc:
        fail(exc)
    doc = {"model": mdl.name, "audit": asdict(mdl.stamp(snap)), "rows": [r.as_dict() for r in rows],
           "not_margined": [{"id": n.id, "reason": n.reason} for n in refused],
           "warnings": warnings}
    check_finite(doc)
    warn(warnings)
    with _output_to(output):
        _print_stress(doc, rows, refused, format)


def _print_stress(doc: dict[str, Any], rows: Any, refused: list[NotMargined],
                  format: Format) -> None:
    if format is Format.json:
        _write(dumps_indent2(doc) + "\n")
        return
    mdl = doc["model"]
    t = Table(title=f"stress P&L (USD) and coverage by {mdl} initial margin",
              title_justify="left")
    for col in ("account", "scenario", "P&L USD", "positions USD", "collateral USD",
                "initial margin USD", "coverage"):
        t.add_column(col, justify="left" if col in ("account", "scenario") else "right")
    for r in rows:
        cov = "n/a" if r.coverage is None else f"{r.coverage:.0%}"
        style = "" if r.coverage is None or r.coverage >= 1 else "[red]"
        t.add_row(escape(r.account), r.scenario, f"{r.pnl_usd:,.0f}",
                  f"{r.positions_pnl_usd:,.0f}", f"{r.collateral_pnl_usd:,.0f}",
                  f"{r.initial_margin_usd:,.0f}", f"{style}{cov}")
    console.print(t)
    print_not_margined(console, mdl, refused)


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
        dynamic: Annotated[bool, typer.Option(
            "--dynamic", help="also run each model under the dynamic margin controller "
                              "(policy.dynamic) on the same days, and show both side by side"
        )] = False,
        dynamic_config: Annotated[Path | None, typer.Option(
            "--dynamic-config", help="JSON object of DynamicConfig fields for --dynamic "
                                     "(implies --dynamic)")] = None,
        output: OutputOpt = None,
        format: FormatOpt = Format.table) -> None:
    """Backtest margin models on history: margin from data up to each day, realised loss over
    the horizon, exceedances, coverage tests, traffic light, ES test, procyclicality."""
    from margin_engine.analysis.backtest import (
        backtest_json,
        floor_model_factory,
        registered_model_factory,
        run_backtest,
        run_dynamic_pair,
    )

    pairs: list[tuple[Any, Any, dict[str, Any]]] = []
    notes: list[str] = []
    try:
        cfg = _bt_dynamic_config(dynamic_config) if (dynamic or dynamic_config) else None
        runs = _bt_model_options(model, parse_params(param))
        factories = [(name, opts, registered_model_factory(name, opts, horizon_days=horizon))
                     for name, opts in runs]
        bk = load_book(book)
        symbols = sorted({p.symbol for a in bk.accounts for p in a.positions})
        prices, vols, funding, builder = _bt_market(history, symbols)
        if cfg is not None:
            regimes, signals = _bt_regimes(prices, vols, funding)
        elif funding is not None:
            notes.append("funding files are used only with --dynamic")
        results: list[Any] = []
        names = [n for n, _, _ in factories]
        for k, (name, opts, factory) in enumerate(factories):
            label = name if names.count(name) == 1 else f"{name} #{k + 1}"
            common: dict[str, Any] = dict(
                horizon_days=horizon, start=start, end=end, market_builder=builder,
                account=account, confidence=confidence, vol_index=vols)
            if cfg is None:
                with _Progress(f"backtest {label}") as tick:
                    results.append(run_backtest(bk, factory, prices, progress=tick,
                                                label=label, **common))
                continue
            floor = None if cfg.floor == "off" else floor_model_factory(
                name, opts, horizon_days=horizon)
            with _Progress(f"backtest {label} + dynamic") as tick:
                base, dyn, inputs = run_dynamic_pair(
                    bk, factory, prices, regimes=regimes, config=cfg, floor_factory=floor,
                    label=label, progress=tick, **common)
            results += [base, dyn]
            pairs.append((base, dyn, _bt_pair_info(inputs, floor, cfg, signals)))
    except InputError as exc:
        fail(exc)
    doc: dict[str, Any] = {"backtests": [backtest_json(r) for r in results]}
    if cfg is not None:
        doc["dynamic"] = {"config": cfg.model_dump(mode="json"),
                          "pairs": [_bt_pair_json(a, b, info) for a, b, info in pairs]}
    check_finite(doc)
    path = None
    if report is not None:
        from margin_engine.analysis.report import write_report

        try:
            path = write_report(results, report, pairs=[(a, b) for a, b, _ in pairs])
        except (RuntimeError, OSError) as exc:
            fail(InputError("--report", str(exc)))
    for line in notes:
        err_console.print(f"note: {escape(line)}", style="dim", soft_wrap=True)
    with _output_to(output):
        if format is Format.json:
            _write(json.dumps(doc, indent=1, allow_nan=False) + "\n")
        else:
            _bt_print(results)
            if pairs:
                _bt_print_dynamic(pairs)
    if path is not None:
        err_console.print(f"report: {escape(str(path))}", soft_wrap=True)


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
    return [(m, expand_file_parameters(m, opts)) for m, opts in out]


def _bt_dynamic_config(path: Path | None) -> Any:
    """The controller configuration: defaults, or the fields of the --dynamic-config file."""
    from pydantic import ValidationError

    from margin_engine.io.loaders import read_json, validation_problems
    from margin_engine.policy.dynamic import DynamicConfig

    if path is None:
        return DynamicConfig()
    data = read_json(path)
    if not isinstance(data, dict):
        raise InputError("--dynamic-config", f"{path}: expected a JSON object of DynamicConfig "
                         f"fields, got {type(data).__name__}")
    try:
        return DynamicConfig.model_validate(data)
    except ValidationError as exc:
        probs = []
        for path_, reason in validation_problems(exc):
            head, sep, tail = reason.partition(": ")
            if path_ == "<root>" and sep and head in DynamicConfig.model_fields:
                path_, reason = head, tail  # a cross-field check names its field
            probs.append((f"--dynamic-config {path_}", reason))
        raise InputError(probs[0][0], probs[0][1], more=probs[1:]) from None


def _is_funding_file(path: Path) -> bool:
    """Whether a --history file is a funding-rate file (recognised by its header)."""
    from margin_engine.io.history import load_funding

    try:
        load_funding(path)
    except ValueError as exc:
        if "not a funding file" in str(exc) or "headerless klines" in str(exc):
            return False
        raise InputError("--history", str(exc)) from None
    except (OSError, UnicodeDecodeError):
        return False
    return True


def _bt_regimes(prices: Any, vols: Any, funding: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """Per underlying of the price history, the controller's regime inputs (EWMA vol, long-run
    vol, and the DVOL and funding of that underlying when given), from data up to each day."""
    import warnings

    import numpy as np

    from margin_engine.policy.dynamic import regime_inputs_series

    regimes: dict[str, Any] = {}
    signals: dict[str, str] = {}
    daily_funding: dict[str, tuple[Any, Any]] = {}
    if funding is not None:  # a daily signal: the mean of each day's funding prints
        days = funding.dates.astype("datetime64[D]")
        fu_days, first = np.unique(days, return_index=True)
        ends = np.append(first[1:], days.size)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a day without any print: NaN
            fu_rates = np.array([np.nanmean(funding.rates[a:b], axis=0)
                                 for a, b in zip(first, ends, strict=True)])
        daily_funding = {u: (fu_days, fu_rates[:, j]) for j, u in enumerate(funding.symbols)}
    for k, u in enumerate(prices.symbols):
        col = prices.closes[:, k]
        ok = np.isfinite(col)
        dv = fu = None
        used = ["EWMA vol"]
        if vols is not None and u in vols.symbols:
            dv = (vols.dates, vols.closes[:, vols.symbols.index(u)])
            used.append("DVOL")
        if u in daily_funding:
            fu = daily_funding[u]
            used.append("funding")
        try:
            regimes[u] = regime_inputs_series(prices.dates[ok], col[ok], dvol=dv, funding=fu)
        except ValueError:
            continue  # too short a history for the EWMA seed: no signal for u
        signals[u] = ", ".join(used)
    return regimes, signals


def _bt_pair_info(inputs: Any, floor: Any, cfg: Any, signals: dict[str, str]
                  ) -> dict[str, Any]:
    from margin_engine.analysis.backtest import FLOOR_LOOKBACK_DAYS

    if cfg.floor == "off":
        how = "off"
    elif floor is not None:
        how = (f"historical-var with the model's measure and confidence on a "
               f"{FLOOR_LOOKBACK_DAYS}-day unfiltered look-back")
    elif cfg.floor == "volatility":
        how = "volatility-scaled: model margin × long-run vol / EWMA vol"
    else:
        how = "none (no look-back model for a rule-based model)"
    u = inputs.underlying
    return {"regime_underlying": u, "signals": signals.get(u, "") if u else "",
            "floor": how, "floor_days": inputs.floor_days}


def _bt_pair_json(base: Any, dyn: Any, info: dict[str, Any]) -> dict[str, Any]:
    from margin_engine.analysis.backtest import summary_rows

    a, b = summary_rows([base, dyn])
    keys = ("exceedances", "coverage", "kupiec_p", "zone_last_250", "mean_margin_share")

    def share(r: Any) -> dict[str, float | None]:
        pc = r.statistics.procyclicality_of_share
        if pc is None:
            return {"peak_to_trough": None, "max_1d_increase": None, "max_5d_increase": None,
                    "max_30d_increase": None}
        horizons = [n.horizon for n in pc.n_day]
        return {"peak_to_trough": pc.peak_to_trough.ratio,
                **{f"max_{n}d_increase": pc.ratio(n) - 1.0 if n in horizons else None
                   for n in (1, 5, 30)}}

    return {"model": base.model, "without": base.label, "with": dyn.label, **info,
            "changes": len(dyn.controller_log),
            "without_controller": {**{k: a[k] for k in keys}, "of_share": share(base)},
            "with_controller": {**{k: b[k] for k in keys}, "of_share": share(dyn)}}


def _bt_market(paths: list[Path], symbols: list[str]) -> tuple[Any, Any, Any, Any]:
    """(price history, DVOL history or None, funding history or None, market builder) from
    the --history files."""
    import numpy as np

    from margin_engine.analysis.market_builders import (
        ChainMarketBuilder,
        HistoryMarketBuilder,
        chain_index_series,
        is_option_chain,
        read_option_chain,
    )
    from margin_engine.domain.history import PriceSeries
    from margin_engine.io.history import load_funding, load_history

    for p in paths:
        if not p.is_file():
            raise InputError("--history", f"{p}: no such file")
    chains = [p for p in paths if is_option_chain(p)]
    fundings = [p for p in paths if p not in chains and _is_funding_file(p)]
    others = [p for p in paths if p not in chains and p not in fundings]
    prices = vols = funding = None
    if fundings:
        try:
            funding = load_funding(fundings)
        except (ValueError, OSError) as exc:
            raise InputError("--history", str(exc)) from None
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
        return prices, vols, funding, ChainMarketBuilder(chain)
    if prices is None:
        raise InputError("--history", "no price series in the files (only DVOL or funding)")
    return prices, vols, funding, HistoryMarketBuilder(prices, vols)


class _Progress:
    """A rich progress bar on stderr when it is a terminal; ``with`` gives the callback."""

    def __init__(self, name: str) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(TextColumn(name), BarColumn(), MofNCompleteColumn(),
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
                "Christ. ind p", "Christ. cc p", "worst 250 d", "last 250 d", "Z2"):
        t.add_column(col, justify="left" if col.endswith("250 d") or col == "run"
                     else "right")
    for row in rows:
        z, zw = row["zone_last_250"], row["zone_worst_250"]
        worst = ("— (< 250 d)" if zw is None else
                 f"[{zone_style[zw]}]{zw}[/] ({row['exceptions_worst_250']}) "
                 f"{row['worst_250_first']} … {row['worst_250_last']}")
        t.add_row(row["label"], str(row["horizon_days"]), str(row["days"]),
                  str(row["exceedances"]), f"{row['expected']:.1f}", pct(row["coverage"]),
                  num(row["kupiec_p"]), num(row["christoffersen_ind_p"]),
                  num(row["christoffersen_cc_p"]), worst,
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
    y = Table(title="exceptions/days per year (a zone only for 250 days or more)",
              title_justify="left")
    y.add_column("year")
    for r in results:
        y.add_column(r.label, justify="right")
    for year in years:
        cells = []
        for r in results:
            hit = next((x for x in r.statistics.traffic_light_by_year if x.year == year), None)
            light = None if hit is None else hit.traffic_light
            cells.append("—" if hit is None else f"{hit.n_exceptions}/{hit.n_obs}" + (
                "" if light is None else f" [{zone_style[light.zone]}]{light.zone}[/]"))
        y.add_row(str(year), *cells)
    console.print(y)
    for r in results:
        console.print(escape(f"{r.label}: {r.n_days} days {r.dates[0]} … {r.dates[-1]}, "
                             f"{len(r.skipped)} skipped; margin in {r.currency}; params "
                             f"{r.params_hash}; history {r.history_source}"), style="dim")


def _bt_print_dynamic(pairs: list[tuple[Any, Any, dict[str, Any]]]) -> None:
    """The controller's effect: each model without and with it, on the same days."""

    def pct(v: float | None) -> str:
        return "—" if v is None else f"{100 * v:.2f}%"

    def num(v: float | None, d: int = 2) -> str:
        return "—" if v is None else f"{v:.{d}f}"

    t = Table(title="dynamic controller: each model without → with it (same days; "
              "procyclicality of margin / notional)", title_justify="left")
    for col in ("model", "exceed.", "coverage", "Kupiec p", "margin/notional", "peak/trough",
                "max 1d", "max 5d", "max 30d", "changes"):
        t.add_column(col, justify="left" if col == "model" else "right")
    notes = []
    for base, dyn, info in pairs:
        d = _bt_pair_json(base, dyn, info)
        a, b = d["without_controller"], d["with_controller"]

        def arrow(key: str, fmt: Any, a: dict[str, Any] = a, b: dict[str, Any] = b) -> str:
            return f"{fmt(a[key])} → {fmt(b[key])}"

        def arrow_s(key: str, fmt: Any, a: dict[str, Any] = a, b: dict[str, Any] = b) -> str:
            return f"{fmt(a['of_share'][key])} → {fmt(b['of_share'][key])}"

        sig = "no regime signal (no price history for the book's underlyings)" if not info[
            "regime_underlying"] else (f"regime signal {info['regime_underlying']} "
                                       f"({info['signals']})")
        t.add_row(base.label, arrow("exceedances", str), arrow("coverage", pct),
                  arrow("kupiec_p", lambda v: num(v, 3)), arrow("mean_margin_share", pct),
                  arrow_s("peak_to_trough", num), arrow_s("max_1d_increase", pct),
                  arrow_s("max_5d_increase", pct), arrow_s("max_30d_increase", pct),
                  str(d["changes"]))
        notes.append(f"{base.label}: {sig}; APC floor: {info['floor']}"
                     + (f" (given on {info['floor_days']} days)" if info["floor_days"] else ""))
    console.print(t)
    for line in notes:
        console.print(f"[dim]{line}[/]", highlight=False)


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
    except OSError as exc:
        fail(InputError("--out", f"cannot write the sample files: {exc.strerror or exc}"))


from margin_engine.cli import whatif as _whatif  # noqa: E402,F401  (registers `whatif`)


def main() -> None:  # pragma: no cover - console entry
    app()


from . import audit as _audit  # noqa: E402, F401  (registers `margin-engine audit`)
from . import import_cmd as _import_cmd  # noqa: E402,F401  (registers `import`)
from . import optimise as _optimise  # noqa: E402,F401  (registers `optimise`)
from . import serve as _serve  # noqa: E402,F401  (registers `serve`)
from . import simulate as _simulate  # noqa: E402,F401  (registers `simulate`)
