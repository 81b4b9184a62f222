"""``margin-engine import``: exchange position exports → a DESIGN §4 book (and market snapshot).

Registered on the ``app`` of :mod:`margin_engine.cli.main`; the parsers live in
:mod:`margin_engine.io.exchange`, one module per venue.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from margin_engine.errors import InputError
from margin_engine.io.exchange import import_exports
from margin_engine.io.exchange.common import number

from .main import app


def fail(exc: InputError) -> None:
    """One ``error: <path>: <reason>`` line per problem on stderr (never wrapped), exit 2."""
    for path, reason in exc.problems:
        sys.stderr.write(f"error: {path}: {' '.join(reason.split())}\n")
    raise typer.Exit(2)


class ExportFormat(StrEnum):
    ccxt = "ccxt"
    deribit = "deribit"
    binance = "binance"


class Mode(StrEnum):
    isolated = "isolated"
    cross = "cross"
    portfolio = "portfolio"


def _collateral(pairs: list[str] | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for raw in pairs or []:
        ccy, sep, amount = raw.partition("=")
        ccy = ccy.strip()
        if not sep or not ccy:
            raise InputError(f"--collateral {raw}", "expected CURRENCY=AMOUNT")
        if ccy in out:
            raise InputError(f"--collateral {ccy}", "given twice")
        x = number({ccy: amount.strip()}, ccy, "--collateral")
        assert x is not None
        out[ccy] = x
    return out


def _write(doc: dict[str, Any], path: Path | None) -> None:
    text = json.dumps(doc, indent=1, allow_nan=False) + "\n"
    if path is None:
        sys.stdout.write(text)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


@app.command("import")
def import_(fmt: Annotated[ExportFormat, typer.Argument(
                metavar="FORMAT", help="ccxt (fetch_positions), deribit (private/get_positions "
                "+ public/get_instruments [+ public/ticker, get_book_summary_by_currency]), "
                "binance (USDⓈ-M /fapi/v2 or v3 positionRisk)")],
            files: Annotated[list[Path], typer.Argument(metavar="FILE...",
                                                        help="export files (JSON)")],
            output: Annotated[Path | None, typer.Option(
                "--output", "-o", help="write the book here (default: stdout)")] = None,
            market_out: Annotated[Path | None, typer.Option(
                "--market-out", help="also write the market snapshot of the held "
                                     "instruments here")] = None,
            account: Annotated[str | None, typer.Option(
                "--account", help="account id (default: the format name)")] = None,
            margin_mode: Annotated[Mode | None, typer.Option(
                "--margin-mode", help="put every position in this mode (default: the "
                                      "export's own, else cross)")] = None,
            collateral: Annotated[list[str] | None, typer.Option(
                "--collateral", help="account collateral CURRENCY=AMOUNT (repeatable)")
                                  ] = None) -> None:
    """Import exchange position exports into a book (sizes in signed contracts)."""
    try:
        res = import_exports(fmt.value, list(files), account=account or fmt.value,
                             margin_mode=None if margin_mode is None else margin_mode.value,
                             collateral=_collateral(collateral),
                             with_market=market_out is not None)
    except InputError as exc:
        fail(exc)
        return
    try:
        if market_out is not None and res.market is not None:
            _write(res.market, market_out)
        _write(res.book, output)
    except OSError as exc:
        fail(InputError(str(output or market_out), f"cannot write ({exc.strerror or exc})"))
        return
    for note in res.notes if market_out is not None else []:
        sys.stderr.write(f"note: {note}\n")
    n = sum(len(a["positions"]) for a in res.book["accounts"])
    if output is not None:
        sys.stderr.write(f"book: {output} ({len(res.book['accounts'])} account(s), "
                         f"{n} position(s))\n")
    if market_out is not None:
        sys.stderr.write(f"market: {market_out}\n")
