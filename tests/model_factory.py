"""Registered models built the way the tests need them: the risk-based family on the synthetic
history (no network, no real files), monte-carlo-es on fewer paths; and the accounts of a book
a model margins."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from margin_engine.domain.book import Account, Book
from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError
from margin_engine.io.series import synthetic_series
from margin_engine.models.core.base import MarginModel
from margin_engine.models.core.registry import model_class
from margin_engine.policy.assess import assess_account

HISTORY = synthetic_series(date(2026, 2, 4))


def build(name: str, *, n_paths: int = 500) -> MarginModel:
    """Model ``name`` with its defaults, on :data:`HISTORY` where it takes a history."""
    cls = model_class(name)
    opts: dict[str, object] = {"history": HISTORY} if "history" in cls.Params.model_fields else {}
    if name == "monte-carlo-es":
        opts["n_paths"] = n_paths
    return cls.from_options(opts)


def margined(model: MarginModel, accounts: Iterable[Account], market: MarketSnapshot) -> Book:
    """The accounts ``model`` margins on ``market`` (the others dropped), in order."""
    keep = []
    for a in accounts:
        try:
            assess_account(model, a, market, liquidation_prices=False)
            keep.append(a)
        except InputError:
            pass
    return Book(accounts=tuple(keep))
