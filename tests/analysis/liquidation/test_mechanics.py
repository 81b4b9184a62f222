"""Generic liquidation mechanics: worked examples (derived by hand, in comments) and hypothesis
invariants — cash conserved to the cent, no account left below zero equity without the fund or
ADL covering it, the fund never negative, fees capped."""

from __future__ import annotations

from fractions import Fraction as F  # noqa: N817

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from margin_engine.analysis.liquidation.accounts import (
    MarginAccount,
    Position,
    equity,
    is_liquidatable,
    maintenance_margin,
)
from margin_engine.analysis.liquidation.book import Level, SqrtImpact, replenish, walk_book
from margin_engine.analysis.liquidation.mechanics import (
    LiquidationOrder,
    adl_ranking,
    adl_score_binance,
    adl_score_hyperliquid,
    bankruptcy_value_cents,
    ledger_total_cents,
    liquidate,
    plan_liquidation,
)

BTC = "BTC"
MMR = {BTC: F(1, 200)}  # 0.5 %


def long_account(balance_usd: int, size: F = F(1), entry: F = F(50_000), aid: str = "a"
                 ) -> MarginAccount:
    """A long of ``size`` BTC bought at ``entry`` with ``balance_usd`` of collateral."""
    return MarginAccount(aid, (balance_usd - int(size * entry)) * 100,
                         {BTC: Position(size, entry)})


def bids(mid: F, n: int = 5, step: F = F(10), size: F = F(1, 2)) -> tuple[Level, ...]:
    return tuple(Level(mid - step * (i + 1), size) for i in range(n))


def test_walk_book_worked_example() -> None:
    # 1.5 BTC sold into bids 49,990 / 49,980 / 49,970 (0.5 each): value 74,970, worst 49,970.
    ex = walk_book(bids(F(50_000)), F(3, 2), True, SqrtImpact(0.0))
    assert ex.value == F(74_970) and ex.worst_price == 49_970 and ex.beyond_depth == 0
    assert ex.remaining_book == bids(F(50_000))[3:]


def test_walk_book_beyond_depth_sqrt_impact() -> None:
    # 3.5 BTC on 2.5 BTC of depth (value 124,925) + 1 BTC beyond at Y = 1 %: the residual's average
    # = 49,950·(1 − ⅔·1 %) = 49,617; worst = 49,950·(1 − 1 %) = 49,450.5.
    ex = walk_book(bids(F(50_000)), F(7, 2), True, SqrtImpact(0.01))
    assert ex.beyond_depth == 1
    assert ex.value == F(124_925) + F(49_950) * (1 - F(2, 3) * F(1, 100))
    assert ex.worst_price == F(49_950) * F(99, 100)


def test_replenish_half_life() -> None:
    full = (Level(F(100), F(2)),)
    half = replenish((), full, dt=10.0, half_life=10.0)
    assert half == (Level(F(100), F(1)),)
    assert replenish(full, full, 5.0, 10.0) == full


def test_plan_minimal_restores_maintenance() -> None:
    # 1 BTC long at 50,000 with 245 USD equity; MM = 250. Closing x at mark (no cost) lowers MM
    # by 250·x: x = (250 − 245)/250 = 0.02 BTC.
    acct = long_account(245)
    order = plan_liquidation(acct, {BTC: F(50_000)}, MMR)
    assert order == LiquidationOrder(BTC, F(-1, 50))
    assert plan_liquidation(acct, {BTC: F(50_000)}, MMR, rule="dydx") == LiquidationOrder(
        BTC, F(-1))
    assert plan_liquidation(long_account(300), {BTC: F(50_000)}, MMR) is None


def test_plan_hyperliquid_partial_above_100k() -> None:
    acct = long_account(4_000, size=F(4))  # 4 BTC bought at 50,000 with 4,000 USD
    marks = {BTC: F(49_000)}  # equity 0 < MM 980, notional 196,000 > 100,000 → 20 % of 4 BTC
    assert plan_liquidation(acct, marks, MMR, rule="hyperliquid") == LiquidationOrder(
        BTC, F(-4, 5))


def test_bankruptcy_value_whole_position() -> None:
    # Equity 245 at mark 50,000: closing the whole long at bankruptcy receives 49,755.
    assert bankruptcy_value_cents(long_account(245), {BTC: F(50_000)}, MMR,
                                  LiquidationOrder(BTC, F(-1))) == 4_975_500


def test_fee_capped_and_fund_covers_deficit() -> None:
    marks = {BTC: F(50_000)}
    acct = long_account(245)
    deep = (Level(F(49_990), F(10)),)
    res = liquidate(acct, LiquidationOrder(BTC, F(-1)), marks, MMR, deep, SqrtImpact(0.0),
                    F(1, 200), fund_cents=0)
    # Sold at 49,990; bankruptcy 49,755: surplus 235, fee cap 0.5 %·49,990 = 249.95 → fee 235.
    assert res.fee_cents == 23_500 and res.account.balance_cents == 0
    thin = (Level(F(49_500), F(10)),)
    res = liquidate(acct, LiquidationOrder(BTC, F(-1)), marks, MMR, thin, SqrtImpact(0.0),
                    F(1, 200), fund_cents=1_000_000)
    # Sold at 49,500: 255 below bankruptcy, paid by the fund.
    assert res.fund_draw_cents == 25_500 and res.fund_cents == 1_000_000 - 25_500
    assert res.account.balance_cents == 0 and not res.account.positions


