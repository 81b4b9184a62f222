"""Where to hold each position: isolated or cross/portfolio under one venue's rules, or which of
two venues' methodologies.

Both questions assign every position to one of two "bins", each margined by a model in a margin
mode, and minimise the total initial margin in USD. Up to :data:`EXACT_MAX` positions every
assignment is tried (the exact optimum); above that a local search starts from the better of the
two pure assignments and moves one position at a time while the total falls. Positions a bin's
model cannot margin go to the other bin (neither: an error). Each bin's requirement is computed
from scratch with :func:`~margin_engine.policy.assess.assess_account`.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

from margin_engine.domain.book import Account, MarginMode
from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError
from margin_engine.models.core.base import MarginModel
from margin_engine.policy.assess import assess_account
from margin_engine.policy.health import HealthPolicy

#: Exhaustive search up to this many positions (2^n assignments).
EXACT_MAX = 10


@dataclass(frozen=True)
class Bin:
    """A model and the margin mode it margins its share of the positions in."""

    label: str
    model: MarginModel
    mode: MarginMode


@dataclass(frozen=True)
class Allocation:
    """The best split: the positions (symbols) in each bin and the USD requirements."""

    labels: tuple[str, str]
    assignment: tuple[tuple[str, ...], tuple[str, ...]]
    initial_margin_usd: tuple[float, float]
    total_usd: float
    all_first_usd: float | None  #: everything in the first bin (None: it cannot hold all)
    all_second_usd: float | None
    method: str  #: "exhaustive" or "local search"
    evaluations: int

    def as_dict(self) -> dict[str, Any]:
        return {"bins": [{"label": lab, "symbols": list(syms), "initial_margin_usd": im}
                         for lab, syms, im in zip(self.labels, self.assignment,
                                                  self.initial_margin_usd, strict=True)],
                "total_usd": self.total_usd, "all_" + self.labels[0] + "_usd":
                    self.all_first_usd, "all_" + self.labels[1] + "_usd": self.all_second_usd,
                "method": self.method, "evaluations": self.evaluations}


def _bin_im(b: Bin, account: Account, idx: tuple[int, ...], market: MarketSnapshot,
            policy: HealthPolicy | None) -> float:
    if not idx:
        return 0.0
    pos = tuple(account.positions[j] for j in idx)
    if b.mode is not MarginMode.ISOLATED:
        pos = tuple(p.model_copy(update={"isolated_margin": None}) for p in pos)
    sub = account.model_copy(update={"positions": pos, "margin_mode": b.mode})
    rep = assess_account(b.model, sub, market, policy=policy, liquidation_prices=False)
    return market.convert(rep.initial_margin, rep.currency, "USD")


def allocate(account: Account, market: MarketSnapshot, bins: tuple[Bin, Bin], *,
             policy: HealthPolicy | None = None) -> Allocation:
    """The split of ``account``'s positions between two bins with the least total IM (USD)."""
    n = len(account.positions)
    allowed = []
    for j, p in enumerate(account.positions):
        ins = market.instrument(p.symbol)
        ok = tuple(b.model.check_instrument(ins) is None for b in bins)
        if not any(ok):
            raise InputError(f"positions[{j}].symbol", f"{p.symbol!r}: neither "
                             f"{bins[0].label} nor {bins[1].label} margins it")
        allowed.append(ok)
    memo: dict[tuple[int, tuple[int, ...]], float] = {}

    def im(side: int, idx: tuple[int, ...]) -> float:
        key = (side, idx)
        if key not in memo:
            memo[key] = _bin_im(bins[side], account, idx, market, policy)
        return memo[key]

    def total(assign: tuple[int, ...]) -> float:
        return sum(im(side, tuple(j for j in range(n) if assign[j] == side))
                   for side in (0, 1))

    def feasible(assign: tuple[int, ...]) -> bool:
        return all(allowed[j][assign[j]] for j in range(n))

    pure = []
    for side in (0, 1):
        a = (side,) * n
        pure.append(total(a) if feasible(a) else None)
    if n <= EXACT_MAX:
        method = "exhaustive"
        best, best_v = None, math.inf
        for a in itertools.product((0, 1), repeat=n):
            if feasible(a):
                v = total(a)
                if v < best_v - 1e-9 * max(1.0, abs(best_v)) or best is None:
                    best, best_v = a, v
    else:
        method = "local search"
        start = [0 if pure[0] is not None and (pure[1] is None or pure[0] <= pure[1]) else 1]
        best = tuple(start * n) if pure[start[0]] is not None else tuple(
            0 if allowed[j][0] else 1 for j in range(n))
        best_v = total(best)
        improved = True
        while improved:
            improved = False
            for j in range(n):
                a = tuple(1 - x if k == j else x for k, x in enumerate(best))
                if feasible(a) and (v := total(a)) < best_v - 1e-9 * max(1.0, abs(best_v)):
                    best, best_v, improved = a, v, True
    assert best is not None
    syms = tuple(tuple(account.positions[j].symbol for j in range(n) if best[j] == side)
                 for side in (0, 1))
    ims = tuple(im(side, tuple(j for j in range(n) if best[j] == side)) for side in (0, 1))
    return Allocation((bins[0].label, bins[1].label), (syms[0], syms[1]), (ims[0], ims[1]),
                      best_v, pure[0], pure[1], method, len(memo))


def mode_bins(model: MarginModel, account: Account) -> tuple[Bin, Bin] | str:
    """Isolated vs the account's cross/portfolio mode under one venue (a reason when the venue
    does not offer both)."""
    pooled = account.margin_mode if account.margin_mode is not MarginMode.ISOLATED else (
        MarginMode.CROSS if MarginMode.CROSS in model.modes else MarginMode.PORTFOLIO)
    if MarginMode.ISOLATED not in model.modes or pooled not in model.modes:
        offered = ", ".join(sorted(m.value for m in model.modes))
        return (f"{model.name} offers {offered}: no isolated/{pooled.value} split to choose")
    return (Bin("isolated", model, MarginMode.ISOLATED), Bin(pooled.value, model, pooled))


def venue_bins(first: MarginModel, second: MarginModel, account: Account) -> tuple[Bin, Bin]:
    """The account's mode at each venue (cross where the venue does not offer it)."""
    def mode(m: MarginModel) -> MarginMode:
        if account.margin_mode in m.modes:
            return account.margin_mode
        return MarginMode.CROSS if MarginMode.CROSS in m.modes else sorted(
            m.modes, key=lambda x: x.value)[0]
    return (Bin(first.name, first, mode(first)), Bin(second.name, second, mode(second)))
