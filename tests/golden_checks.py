"""Shared helpers for golden JSON cases: run a case through a model, compare nested results."""

from __future__ import annotations

import math
from typing import Any

from margin_engine.domain.book import Book
from margin_engine.domain.market import MarketSnapshot
from margin_engine.io.loaders import parse_model
from margin_engine.models.core.registry import get_model
from margin_engine.policy.assess import AccountReport, assess_account


def run_case(model_name: str, doc: dict[str, Any],
             params: dict[str, Any] | None = None) -> AccountReport:
    """The case's first account under ``model_name`` (the case's ``params`` unless given)."""
    market = parse_model(MarketSnapshot, doc["market"], "market")
    account = parse_model(Book, doc["book"], "book").accounts[0]
    model = get_model(model_name, doc.get("params", {}) if params is None else params)
    return assess_account(model, account, market, liquidation_prices=False)


def close(got: float, want: float, tol: float | None) -> bool:
    if tol is not None:
        return abs(got - want) <= tol
    return math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9)


def check_subset(got: Any, want: Any, tol: float | None, where: str) -> None:
    """Every key/value of ``want`` is in ``got`` (numbers within ``tol`` or 1e-9 relative)."""
    if isinstance(want, dict):
        for k, w in want.items():
            assert k in got, f"{where}.{k}: missing"
            check_subset(got[k], w, tol, f"{where}.{k}")
    elif isinstance(want, list):
        assert len(got) == len(want), f"{where}: length {len(got)} != {len(want)}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            check_subset(g, w, tol, f"{where}[{i}]")
    elif isinstance(want, bool | str):
        assert got == want, f"{where}: {got!r} != {want!r}"
    else:
        assert close(float(got), float(want), tol), f"{where}: {got!r} != {want!r}"
