"""The Python entry point: :func:`compute`, the library twin of ``margin-engine compute``.

>>> import margin_engine as me                                          # doctest: +SKIP
>>> res = me.compute("out/demo/book.json", "out/demo/market.json", model="binance-usdm")
>>> [(r.id, r.initial_margin) for r in res.accounts], res.not_margined
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from margin_engine.domain.book import Book, check_against_market
from margin_engine.domain.history import PriceSeries
from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError
from margin_engine.io.loaders import load_book, load_market, parse_model
from margin_engine.io.model_options import build_model
from margin_engine.io.report_json import compute_json
from margin_engine.models.core.base import MarginModel
from margin_engine.models.core.registry import model_class
from margin_engine.policy.assess import (
    AccountReport,
    NotMargined,
    assess_margined,
    select_accounts,
)

BookLike = str | Path | Mapping[str, Any] | Book
MarketLike = str | Path | Mapping[str, Any] | MarketSnapshot
HistoryLike = str | Path | Sequence[str | Path] | PriceSeries


@dataclass(frozen=True)
class ComputeResult:
    """What :func:`compute` returns.

    Attributes
    ----------
    model : MarginModel
        The model as built from the name and parameters.
    market : MarketSnapshot
        The market the book was valued in.
    accounts : list of AccountReport
        One report per margined account, in book order: ``initial_margin``,
        ``maintenance_margin``, ``equity``, ``margin_ratio``, ``status``, ``positions``...
    not_margined : list of NotMargined
        The accounts the model does not margin, each with ``id`` and ``reason``.
    notes : list of str
        Warnings issued while computing (e.g. the synthetic-history fallback).
    """

    model: MarginModel
    market: MarketSnapshot
    accounts: list[AccountReport]
    not_margined: list[NotMargined]
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The document ``margin-engine compute --format json`` prints (DESIGN §4)."""
        return compute_json(self.model, self.accounts, self.model.stamp(self.market)
                            .market_timestamp, self.not_margined, self.notes)


def _book(book: BookLike) -> Book:
    if isinstance(book, Book):
        return book
    if isinstance(book, str | Path):
        return load_book(book)
    return parse_model(Book, dict(book) if isinstance(book, Mapping) else book, "book")


def _market(market: MarketLike) -> MarketSnapshot:
    if isinstance(market, MarketSnapshot):
        return market
    if isinstance(market, str | Path):
        return load_market(market)
    return parse_model(MarketSnapshot, dict(market) if isinstance(market, Mapping) else market,
                       "market")


def _model(name: str, params: Mapping[str, Any] | None, history: HistoryLike | None,
           market: MarketSnapshot) -> tuple[MarginModel, str | None]:
    options = dict(params or {})
    if isinstance(history, PriceSeries):
        if "history" not in model_class(name).Params.model_fields:
            raise InputError("history", f"{name} does not use a price history")
        return model_class(name).from_options({**options, "history": history}), None
    paths = [history] if isinstance(history, str | Path) else history
    return build_model(name, options, [Path(p) for p in paths] if paths else None, market)


def compute(book: BookLike, market: MarketLike, model: str = "binance-usdm", *,
            params: Mapping[str, Any] | None = None, history: HistoryLike | None = None,
            accounts: Sequence[str] | None = None, liquidation_prices: bool = True,
            strict: bool = False) -> ComputeResult:
    """Margin every account of ``book`` that ``model`` can margin.

    Parameters
    ----------
    book : str, Path, dict or Book
        A book JSON file (DESIGN §4), its parsed JSON, or a :class:`~margin_engine.domain.book.
        Book`.
    market : str, Path, dict or MarketSnapshot
        A market snapshot file, its parsed JSON, or a snapshot.
    model : str, default "binance-usdm"
        A registered model name (``margin-engine models`` lists them).
    params : dict, optional
        Model parameters, as ``--param key=value`` takes them (unknown names are refused).
    history : path, list of paths or PriceSeries, optional
        Price history for the risk-based models (``historical-var``, ``filtered-es``,
        ``monte-carlo-es``). Without one they use the embedded synthetic history and a
        :class:`UserWarning` says so.
    accounts : list of str, optional
        Only these account ids (an id the book does not hold is an error).
    liquidation_prices : bool, default True
        Solve each position's liquidation price.
    strict : bool, default False
        Raise for an account the model does not margin instead of listing it in
        ``not_margined``.

    Returns
    -------
    ComputeResult
        ``.accounts`` (reports), ``.not_margined``, ``.to_json()``.

    Raises
    ------
    InputError
        Bad input, with the field path: ``str(exc)`` is ``"<path>: <reason>"``, the line the
        command line prints after ``error:``.

    Examples
    --------
    >>> res = compute("out/demo/book.json", "out/demo/market.json",    # doctest: +SKIP
    ...               model="filtered-es", history=["BTC.csv", "ETH.csv"])
    >>> res.accounts[0].initial_margin                                  # doctest: +SKIP
    """
    snap = _market(market)
    mdl, note = _model(model, params, history, snap)
    notes = []
    if note:
        warnings.warn(note, UserWarning, stacklevel=2)
        notes.append(note)
    bk = select_accounts(_book(book), accounts)
    check_against_market(bk, snap)
    reports, refused = assess_margined(mdl, bk, snap, strict=strict,
                                       liquidation_prices=liquidation_prices)
    return ComputeResult(mdl, snap, reports, refused, notes)
