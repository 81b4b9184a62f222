"""A population of perpetual-futures accounts as arrays, and its book.

An account holds USD-stable collateral and signed positions (base units) in linear perpetuals,
one column per market. :func:`generate_population` draws accounts from size and leverage
distributions (lognormal; :class:`PopulationFit` says which parameters and where they come
from); :func:`to_book` gives the ``Book`` the live book margins; :func:`isolate` turns every
position into its own account (isolated margin) with a share of the collateral.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from margin_engine.domain.book import Account, Book, MarginMode, Position
from margin_engine.domain.instruments import Kind
from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError


@dataclass(frozen=True)
class Population:
    """Accounts as arrays.

    Attributes
    ----------
    ids : tuple of str
    symbols : tuple of str
        One linear perpetual per column.
    currency : str
        The collateral currency (USD-stable, valued at 1 USD).
    collateral : ndarray, shape (n,)
        Collateral (USD).
    sizes : ndarray, shape (n, markets)
        Signed position sizes (base units; long > 0).
    entries : ndarray, shape (n, markets)
        Entry prices (USD); ignored where the size is 0.
    isolated : bool
        Whether each account is one isolated position.
    """

    ids: tuple[str, ...]
    symbols: tuple[str, ...]
    currency: str
    collateral: np.ndarray
    sizes: np.ndarray
    entries: np.ndarray
    isolated: bool = False

    @property
    def n(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class PopulationFit:
    """Lognormal distributions of account size and leverage.

    ``notional`` is the position notional (USD): ``exp(N(mu, sigma))`` clipped to
    ``[notional_min, notional_max]``; ``leverage`` is notional ÷ collateral:
    ``exp(N(mu, sigma))`` clipped to ``[1, leverage_max]``; ``long_share`` of accounts are long.
    ``source`` says where the numbers come from.
    """

    notional_mu: float
    notional_sigma: float
    leverage_mu: float
    leverage_sigma: float
    long_share: float = 0.5
    notional_min: float = 10.0
    notional_max: float = 5e7
    leverage_max: float = 50.0
    source: str = "UNCONFIRMED: illustrative"


# Placeholder until fitted (see population_fit.fit_hyperliquid): median notional 2,000 USD,
# median leverage 5.
DEFAULT_FIT = PopulationFit(math.log(2_000.0), 1.6, math.log(5.0), 0.7)


def perpetual_symbols(market: MarketSnapshot) -> list[str]:
    """The market's linear perpetuals, in market order."""
    return [i.symbol for i in market.instruments
            if i.kind is Kind.PERPETUAL and not i.inverse and i.contract_size == 1.0]


def generate_population(n: int, market: MarketSnapshot, *, seed: int = 0,
                        fit: PopulationFit = DEFAULT_FIT, symbols: tuple[str, ...] | None = None,
                        entry_spread: float = 0.02, second_share: float = 0.0) -> Population:
    """``n`` single-position accounts drawn from ``fit``, spread evenly over ``symbols``
    (default: the market's linear perpetuals settling in the first one's currency); entries
    drawn within ``±entry_spread`` of the mark (some accounts start in profit, some in loss).
    A share ``second_share`` of the accounts also holds a second position, on another symbol,
    of the same size distribution and a random side (collateral then covers both notionals at
    the account's leverage): what makes isolated and cross margin differ.

    Raises
    ------
    InputError
        When ``n < 1`` or the market has no linear perpetual.
    """
    if n < 1:
        raise InputError("--accounts", f"must be >= 1, got {n}")
    if symbols:
        syms = tuple(symbols)
    else:  # the market's linear perpetuals in the first one's settlement currency
        every = perpetual_symbols(market)
        first = market.instrument(every[0]).settle if every else ""
        syms = tuple(s for s in every if market.instrument(s).settle == first)
    if not syms:
        raise InputError("--market", "has no linear perpetual (contract size 1) to hold")
    rng = np.random.default_rng(seed)
    notional = np.clip(np.exp(rng.normal(fit.notional_mu, fit.notional_sigma, n)),
                       fit.notional_min, fit.notional_max)
    lev = np.clip(np.exp(rng.normal(fit.leverage_mu, fit.leverage_sigma, n)), 1.0,
                  fit.leverage_max)
    side = np.where(rng.random(n) < fit.long_share, 1.0, -1.0)
    col = rng.integers(0, len(syms), n)
    marks = np.array([_mark(market, s) for s in syms])
    entry = marks[col] * (1.0 + rng.uniform(-entry_spread, entry_spread, n))
    sizes = np.zeros((n, len(syms)))
    entries = np.zeros((n, len(syms)))
    rows = np.arange(n)
    sizes[rows, col] = side * notional / marks[col]
    entries[rows, col] = entry
    collateral = notional / lev
    if second_share > 0 and len(syms) > 1:
        two = np.flatnonzero(rng.random(n) < second_share)
        col2 = (col[two] + rng.integers(1, len(syms), two.size)) % len(syms)
        ntl2 = np.clip(np.exp(rng.normal(fit.notional_mu, fit.notional_sigma, two.size)),
                       fit.notional_min, fit.notional_max)
        side2 = np.where(rng.random(two.size) < fit.long_share, 1.0, -1.0)
        sizes[two, col2] = side2 * ntl2 / marks[col2]
        entries[two, col2] = marks[col2] * (1.0 + rng.uniform(-entry_spread, entry_spread,
                                                                two.size))
        collateral[two] += ntl2 / lev[two]
    ids = tuple(f"p{i}" for i in range(n))
    ccy = _settle(market, syms)
    return Population(ids, syms, ccy, collateral, sizes, entries)