def test_adl_when_fund_cannot_cover() -> None:
    marks = {BTC: F(50_000)}
    acct = long_account(245)
    thin = (Level(F(49_500), F(10)),)
    winner = MarginAccount("w", 60_000 * 100, {BTC: Position(F(-1), F(55_000))})
    res = liquidate(acct, LiquidationOrder(BTC, F(-1)), marks, MMR, thin, SqrtImpact(0.0),
                    F(1, 200), fund_cents=100, adl_queue=[winner])
    assert res.unfilled == 0 and res.fund_cents == 100
    assert res.account.balance_cents == 0 and not res.account.positions
    # The short buys back at the bankruptcy price 49,755: its balance 6,000,000 − 4,975,500.
    assert res.adl_accounts["w"].balance_cents == 6_000_000 - 4_975_500


def test_adl_rankings() -> None:
    marks = {BTC: F(40_000)}
    a = MarginAccount("a", 60_000 * 100, {BTC: Position(F(-1), F(50_000))})  # +10k, equity 20k
    b = MarginAccount("b", 52_000 * 100, {BTC: Position(F(-1), F(50_000))})  # +10k, equity 12k
    c = MarginAccount("c", 50_000 * 100, {BTC: Position(F(1), F(41_000))})   # same side
    ranked = adl_ranking([a, b, c], BTC, side_of_liquidated=1,
                         score=lambda x: adl_score_hyperliquid(x, BTC, marks))
    assert [x.id for x in ranked] == ["b", "a"]
    # Hyperliquid index of b: (50,000/40,000)·(40,000/12,000) = 25/6.
    assert adl_score_hyperliquid(b, BTC, marks) == F(25, 6)
    # Binance: PnL% = 10,000/2,000 = 5; margin ratio = 200/12,000 → 1/12.
    assert adl_score_binance(b, BTC, marks, MMR) == F(1, 12)


sizes = st.fractions(min_value=F(1, 100), max_value=F(20)).map(lambda f: f.limit_denominator(1000))


@settings(max_examples=300, deadline=None)
@given(size=sizes, entry=st.integers(20_000, 80_000), move=st.integers(-400, 20),
       margin_ppm=st.integers(1_000, 100_000), fund=st.integers(0, 2_000_000),
       depth=st.integers(1, 40), y=st.sampled_from([0.0, 0.002, 0.02, 0.2]),
       fee_ppm=st.integers(0, 20_000), is_long=st.booleans(),
       rule=st.sampled_from(["minimal", "hyperliquid", "dydx"]),
       winners=st.lists(st.integers(1_000, 200_000), min_size=0, max_size=4))
def test_liquidation_invariants(size: F, entry: int, move: int, margin_ppm: int, fund: int,
                                depth: int, y: float, fee_ppm: int, is_long: bool, rule: str,
                                winners: list[int]) -> None:
    """Σ cash + fund + book makers' cash is conserved to the cent; the liquidated account and
    every ADL counterparty end at ≥ 0 equity unless part is left unfilled; the fund stays ≥ 0;
    the fee never exceeds its cap."""
    sign = 1 if is_long else -1
    q = size * sign
    mark = F(entry) * (1 + F(move, 10_000) * sign)
    collateral = int(size * entry * margin_ppm / 1_000_000) + 1
    marks = {BTC: mark}
    acct = MarginAccount("liq", collateral * 100 - int(q * entry * 100),
                         {BTC: Position(q, F(entry))})
    if not is_liquidatable(acct, marks, MMR):
        return
    order = plan_liquidation(acct, marks, MMR, rule=rule)  # type: ignore[arg-type]
    assert order is not None and (order.delta > 0) != (q > 0)
    step = F(mark) / 1000
    side = tuple(Level(mark - sign * step * (i + 1), size / depth) for i in range(depth // 2))
    queue = [MarginAccount(f"w{i}", b * 100 + int(q * mark * 100), {BTC: Position(-q, mark)})
             for i, b in enumerate(winners)]
    before = ledger_total_cents([acct, *queue], fund)
    res = liquidate(acct, order, marks, MMR, side, SqrtImpact(y), F(fee_ppm, 1_000_000), fund,
                    adl_queue=queue)
    event("adl" if res.adl_accounts else "fund draw" if res.fund_draw_cents else
          "fee" if res.fee_cents else "neither")
    book_cash = sum(f.cash_cents for f in res.fills if f.id == "book")
    after_queue = [res.adl_accounts.get(a.id, a) for a in queue]
    assert ledger_total_cents([res.account, *after_queue], res.fund_cents, book_cash) == before
    assert res.fund_cents >= 0
    assert res.fee_cents <= abs(res.execution_value_cents) * fee_ppm // 1_000_000 + 1
    for a in res.adl_accounts.values():
        assert equity(a, marks) >= 0
    filled_share = (abs(order.delta) - res.unfilled) / abs(q)
    if res.unfilled == 0 and order.delta == -q:
        assert not res.account.positions and res.account.balance_cents >= 0
    elif res.unfilled == 0:
        # the closed share of equity is settled at ≥ bankruptcy: what is left is ≥ the
        # remaining share of the pre-liquidation equity (to the cent)
        e0 = equity(acct, marks)
        assert equity(res.account, marks) >= min(e0, e0 * (1 - filled_share)) - F(1, 100)


@pytest.mark.parametrize("rule", ["minimal", "hyperliquid", "dydx"])
def test_minimal_rule_at_mark_restores_maintenance(rule: str) -> None:
    marks = {BTC: F(50_000)}
    acct = long_account(245)
    order = plan_liquidation(acct, marks, MMR, rule=rule)  # type: ignore[arg-type]
    assert order is not None
    at_mark = (Level(F(50_000), F(100)),)
    res = liquidate(acct, order, marks, MMR, at_mark, SqrtImpact(0.0), F(0), 0)
    assert equity(res.account, marks) >= maintenance_margin(res.account, marks, MMR) - F(1, 100)
