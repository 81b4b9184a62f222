"""Random sequences of live-book steps checked against recomputing from scratch (issue 9).

The helpers every live-engine test shares: the 1e-9 comparison, ``assess_book`` on a plain
book and snapshot, the documented fill rule written out independently of ``live.fills``, a
market update re-validated in full, random market updates and orders, and :func:`drive`, which
applies one random sequence of market updates, fills, deposits and what-ifs to one or more
LiveBooks (a fast engine's, a reference engine's) and, independently, to a plain ``Book`` and
``MarketSnapshot``, checking what the caller asks after every step.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from margin_engine.domain.book import Account, Book, Position
from margin_engine.domain.instruments import Kind
from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError
from margin_engine.live import LiveBook
from margin_engine.models.core.valuation import mark
from margin_engine.policy.assess import assess_account, assess_book

FIELDS = ("initial_margin", "maintenance_margin", "equity", "available_balance")


def close(a: float | None, b: float | None, scale: float = 1.0) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b), scale)


def check_states(live: LiveBook, book: Book, market: MarketSnapshot) -> None:
    for rep in assess_book(live.model, book, market, liquidation_prices=False):
        st = live.state(rep.id)
        scale = max(abs(rep.initial_margin), abs(rep.equity))
        for f in FIELDS:
            assert close(getattr(st, f), getattr(rep, f), scale), (rep.id, f)
        assert close(st.margin_ratio, rep.margin_ratio), rep.id
        assert st.status is rep.status and st.currency == rep.currency, rep.id


def my_fill(account: Account, market: MarketSnapshot, symbol: str, size: float,
            price: float) -> Account:
    """The documented fill rule, written out independently of live.fills."""
    ins = market.instrument(symbol)
    m = mark(ins, market)
    pos = list(account.positions)
    j = next((k for k, p in enumerate(pos) if p.symbol == symbol), None)
    old = pos[j] if j is not None else Position(symbol=symbol, size=0.0)
    q0, e0 = old.size, old.entry_price
    q1 = q0 + size
    cash = 0.0
    if ins.kind in (Kind.OPTION, Kind.SPOT):
        cash = -size * ins.contract_size * price
        if q0 == 0 or q0 * size > 0:
            e1 = price if (e0 is None or q0 == 0) else (abs(q0) * e0 + abs(size) * price) / abs(q1)
        else:
            e1 = price if q0 * q1 < 0 else e0
    else:
        e = m if e0 is None else e0
        if q0 == 0 or q0 * size > 0:
            e1 = price if q0 == 0 else (abs(q0) * e + abs(size) * price) / abs(q1)
        else:
            shut = max(-abs(q0), min(abs(q0), -size * math.copysign(1, q0))) * math.copysign(1, q0)
            cash = shut * ins.contract_size * ((1 / e - 1 / price) if ins.inverse
                                               else (price - e))
            e1 = price if q0 * q1 < 0 else e
    new = old.model_copy(update={"size": q1, "entry_price": e1})
    if j is None:
        pos.append(new)
    else:
        pos[j] = new
    coll = dict(account.collateral)
    if cash:
        coll[ins.settle] = coll.get(ins.settle, 0.0) + cash
    return account.model_copy(update={"positions": tuple(pos), "collateral": coll})


def revalidated(market: MarketSnapshot, change: dict) -> MarketSnapshot:
    doc = market.model_dump()
    doc["index"].update(change.get("index", {}))
    by = {i["symbol"]: i for i in doc["instruments"]}
    for item in change.get("instruments", []):
        by[item["symbol"]].update({k: v for k, v in item.items() if k != "symbol"})
    if "timestamp" in change:
        doc["timestamp"] = change["timestamp"]
    return MarketSnapshot.model_validate(doc)


def random_update(rng: random.Random, market: MarketSnapshot) -> dict:
    und = rng.choice(sorted(market.index))
    f = math.exp(rng.gauss(0, 0.08))
    change: dict = {"index": {und: market.index[und] * f}}
    ins = [i for i in market.instruments if i.underlying == und]
    items = []
    for i in rng.sample(ins, min(len(ins), 4)):
        item: dict = {"symbol": i.symbol}
        if i.mark_price is not None and rng.random() < 0.7:
            item["mark_price"] = i.mark_price * (f if not i.is_option else rng.uniform(0.8, 1.25))
        if i.is_option and rng.random() < 0.5:
            item["mark_iv"] = market.implied_vol(i) * rng.uniform(0.8, 1.3)
        items.append(item)
    if items:
        change["instruments"] = items
    if rng.random() < 0.15:
        change["timestamp"] = market.timestamp + timedelta(hours=rng.randint(1, 30))
    return change


def orders_for(rng: random.Random, model, account: Account, market: MarketSnapshot):
    held = sorted({p.symbol for p in account.positions})
    ok = [i.symbol for i in market.instruments if model.check_instrument(i) is None]
    out = []
    for _ in range(rng.randint(1, 2)):
        sym = rng.choice(held) if held and rng.random() < 0.7 else rng.choice(ok)
        size = rng.choice([-1, 1]) * rng.choice([0.5, 1, 2, 5])
        ins = market.instrument(sym)
        price = mark(ins, market) * rng.uniform(0.97, 1.03) if rng.random() < 0.5 else None
        out.append((sym, size, price))
    return out


def filled(account: Account, market: MarketSnapshot, orders) -> Account:
    """``account`` with ``orders`` ((symbol, size, price or None for the mark)) filled."""
    for sym, size, price in orders:
        px = price if price is not None else mark(market.instrument(sym), market)
        account = my_fill(account, market, sym, size, px)
    return account


def replaced(book: Book, i: int, account: Account) -> Book:
    accounts = list(book.accounts)
    accounts[i] = account
    return Book(accounts=tuple(accounts))


def check_what_if(lives: Sequence[LiveBook], model, acct: Account, market: MarketSnapshot,
                  orders: list, want=None) -> None:
    """Each book's what-if equals ``assess_account`` on the account with the orders filled
    (``want``, computed here unless given), and the later books' equal the first's."""
    if want is None:
        want = assess_account(model, filled(acct, market, orders), market,
                              liquidation_prices=False)
    scale = max(abs(want.initial_margin), abs(want.equity))
    first = None
    for live in lives:
        got = live.what_if(acct.id, orders)
        for f in FIELDS:
            assert close(getattr(got.after, f), getattr(want, f), scale), (acct.id, f)
            if first is not None:
                assert close(getattr(got.after, f), getattr(first.after, f), scale)
        assert got.after.status is want.status
        assert got.initial_margin_change == pytest.approx(
            want.initial_margin - got.before.initial_margin, rel=1e-9, abs=1e-9)
        first = first or got


@dataclass
class Run:
    """Where a sequence ended: the plain book and market, and how many what-ifs it checked."""

    book: Book
    market: MarketSnapshot
    what_ifs: int = 0


Order = tuple[str, float, float | None]
Orders = Callable[[random.Random, Any, Account, MarketSnapshot], list[Order]]
Deposit = Callable[[random.Random, Account], tuple[str, float]]
Check = Callable[[Book, MarketSnapshot, int], None]


def drive(rng: random.Random, model, lives: Sequence[LiveBook], book: Book,
          market: MarketSnapshot, steps: int, *, update: float, fill: float, deposit: float,
          draw_deposit: Deposit, check: Check, skip_refused: bool = False,
          draw_fill: Orders = orders_for, draw_what_if: Orders = orders_for) -> Run:
    """Apply ``steps`` random steps to every book of ``lives`` and to ``book`` and ``market``.

    Each step picks an account and, by one uniform draw ``r``: ``r < update`` a market update,
    ``r < fill`` a fill (of ``draw_fill``'s first order), ``r < deposit`` a deposit drawn by
    ``draw_deposit`` (currency, amount), else a what-if of ``draw_what_if``'s orders checked by
    :func:`check_what_if`. With ``skip_refused`` a fill or what-if that ``assess_account``
    refuses (``InputError``) is skipped, step check included. ``check(book, market, step)``
    runs after every other step.
    """
    run = Run(book, market)
    for step in range(steps):
        r = rng.random()
        i = rng.randrange(len(run.book.accounts))
        acct = run.book.accounts[i]
        if r < update:
            change = random_update(rng, run.market)
            for live in lives:
                live.update_market(change)
            run.market = revalidated(run.market, change)
        elif r < fill:
            order = draw_fill(rng, model, acct, run.market)[0]
            after = filled(acct, run.market, [order])
            if skip_refused and assessed(model, after, run.market) is None:
                continue  # e.g. a second dYdX market beside an isolated one
            for live in lives:
                live.apply_fill(acct.id, *order)
            run.book = replaced(run.book, i, after)
        elif r < deposit:
            ccy, amount = draw_deposit(rng, acct)
            for live in lives:
                live.deposit(acct.id, ccy, amount)
            coll = dict(acct.collateral)
            coll[ccy] = coll.get(ccy, 0.0) + amount
            run.book = replaced(run.book, i, acct.model_copy(update={"collateral": coll}))
        else:
            orders = draw_what_if(rng, model, acct, run.market)
            after = filled(acct, run.market, orders)
            want = (assessed(model, after, run.market) if skip_refused
                    else assess_account(model, after, run.market, liquidation_prices=False))
            if want is None:
                continue
            run.what_ifs += 1
            check_what_if(lives, model, acct, run.market, orders, want)
        check(run.book, run.market, step)
    return run


def assessed(model, account: Account, market: MarketSnapshot):
    """``assess_account``'s report, or None where the model refuses the account."""
    try:
        return assess_account(model, account, market, liquidation_prices=False)
    except InputError:
        return None
