"""The live book's incremental sums (issue 9, benchmark 2): a tick adds only the moved
positions' changes to each unit's and account's totals (position IM, MM, equity value), so the
totals must not drift away from recomputing from scratch however many ticks run.

- :class:`RunningSums` against exact sums (``math.fsum``) of terms changed thousands of times,
  and its drift guard (a group whose bound passes the tolerance must be re-summed).
- Thousands of ticks (with fills, deposits and what-ifs among them) on a random binance-usdm
  book: every account equals ``assess_book`` to 1e-9 at checkpoints, with the default tolerance
  and with a tolerance so small that groups are re-summed all the time.
"""

from __future__ import annotations

import importlib.util
import math
import random
from pathlib import Path

import numpy as np
import pytest

from margin_engine.domain.book import Book, MarginMode
from margin_engine.domain.market import MarketSnapshot
from margin_engine.live import LiveBook
from margin_engine.live.arrays import Grouping, RunningSums
from margin_engine.models.core.valuation import mark

from .sequences import check_states, check_what_if, my_fill, revalidated

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("live_book_data",
                                               ROOT / "bench" / "live_book_data.py")
assert _spec is not None and _spec.loader is not None
lbd = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lbd)


def test_running_sums_follow_their_terms_through_thousands_of_changes():
    rng = np.random.default_rng(5)
    n_groups, n_terms = 40, 400
    group = rng.integers(0, n_groups, n_terms)
    terms = rng.normal(0, 1e4, n_terms) * rng.choice([1.0, 1e-3, 1e3], n_terms)
    sums = RunningSums()
    sums.extend_to(n_groups)
    every = np.arange(n_groups)
    assert sums.stale(every).tolist() == every.tolist()  # new groups must be summed first
    sums.set_exact(every, np.array([math.fsum(terms[group == g]) for g in every]))
    for _ in range(3000):
        moved = rng.choice(n_terms, 25, replace=False)
        new = terms[moved] * np.exp(rng.normal(0, 0.05, moved.size))
        sums.add(Grouping(group[moved]), new - terms[moved])
        terms[moved] = new
    exact = np.array([math.fsum(terms[group == g]) for g in every])
    current = sums.is_current(every)
    assert current.sum() > n_groups // 2  # the drift guard is a bound, not an alarm bell
    got, want = sums.values(every)[current], exact[current]
    assert np.all(np.abs(got - want) <= RunningSums.TOLERANCE * np.maximum(np.abs(want), 1.0))


def test_running_sums_flag_groups_whose_drift_bound_passes_the_tolerance(monkeypatch):
    sums = RunningSums()
    sums.extend_to(3)
    sums.set_exact(np.arange(3), np.array([1e6, 5.0, 2.0]))
    monkeypatch.setattr(RunningSums, "TOLERANCE", 1e-17)
    sums.add(Grouping(np.array([0, 0])), np.array([1e6, -3.0]))  # rounding bound ~1e-10 relative
    assert sums.stale(np.arange(3)).tolist() == [0]
    sums.add(Grouping(np.array([2])), np.array([math.inf]))  # never a non-finite total as current
    assert sums.stale(np.arange(3)).tolist() == [0, 2]
    sums.set_exact(np.array([0, 2]), np.array([7.0, math.nan]))
    assert sums.stale(np.arange(3)).tolist() == [2]
    assert sums.values(np.array([0]))[0] == 7.0


def _book_and_market(seed: int) -> tuple[Book, MarketSnapshot]:
    market = MarketSnapshot.model_validate(lbd.linear_market(60).model_dump())
    book = lbd.random_book(market, 40, 6, seed=seed, mode=MarginMode.CROSS)
    rng = random.Random(seed)
    accounts = []
    for a in book.accounts:  # sizes up to the upper brackets, collateral near the requirement
        pos = tuple(p.model_copy(update={"size": p.size * rng.choice([1, 5, 40])})
                    for p in a.positions)
        coll = {"USDT": rng.choice([2e4, 2e5, 2e6])}
        if rng.random() < 0.3:
            coll["BTC"] = 1.0
        accounts.append(a.model_copy(update={"positions": pos, "collateral": coll}))
    return Book.model_validate(Book(accounts=tuple(accounts)).model_dump()), market


def _tick(rng: random.Random, market: MarketSnapshot, coins: list[str]) -> dict:
    coin = rng.choice(coins)
    f = math.exp(rng.gauss(0, 0.03))
    change: dict = {"index": {coin: market.index[coin] * f}}
    items = [{"symbol": i.symbol, "mark_price": i.mark_price * f * rng.uniform(0.999, 1.001)}
             for i in market.instruments if i.underlying == coin and rng.random() < 0.6]
    if items:
        change["instruments"] = items
    return change


