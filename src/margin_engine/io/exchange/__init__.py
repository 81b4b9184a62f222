"""Exchange position exports → DESIGN §4 book (and market snapshot): one module per venue.

:func:`import_exports` reads the files of one format and returns the book document, the market
snapshot document (or ``None`` when the export cannot date or price one) and notes about the
approximations made. Both documents are validated by the domain models before they are
returned, so what is written always loads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from margin_engine.domain.book import Book, check_against_market
from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError
from margin_engine.io.loaders import parse_model

from . import binance, ccxt, deribit
from .common import MARGIN_MODES, Imported, build_book, build_market

#: The formats ``margin-engine import`` reads, each a parser of a list of files.
FORMATS: Mapping[str, Callable[[list[Path]], Imported]] = {
    "ccxt": ccxt.parse, "deribit": deribit.parse, "binance": binance.parse}


@dataclass(frozen=True)
class ImportResult:
    """The imported book and, when asked for, market snapshot (DESIGN §4 documents)."""

    book: dict[str, Any]
    market: dict[str, Any] | None
    notes: list[str] = field(default_factory=list)


def import_exports(fmt: str, paths: list[Path], *, account: str = "imported",
                   margin_mode: str | None = None, collateral: Mapping[str, float] | None = None,
                   with_market: bool = False) -> ImportResult:
    """Read exchange exports of format ``fmt`` (``ccxt``, ``deribit``, ``binance``).

    Parameters
    ----------
    fmt : str
        The export format, a key of :data:`FORMATS`.
    paths : list of Path
        The export files (JSON, as the API answered).
    account : str
        Id of the imported account (a second margin mode gets ``ID-MODE``).
    margin_mode : str, optional
        Force every position into this mode instead of the export's own.
    collateral : mapping, optional
        Account collateral by currency (position exports carry none for cross accounts).
    with_market : bool
        Also build the market snapshot of the held instruments.

    Returns
    -------
    ImportResult
        The validated book (and market) documents.

    Raises
    ------
    InputError
        A malformed export, with the file and field in its path.
    """
    if fmt not in FORMATS:
        raise InputError("FORMAT", f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    if margin_mode is not None and margin_mode not in MARGIN_MODES:
        raise InputError("--margin-mode", f"{margin_mode!r} is not one of "
                         f"{', '.join(MARGIN_MODES)}")
    if not paths:
        raise InputError("FILE", "no export file given")
    imp = FORMATS[fmt](paths)
    if not imp.positions:
        raise InputError(str(paths[0]) if len(paths) == 1 else "FILE...",
                         "no non-zero position in the export(s)")
    book_doc = build_book(imp, account=account, margin_mode=margin_mode,
                          collateral=dict(collateral or {}))
    book = parse_model(Book, book_doc, "book")
    market_doc = None
    if with_market:
        market_doc = build_market(imp)
        try:
            market = parse_model(MarketSnapshot, market_doc, "market")
        except InputError as exc:
            raise exc.within("--market-out") from None
        check_against_market(book, market)
    return ImportResult(book_doc, market_doc, list(imp.notes))


__all__ = ["FORMATS", "ImportResult", "import_exports"]
