"""One book, every model, side by side (initial and maintenance margin in USD)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from margin_engine.domain.book import Book
from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError
from margin_engine.models.core.base import MarginModel
from margin_engine.policy.assess import assess_account


@dataclass(frozen=True)
class Cell:
    """One account under one model: margins in USD, or why the model does not apply."""

    initial_margin_usd: float | None = None
    maintenance_margin_usd: float | None = None
    status: str | None = None
    not_applicable: str | None = None


@dataclass(frozen=True)
class Comparison:
    models: tuple[str, ...]
    accounts: tuple[str, ...]
    modes: tuple[str, ...]
    cells: tuple[tuple[Cell, ...], ...]  # [account][model]


def compare_models(models: Sequence[MarginModel], book: Book,
                   market: MarketSnapshot) -> Comparison:
    """Assess each account under each model; accounts a model cannot margin get the reason."""
    rows = []
    for account in book.accounts:
        row = []
        for model in models:
            try:
                r = assess_account(model, account, market, liquidation_prices=False)
            except InputError as exc:
                row.append(Cell(not_applicable=str(exc)))
                continue
            row.append(Cell(market.convert(r.initial_margin, r.currency, "USD"),
                            market.convert(r.maintenance_margin, r.currency, "USD"),
                            r.status.value))
        rows.append(tuple(row))
    return Comparison(tuple(m.name for m in models), tuple(a.id for a in book.accounts),
                      tuple(a.margin_mode.value for a in book.accounts), tuple(rows))