def _apply(market: MarketSnapshot, change: dict) -> MarketSnapshot:
    """The market after ``change`` without validation (checkpoints validate the result)."""
    index = {**market.index, **change["index"]}
    by = {it["symbol"]: it["mark_price"] for it in change.get("instruments", [])}
    ins = tuple(i.model_copy(update={"mark_price": by[i.symbol]}) if i.symbol in by else i
                for i in market.instruments)
    # a new object, not model_copy: that would carry over the cached symbol lookup
    return MarketSnapshot.model_construct(**{**dict(market), "index": index, "instruments": ins})


@pytest.mark.parametrize("tolerance, n_ticks", [(None, 2000), (1e-17, 600)])
def test_thousands_of_ticks_equal_recomputing_from_scratch(monkeypatch, tolerance, n_ticks):
    """2,000 ticks of random index and mark moves (a few percent each, prices wandering far),
    fills, deposits and what-ifs among them; every 200 ticks every account must equal
    ``assess_book`` on the validated market and book. With a tolerance of 1e-17 the drift
    guard re-sums groups all the time: the re-summing path must give the same answers."""
    resummed = [0]
    if tolerance is not None:
        monkeypatch.setattr(RunningSums, "TOLERANCE", tolerance)
        exact = RunningSums.set_exact

        def counting(self, groups, totals):
            resummed[0] += len(groups)
            exact(self, groups, totals)

        monkeypatch.setattr(RunningSums, "set_exact", counting)
    book, market = _book_and_market(3)
    model = lbd.model_for("binance-usdm", market)
    live = LiveBook(model, book, market)
    start = resummed[0]
    coins = sorted({market.instrument(p.symbol).underlying for a in book.accounts
                    for p in a.positions})
    rng = random.Random(17)
    for step in range(1, n_ticks + 1):
        change = _tick(rng, market, coins)
        live.update_market(change)
        market = _apply(market, change)
        if step % 150 == 0:  # a fill and a deposit: units rebuilt and re-summed
            i = rng.randrange(len(book.accounts))
            acct = book.accounts[i]
            sym = rng.choice(acct.positions).symbol
            size = rng.choice([-3.0, 2.0, 15.0])
            live.apply_fill(acct.id, sym, size)
            acct = my_fill(acct, market, sym, size, mark(market.instrument(sym), market))
            live.deposit(acct.id, "USDT", -0.1 * acct.collateral["USDT"])
            acct = acct.model_copy(update={"collateral": acct.collateral | {
                "USDT": 0.9 * acct.collateral["USDT"]}})
            book = Book(accounts=(*book.accounts[:i], acct, *book.accounts[i + 1:]))
        if step % 200 == 0:
            valid = revalidated(market, {})
            check_states(live, book, valid)
            acct = book.accounts[rng.randrange(len(book.accounts))]
            sym = acct.positions[0].symbol
            check_what_if([live], model, acct, valid, [(sym, 4.0, None)])
    if tolerance is None:
        assert max(market.index[c] / lbd.SPOT[c] for c in coins) > 1.2  # prices did wander
    else:  # the guard fired far beyond the fills' own re-summing
        assert resummed[0] - start > 1000


def test_bracket_rows_kept_between_ticks_give_the_searched_rows():
    """A tick re-prices a position from its previous bracket row, searching the table only
    where the notional left that bracket: any previous rows (right, wrong, out of date) must
    give the numbers of a full search."""
    book, market = _book_and_market(4)
    live = LiveBook(lbd.model_for("binance-usdm", market), book, market)
    eng = live.engine
    rng = np.random.default_rng(2)
    n = 5000
    ins = rng.integers(0, len(market.instruments), n)
    size = rng.choice([-1.0, 1.0], n) * 10 ** rng.uniform(-2, 5, n)
    lev = rng.choice([2.0, 5.0, 20.0, 125.0], n)  # as pos_leverage gives (default applied)
    want = eng.position_margins(ins, size, lev)
    assert len(set(want[2].tolist())) > 5  # the notionals span many brackets
    for hint in (want[2], np.zeros(n, dtype=np.int64), rng.integers(0, 12, n)):
        got = eng.position_margins(ins, size, lev, hint)
        for a, b in zip(got, want, strict=True):
            assert np.array_equal(a, b, equal_nan=True)
    for k, q, v, im, mm in zip(ins[:300].tolist(), size[:300].tolist(), lev[:300].tolist(),
                               want[0][:300].tolist(), want[1][:300].tolist(), strict=True):
        assert eng.position_margin(k, q, v) == (im, mm)  # the scalar what-if path: same bits
