"""Hedge suggestions on the live book's what-if: single trades ranked by margin freed per USD of
trading cost, and a greedy plan that applies the best one step after step within a budget.

Every suggestion and the plan's end state are recomputed from scratch
(:func:`~margin_engine.policy.assess.assess_account` on the account with the trades filled); a
trade that the recomputation shows would not lower the initial margin is dropped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from margin_engine.analysis.optimise.candidates import Candidates
from margin_engine.analysis.optimise.costs import TradeCost
from margin_engine.domain.book import Account, Book, MarginMode, Position
from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError
from margin_engine.live import LiveBook
from margin_engine.live.fills import fill_account
from margin_engine.live.risk_engine import supports
from margin_engine.models.core.base import MarginModel
from margin_engine.policy.assess import assess_account
from margin_engine.policy.health import HealthPolicy

#: The greedy plan takes only trades that free at least this many USD of initial margin per USD
#: of extra trading cost.
MIN_RATIO = 1.0

#: A change smaller than this (relative to the IM, or 1e-9 absolute) is no change.
REL_TOL = 1e-9


def _tol(im: float) -> float:
    return max(1e-9, REL_TOL * abs(im))


@dataclass(frozen=True)
class Suggestion:
    """One hedge trade and the margin after it (amounts in ``currency``, cost in USD)."""

    symbol: str
    size: float
    cost_usd: float
    currency: str
    initial_margin_before: float
    initial_margin_after: float  #: recomputed from scratch with the trade filled
    what_if_initial_margin: float  #: the live book's what-if answer
    saving_usd: float
    saving_per_cost: float | None  #: USD of IM freed per USD of cost (None: free trade)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Plan:
    """The greedy plan: its steps (each with the margin after it) and the net trades."""

    steps: tuple[Suggestion, ...]
    trades: dict[str, float]
    cost_usd: float
    initial_margin_before: float
    initial_margin_after: float  #: recomputed from scratch with every trade filled
    currency: str
    evaluations: int  #: what-if calls made

    def as_dict(self) -> dict[str, Any]:
        return {"steps": [s.as_dict() for s in self.steps], "trades": dict(self.trades),
                "cost_usd": self.cost_usd, "initial_margin_before": self.initial_margin_before,
                "initial_margin_after": self.initial_margin_after, "currency": self.currency,
                "evaluations": self.evaluations}


def recompute_im(model: MarginModel, account: Account, market: MarketSnapshot,
                 trades: Mapping[str, float] | Sequence[tuple[str, float]],
                 policy: HealthPolicy | None = None) -> float:
    """Initial margin of ``account`` with ``trades`` filled at the mark, from scratch."""
    items = trades.items() if isinstance(trades, Mapping) else trades
    for sym, q in items:
        if q != 0.0:
            account = fill_account(account, market, sym, q)
    return assess_account(model, account, market, policy=policy,
                          liquidation_prices=False).initial_margin


def live_book(model: MarginModel, account: Account, market: MarketSnapshot,
              policy: HealthPolicy | None = None, symbols: Sequence[str] = ()) -> LiveBook:
    """A live book holding ``account`` alone.

    For the risk-based engine (cached scenario vectors) of a cross or portfolio account, the
    account also holds a zero-size position in each of ``symbols`` it lacks: every candidate
    trade then adds to a held row, and the what-if is one row addition and one measure instead
    of a rebuild. A zero position adds nothing to any component of a risk-based requirement;
    the book is built without them when its margin is not the same to 1e-9.
    """
    plain = LiveBook(model, Book(accounts=(account,)), market, policy=policy)
    held = {p.symbol for p in account.positions}
    missing = [s for s in dict.fromkeys(symbols) if s not in held]
    if not missing or not supports(model) or account.margin_mode is MarginMode.ISOLATED:
        return plain
    pad = account.model_copy(update={"positions": (*account.positions, *(
        Position(symbol=s, size=0.0) for s in missing))})
    padded = LiveBook(model, Book(accounts=(pad,)), market, policy=policy)
    a, b = plain.state(account.id), padded.state(account.id)
    if abs(a.initial_margin - b.initial_margin) <= _tol(a.initial_margin):
        return padded
    return plain


def _usd(x: float, ccy: str, market: MarketSnapshot) -> float:
    return market.convert(x, ccy, "USD")


def rank_hedges(model: MarginModel, account: Account, market: MarketSnapshot,
                cands: Candidates, costs: Mapping[str, TradeCost], *,
                budget: float = math.inf, top: int = 10,
                policy: HealthPolicy | None = None, live: LiveBook | None = None
                ) -> list[Suggestion]:
    """Single trades that lower the initial margin, best saving per USD of cost first.

    Parameters
    ----------
    budget : float
        USD: trades costing more are not considered.
    top : int
        How many to return (each is recomputed from scratch).
    live : LiveBook, optional
        A live book holding the account (built here when omitted); left unchanged.
    """
    lv = live or live_book(model, account, market, policy, cands.symbols)
    before = lv.state(account.id)
    ccy = before.currency
    tol = _tol(before.initial_margin)
    found: list[tuple[float, float, str, float, float, float]] = []
    for s in cands.symbols:
        for q in cands.sizes[s]:
            c = costs[s].cost(q)
            if c > budget:
                continue
            after = lv.what_if(account.id, [(s, q, None)]).after.initial_margin
            saving = before.initial_margin - after
            if saving > tol:
                su = _usd(saving, ccy, market)
                found.append((su / c if c > 0 else math.inf, su, s, q, c, after))
    found.sort(key=lambda t: (-t[0], -t[1], t[2], t[3]))
    out: list[Suggestion] = []
    for _ratio, _su, s, q, c, after in found:
        if len(out) >= top:
            break
        im = recompute_im(model, account, market, [(s, q)], policy)
        if im > before.initial_margin - tol:  # the recomputation disagrees: drop it
            continue
        saving = _usd(before.initial_margin - im, ccy, market)
        out.append(Suggestion(s, q, c, ccy, before.initial_margin, im, after, saving,
                              saving / c if c > 0 else None))
    out.sort(key=lambda g: (-(g.saving_per_cost if g.saving_per_cost is not None else math.inf),
                            -g.saving_usd, g.symbol, g.size))
    return out


def greedy_plan(model: MarginModel, account: Account, market: MarketSnapshot,
                cands: Candidates, costs: Mapping[str, TradeCost], *,
                budget: float = math.inf, max_steps: int = 5,
                policy: HealthPolicy | None = None) -> Plan:
    """Apply, step after step, the trade that frees the most initial margin among those that fit
    the remaining budget and free at least :data:`MIN_RATIO` USD per USD of extra cost (steepest
    descent; the ranked single trades of :func:`rank_hedges` are the per-cost view), until none
    helps or fits.

    The plan's cost is that of its net trade per instrument, ``Σ cost_j(|net_j|)``; each net
    trade stays within the size bound of :class:`Candidates` (the exact solver's box).
    """
    if max_steps < 0:
        raise InputError("max_steps", "must be ≥ 0")
    lv = live_book(model, account, market, policy, cands.symbols)
    start = lv.state(account.id)
    ccy = start.currency
    tol = _tol(start.initial_margin)
    net: dict[str, float] = {}
    spent = 0.0
    steps: list[Suggestion] = []
    evaluations = 0
    for _ in range(max_steps):
        now = lv.state(account.id).initial_margin
        best: tuple[float, float, str, float, float, float] | None = None
        for s in cands.symbols:
            tc = costs[s]
            n0 = net.get(s, 0.0)
            for q in cands.sizes[s]:
                n1 = n0 + q
                if abs(n1) > cands.bound[s] * (1 + 1e-12):
                    continue
                total = spent - tc.cost(n0) + tc.cost(n1)
                if total > budget:
                    continue
                evaluations += 1
                after = lv.what_if(account.id, [(s, q, None)]).after.initial_margin
                saving = now - after
                if saving <= tol:
                    continue
                inc = total - spent
                su = _usd(saving, ccy, market)
                ratio = su / inc if inc > 1e-12 else math.inf
                if ratio < MIN_RATIO:
                    continue
                key = (ratio, su, s, q, total, after)
                if best is None or (key[1], key[0]) > (best[1], best[0]):
                    best = key
        if best is None:
            break
        ratio, su, s, q, total, after = best
        trial = {**net, s: net.get(s, 0.0) + q}
        im_now = recompute_im(model, account, market, trial, policy)
        if im_now > now - tol:  # the recomputation disagrees with the what-if: stop here
            break
        lv.apply_fill(account.id, s, q)
        net = trial
        su = _usd(now - im_now, ccy, market)
        steps.append(Suggestion(s, q, total - spent, ccy, now, im_now, after, su,
                                None if math.isinf(ratio) else ratio))
        spent = total
    trades = {s: q for s, q in net.items() if q != 0.0}
    im = recompute_im(model, account, market, trades, policy)
    return Plan(tuple(steps), trades, spent, start.initial_margin, im, ccy, evaluations)
