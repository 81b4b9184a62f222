"""Accounts for the generic liquidation mechanics: exact sizes and prices, integer-cent cash.

An account holds a quote ``balance`` in integer cents (wallet balance: deposits plus realised
P&L, fees and transfers) and positions of exact signed size (``fractions.Fraction`` base units)
with their entry price. At marks ``m`` its equity is ``balance + Σ q·(m − entry)``, where
``balance`` already nets the entry cost as a dYdX USDC balance does. Every cash movement in
:mod:`.mechanics` is an integer number of cents taken from one party and given to another, so
collateral + P&L + fees + fund are conserved to the cent by construction (and tested).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from fractions import Fraction

CENTS = 100


def to_cents_ceil(x: Fraction) -> int:
    """An exact USD amount in cents, rounded toward +∞."""
    v = x * CENTS
    return -((-v.numerator) // v.denominator)


def to_cents_floor(x: Fraction) -> int:
    """An exact USD amount in cents, rounded toward −∞."""
    v = x * CENTS
    return v.numerator // v.denominator


@dataclass(frozen=True)
class Position:
    """A perpetual position: signed size in base units and its average entry price (USD)."""

    size: Fraction
    entry_price: Fraction


@dataclass(frozen=True)
class MarginAccount:
    """One cross-margined account (or one isolated position as its own account).

    ``balance_cents`` is the quote cash with every position's entry cost already paid
    (``balance = collateral − Σ q·entry``), so equity at marks ``m`` is
    ``balance + Σ q·m``.
    """

    id: str
    balance_cents: int
    positions: Mapping[str, Position] = field(default_factory=dict)

    def position(self, market: str) -> Fraction:
        """Signed size in ``market`` (0 when none)."""
        p = self.positions.get(market)
        return p.size if p is not None else Fraction(0)

    def trade(self, market: str, delta: Fraction, cash_cents: int) -> MarginAccount:
        """After buying (``delta > 0``) or selling ``|delta|`` for ``cash_cents`` received
        (negative: paid); the entry price of an increased position is size-weighted, a reduced
        one keeps its entry, a closed one is removed."""
        pos = dict(self.positions)
        old = pos.get(market, Position(Fraction(0), Fraction(0)))
        new_size = old.size + delta
        price = Fraction(-cash_cents, CENTS) / delta if delta != 0 else Fraction(0)
        if new_size == 0:
            pos.pop(market, None)
        elif old.size == 0 or (old.size > 0) != (new_size > 0):
            pos[market] = Position(new_size, price)
        elif abs(new_size) > abs(old.size):
            entry = (old.size * old.entry_price + delta * price) / new_size
            pos[market] = Position(new_size, entry)
        else:
            pos[market] = Position(new_size, old.entry_price)
        return replace(self, balance_cents=self.balance_cents + cash_cents, positions=pos)

    def transfer(self, cents: int) -> MarginAccount:
        """After receiving ``cents`` (negative: paying)."""
        return replace(self, balance_cents=self.balance_cents + cents)


def equity(account: MarginAccount, marks: Mapping[str, Fraction]) -> Fraction:
    """Exact equity in USD: ``balance + Σ q·m``."""
    return Fraction(account.balance_cents, CENTS) + sum(
        (p.size * marks[k] for k, p in account.positions.items()), Fraction(0))


def unrealised_pnl(account: MarginAccount, marks: Mapping[str, Fraction]) -> Fraction:
    """``Σ q·(m − entry)`` in USD."""
    return sum((p.size * (marks[k] - p.entry_price) for k, p in account.positions.items()),
               Fraction(0))


def maintenance_margin(account: MarginAccount, marks: Mapping[str, Fraction],
                       mmr: Mapping[str, Fraction]) -> Fraction:
    """``Σ |q|·m·mmr`` in USD (a flat maintenance rate per market)."""
    return sum((abs(p.size) * marks[k] * mmr[k] for k, p in account.positions.items()),
               Fraction(0))


def is_liquidatable(account: MarginAccount, marks: Mapping[str, Fraction],
                    mmr: Mapping[str, Fraction]) -> bool:
    """Equity below maintenance with a position open (dYdX: ``MMR > 0 and NC < MMR``)."""
    mm = maintenance_margin(account, marks, mmr)
    return mm > 0 and equity(account, marks) < mm
