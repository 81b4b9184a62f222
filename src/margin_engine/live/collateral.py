"""Collateral values of many units and accounts at once (the live book's tick path).

``health.collateral_value`` values one holding at a time in Python; a BTC tick on a book whose
accounts post BTC re-values the collateral of every such unit and account. A
:class:`CollateralTable` flattens their holdings once (kept until an account changes) and values
them over arrays with the same operations in the same order: each holding converted at index/FX
prices (``amount × USD price of its currency ÷ USD price of the owner's``; unconverted when the
currencies are the same), positive balances in another currency haircut (``× (1 − haircut)``),
summed left to right in the holdings' order — the same bits as ``health.collateral_value``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from margin_engine.domain.book import Account
from margin_engine.domain.market import MarketSnapshot
from margin_engine.policy import health
from margin_engine.policy.health import HealthPolicy


@dataclass(frozen=True)
class Holdings:
    """One owner's collateral: the holdings, the currency its value is wanted in, and whose
    haircuts apply."""

    collateral: Mapping[str, float]
    currency: str
    account: Account


@dataclass(frozen=True)
class CollateralTable:
    """Holdings of several owners, one row per holding (each owner's rows in its dict order).

    Attributes
    ----------
    names : list of str
        The currencies, by code.
    owner, code : ndarray of int
        Each row's owner (index into the owners given) and currency code.
    amount, factor : ndarray of float
        Each row's amount (in its currency) and haircut factor (``1 − haircut`` for a positive
        balance in another currency than the owner's, else exactly 1).
    target : ndarray of int
        Each owner's currency code.
    """

    names: list[str]
    owner: NDArray[np.int64]
    code: NDArray[np.int64]
    amount: NDArray[np.float64]
    factor: NDArray[np.float64]
    target: NDArray[np.int64]
    owners: Sequence[Holdings]

    @classmethod
    def build(cls, owners: Sequence[Holdings], policy: HealthPolicy) -> CollateralTable:
        names: list[str] = []
        codes: dict[str, int] = {}

        def code_of(c: str) -> int:
            k = codes.get(c)
            if k is None:
                k = codes[c] = len(names)
                names.append(c)
            return k

        owner: list[int] = []
        code: list[int] = []
        amount: list[float] = []
        factor: list[float] = []
        target = [code_of(h.currency) for h in owners]
        for k, h in enumerate(owners):
            for ccy, a in h.collateral.items():
                owner.append(k)
                code.append(code_of(ccy))
                amount.append(a)
                factor.append(1.0 - policy.haircut(h.account, ccy)
                              if ccy != h.currency and a > 0 else 1.0)
        return cls(names, np.array(owner, dtype=np.int64), np.array(code, dtype=np.int64),
                   np.array(amount, dtype=np.float64), np.array(factor, dtype=np.float64),
                   np.array(target, dtype=np.int64), owners)

    def values(self, market: MarketSnapshot, policy: HealthPolicy) -> NDArray[np.float64]:
        """Each owner's collateral value in its currency (``health.collateral_value``)."""
        priced = [market.is_priced(c) for c in self.names]
        price = np.array([market.usd_price(c) if ok else np.nan
                          for c, ok in zip(self.names, priced, strict=True)])
        to = self.target[self.owner]
        same = self.code == to
        if not all(priced) and not np.isfinite(price[np.concatenate(
                [self.code[~same], to[~same]])]).all():
            # a holding the market cannot price: the reference says which, as it always has
            return np.array([health.collateral_value(h.collateral, h.currency, h.account,
                                                     market, policy) for h in self.owners])
        with np.errstate(invalid="ignore"):  # NaN only on the unused side of the where
            value = np.where(same, self.amount, self.amount * price[self.code] / price[to])
        return np.bincount(self.owner, weights=value * self.factor,
                           minlength=self.target.size).astype(np.float64, copy=False)
