"""Deribit cross portfolio margin (X:PM): one USD stress test over every asset of the account.

Deribit describes X:PM as "a margin model that assesses the entire portfolio for all available
assets in the account" [D5], with cross-collateral currencies "assessed on their current USD
value" [D6]; its PM parameters carry, per currency, a ``haircut``, an ``equity_side_impact``
(``both`` for coins, ``none`` for usd) and a ``correlation_set`` flag [D7, D8]. The exact X:PM
algorithm is not published; this module implements the reading below (every choice a parameter
of :class:`~margin_engine.models.venues.deribit_pm.DeribitPmParams`, marked UNCONFIRMED there):

1. Per currency pair ``p`` (``btc_usd``…), one USD risk vector on ``p``'s grid: every position
   on ``p`` whatever its settlement currency, coin P&L valued at the scenario's price
   ``S·(1+m)`` (``m`` the move, the edge move ``e`` on the extended table), stablecoin P&L at
   its USD price; plus each coin balance of ``p``'s coin revalued, ``b·S·m`` (gains less the
   coin's ``haircut``; sides per ``equity_side_impact``; ``collateral_revaluation``).
2. ``pnl_offset``, ``max_offsetable_pnl`` and the extended dampener of the pair's coin currency
   (``usd`` for pairs without one) applied to that USD vector (amounts in USD).
3. Pairs combined per ``cross_pair_scenarios``: a *joint* group takes scenario ``s`` of every
   member's grid at once and its worst case is ``−min_s Σ_p aggregated_p[s]``; a pair outside
   a group counts its own worst case (no offset).
4. ``risk_matrix_margin = Σ worst cases + Σ roll shocks (USD)``; ``MM = mm_factor × rmm``;
   ``IM = rmm + order margins + Σ haircut·balance·price`` (the IM haircut of [D6]).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from margin_engine.domain.book import Account
from margin_engine.domain.market import MarketSnapshot
from margin_engine.models.core.results import PositionMargin, UnitMargin
from margin_engine.models.core.units import MarginUnit
from margin_engine.models.core.valuation import notional
from margin_engine.models.venues.deribit_common import (
    FloatArray,
    collateral_haircut_usd,
    currency_key,
    pair_key,
    pro_rata,
)
from margin_engine.models.venues.deribit_pm import (
    CurrencyParams,
    PositionRisk,
    ScenarioGrid,
    aggregate,
    scenario_details,
    split,
    worst_index,
)

if TYPE_CHECKING:
    from margin_engine.models.venues.deribit_pm import DeribitPm


def usd_moves(grid: ScenarioGrid, scaled: bool) -> FloatArray:
    """The move at which coin amounts are valued in USD in each scenario: the move itself on
    the standard table; on the extended table the edge move when P&L is scaled to it."""
    return grid.edge if scaled else grid.moves


def pair_currency(model: DeribitPm, pk: str) -> CurrencyParams:
    """Currency parameters applied to a pair's USD vector: its coin's, else ``usd``."""
    coin = pk.split("_", 1)[0]
    cur = model.params.currency
    return cur[coin] if coin in cur else cur["usd"]


def aggregate_usd(model: DeribitPm, pre: FloatArray, grid: ScenarioGrid, cp: CurrencyParams,
                  coin: str, market: MarketSnapshot) -> FloatArray:
    """``aggregate`` of USD rows ``[r × scenarios]`` with ``cp``'s offset, cap and dampener
    in USD (converted from ``coin`` at the index when amounts are coin amounts)."""
    p = model.params
    r = pre.shape[0]

    def usd(value: float) -> float:
        if p.currency_amounts_in_usd or coin not in market.index:
            return value
        return value * market.usd_price(coin)

    return aggregate(pre, grid, pnl_offset=np.full(r, cp.pnl_offset),
                     max_offsetable=np.full(r, usd(cp.max_offsetable_pnl)),
                     dampener=np.full(r, usd(cp.extended_dampener)),
                     rule=p.extended_dampener_rule)


def position_usd_row(x: PositionRisk, grid: ScenarioGrid, scaled: bool,
                     market: MarketSnapshot) -> FloatArray:
    """A position's risk vector in USD: coin P&L × ``S·(1+m)``, stablecoin P&L × its price."""
    if currency_key(x.ccy) == "usd":
        return x.row * market.usd_price(x.ccy)
    return x.row * market.usd_price(x.ccy) * (1.0 + usd_moves(grid, scaled))


