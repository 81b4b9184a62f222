"""One account, every question of ``margin-engine optimise``: hedges (ranked single trades, the
greedy plan, the exact LP where it applies), mode and venue allocation, collateral."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from margin_engine.analysis.optimise import allocation, exact_grid, exact_lp
from margin_engine.analysis.optimise.candidates import candidate_sizes, default_universe
from margin_engine.analysis.optimise.collateral import advise_collateral
from margin_engine.analysis.optimise.costs import CostParams, trade_cost
from margin_engine.analysis.optimise.greedy import greedy_plan, rank_hedges, recompute_im
from margin_engine.domain.book import Account
from margin_engine.domain.market import MarketSnapshot
from margin_engine.models.core.base import MarginModel
from margin_engine.models.risk_based.model import RiskBasedModel
from margin_engine.models.venues.deribit_pm import DeribitPm
from margin_engine.models.venues.span import Span
from margin_engine.policy.assess import assess_account
from margin_engine.policy.health import HealthPolicy


@dataclass(frozen=True)
class OptimiseConfig:
    """What to search: ``budget`` USD of trading cost (inf: none), the hedge universe (None:
    the default), a second venue's model for the cross-venue split, greedy steps, how many
    single trades to list."""

    budget: float = math.inf
    universe: tuple[str, ...] | None = None
    versus: MarginModel | None = None
    max_steps: int = 10
    top: int = 10
    costs: CostParams = field(default_factory=CostParams)


def optimise(model: MarginModel, account: Account, market: MarketSnapshot,
             config: OptimiseConfig = OptimiseConfig(),
             policy: HealthPolicy | None = None) -> dict[str, Any]:
    """The whole answer as a JSON-ready dict (amounts in the account currency unless ``_usd``).

    Raises
    ------
    InputError
        When ``model`` does not margin the account (its mode or an instrument).
    """
    rep = assess_account(model, account, market, policy=policy, liquidation_prices=False)
    universe = list(config.universe) if config.universe is not None else default_universe(
        account, market, model)
    cands = candidate_sizes(account, market, universe)
    costs = {s: trade_cost(market.instrument(s), market, config.costs) for s in cands.symbols}
    hedges = rank_hedges(model, account, market, cands, costs, budget=config.budget,
                         top=config.top, policy=policy)
    plan = greedy_plan(model, account, market, cands, costs, budget=config.budget,
                       max_steps=config.max_steps, policy=policy)
    doc: dict[str, Any] = {
        "account": account.id, "model": model.name, "margin_mode": account.margin_mode.value,
        "currency": rep.currency, "initial_margin": rep.initial_margin,
        "maintenance_margin": rep.maintenance_margin, "margin_ratio": rep.margin_ratio,
        "budget_usd": None if math.isinf(config.budget) else config.budget,
        "universe": list(cands.symbols),
        "costs": {"defaults": config.costs.sources(),
                  "by_symbol": {s: {"half_spread": c.half_spread, "impact": c.impact,
                                    "depth_contracts": c.depth, "source": c.source}
                                for s, c in costs.items()}},
        "hedges": [h.as_dict() for h in hedges], "plan": plan.as_dict()}
    why = exact_lp.not_applicable(model, account, market)
    if not isinstance(model, RiskBasedModel):
        why = exact_grid.not_applicable(model, account)
    if why is None and not cands.symbols:
        why = "no candidate hedge"
    if why is None:
        recompute = partial(recompute_im, model, account, market, policy=policy)
        if isinstance(model, DeribitPm | Span):
            solver = "worst-loss LP over the venue grid, HiGHS"
            solve = partial(exact_grid.exact_hedge, model)

            def greedy_objective() -> float:
                return exact_grid.scenario_part(model, account, market, plan.trades)
        else:
            assert isinstance(model, RiskBasedModel)
            solver = "Rockafellar–Uryasev LP, HiGHS"
            solve = partial(exact_lp.exact_hedge, model)

            def greedy_objective() -> float:
                prob = exact_lp.build_problem(model, account, market, cands.symbols)
                return prob.objective(_vector(plan.trades, cands.symbols))
        try:
            ex = solve(account, market, cands, costs, budget=config.budget,
                       initial_margin_before=rep.initial_margin, recompute=recompute)
        except exact_lp.SolverError as exc:
            doc["exact"] = {"applicable": True, "solved": False, "reason": str(exc)}
        else:
            greedy_f = greedy_objective()
            doc["exact"] = {"applicable": True, "solved": True, "solver": solver,
                            "objective_currency": ex.currency, **ex.as_dict(),
                            "greedy_objective": greedy_f,
                            "greedy_minus_exact": greedy_f - ex.objective}
    else:
        doc["exact"] = {"applicable": False, "reason": why}
    bins = allocation.mode_bins(model, account)
    if isinstance(bins, str):
        doc["allocation"] = {"applicable": False, "reason": bins}
    else:
        doc["allocation"] = {"applicable": True,
                             **allocation.allocate(account, market, bins, policy=policy).as_dict()}
    if config.versus is not None:
        vb = allocation.venue_bins(model, config.versus, account)
        doc["venues"] = allocation.allocate(account, market, vb, policy=policy).as_dict()
    amount = max(market.convert(rep.initial_margin, rep.currency, "USD"), 1.0)
    doc["collateral"] = advise_collateral(model, account, market, amount_usd=amount,
                                          policy=policy).as_dict()
    return doc


def _vector(trades: dict[str, float], symbols: tuple[str, ...]) -> Any:
    import numpy as np

    return np.array([trades.get(s, 0.0) for s in symbols])


def top_hedge(model: MarginModel, account: Account, market: MarketSnapshot) -> str:
    """The best single hedge of ``account`` in one line (what ``margin-engine demo`` prints)."""
    cands = candidate_sizes(account, market, default_universe(account, market, model))
    costs = {s: trade_cost(market.instrument(s), market) for s in cands.symbols}
    best = rank_hedges(model, account, market, cands, costs, top=1)
    if not best:
        return f"optimise {account.id} ({model.name}): no single trade lowers the margin"
    h = best[0]
    return (f"optimise {account.id} ({model.name}): trade {h.symbol} {h.size:+g} (cost "
            f"{h.cost_usd:,.2f} USD) → initial margin {h.initial_margin_before:,.2f} → "
            f"{h.initial_margin_after:,.2f} {h.currency}")
