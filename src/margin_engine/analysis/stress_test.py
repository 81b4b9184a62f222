"""Stress tests: each account's P&L under named stresses, and how well its margin covers it.

P&L (USD) = positions fully revalued under the stress (options repriced at shocked prices and
vols, ``horizon_days`` of time decay) + the change in value of coin collateral. Coverage =
initial margin ÷ stressed loss (``None`` where the stress makes no loss).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from margin_engine.domain.book import Account, Book
from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError
from margin_engine.maths.scenarios import from_stresses
from margin_engine.maths.stress_library import (
    CORE_STRESSES,
    StressScenario,
    get_stress,
    stress_names,
)
from margin_engine.models.core.base import MarginModel
from margin_engine.models.core.scenario_pnl import instrument_pnl
from margin_engine.policy.assess import assess_account


@dataclass(frozen=True)
class StressRow:
    account: str
    scenario: str
    pnl_usd: float
    positions_pnl_usd: float
    collateral_pnl_usd: float
    initial_margin_usd: float
    coverage: float | None


def resolve(names: Sequence[str] | None) -> list[StressScenario]:
    """Named stresses (the eight core crash days when none are named)."""
    out = []
    for name in names or CORE_STRESSES:
        try:
            out.append(get_stress(name))
        except (KeyError, ValueError):
            raise InputError("--scenario", f"unknown stress {name!r} (known: "
                             f"{', '.join(stress_names())})") from None
    return out


def account_stress_pnl(account: Account, market: MarketSnapshot,
                       stresses: Sequence[StressScenario]) -> tuple[np.ndarray, np.ndarray]:
    """(positions P&L, collateral P&L) in USD per stress."""
    unds = tuple(sorted({market.instrument(p.symbol).underlying for p in account.positions}
                        | {c for c in account.collateral if c in market.index}))
    if not unds:
        return np.zeros(len(stresses)), np.zeros(len(stresses))
    scen = from_stresses(unds, stresses, horizon_days=1.0)
    ins = [market.instrument(p.symbol) for p in account.positions]
    sizes = np.array([p.size for p in account.positions])
    pos = sizes @ instrument_pnl(ins, market, scen, "USD") if ins else np.zeros(scen.n)
    coll = np.zeros(scen.n)
    for ccy, amount in account.collateral.items():
        if ccy in scen.underlyings:
            coll += amount * market.index[ccy] * scen.price_moves[:, scen.column(ccy)]
    return pos, coll


def stress_book(book: Book, market: MarketSnapshot, model: MarginModel,
                stresses: Sequence[StressScenario]) -> list[StressRow]:
    rows = []
    for i, account in enumerate(book.accounts):
        try:
            report = assess_account(model, account, market, liquidation_prices=False)
            pos, coll = account_stress_pnl(account, market, stresses)
        except InputError as exc:
            raise exc.within(f"accounts[{i}]") from None
        except ValueError as exc:
            raise InputError(f"accounts[{i}]", str(exc)) from None
        im = market.convert(report.initial_margin, report.currency, "USD")
        for s, p, c in zip(stresses, pos, coll, strict=True):
            total = float(p + c)
            rows.append(StressRow(account.id, s.name, total, float(p), float(c), im,
                                  im / -total if total < 0 else None))
    return rows
