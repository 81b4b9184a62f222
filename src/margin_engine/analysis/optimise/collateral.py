"""Which asset to post as collateral: haircut value now, and value in the account's own tail.

Posting ``A`` USD of asset ``c`` adds ``A·(1 − haircut_c)`` to equity today (the health policy's
haircut, or the account's own). In the scenarios where the portfolio loses most the asset may fall
too (BTC collateral behind a long-BTC book): its value there is
``A·(1 − haircut_c)·Σ_s share_s·(1 + x_{c,s})`` over the tail scenarios of the portfolio's
expected shortfall at :data:`TAIL_CONFIDENCE` (``share_s`` their weights in it, ``x_{c,s}`` the
asset's move). Assets are ranked by that tail value per USD posted. Scenarios: the model's own
(risk-based models) or, for models without a scenario set of this kind, the stress library's
headline stresses (``maths.stress_library.CORE_STRESSES``). Stablecoins and USD do not move.

For each asset the margin ratio after posting (MM / equity, from scratch with
:func:`~margin_engine.policy.assess.assess_account`) and the tail equity (equity after posting
plus the portfolio's tail P&L and the posted asset's tail change; collateral already held is
taken at today's value) are reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from margin_engine.domain.book import Account
from margin_engine.domain.market import MarketSnapshot
from margin_engine.maths import risk_measures, scenarios
from margin_engine.maths.scenarios import ScenarioSet
from margin_engine.maths.stress_library import CORE_STRESSES, get_stress
from margin_engine.models.core.base import MarginModel
from margin_engine.models.core.scenario_pnl import instrument_pnl
from margin_engine.models.risk_based.model import RiskBasedModel
from margin_engine.policy.assess import assess_account
from margin_engine.policy.health import HealthPolicy

TAIL_CONFIDENCE = 0.99


@dataclass(frozen=True)
class CollateralChoice:
    """One asset: value now and in the tail per USD posted, the ratio after posting."""

    asset: str
    haircut: float
    value_now_per_usd: float
    tail_value_per_usd: float
    amount: float  #: units of the asset posted
    margin_ratio_before: float | None
    margin_ratio_after: float | None
    tail_equity_usd: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CollateralAdvice:
    amount_usd: float
    scenarios: str  #: where the scenarios came from
    n_scenarios: int
    choices: tuple[CollateralChoice, ...]  #: best tail value first

    def as_dict(self) -> dict[str, Any]:
        return {"amount_usd": self.amount_usd, "scenarios": self.scenarios,
                "n_scenarios": self.n_scenarios, "choices": [c.as_dict() for c in self.choices]}


def candidate_assets(account: Account, market: MarketSnapshot) -> list[str]:
    """Coins with an index price, FX currencies, USD stablecoins the market prices, and what the
    account already holds."""
    out = [*market.index, *market.fx, *(u for u in ("USDC", "USDT") if market.is_priced(u)),
           *account.collateral]
    return [c for c in dict.fromkeys(out) if market.is_priced(c)]


def _scenario_set(model: MarginModel, market: MarketSnapshot,
                  unds: tuple[str, ...]) -> tuple[ScenarioSet, str]:
    if isinstance(model, RiskBasedModel):
        return model.scenario_set(market, unds), f"{model.name} scenarios"
    return (scenarios.from_stresses(unds, [get_stress(n) for n in CORE_STRESSES]),
            "stress library CORE_STRESSES")


def advise_collateral(model: MarginModel, account: Account, market: MarketSnapshot, *,
                      amount_usd: float, assets: Sequence[str] | None = None,
                      policy: HealthPolicy | None = None) -> CollateralAdvice:
    """Rank ``assets`` (default :func:`candidate_assets`) for posting ``amount_usd``."""
    pol = policy or HealthPolicy()
    assets = list(assets) if assets is not None else candidate_assets(account, market)
    ins = [market.instrument(p.symbol) for p in account.positions]
    coins = [a for a in assets if a in market.index]
    unds = tuple(sorted({i.underlying for i in ins} | set(coins)))
    scen, source = _scenario_set(model, market, unds)
    pnl = (np.array([p.size for p in account.positions])
           @ instrument_pnl(ins, market, scen, "USD") if ins else np.zeros(scen.n))
    tail = risk_measures.tail_scenarios(pnl, TAIL_CONFIDENCE, scen.weights, measure="es")
    tail_pnl = float(tail.shares @ pnl[tail.scenarios])
    before = assess_account(model, account, market, policy=pol, liquidation_prices=False)
    eq_usd = market.convert(before.equity, before.currency, "USD")
    out = []
    for a in assets:
        h = 0.0 if a == before.currency else pol.haircut(account, a)
        move = (scen.price_moves[tail.scenarios, scen.column(a)] if a in scen.underlyings
                else np.zeros(tail.scenarios.size))
        tail_factor = float(tail.shares @ (1.0 + move))
        units = amount_usd / market.usd_price(a)
        coll = dict(account.collateral)
        coll[a] = coll.get(a, 0.0) + units
        after = assess_account(model, account.model_copy(update={"collateral": coll}), market,
                               policy=pol, liquidation_prices=False)
        out.append(CollateralChoice(
            a, h, 1.0 - h, (1.0 - h) * tail_factor, units, before.margin_ratio,
            after.margin_ratio, eq_usd + amount_usd * (1.0 - h) * tail_factor + tail_pnl))
    out.sort(key=lambda c: (-c.tail_value_per_usd, c.asset))
    return CollateralAdvice(amount_usd, source, scen.n, tuple(out))
