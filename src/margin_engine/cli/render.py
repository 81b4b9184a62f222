"""Rich tables for people (``--format table``)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from margin_engine.models.core.base import MarginModel
from margin_engine.policy.assess import AccountReport

_STYLE = {"healthy": "green", "margin_call": "yellow", "liquidation": "bold red"}


def money(x: float | None, digits: int = 2) -> str:
    return "—" if x is None else f"{x:,.{digits}f}"


def ratio(x: float | None) -> str:
    """Maintenance ÷ equity; ``n/a`` when there is none (equity ≤ 0), never an infinity."""
    return "n/a" if x is None else f"{x:.2%}"


def print_compute(console: Console, model: MarginModel, reports: Sequence[AccountReport]) -> None:
    t = Table(title=f"{model.name} {model.version} — margin by account", title_justify="left")
    for col in ("account", "mode", "ccy", "initial", "maintenance", "equity", "ratio", "status"):
        t.add_column(col, justify="right" if col in ("initial", "maintenance", "equity",
                                                    "ratio") else "left")
    for r in reports:
        st = r.status.value
        t.add_row(escape(r.id), r.margin_mode.value, r.currency, money(r.initial_margin),
                  money(r.maintenance_margin), money(r.equity), ratio(r.margin_ratio),
                  f"[{_STYLE[st]}]{st}[/]")
    console.print(t)
    p = Table(title="positions", title_justify="left")
    for col in ("account", "symbol", "size", "unit", "initial", "maintenance", "contribution",
                "liq. price"):
        p.add_column(col, justify="left" if col in ("account", "symbol", "unit") else "right")
    for r in reports:
        for pos in r.positions:
            m = pos.margin
            p.add_row(escape(r.id), escape(m.symbol), f"{m.size:g}", pos.unit,
                      money(m.initial_margin, 6),
                      money(m.maintenance_margin, 6), money(m.contribution, 6),
                      money(pos.liquidation_price))
    console.print(p)
    if reports:
        a = reports[0].audit
        console.print(f"audit: model={a.model} version={a.model_version} "
                      f"params={a.params_hash} market={a.market_timestamp} "
                      f"engine={a.engine_version}", style="dim", markup=False)
