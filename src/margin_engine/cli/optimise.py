"""``margin-engine optimise BOOK MARKET --model NAME --account ID [--budget COST]
[--universe SYMBOLS] [--versus MODEL] [--format json] [-o FILE]``.

The hedge trades that free the most initial margin per USD of trading cost (each recomputed from
scratch), a greedy plan within the budget, the exact LP optimum for scenario models with its
optimality gap, the isolated/cross split (and across two venues with ``--versus``), and which
collateral to post. Nothing is stored. See docs/optimisation.md.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

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
from margin_engine.domain.book import check_against_market
from margin_engine.errors import InputError
from margin_engine.io.loaders import load_book, load_market
from margin_engine.io.model_options import build_model


def _budget(raw: str | None) -> float:
    if raw is None:
        return math.inf
    try:
        value = float(raw)
    except ValueError:
        raise InputError("--budget", f"not a number: {raw!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise InputError("--budget", f"must be a finite number > 0 (USD), got {raw!r}")
    return value


@app.command(name="optimise")
def optimise_cmd(
        book: Annotated[Path, typer.Argument(help="book JSON")],
        market: Annotated[Path, typer.Argument(help="market snapshot JSON")],
        model: Annotated[str, typer.Option("--model", "-m", help="registered model name")],
        account: Annotated[str, typer.Option("--account", "-a", help="account id")],
        budget: Annotated[str | None, typer.Option(
            "--budget", help="most USD of trading cost (spread + impact) to spend")] = None,
        universe: Annotated[str | None, typer.Option(
            "--universe", help="hedge instruments, SYM,SYM,... (default: the account's "
                               "underlyings' perpetuals, futures, held and near-money options)")
        ] = None,
        versus: Annotated[str | None, typer.Option(
            "--versus", help="a second venue's model: split the book between the two")] = None,
        param: ParamOpt = None,
        history: HistoryOpt = None,
        format: FormatOpt = Format.table,
        output: JsonOutputOpt = None) -> None:
    """Hedges that free margin per unit of cost, mode/venue split, collateral choice."""
    # Imported here: the optimiser pulls in SciPy's LP solvers, which other commands never need.
    from margin_engine.analysis.optimise.candidates import parse_universe
    from margin_engine.analysis.optimise.run import OptimiseConfig, optimise

    try:
        cap = _budget(budget)
        snap = load_market(market)
        mdl, note = build_model(model, parse_params(param), history, snap)
        if note:
            err_console.print(f"note: {note}", style="dim")
        other = None
        if versus is not None:
            if versus == model:
                raise InputError("--versus", "must name a model other than --model")
            other, _ = build_model(versus, {}, history if _uses_history(versus) else None, snap)
        bk = load_book(book)
        check_against_market(bk, snap)
        target = next((a for a in bk.accounts if a.id == account), None)
        if target is None:
            raise InputError("--account", f"unknown account {account!r}")
        uni = None if universe is None else tuple(parse_universe(universe, snap, mdl))
        try:
            doc = optimise(mdl, target, snap, OptimiseConfig(budget=cap, universe=uni,
                                                             versus=other))
        except InputError as exc:
            if exc.path.startswith(("--", "accounts")):
                raise
            raise exc.within(f"accounts[{bk.accounts.index(target)}]") from None
    except InputError as exc:
        fail(exc)
        return
    doc["audit"] = _audit(mdl, snap)
    emit_document(doc, output, format, lambda: _print(doc))


def _uses_history(name: str) -> bool:
    from margin_engine.models.core.registry import model_class

    return "history" in model_class(name).Params.model_fields


def _audit(mdl: Any, snap: Any) -> dict[str, str]:
    st = mdl.stamp(snap)
    return {"model": st.model, "model_version": st.model_version,
            "params_hash": st.params_hash, "market_timestamp": st.market_timestamp,
            "engine_version": st.engine_version}


def _n(x: float | None, d: int = 2) -> str:
    return "-" if x is None else f"{x:,.{d}f}"


def _print(doc: dict[str, Any]) -> None:
    ccy = doc["currency"]
    console.print(f"account {doc['account']} under {doc['model']}: initial margin "
                  f"{_n(doc['initial_margin'])} {ccy}", markup=False, highlight=False)
    t = Table(title=f"hedges: IM freed per USD of trading cost ({ccy}; each recomputed)")
    for col in ("#", "symbol", "size", "cost USD", "IM after", "freed USD", "freed / cost"):
        t.add_column(col, justify="left" if col == "symbol" else "right")
    for k, h in enumerate(doc["hedges"], 1):
        t.add_row(str(k), h["symbol"], f"{h['size']:+g}", _n(h["cost_usd"]),
                  _n(h["initial_margin_after"]), _n(h["saving_usd"]),
                  _n(h["saving_per_cost"], 1))
    console.print(t)
    p = doc["plan"]
    steps = ", ".join(f"{s['symbol']} {s['size']:+g}" for s in p["steps"]) or "none"
    console.print(f"greedy plan: {steps}; cost {_n(p['cost_usd'])} USD; IM "
                  f"{_n(p['initial_margin_before'])} → {_n(p['initial_margin_after'])} {ccy}",
                  markup=False, highlight=False)
    ex = doc["exact"]
    if ex["applicable"] and not ex["solved"]:
        console.print(f"exact: not solved — {ex['reason']}", markup=False, highlight=False)
    elif ex["applicable"]:
        console.print(f"exact ({ex['solver']}): IM → {_n(ex['initial_margin_after'])} {ccy} "
                      f"for {_n(ex['cost_usd'])} USD over {len(ex['trades'])} instruments; "
                      f"scenario objective {_n(ex['objective'])} {ex['objective_currency']} "
                      f"(greedy "
                      f"{_n(ex['greedy_objective'])}), bound {_n(ex['lower_bound'])}, gap "
                      f"{_n(ex['gap'])}; {ex['solve_seconds'] * 1e3:.0f} ms"
                      + ("" if ex["suggested"] else " — not suggested: the requirement outside "
                         "the scenario part rises more than it falls"),
                      markup=False, highlight=False)
    else:
        console.print(f"exact: not applicable — {ex['reason']}", markup=False, highlight=False)
    for key in ("allocation", "venues"):
        al = doc.get(key)
        if al is None:
            continue
        if not al.get("applicable", True):
            console.print(f"{key}: not applicable — {al['reason']}", markup=False,
                          highlight=False)
            continue
        parts = "; ".join(f"{b['label']}: {', '.join(b['symbols']) or '-'} "
                          f"({_n(b['initial_margin_usd'])} USD)" for b in al["bins"])
        console.print(f"{key} ({al['method']}): {parts}; total {_n(al['total_usd'])} USD",
                      markup=False, highlight=False)
    c = doc["collateral"]
    t = Table(title=f"collateral: posting {_n(c['amount_usd'])} USD ({c['scenarios']})")
    for col in ("asset", "haircut", "value now / USD", "tail value / USD", "ratio after"):
        t.add_column(col, justify="left" if col == "asset" else "right")
    for ch in c["choices"]:
        t.add_row(ch["asset"], f"{ch['haircut']:.2%}", f"{ch['value_now_per_usd']:.4f}",
                  f"{ch['tail_value_per_usd']:.4f}",
                  "-" if ch["margin_ratio_after"] is None else f"{ch['margin_ratio_after']:.6f}")
    console.print(t)
