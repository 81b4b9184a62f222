"""Generic liquidation mechanics: size, execute, fee, insurance fund, bankruptcy, ADL.

One liquidation step of an account below maintenance (docs/liquidation.md §2):

1. **Which position, how much** (:func:`plan_liquidation`): the position with the largest
   maintenance requirement first (the largest risk reduction), sized by the venue's rule —
   ``"minimal"``: just enough to bring equity back to maintenance after the expected cost
   (Deribit's incremental liquidation, Binance's partial liquidation of large positions);
   ``"hyperliquid"``: the whole position, but 20 % at a time above 100,000 USDC of notional
   (docs "Liquidations", research/crypto-venues.md §5.3); ``"dydx"``: the whole position up to
   the per-block limits (:func:`.dydx_liquidation.position_to_liquidate`, which sizes in
   quantums).
2. **Bankruptcy value** (:func:`bankruptcy_value_cents`): the cash at which closing ``x`` of
   ``q`` uses up the share ``x/q`` of the account's equity (dYdX's
   ``−ΔNNV − TNC·|ΔMMR|/TMMR`` with one flat rate), rounded toward the account as dYdX does.
3. **Settlement** (:func:`liquidate`): executed on the book, the surplus over bankruptcy pays a
   fee to the insurance fund (capped at ``fee_rate`` of the fill's value: Binance's clearance
   fee, dYdX's ``max_liquidation_fee_ppm``); a deficit is paid by the fund when the fund can
   (dYdX ``IsValidInsuranceFundDelta``); otherwise the order is **not** sent to the book and the
   position is auto-deleveraged at its bankruptcy price against opposite positions ranked by
   :func:`adl_ranking` (Binance; dYdX does the same without a ranking, from a random start;
   Hyperliquid closes at the previous mark price).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from margin_engine.analysis.liquidation.accounts import (
    CENTS,
    MarginAccount,
    equity,
    maintenance_margin,
    to_cents_ceil,
    to_cents_floor,
    unrealised_pnl,
)
from margin_engine.analysis.liquidation.book import Level, SqrtImpact, walk_book

Rule = Literal["minimal", "hyperliquid", "dydx"]
#: Hyperliquid: positions above this notional (USDC) are liquidated 20 % at a time
#: (Hyperliquid docs "Liquidations", research/crypto-venues.md §5.3 [H2]).
HYPERLIQUID_PARTIAL_NOTIONAL = Fraction(100_000)
HYPERLIQUID_PARTIAL_SHARE = Fraction(1, 5)


@dataclass(frozen=True)
class LiquidationOrder:
    """Close ``delta`` (signed, opposite to the position) of ``market``."""

    market: str
    delta: Fraction


def plan_liquidation(account: MarginAccount, marks: Mapping[str, Fraction],
                     mmr: Mapping[str, Fraction], rule: Rule = "minimal",
                     cost_rate: Fraction = Fraction(0)) -> LiquidationOrder | None:
    """The next liquidation order for an account below maintenance (``None`` when it is not).

    ``cost_rate`` is the expected cost of closing, as a fraction of notional (fee plus
    slippage), used by ``"minimal"``: closing ``x`` at mark ``m`` changes ``equity − MM`` by
    ``x·m·(mmr − cost_rate)``, so ``x = (MM − E)/(m·(mmr − cost_rate))`` rounded up, or the whole
    position when ``mmr ≤ cost_rate`` (closing cannot restore the account).
    """
    e, mm = equity(account, marks), maintenance_margin(account, marks, mmr)
    if mm <= 0 or e >= mm:
        return None
    market = max(account.positions,
                 key=lambda k: (abs(account.positions[k].size) * marks[k] * mmr[k], k))
    q = account.positions[market].size
    m = marks[market]
    size = abs(q)
    if rule == "minimal":
        per_unit = m * (mmr[market] - cost_rate)
        if per_unit > 0:
            size = min(size, (mm - e) / per_unit)
    elif rule == "hyperliquid":
        if size * m > HYPERLIQUID_PARTIAL_NOTIONAL:
            size = size * HYPERLIQUID_PARTIAL_SHARE
    elif rule != "dydx":
        raise ValueError(f"rule: {rule!r} is not one of minimal, hyperliquid, dydx")
    return LiquidationOrder(market, -size if q > 0 else size)


def bankruptcy_value_cents(account: MarginAccount, marks: Mapping[str, Fraction],
                           mmr: Mapping[str, Fraction], order: LiquidationOrder) -> int:
    """Cash (cents; > 0 received) at which closing ``order.delta`` leaves the account with its
    equity reduced in proportion to the maintenance released: ``−Δnotional −
    E·|ΔMM|/MM``, rounded toward +∞ (in the account's favour, as dYdX does)."""
    q = account.position(order.market)
    if q == 0 or (q > 0) == (order.delta > 0) or abs(order.delta) > abs(q):
        raise ValueError(f"delta: {order.delta} is not a reduction of a position of {q}")
    m = marks[order.market]
    e, mm = equity(account, marks), maintenance_margin(account, marks, mmr)
    dmm = abs(order.delta) * m * mmr[order.market]
    share = e * dmm / mm if mm > 0 else e * abs(order.delta) / abs(q)
    return to_cents_ceil(-order.delta * m - share)


@dataclass(frozen=True)
class Counterparty:
    """Who took the other side of a liquidation fill: ``"book"`` or an account id (ADL)."""

    id: str
    size: Fraction
    cash_cents: int


@dataclass(frozen=True)
class LiquidationResult:
    """One liquidation step: the accounts after it, the fund after it and the cash flows.

    ``fee_cents`` went from the account to the fund, ``fund_draw_cents`` from the fund to the
    account; ``fills`` list the counterparties (the book's makers, or ADL accounts) with the
    size they took and the cash they paid (negative) or received.
    """

    account: MarginAccount
    fund_cents: int
    fee_cents: int
    fund_draw_cents: int
    execution_value_cents: int
    bankruptcy_value_cents: int
    fills: tuple[Counterparty, ...]
    adl_accounts: dict[str, MarginAccount]
    remaining_book: tuple[Level, ...]
    unfilled: Fraction


def adl_score_hyperliquid(account: MarginAccount, market: str,
                          marks: Mapping[str, Fraction]) -> Fraction:
    """Hyperliquid's ADL sorting index ``(mark/entry)·(notional/account value)`` (docs
    "Auto-deleveraging", fetched 2026-12-06; for a short we use ``entry/mark`` so that profit
    ranks first — the docs give the long form only)."""
    p = account.positions[market]
    m = marks[market]
    av = equity(account, marks)
    if av <= 0 or p.entry_price <= 0 or m <= 0:
        return Fraction(-1)
    ratio = m / p.entry_price if p.size > 0 else p.entry_price / m
    return ratio * abs(p.size) * m / av


def adl_score_binance(account: MarginAccount, market: str, marks: Mapping[str, Fraction],
                      mmr: Mapping[str, Fraction]) -> Fraction:
    """Binance's ``LeveragePnL = PnL% × margin ratio`` with ``PnL% = max(0, uPnL)/max(1, WB)``
    and ``margin ratio = MM/(WB + uPnL)`` (0 when that is ≤ 0) (Binance FAQ "What Is
    Auto-Deleveraging (ADL)", 2019-09-09; WB = wallet balance)."""
    upnl = unrealised_pnl(account, marks)
    wallet = equity(account, marks) - upnl
    pnl_pct = max(upnl, Fraction(0)) / max(Fraction(1), wallet)
    total = wallet + upnl
    ratio = maintenance_margin(account, marks, mmr) / total if total > 0 else Fraction(0)
    return pnl_pct * ratio


def adl_ranking(candidates: Sequence[MarginAccount], market: str, side_of_liquidated: int,
                score: Callable[[MarginAccount], Fraction]) -> list[MarginAccount]:
    """Opposite-side holders of ``market`` (sign opposite to ``side_of_liquidated``) ranked by
    ``score``, highest first (ties by id)."""
    opp = [a for a in candidates
           if a.position(market) != 0 and (a.position(market) > 0) != (side_of_liquidated > 0)]
    return sorted(opp, key=lambda a: (-score(a), a.id))


def liquidate(account: MarginAccount, order: LiquidationOrder, marks: Mapping[str, Fraction],
              mmr: Mapping[str, Fraction], book_side: Sequence[Level], impact: SqrtImpact,
              fee_rate: Fraction, fund_cents: int,
              adl_queue: Sequence[MarginAccount] = ()) -> LiquidationResult:
    """Execute one liquidation order (module docstring, step 3).

    ``book_side`` is the side the order hits (bids when closing a long); ``adl_queue`` the
    opposite positions in ADL order (:func:`adl_ranking`). An ADL counterparty whose equity would
    fall below zero at the bankruptcy price is skipped (dYdX's collateral check, simplified);
    what no one takes is returned as ``unfilled``.
    """
    if fund_cents < 0:
        raise ValueError("fund_cents: the insurance fund cannot be negative")
    bankrupt = bankruptcy_value_cents(account, marks, mmr, order)
    is_sell = order.delta < 0
    ex = walk_book(book_side, abs(order.delta), is_sell, impact, reference_price=marks[
        order.market])
    value = to_cents_floor(ex.value) if is_sell else -to_cents_ceil(ex.value)
    surplus = value - bankrupt
    if surplus >= 0 or fund_cents + surplus >= 0:
        fee = min(surplus, to_cents_floor(abs(ex.value) * fee_rate)) if surplus > 0 else 0
        draw = -surplus if surplus < 0 else 0
        after = account.trade(order.market, order.delta, value).transfer(draw - fee)
        return LiquidationResult(
            account=after, fund_cents=fund_cents + fee - draw, fee_cents=fee,
            fund_draw_cents=draw, execution_value_cents=value, bankruptcy_value_cents=bankrupt,
            fills=(Counterparty("book", -order.delta, -value),), adl_accounts={},
            remaining_book=ex.remaining_book, unfilled=Fraction(0))
    return _deleverage(account, order, marks, mmr, fund_cents, bankrupt, value, book_side,
                       adl_queue)


def _deleverage(account: MarginAccount, order: LiquidationOrder, marks: Mapping[str, Fraction],
                mmr: Mapping[str, Fraction], fund_cents: int, bankrupt: int, value: int,
                book_side: Sequence[Level], queue: Sequence[MarginAccount]) -> LiquidationResult:
    remaining = order.delta
    fills: list[Counterparty] = []
    adl: dict[str, MarginAccount] = {}
    liq = account
    for cand in queue:
        if remaining == 0:
            break
        pos = cand.position(order.market)
        if pos == 0 or (pos > 0) != (remaining > 0):
            continue
        d = remaining if abs(remaining) <= abs(pos) else pos
        cash = bankruptcy_value_cents(liq, marks, mmr, LiquidationOrder(order.market, d))
        off = cand.trade(order.market, -d, -cash)
        if equity(off, marks) < 0:
            continue
        liq = liq.trade(order.market, d, cash)
        adl[cand.id] = off
        fills.append(Counterparty(cand.id, -d, -cash))
        remaining -= d
    return LiquidationResult(
        account=liq, fund_cents=fund_cents, fee_cents=0, fund_draw_cents=0,
        execution_value_cents=value, bankruptcy_value_cents=bankrupt, fills=tuple(fills),
        adl_accounts=adl, remaining_book=tuple(book_side), unfilled=abs(remaining))


def ledger_total_cents(accounts: Sequence[MarginAccount], fund_cents: int,
                       external_cents: int = 0) -> int:
    """Σ balances + fund + cash of parties outside the population (book makers): constant
    across every liquidation step."""
    return sum(a.balance_cents for a in accounts) + fund_cents + external_cents


__all__ = ["CENTS", "Counterparty", "LiquidationOrder", "LiquidationResult", "adl_ranking",
           "adl_score_binance", "adl_score_hyperliquid", "bankruptcy_value_cents",
           "ledger_total_cents", "liquidate", "plan_liquidation"]
