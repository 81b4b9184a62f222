"""Accounts, positions and collateral.

``size`` is signed contracts (long > 0). ``entry_price`` is in quote currency per underlying unit
for futures and perpetuals, and in the settlement currency for options (the premium per unit).
``collateral`` maps currency → amount (negative = borrowed). ``isolated_margin`` is a position's own
collateral in its settlement currency (isolated mode only).
"""

from __future__ import annotations

import math
from enum import StrEnum

from pydantic import BaseModel, Field, model_validator

from margin_engine.domain.instruments import Instrument, Kind
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


def net_positions(account: Account, market: MarketSnapshot) -> Account:
    """The account with every symbol held once: duplicates netted into one position.

    Venues hold one net position per symbol (Binance one-way mode, Deribit, dYdX, Hyperliquid),
    so every model margins the net: sizes are summed, ``isolated_margin`` is summed, and the
    entry price is the one that keeps the unrealised P&L of futures and perpetuals unchanged —
    the size-weighted mean for linear contracts, the size-weighted harmonic mean for inverse ones
    (what Binance COIN-M and Deribit show as the average entry), over the side that remains.
    When long and short lots offset, the part that closes realises its P&L into the account's
    collateral in the settlement currency, as a venue does on a reducing fill. A missing entry
    price counts as the mark. Options and spot count at market value, so only their premium is
    averaged (``None`` if any lot has none). The netted position takes the place of the first
    lot. Accounts without duplicates are returned as they are.
    """
    symbols = [p.symbol for p in account.positions]
    if len(set(symbols)) == len(symbols):
        return account
    groups: dict[str, list[Position]] = {}
    for pos in account.positions:
        groups.setdefault(pos.symbol, []).append(pos)
    collateral = dict(account.collateral)
    merged: list[Position] = []
    for sym, lots in groups.items():
        if len(lots) == 1:
            merged.append(lots[0])
            continue
        pos, realised = _net_lots(market.instrument(sym), lots)
        if realised:
            ccy = market.instrument(sym).settle
            collateral[ccy] = collateral.get(ccy, 0.0) + realised
        merged.append(pos)
    return account.model_copy(update={"positions": tuple(merged), "collateral": collateral})


def _net_lots(ins: Instrument, lots: list[Position]) -> tuple[Position, float]:
    """One position for several lots of ``ins`` and the P&L realised by offsetting lots."""
    size = math.fsum(p.size for p in lots)
    given = [p.isolated_margin for p in lots if p.isolated_margin is not None]
    iso = math.fsum(given) if given else None
    side = [p for p in lots if p.size * size > 0]  # the lots on the side that remains
    if ins.kind in (Kind.OPTION, Kind.SPOT):
        entry = None
        if side and all(p.entry_price is not None for p in side):
            entry = math.fsum(abs(p.size) * p.entry_price for p in side  # type: ignore[operator]
                              ) / math.fsum(abs(p.size) for p in side)
        return Position(symbol=ins.symbol, size=size, entry_price=entry,
                        isolated_margin=iso), 0.0
    if all(p.entry_price is None for p in lots):
        return Position(symbol=ins.symbol, size=size, isolated_margin=iso), 0.0
    assert ins.mark_price is not None  # futures and perpetuals carry a mark (market check)
    px = [p.entry_price if p.entry_price is not None else ins.mark_price for p in lots]
    cs = ins.contract_size
    if ins.inverse:  # P&L = size·cs·(1/entry − 1/P): keep Σ size/entry
        total = math.fsum(p.size / e for p, e in zip(lots, px, strict=True))
        keep = [(p.size, e) for p, e in zip(lots, px, strict=True) if p.size * size > 0]
        entry = (math.fsum(s for s, _ in keep) / math.fsum(s / e for s, e in keep)
                 if keep else None)
        realised = cs * (total - (size / entry if entry else 0.0))
    else:  # P&L = size·cs·(P − entry): keep Σ size·entry
        total = math.fsum(p.size * e for p, e in zip(lots, px, strict=True))
        keep = [(p.size, e) for p, e in zip(lots, px, strict=True) if p.size * size > 0]
        entry = (math.fsum(s * e for s, e in keep) / math.fsum(s for s, _ in keep)
                 if keep else None)
        realised = cs * ((size * entry if entry else 0.0) - total)
    if len(keep) == len(lots):
        realised = 0.0  # nothing closes (exactly, not a rounding residue)
    return Position(symbol=ins.symbol, size=size, entry_price=entry,
                    isolated_margin=iso), realised


def net_book(book: Book, market: MarketSnapshot) -> Book:
    """The book with duplicates netted in every account (see :func:`net_positions`)."""
    accounts = tuple(net_positions(a, market) for a in book.accounts)
    if all(a is b for a, b in zip(accounts, book.accounts, strict=True)):
        return book
    return book.model_copy(update={"accounts": accounts})
