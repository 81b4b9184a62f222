"""The exact hedge for a venue scenario-grid model: minimise the worst loss over the grid.

Deribit portfolio margin (S:PM, per settlement currency) charges, per risk vector ``k`` (currency
pair × settlement currency), ``worst_k = max(0, −min_s agg_ks)`` over its price × vol grid, plus a
roll shock ``Σ c_i·|q_i|`` on futures. Gains are only scaled (``pnl_offset`` ∈ [0, 1], capped at
``max_offsetable_pnl`` ≥ 0), so a gain never sets the worst case; an extended scenario's loss is
reduced by its dampener ``d_s`` ≥ 0 (``max(0, −pre_s − d_s)``). Hence the scenario part, summed
over vectors and converted to USD,

``F(h) = Σ_k fx_k·max(0, max_s (−v_ks − R_ksᵀh − d_ks)) + Σ_j c_j·|held_j + h_j| + const``

is a sum of maxima of affine functions of the hedge ``h`` (contracts) — a linear programme:
``min Σ_k fx_k·m_k + Σ_j c_j·a_j`` with ``m_k ≥ 0``, ``m_k ≥ −v_ks − R_ksᵀh − d_ks`` for every
scenario, ``a_j ≥ ±(held_j + h_j)``; the trading cost ``Σ_j cost_j(|h_j|) ≤ budget`` enters by the
same tangent cuts as :mod:`exact_lp`, so every plan the greedy search can afford is feasible and
the LP optimum is a lower bound on ``F`` over that set. ``F`` after the solve is read from the
engine (the unit's ``worst_case`` and ``roll_shock`` components, from scratch with the trades
filled), the optimality gap is ``F(h*) − bound``; add-ons outside ``F`` (order margins, rounding,
the policy's) are recomputed, not optimised.

Applies to ``deribit-pm`` with segregated collateral (S:PM), and to ``span``, whose scan risk is
the same sum of maxima: ``Σ_CC max(0, max_k Σ_j q_j·RA_jk)`` over the 16 scenarios of each
combined commodity (USD), so ``F`` there is the ``scan_risk`` component; SPAN's spread charges,
inter-commodity credits and short-option minimum (``max(scan + spreads − credit, SOM)``), formed
from the positions' deltas by ordered rules, are add-ons recomputed after, outside the guarantee.
Not here: X:PM (coin collateral is revalued in the same scenarios and the worst case is taken
over the account in USD — also an LP, not built yet); okx-pm and derive-pmrm (their worst-loss
terms are LP-representable, but the models form each leg's scenario P&L inside their rules and
expose no scenario P&L matrix).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import numpy as np
from scipy import sparse

from margin_engine.analysis.optimise.candidates import Candidates
from margin_engine.analysis.optimise.costs import TradeCost
from margin_engine.analysis.optimise.exact_lp import (
    ExactResult,
    plan_cost,
    run_highs,
    trading_cost_rows,
    within_budget,
)
from margin_engine.domain.book import Account, MarginMode, Position
from margin_engine.domain.market import MarketSnapshot
from margin_engine.live.fills import fill_account
from margin_engine.models.core.base import MarginModel
from margin_engine.models.venues.deribit_common import base_size, currency_key
from margin_engine.models.venues.deribit_pm import DeribitPm, _linear_ref, _years_move
from margin_engine.models.venues.span import Span
from margin_engine.models.venues.span_arrays import N_SCENARIOS

#: the models this solver covers
GridModel = DeribitPm | Span


@dataclass(frozen=True)
class GridBlock:
    """One risk vector: ``coef·max(0, max_s(−v_s − R_sᵀh − d_s))`` (``coef`` USD per unit of
    the vector's settlement currency)."""

    key: str
    coef: float
    v: np.ndarray  #: the account's pre-aggregated P&L [n]
    r: np.ndarray  #: candidates' P&L per contract [k, n] (zero rows for other vectors)
    deduct: np.ndarray  #: extended-scenario dampener deductions d_s ≥ 0 [n]


@dataclass(frozen=True)
class GridProblem:
    """What the worst-loss LP reads; amounts in USD."""

    symbols: tuple[str, ...]
    blocks: tuple[GridBlock, ...]
    roll: np.ndarray  #: c_j, USD of roll shock per contract of |held_j + h_j| [k]
    held: np.ndarray  #: the size the trade lands on (the first position in the symbol) [k]
    const: float  #: roll shock of positions no candidate trades, USD

    def lp_objective(self, h: np.ndarray) -> float:
        """``F(h)`` as the LP models it (USD)."""
        f = self.const + float(self.roll @ np.abs(self.held + h))
        for b in self.blocks:
            f += b.coef * max(0.0, float(np.max(-(b.v + h @ b.r) - b.deduct)))
        return f


def not_applicable(model: MarginModel, account: Account) -> str | None:
    """Why the worst-loss LP does not apply (``None`` when it does)."""
    if not isinstance(model, DeribitPm | Span):
        return (f"{model.name}: no exact solver (its requirement is not a convex function of "
                "one scenario P&L vector in this engine): greedy search only")
    if isinstance(model, DeribitPm) and model.params.collateral == "cross":
        return ("deribit-pm X:PM (cross collateral): the worst-loss LP covers S:PM "
                "(segregated) only: greedy search only")
    if account.margin_mode is MarginMode.ISOLATED:
        return "isolated account: each position is its own unit, a hedge opens another"
    return None


def scenario_part(model: GridModel, account: Account, market: MarketSnapshot,
                  trades: Mapping[str, float] | None = None) -> float:
    """The engine's own ``F`` over the account's units, USD, from scratch with ``trades``
    filled at the mark: ``worst_case + roll_shock`` (deribit-pm), ``scan_risk`` (span)."""
    for s, q in (trades or {}).items():
        if q != 0.0:
            account = fill_account(account, market, s, q)
    keys = ("scan_risk",) if isinstance(model, Span) else ("worst_case", "roll_shock")
    total = 0.0
    for unit in model.units(account, market):
        c = model.margin_unit(unit, account, market).components
        total += market.convert(sum(c[k] for k in keys), unit.currency, "USD")
    return total


def _deduct(model: DeribitPm, settle: str, grid: Any, market: MarketSnapshot) -> np.ndarray:
    """``d_s`` per scenario in the settlement currency (0 on the standard grid): what
    ``DeribitPm._aggregate`` takes off an extended loss."""
    p = model.params
    d = np.zeros(grid.n_scenarios)
    if p.extended_dampener_rule != "deductible":
        return d
    ns = grid.n_standard
    cp = p.currency[currency_key(settle)]
    damp = cp.extended_dampener
    if p.currency_amounts_in_usd:
        damp = market.convert(damp, "USD", settle)
        if currency_key(settle) != "usd":
            damp = damp / (1.0 + grid.edge[ns:])
    ratio = np.maximum(np.abs(grid.moves[ns:]) / grid.price_range - 1.0, 0.0)
    d[ns:] = ratio * damp
    return d


def _span_problem(model: Span, account: Account, market: MarketSnapshot,
                  symbols: tuple[str, ...]) -> GridProblem:
    """Per combined commodity, ``v = −PortRA`` and each candidate's ``−RA`` per contract (the
    model's own arrays, USD); a unit of one contract gives a candidate's array."""
    held = [(j, account.positions[j]) for u in model.units(account, market)
            for j in u.position_indices]

    def array(sym: str) -> np.ndarray:
        one = account.model_copy(update={"positions": (Position(symbol=sym, size=1.0),)})
        return model._leg(0, one, market).ra_contract

    und = {s: market.instrument(s).underlying for s in {q.symbol for _, q in held} | set(symbols)}
    blocks = []
    for cc in sorted(set(und.values())):
        v = -sum((q.size * array(q.symbol) for _, q in held if und[q.symbol] == cc),
                 np.zeros(N_SCENARIOS))
        r = np.array([-array(s) if und[s] == cc else np.zeros(N_SCENARIOS) for s in symbols])
        blocks.append(GridBlock(cc, 1.0, v, r.reshape(len(symbols), N_SCENARIOS),
                                np.zeros(N_SCENARIOS)))
    k = len(symbols)
    return GridProblem(tuple(symbols), tuple(blocks), np.zeros(k), np.zeros(k), 0.0)


def build_problem(model: GridModel, account: Account, market: MarketSnapshot,
                  symbols: tuple[str, ...]) -> GridProblem:
    """The account's risk vectors and the candidates' rows on the model's own grids."""
    if isinstance(model, Span):
        return _span_problem(model, account, market, symbols)
    p = model.params
    held_pos = [(j, q) for u in model.units(account, market) for j in u.position_indices
                for q in [account.positions[j]]]
    ins_all = {s: market.instrument(s) for s in
               {q.symbol for _, q in held_pos} | set(symbols)}
    vectors = model.risk_vectors(list(ins_all.values()), market)
    row: dict[str, np.ndarray] = {}
    grid_of: dict[str, Any] = {}
    for rv in vectors.values():
        for i, s in enumerate(rv.symbols):
            row[s], grid_of[s] = rv.pnl[i], rv.grid

    def vkey(s: str) -> str:
        i = ins_all[s]
        return f"{i.underlying.lower()}_{i.settle.lower()}"

    keys = sorted({vkey(s) for s in ins_all})
    k = len(symbols)
    blocks = []
    for key in keys:
        some = next(s for s in ins_all if vkey(s) == key)
        g, settle = grid_of[some], ins_all[some].settle
        v = np.zeros(g.n_scenarios)
        for _, q in held_pos:
            if vkey(q.symbol) == key:
                v += base_size(ins_all[q.symbol], q.size) * row[q.symbol]
        r = np.zeros((k, g.n_scenarios))
        for j, s in enumerate(symbols):
            if vkey(s) == key:
                r[j] = base_size(ins_all[s], 1.0) * row[s]
        blocks.append(GridBlock(key, market.convert(1.0, settle, "USD"), v, r,
                                _deduct(model, settle, g, market)))

    def roll_per_base(s: str) -> float:
        i = ins_all[s]
        if i.is_option:
            return 0.0
        cp = p.currency[currency_key(i.settle)]
        return market.convert(_linear_ref(i, market, p) * _years_move(
            market.years_to_expiry(i), cp, p.roll_shock_term), i.settle, "USD")

    first: dict[str, int] = {}
    for j, q in held_pos:
        first.setdefault(q.symbol, j)
    roll = np.array([roll_per_base(s) * abs(base_size(ins_all[s], 1.0)) for s in symbols])
    held = np.array([account.positions[first[s]].size if s in first else 0.0 for s in symbols])
    moved = {first[s] for s in symbols if s in first}
    const = sum(roll_per_base(q.symbol) * abs(base_size(ins_all[q.symbol], q.size))
                for j, q in held_pos if j not in moved)
    return GridProblem(tuple(symbols), tuple(blocks), roll, held, float(const))


def solve(prob: GridProblem, cands: Candidates, costs: Mapping[str, TradeCost],
          budget: float = math.inf) -> tuple[np.ndarray, float, float, int, int]:
    """Solve the worst-loss LP; returns ``(h, lower_bound, seconds, n_variables,
    n_constraints)``. Variables: ``h⁺, h⁻, z`` (cost), ``a`` (roll |·|) per candidate, then one
    ``m`` per block."""
    k, nb = len(prob.symbols), len(prob.blocks)
    nv = 4 * k + nb
    c = np.zeros(nv)
    c[3 * k: 4 * k] = prob.roll
    c[4 * k:] = [b.coef for b in prob.blocks]
    rows: list[Any] = []
    rhs: list[np.ndarray] = []
    for i, b in enumerate(prob.blocks):
        n = b.v.size
        # −R_s·(h⁺ − h⁻) − m ≤ v_s + d_s
        m = sparse.csr_matrix((np.full(n, -1.0), (np.arange(n), np.full(n, i))), shape=(n, nb))
        rows.append(sparse.hstack([sparse.csr_matrix(-b.r.T), sparse.csr_matrix(b.r.T),
                                   sparse.csr_matrix((n, 2 * k)), m]))
        rhs.append(b.v + b.deduct)
    eye = sparse.identity(k, format="csr")
    zero = sparse.csr_matrix((k, k))
    zb = sparse.csr_matrix((k, nb))
    #  (h⁺ − h⁻) − a ≤ −held ;  −(h⁺ − h⁻) − a ≤ held
    rows.append(sparse.hstack([eye, -eye, zero, -eye, zb]))
    rhs.append(-prob.held)
    rows.append(sparse.hstack([-eye, eye, zero, -eye, zb]))
    rhs.append(prob.held)
    cost_rows, cost_rhs = trading_cost_rows(prob.symbols, cands, costs, budget, nv)
    rows += cost_rows
    rhs += cost_rhs
    bounds = ([(0.0, cands.bound[s]) for s in prob.symbols] * 2 + [(0.0, None)] * (2 * k)
              + [(0.0, None)] * nb)
    h, fun, secs, nc = run_highs(c, rows, rhs, bounds, prob.symbols, cands)
    return h, fun + prob.const, secs, nv, nc


def exact_hedge(model: GridModel, account: Account, market: MarketSnapshot,
                cands: Candidates, costs: Mapping[str, TradeCost], *,
                budget: float = math.inf, initial_margin_before: float,
                recompute: Any) -> ExactResult:
    """The worst-loss LP hedge over ``cands``; ``objective`` and ``objective_before`` are the
    engine's ``F`` (:func:`scenario_part`), ``recompute(trades)`` the full initial margin from
    scratch (in the account's currency)."""
    prob = build_problem(model, account, market, cands.symbols)
    h, bound, secs, nv, nc = solve(prob, cands, costs, budget)
    h, more = within_budget(h, budget, lambda x: plan_cost(x, prob.symbols, costs),
                            lambda b: itemgetter(0, 2)(solve(prob, cands, costs, b)))
    secs += more
    trades = {s: float(q) for s, q in zip(prob.symbols, h.tolist(), strict=True) if q != 0.0}
    f0 = scenario_part(model, account, market)
    f = scenario_part(model, account, market, trades)
    return ExactResult(trades, plan_cost(h, prob.symbols, costs), f0, f, bound, f - bound,
                       initial_margin_before, recompute(trades), "USD", secs, nv, nc)