def collateral_usd_row(balance: float, ccy: str, grid: ScenarioGrid, model: DeribitPm,
                       market: MarketSnapshot) -> FloatArray:
    """USD change of a coin balance in each scenario of its pair: ``b·S·m`` (extended entries
    × extended_table_factor), sides per ``equity_side_impact``, gains less ``haircut``."""
    p = model.params
    ck = currency_key(ccy)
    cp = p.currency.get(ck)
    side = cp.equity_side_impact if cp is not None else "both"
    haircut = cp.haircut if cp is not None else 0.0
    m = usd_moves(grid, p.extended_pnl_scaling == "range_over_move")
    row = balance * market.usd_price(ccy) * m
    row[grid.n_standard:] *= p.currency_pair[grid.pair].extended_table_factor
    if side == "none":
        row[:] = 0.0
    elif side == "up":
        row = np.where(m > 0.0, row, 0.0)
    elif side == "down":
        row = np.where(m < 0.0, row, 0.0)
    return np.where(row > 0.0, row * (1.0 - haircut), row)


def pair_groups(model: DeribitPm, pairs: list[str]) -> list[list[str]]:
    """The pairs that share joint scenarios (one group) and the others (one group each)."""
    mode = model.params.cross_pair_scenarios
    if mode == "joint":
        return [pairs] if pairs else []
    if mode == "independent":
        return [[pk] for pk in pairs]
    cur = model.params.currency
    joint = [pk for pk in pairs
             if (c := pk.split("_", 1)[0]) in cur and cur[c].correlation_set]
    return ([joint] if joint else []) + [[pk] for pk in pairs if pk not in joint]


