"""Accounts, positions and collateral.

``size`` is signed contracts (long > 0). ``entry_price`` is in quote currency per underlying unit
for futures and perpetuals, and in the settlement currency for options (the premium per unit).
``collateral`` maps currency → amount (negative = borrowed). ``isolated_margin`` is a position's own
collateral in its settlement currency (isolated mode only).
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field, model_validator

from margin_engine.domain.market import MarketSnapshot
from margin_engine.domain.types import (
    FROZEN,
    Amount,
    Fraction,
    Leverage,
    Name,
    NonNegative,
    Price,
)
from margin_engine.errors import InputError


class MarginMode(StrEnum):
    ISOLATED = "isolated"
    CROSS = "cross"
    PORTFOLIO = "portfolio"


class Position(BaseModel):
    """A holding of one instrument."""

    model_config = FROZEN

    symbol: Name
    size: Amount
    entry_price: Price | None = None
    isolated_margin: NonNegative | None = None


class Account(BaseModel):
    """One account: its margin mode, collateral and positions."""

    model_config = FROZEN

    id: Name
    margin_mode: MarginMode = MarginMode.CROSS
    collateral: dict[Name, Amount] = Field(default_factory=dict)
    positions: tuple[Position, ...] = ()
    leverage: dict[Name, Leverage] = Field(default_factory=dict)
    credit_rating: Name | None = None
    haircuts: dict[Name, Fraction] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _isolated_margin_only_when_isolated(self) -> Account:
        if self.margin_mode is not MarginMode.ISOLATED:
            for j, p in enumerate(self.positions):
                if p.isolated_margin is not None:
                    raise ValueError(f"positions[{j}].isolated_margin: only allowed when "
                                     f"margin_mode is 'isolated'")
        return self


class Book(BaseModel):
    """A set of accounts with unique ids."""

    model_config = FROZEN

    accounts: tuple[Account, ...] = ()

    @model_validator(mode="after")
    def _unique_ids(self) -> Book:
        seen: dict[str, int] = {}
        for i, a in enumerate(self.accounts):
            if a.id in seen:
                raise ValueError(f"accounts[{i}].id: duplicate account id {a.id!r} "
                                 f"(first at accounts[{seen[a.id]}])")
            seen[a.id] = i
        return self


def check_against_market(book: Book, market: MarketSnapshot) -> None:
    """Reject what the book names but the market cannot price: unknown symbols, leverage for
    unknown symbols, collateral in an unpriced currency. Raises :class:`InputError`."""
    problems: list[tuple[str, str]] = []
    for i, acct in enumerate(book.accounts):
        at = f"accounts[{i}]"
        for j, pos in enumerate(acct.positions):
            if not market.has(pos.symbol):
                problems.append((f"{at}.positions[{j}].symbol",
                                 f"unknown symbol {pos.symbol!r} (not in the market snapshot)"))
        for sym in acct.leverage:
            if not market.has(sym):
                problems.append((f"{at}.leverage.{sym}", f"unknown symbol {sym!r}"))
        for ccy in acct.collateral:
            if not market.is_priced(ccy):
                problems.append((f"{at}.collateral.{ccy}",
                                 f"no index or fx price for currency {ccy!r}"))
    if problems:
        raise InputError(problems[0][0], problems[0][1], more=problems[1:])
