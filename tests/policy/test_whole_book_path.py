"""The whole-book path of ``assess_book`` (``model.prepare`` then every unit) equals the per-unit
reference (``assess_account`` on a fresh model, nothing prepared) to 1e-9, for every model, on
seeded random books drawn from the demo market's instruments."""

from __future__ import annotations

import random

import pytest

from margin_engine.demo.synthetic import generate_book, generate_market
from margin_engine.domain.book import Account, Book, MarginMode, Position
from margin_engine.domain.market import MarketSnapshot
from margin_engine.io.loaders import parse_model
from margin_engine.models.core.registry import model_names
from margin_engine.policy.assess import assess_account, assess_book
from model_factory import build as build_model
from model_factory import margined

MARKET_DOC = generate_market(seed=5)
MARKET = parse_model(MarketSnapshot, MARKET_DOC, "market")
DEMO = parse_model(Book, generate_book(MARKET_DOC, seed=5), "book")


def build(name: str):
    return build_model(name, n_paths=500)


def random_book(model, seed: int, n: int = 12) -> Book:
    """Accounts of 1-6 random positions in instruments the model margins, random modes."""
    rng = random.Random(seed)
    ok = [i for i in MARKET.instruments if model.check_instrument(i) is None]
    accounts = list(DEMO.accounts)
    for k in range(n):
        pos = []
        for ins in rng.sample(ok, min(len(ok), rng.randint(1, 6))):
            size = rng.choice([-1, 1]) * rng.choice([0.1, 1, 3, 10])
            pos.append(Position(symbol=ins.symbol, size=size,
                                entry_price=(ins.mark_price or None) if not ins.is_option
                                and rng.random() < 0.7 else None))
        mode = rng.choice(sorted(model.modes, key=str))
        coll = {"USDT": rng.uniform(1e3, 1e6), "BTC": rng.uniform(0, 3)}
        accounts.append(Account(id=f"r{k}", margin_mode=mode, collateral=coll,
                                positions=tuple(pos)))
    return margined(model, accounts, MARKET)


@pytest.mark.parametrize("name", model_names())
def test_whole_book_path_equals_per_unit_reference(name):
    model = build(name)
    book = random_book(model, seed=hash(name) % 1000)
    assert len(book.accounts) >= 3
    fast = assess_book(model, book, MARKET, liquidation_prices=False)
    ref_model = build(name)
    for got, account in zip(fast, book.accounts, strict=True):
        want = assess_account(ref_model, account, MARKET, liquidation_prices=False)
        for f in ("initial_margin", "maintenance_margin", "equity", "available_balance"):
            a, b = getattr(got, f), getattr(want, f)
            assert abs(a - b) <= 1e-9 * max(1.0, abs(b)), (account.id, f)
        assert got.status is want.status
        for pu, pw in zip(got.units, want.units, strict=True):
            for c, v in pw.margin.components.items():
                assert abs(pu.margin.components[c] - v) <= 1e-9 * max(1.0, abs(v)), c
        for pg, pw2 in zip(got.positions, want.positions, strict=True):
            assert abs(pg.margin.contribution - pw2.margin.contribution) <= 1e-9 * max(
                1.0, abs(pw2.margin.contribution))
    assert MarginMode.PORTFOLIO in model.modes or MarginMode.CROSS in model.modes


def test_progress_counts_every_account_once_in_order():
    """``compute``'s progress bar is fed ``(done, total)`` after each account's report."""
    model = build("binance-usdm")
    book = random_book(model, seed=3)
    calls: list[tuple[int, int]] = []
    reports = assess_book(model, book, MARKET, liquidation_prices=False,
                          progress=lambda done, total: calls.append((done, total)))
    n = len(book.accounts)
    assert len(reports) == n
    assert calls == [(k, n) for k in range(1, n + 1)]