def cross_margin_unit(model: DeribitPm, unit: MarginUnit, account: Account,
                      market: MarketSnapshot) -> UnitMargin:
    """X:PM margin of the account unit (USD), see the module docstring."""
    p = model.params
    scaled = p.extended_pnl_scaling == "range_over_move"
    vectors, pos = model.positions(unit, account, market)
    grids: dict[str, ScenarioGrid] = {pk: rv.grid for pk, rv in vectors.items()}
    pos_pair = [pair_key(x.ins.underlying) for x in pos]
    usd_rows = [position_usd_row(x, grids[pk], scaled, market) for x, pk in zip(pos, pos_pair,
                                                                                strict=True)]
    # 1. coin collateral revalued in its pair's scenarios
    coll_rows: dict[str, FloatArray] = {}
    coll_pair: dict[str, str] = {}
    if p.collateral_revaluation != "off":
        for ccy, bal in unit.collateral.items():
            pk = pair_key(ccy)
            if bal == 0.0 or currency_key(ccy) == "usd" or pk not in p.currency_pair:
                continue
            if p.collateral_revaluation == "position_pairs" and pk not in grids:
                continue
            if pk not in grids:
                grids[pk] = model.grid(ccy)
            coll_rows[ccy] = collateral_usd_row(bal, ccy, grids[pk], model, market)
            coll_pair[ccy] = pk
    pairs = list(dict.fromkeys(pos_pair + list(coll_pair.values())))
    # 2. per pair: pre-aggregated and aggregated USD vectors
    pre: dict[str, FloatArray] = {}
    agg: dict[str, FloatArray] = {}
    for pk in pairs:
        g = grids[pk]
        rows = [r for r, q in zip(usd_rows, pos_pair, strict=True) if q == pk] + \
            [coll_rows[c] for c, q in coll_pair.items() if q == pk]
        pre[pk] = np.sum(rows, axis=0)
        agg[pk] = aggregate_usd(model, pre[pk][None, :], g, pair_currency(model, pk),
                                pk.split("_", 1)[0].upper(), market)[0]
    # 3. worst case per group of pairs; attribution inside each pair by its scale agg/pre
    share = [0.0] * len(pos)
    worst_total = 0.0
    groups: dict[str, dict[str, Any]] = {}
    worst_at: dict[str, int] = {}
    orphan = 0.0        # worst case of groups without positions (collateral_revaluation='all')
    for members in pair_groups(model, pairs):
        g0 = grids[members[0]]
        if any(grids[pk].n_scenarios != g0.n_scenarios for pk in members):
            raise ValueError("joint X:PM scenarios need grids of the same shape")
        total = np.sum([agg[pk] for pk in members], axis=0)
        w = int(worst_index(total[None, :], g0)[0])
        worst = max(0.0, -float(total[w]))
        worst_total += worst
        worst_at.update(dict.fromkeys(members, w))
        name = "+".join(members)
        groups[name] = {"pairs": members, "worst_case": worst,
                        "worst_case_bucket": g0.describe(w),
                        "worst_case_price_move": {pk: float(grids[pk].moves[w])
                                                  for pk in members}}
        if worst == 0.0:
            continue
        left = 0.0
        idx = [i for i, q in enumerate(pos_pair) if q in members]
        for pk in members:
            scale = float(agg[pk][w] / pre[pk][w]) if pre[pk][w] != 0.0 else 0.0
            for i in idx:
                if pos_pair[i] == pk:
                    share[i] = -float(usd_rows[i][w]) * scale
            left += sum(-float(coll_rows[c][w]) * scale for c, q in coll_pair.items()
                        if q == pk)
        groups[name]["collateral_share"] = left
        if not idx:
            orphan += left
            continue
        for i, s in zip(idx, pro_rata(left, [share[i] for i in idx]), strict=True):
            share[i] += s
    for i, s in enumerate(pro_rata(orphan, share)):
        share[i] += s
    # 4. roll shock, order margins, haircut
    roll_usd = [x.roll * market.usd_price(x.ccy) for x in pos]
    rmm = worst_total + sum(roll_usd)
    orders = {c.upper(): m for c, m in p.order_margins.get(account.id, {}).items()}
    order_usd = sum((m.open_orders_margin + m.mmp_margin + m.spot_margin) * market.usd_price(c)
                    for c, m in orders.items())
    hc = {ccy: p.currency[currency_key(ccy)].haircut for ccy in unit.collateral
          if currency_key(ccy) in p.currency}
    haircut_usd, haircut_per = collateral_haircut_usd(unit.collateral, hc, market) if pos \
        else (0.0, {})
    mm = p.mm_factor * rmm
    im = max(rmm + order_usd + haircut_usd, mm)
    fx = market.convert(1.0, "USD", unit.currency)
    extra = pro_rata(im - rmm, [s + r for s, r in zip(share, roll_usd, strict=True)])
    # 5. each position alone: its own USD vector, no collateral, no order margins
    positions = []
    for i, x in enumerate(pos):
        pk = pos_pair[i]
        alone = aggregate_usd(model, usd_rows[i][None, :], grids[pk], pair_currency(model, pk),
                              pk.split("_", 1)[0].upper(), market)[0]
        w = int(worst_index(alone[None, :], grids[pk])[0])
        own = max(0.0, -float(alone[w])) + roll_usd[i]
        positions.append(PositionMargin(
            index=x.j, symbol=x.ins.symbol, size=x.size, initial_margin=own * fx,
            maintenance_margin=p.mm_factor * own * fx,
            contribution=(share[i] + roll_usd[i] + extra[i]) * fx,
            notional=market.convert(notional(x.ins, x.size, market), x.ins.settle,
                                    unit.currency),
            details={"size_base": x.q, "pair": pk, "settle": x.ccy,
                     "pnl_worst_scenario_usd": float(usd_rows[i][worst_at[pk]]),
                     "worst_case_share_usd": share[i], "roll_shock_usd": roll_usd[i],
                     "order_margin_and_haircut_share_usd": extra[i],
                     "alone_risk_matrix_margin_usd": own,
                     "alone_worst_case_bucket": grids[pk].describe(w)}))
    components = {"worst_case": worst_total * fx, "roll_shock": sum(roll_usd) * fx,
                  "order_margins": order_usd * fx, "collateral_haircut": haircut_usd * fx,
                  "mm_floor": (im - rmm - order_usd - haircut_usd) * fx}
    initial: dict[str, FloatArray] = {}
    for x in pos:
        initial[x.ins.symbol] = initial.get(x.ins.symbol, 0.0) + x.row
    sym_pair = dict(zip((x.ins.symbol for x in pos), pos_pair, strict=True))
    details: dict[str, Any] = {
        "margin_model": "cross_pm",
        "scenarios": scenario_details(vectors),
        "initial_risk_vectors": {s: split(v, grids[sym_pair[s]]) for s, v in initial.items()},
        "collateral_risk_vectors_usd": {c: split(v, grids[coll_pair[c]])
                                        for c, v in coll_rows.items()},
        "pre_aggregated_risk_vectors_usd": {k: split(v, grids[k]) for k, v in pre.items()},
        "aggregated_risk_vectors_usd": {k: split(v, grids[k]) for k, v in agg.items()},
        "groups": groups,
        "margins": {"usd": {
            "maintenance_margin": mm, "initial_margin": im,
            "initial_margin_details": {
                "order_margins": {c: m.model_dump() for c, m in orders.items()},
                "collateral_haircut": haircut_per, "risk_matrix_margin": rmm,
                "risk_matrix_margin_details": {"worst_case": worst_total,
                                               "roll_shock": sum(roll_usd),
                                               "delta_shock": 0.0,
                                               "correlation_contingency": 0.0}}}},
        "contribution_rule": "each position's USD P&L in its group's worst scenario scaled by "
                             "its pair's aggregated/pre-aggregated ratio there; the collateral "
                             "rows' share spread pro rata over the group's positions; plus its "
                             "roll shock; order margins, haircut and the MM floor pro rata",
    }
    return UnitMargin(id=unit.id, currency=unit.currency, initial_margin=im * fx,
                      maintenance_margin=mm * fx, components=components,
                      positions=tuple(positions), details=details)