def _mark(market: MarketSnapshot, symbol: str) -> float:
    mark = market.instrument(symbol).mark_price
    assert mark is not None  # perpetuals carry a mark (domain validation)
    return float(mark)


def _settle(market: MarketSnapshot, symbols: tuple[str, ...]) -> str:
    settles = {market.instrument(s).settle for s in symbols}
    if len(settles) != 1:
        raise InputError("--market", f"perpetuals settle in several currencies {sorted(settles)}")
    return settles.pop()


def isolate(pop: Population) -> Population:
    """Every position its own account (isolated margin): collateral shared in proportion to
    notional at entry; ids ``<id>/<symbol>``."""
    rows, cols = np.nonzero(pop.sizes)
    notional = np.abs(pop.sizes * pop.entries)
    total = notional.sum(axis=1)
    share = np.divide(notional[rows, cols], total[rows], out=np.ones(rows.size),
                      where=total[rows] > 0)
    sizes = np.zeros((rows.size, len(pop.symbols)))
    entries = np.zeros_like(sizes)
    k = np.arange(rows.size)
    sizes[k, cols] = pop.sizes[rows, cols]
    entries[k, cols] = pop.entries[rows, cols]
    ids = tuple(f"{pop.ids[r]}/{pop.symbols[c]}" for r, c in zip(rows.tolist(), cols.tolist(),
                                                                 strict=True))
    return Population(ids, pop.symbols, pop.currency, pop.collateral[rows] * share, sizes,
                      entries, isolated=True)


def to_book(pop: Population) -> Book:
    """The population as a ``Book`` (cross margin; built without re-validation: every field
    is well-formed by construction)."""
    accounts = []
    sizes, entries = pop.sizes.tolist(), pop.entries.tolist()
    coll = pop.collateral.tolist()
    for i, aid in enumerate(pop.ids):
        pos = tuple(Position.model_construct(symbol=s, size=q, entry_price=e,
                                             isolated_margin=None)
                    for s, q, e in zip(pop.symbols, sizes[i], entries[i], strict=True)
                    if q != 0.0)
        accounts.append(Account.model_construct(
            id=aid, margin_mode=MarginMode.CROSS, collateral={pop.currency: coll[i]},
            positions=pos, leverage={}, credit_rating=None, haircuts={}))
    return Book.model_construct(accounts=tuple(accounts))


def from_book(book: Book, market: MarketSnapshot) -> Population:
    """A book of linear-perpetual accounts as a population (entry price: the mark when absent).

    Raises
    ------
    InputError
        ``accounts[i]...``: a position that is not a linear perpetual of contract size 1, or
        collateral in more than one currency, or not in the perpetuals' settlement currency.
    """
    syms_all = perpetual_symbols(market)
    used: list[str] = []
    for i, a in enumerate(book.accounts):
        for j, p in enumerate(a.positions):
            if p.symbol not in syms_all:
                raise InputError(f"accounts[{i}].positions[{j}].symbol",
                                 f"{p.symbol!r} is not a linear perpetual of contract size 1 "
                                 "(the simulator holds perpetuals only)")
            if p.symbol not in used:
                used.append(p.symbol)
    syms = tuple(s for s in syms_all if s in used) or tuple(syms_all[:1])
    if not syms:
        raise InputError("--market", "has no linear perpetual (contract size 1)")
    ccy = _settle(market, syms)
    n = len(book.accounts)
    sizes = np.zeros((n, len(syms)))
    entries = np.zeros((n, len(syms)))
    coll = np.zeros(n)
    for i, a in enumerate(book.accounts):
        extra = sorted(set(a.collateral) - {ccy})
        if extra:
            raise InputError(f"accounts[{i}].collateral.{extra[0]}",
                             f"the simulator takes collateral in {ccy} only")
        coll[i] = float(a.collateral.get(ccy, 0.0))
        for p in a.positions:
            j = syms.index(p.symbol)
            if sizes[i, j] != 0.0:
                raise InputError(f"accounts[{i}].positions", f"{p.symbol} held twice")
            sizes[i, j] = p.size
            entries[i, j] = p.entry_price if p.entry_price is not None else _mark(
                market, p.symbol)
    return Population(tuple(a.id for a in book.accounts), syms, ccy, coll, sizes, entries)
