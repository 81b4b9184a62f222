"""Market risk of a whole book in one pass (DESIGN §1): every instrument revalued once per
scenario set, then the fused aggregation kernel measures every margin unit without building the
[units × scenarios] matrix.

This is the batch path of the risk-based models' ``market_risk`` component (no add-ons). Units
are grouped by currency and by the set of underlyings they hold; each group gets the scenario set
a unit on those underlyings gets on the per-unit path, so both paths give the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from margin_engine.domain.book import Account, Book, net_positions
from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError
from margin_engine.maths.aggregation import aggregate, positions_to_csr
from margin_engine.models.core.scenario_pnl import instrument_pnl
from margin_engine.models.core.units import MarginUnit
from margin_engine.models.risk_based.model import RiskBasedModel


@dataclass(frozen=True)
class BookRisk:
    """Market risk per (account id, unit id), in each unit's currency, and the scenario count."""

    values: dict[tuple[str, str], float]
    n_scenarios: int
    n_instruments: int
    n_positions: int


def book_market_risk(model: RiskBasedModel, book: Book, market: MarketSnapshot) -> BookRisk:
    """The ``market_risk`` component of every margin unit of ``book`` under ``model``."""
    units: list[tuple[Account, MarginUnit]] = []
    for i, account in enumerate(book.accounts):
        account = net_positions(account, market)  # one position per symbol, as assess does
        try:
            units.extend((account, u) for u in model.units(account, market))
        except InputError as exc:
            raise exc.within(f"accounts[{i}]") from None
    values: dict[tuple[str, str], float] = {}
    groups: dict[tuple[str, tuple[str, ...]], list[tuple[Account, MarginUnit]]] = {}
    for account, unit in units:
        unds = tuple(sorted({market.instrument(account.positions[j].symbol).underlying
                             for j in unit.position_indices}))
        if not unds:
            values[account.id, unit.id] = 0.0
            continue
        groups.setdefault((unit.currency, unds), []).append((account, unit))
    p = model.params
    n_pos = n_scen = 0
    for (ccy, unds), group in groups.items():
        # the same scenario set a unit on these underlyings gets on the per-unit path
        scen = model.scenario_set(market, unds)
        symbols = sorted({a.positions[j].symbol for a, u in group for j in u.position_indices})
        row_of = {s: k for k, s in enumerate(symbols)}
        pnl = instrument_pnl([market.instrument(s) for s in symbols], market, scen, ccy,
                             vol_tenor_power=p.vol_tenor_power)
        unit_of, inst, size = [], [], []
        for k, (account, unit) in enumerate(group):
            for j in unit.position_indices:
                unit_of.append(k)
                inst.append(row_of[account.positions[j].symbol])
                size.append(account.positions[j].size)
        n_pos += len(size)
        n_scen = max(n_scen, scen.n)
        ptr, inst_s, size_s, _ = positions_to_csr(np.array(unit_of, dtype=np.int64),
                                                  np.array(inst, dtype=np.int64),
                                                  np.array(size, dtype=np.float64), len(group))
        worst = p.measure == "worst_loss"
        risk = aggregate(pnl, ptr, inst_s, size_s, measure=p.measure,
                         confidence=None if worst else p.confidence,
                         weights=None if worst else scen.weights)
        for (account, unit), v in zip(group, risk.values, strict=True):
            values[account.id, unit.id] = float(v)
    n_ins = len({a.positions[j].symbol for a, u in units for j in u.position_indices})
    return BookRisk(values, n_scen, n_ins, n_pos)
