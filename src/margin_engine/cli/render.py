"""Rich tables for people (``--format table``)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from margin_engine.models.core.base import MarginModel
from margin_engine.policy.assess import AccountReport, NotMargined

_STYLE = {"healthy": "green", "margin_call": "yellow", "liquidation": "bold red"}
#: Currencies shown to the cent; any other (a coin) to 6 decimals.
_CENTS = frozenset({"USD", "USDT", "USDC"})


def money(x: float | None, currency: str = "USD") -> str:
    """An amount in ``currency``: cents for dollars and stablecoins, 6 decimals for coins."""
    if x is None:
        return "—"
    return f"{x:,.2f}" if currency in _CENTS else f"{x:,.6f}"


def price(x: float | None) -> str:
    """A price: cents, or 6 significant digits below 100 (DOGE, an option premium in coin)."""
    if x is None:
        return "—"
    return f"{x:,.2f}" if abs(x) >= 100 else f"{x:.6g}"


def ratio(x: float | None) -> str:
    """Maintenance ÷ equity; ``n/a`` when there is none (equity ≤ 0), never an infinity."""
    return "n/a" if x is None else f"{x:.2%}"


def print_not_margined(console: Console, model: str,
                       not_margined: Sequence[NotMargined]) -> None:
    """The accounts ``model`` does not margin, with the reason (nothing when there are none)."""
    if not not_margined:
        return
    n = Table(title=f"not margined by {model} (use --strict to make this an error)",
              title_justify="left")
    n.add_column("account")
    n.add_column("reason", overflow="fold")
    for x in not_margined:
        n.add_row(Text(x.id), Text(x.reason))
    console.print(n)


def print_compute(console: Console, model: MarginModel, reports: Sequence[AccountReport],
                  not_margined: Sequence[NotMargined] = ()) -> None:
    t = Table(title=f"{model.name} {model.version} — margin by account (amounts in ccy)",
              title_justify="left")
    for col in ("account", "mode", "ccy", "initial", "maintenance", "equity", "ratio", "status"):
        t.add_column(col, justify="right" if col in ("initial", "maintenance", "equity",
                                                    "ratio") else "left")
    for r in reports:
        st = r.status.value
        t.add_row(escape(r.id), r.margin_mode.value, r.currency,
                  money(r.initial_margin, r.currency), money(r.maintenance_margin, r.currency),
                  money(r.equity, r.currency),
                  ratio(r.margin_ratio), f"[{_STYLE[st]}]{st}[/]")
    console.print(t)
    p = Table(title="positions (margin in ccy; liquidation price in the instrument's quote)",
              title_justify="left")
    for col in ("account", "symbol", "size", "unit", "ccy", "initial", "maintenance",
                "contribution", "liq. price"):
        p.add_column(col, justify="left" if col in ("account", "symbol", "unit", "ccy")
                     else "right")
    for r in reports:
        for pos in r.positions:
            m, ccy = pos.margin, pos.currency
            p.add_row(escape(r.id), escape(m.symbol), f"{m.size:g}", pos.unit, ccy,
                      money(m.initial_margin, ccy), money(m.maintenance_margin, ccy),
                      money(m.contribution, ccy), price(pos.liquidation_price))
    console.print(p)
    print_not_margined(console, model.name, not_margined)
    if reports:
        a = reports[0].audit
        console.print(f"audit: model={a.model} version={a.model_version} "
                      f"params={a.params_hash} market={a.market_timestamp} "
                      f"engine={a.engine_version}", style="dim", markup=False)
