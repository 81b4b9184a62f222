"""``margin-engine whatif BOOK MARKET --account ID --order SYMBOL:SIZE[@PRICE] ...``.

Margin before and after the orders fill, the change in initial margin, and whether the venue's
pre-trade rule would accept them (as Deribit's ``private/get_margins`` and
``simulate_portfolio``, and OKX's position builder, answer). Nothing is stored.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

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
from margin_engine.domain.book import Book
from margin_engine.errors import InputError
from margin_engine.io.loaders import load_book, load_market
from margin_engine.io.model_options import build_model

if TYPE_CHECKING:
    from margin_engine.live import LiveBook, WhatIf


def parse_order(raw: str, n: int) -> tuple[str, float, float | None]:
    """``SYMBOL:SIZE[@PRICE]`` (size signed: buy > 0) → ``(symbol, size, price or None)``."""
    at = f"--order[{n}]"
    sym, sep, rest = raw.rpartition(":")
    if not sep or not sym.strip():
        raise InputError(at, f"expected SYMBOL:SIZE[@PRICE], got {raw!r}")
    size_s, _, price_s = rest.partition("@")
    try:
        size = float(size_s)
    except ValueError:
        raise InputError(f"{at}.size", f"not a number: {size_s!r}") from None
    if not math.isfinite(size) or size == 0:
        raise InputError(f"{at}.size", f"must be a finite non-zero number, got {size_s!r}")
    price: float | None = None
    if price_s:
        try:
            price = float(price_s)
        except ValueError:
            raise InputError(f"{at}.price", f"not a number: {price_s!r}") from None
        if not math.isfinite(price) or price <= 0:
            raise InputError(f"{at}.price", f"must be a finite number > 0, got {price_s!r}")
    return sym.strip(), size, price


def run_whatif(book: Book, live: LiveBook, account: str,
               orders: list[tuple[str, float, float | None]]) -> WhatIf:
    try:
        return live.what_if(account, orders)
    except InputError as exc:
        if exc.path.startswith("orders["):
            raise InputError("--order" + exc.path[len("orders"):], exc.reason) from None
        if exc.path == "account":
            raise InputError("--account", exc.reason) from None
        raise


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:,.2f}"


def _print(w: WhatIf) -> None:
    t = Table(title=f"what-if: account {w.account} ({w.after.currency})")
    for col in ("", "initial margin", "maintenance margin", "equity", "available",
                "margin ratio", "status"):
        t.add_column(col, justify="right" if col else "left")
    for name, s in (("before", w.before), ("after", w.after)):
        t.add_row(name, _num(s.initial_margin), _num(s.maintenance_margin), _num(s.equity),
                  _num(s.available_balance),
                  "-" if s.margin_ratio is None else f"{s.margin_ratio:.4f}", s.status.value)
    console.print(t)
    verdict = "ACCEPT" if w.accept else "REJECT"
    console.print(f"initial margin change {w.initial_margin_change:+,.2f}; {verdict}: "
                  f"{w.reason}", markup=False, highlight=False)


@app.command()
def whatif(book: Annotated[Path, typer.Argument(help="book JSON")],
           market: Annotated[Path, typer.Argument(help="market snapshot JSON")],
           model: Annotated[str, typer.Option("--model", "-m", help="registered model name")],
           account: Annotated[str, typer.Option("--account", "-a", help="account id")],
           order: Annotated[list[str], typer.Option(
               "--order", help="SYMBOL:SIZE[@PRICE], size signed (buy > 0); repeatable")],
           param: ParamOpt = None,
           history: HistoryOpt = None,
           format: FormatOpt = Format.table,
           output: JsonOutputOpt = None) -> None:
    """Margin before and after hypothetical orders, and accept/reject with the reason."""
    from margin_engine.live import LiveBook  # here: other commands never need the live book

    try:
        orders = [parse_order(raw, n) for n, raw in enumerate(order)]
        snap = load_market(market)
        mdl, note = build_model(model, parse_params(param), history, snap)
        if note:
            err_console.print(f"note: {note}", style="dim")
        bk = load_book(book)
        target = [a for a in bk.accounts if a.id == account]
        if not target:
            raise InputError("--account", f"unknown account {account!r}")
        live = LiveBook(mdl, Book(accounts=tuple(target)), snap)
        answer = run_whatif(bk, live, account, orders)
    except InputError as exc:
        fail(exc)
        return
    doc: dict[str, Any] = {"model": mdl.name, "audit": _audit(live), **answer.as_dict(),
                           "orders": [{"symbol": s, "size": q, "price": p}
                                      for s, q, p in orders]}
    emit_document(doc, output, format, lambda: _print(answer))


def _audit(live: LiveBook) -> dict[str, str]:
    st = live.model.stamp(live.market)
    return {"model": st.model, "model_version": st.model_version,
            "params_hash": st.params_hash, "market_timestamp": st.market_timestamp,
            "engine_version": st.engine_version}
