"""The exact hedge for scenario-based models: the Rockafellar–Uryasev linear programme.

For a risk-based model (``historical-var`` excepted: VaR is not convex) the part of the initial
margin that hedges move is the unit's scenario measure ``M`` (expected shortfall at the model's
confidence, or the worst loss) plus the diversification cap. Since ``M`` is subadditive, the cap
add-on ``(1 − c)·max(0, S − M)`` (``S`` the sum of the per-underlying measures) makes that part

``F(h) = c·M(v + Rᵀh) + (1 − c)·Σ_u M(v_u + R_uᵀh)``  (``F = M`` without a cap)

with ``v`` the account's scenario P&L, ``R`` the candidates' P&L per contract and ``h`` the hedge
(contracts). Each ``M`` is linear-programming representable (Rockafellar & Uryasev, *Optimization
of conditional value-at-risk*, J. Risk 2(3), 2000): ``ES_p(L) = min_t t + Σ_s w_s (L_s − t)⁺ / p``
(with scenario weights ``w``; floored at 0 like the model); the worst loss is
``min m s.t. m ≥ L_s``. The trading cost ``Σ_j cost_j(|h_j|) ≤ budget`` is convex and entered by
tangent cuts, so every plan the greedy search can afford is feasible here: the LP optimum is a
lower bound on ``F`` over that set, hence never above the greedy plan's ``F``. The solution is
evaluated with the engine's own measures and its full initial margin recomputed from scratch; the
optimality gap is ``F(h*) − LP bound``. Solved with HiGHS (``scipy.optimize.linprog``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import numpy as np
from scipy import sparse
from scipy.optimize import linprog

from margin_engine.analysis.optimise.candidates import Candidates
from margin_engine.analysis.optimise.costs import TradeCost
from margin_engine.domain.book import Account, MarginMode
from margin_engine.domain.market import MarketSnapshot
from margin_engine.maths import risk_measures
from margin_engine.maths.risk_measures import normalise_weights
from margin_engine.models.core.base import MarginModel
from margin_engine.models.core.scenario_pnl import instrument_pnl
from margin_engine.models.risk_based.model import RiskBasedModel

#: Tangent cuts per instrument for the convex cost: at 0 and at ``bound·RATIO^-i``, i < CUTS
#: (geometric, so the relative under-statement between cuts stays small at every size).
CUTS = 40
RATIO = 1.4


class SolverError(RuntimeError):
    """HiGHS did not return an optimum (reported in the answer, not raised to the user)."""


@dataclass(frozen=True)
class ScenarioProblem:
    """What the LP and the evaluation of ``F`` read (see the module docstring)."""

    measure: str  #: "es" or "worst_loss"
    p: float  #: tail probability 1 − confidence (ES)
    weights: np.ndarray  #: probabilities [n]
    cap: float | None  #: diversification cap c (None: no cap)
    v: np.ndarray  #: account P&L [n]
    v_und: dict[str, np.ndarray]  #: account P&L per underlying
    symbols: tuple[str, ...]
    r: np.ndarray  #: candidates' P&L per contract [k, n]
    und_of: tuple[str, ...]  #: each candidate's underlying
    currency: str

    def measure_of(self, pnl: np.ndarray) -> float:
        """The engine's measure of one P&L vector (``risk_measures``, not the LP)."""
        if self.measure == "worst_loss":
            return risk_measures.worst_loss(pnl)
        return risk_measures.expected_shortfall(pnl, 1.0 - self.p, self.weights)

    def objective(self, h: np.ndarray) -> float:
        """``F(h)``: market risk plus the diversification-cap add-on, in ``currency``."""
        total = self.v + h @ self.r
        m = self.measure_of(total)
        unds = {u for u, x in self.v_und.items() if x.any()} | {
            u for u, q in zip(self.und_of, h.tolist(), strict=True) if q != 0.0}
        if self.cap is None or len(unds) <= 1:
            return m
        s = 0.0
        for u in sorted(unds):
            mine = np.array([x == u for x in self.und_of])
            s += self.measure_of(self.v_und.get(u, 0.0 * self.v) + h[mine] @ self.r[mine])
        return m + (1.0 - self.cap) * max(0.0, s - m)


def not_applicable(model: MarginModel, account: Account, market: MarketSnapshot) -> str | None:
    """Why the exact solver does not apply (``None`` when it does)."""
    if not isinstance(model, RiskBasedModel):
        return (f"{model.name} is not a scenario-P&L model of this engine (its rules are not "
                "a convex measure over scenarios): greedy search only")
    if model.params.measure == "var":
        return f"{model.name} measures VaR, which is not convex: greedy search only"
    if account.margin_mode is MarginMode.ISOLATED:
        return "isolated account: each position is its own unit, a hedge opens another"
    units = model.units(account, market)
    if len(units) != 1:
        return f"{len(units)} margin units (per settlement currency): exact solver needs one"
    return None


def build_problem(model: RiskBasedModel, account: Account, market: MarketSnapshot,
                  symbols: tuple[str, ...]) -> ScenarioProblem:
    """The account's scenario P&L and the candidates' on the model's scenario set."""
    unit = model.units(account, market)[0]
    ccy = unit.currency
    held = [account.positions[j] for j in unit.position_indices]
    hins = [market.instrument(q.symbol) for q in held]
    cins = [market.instrument(s) for s in symbols]
    unds = tuple(sorted({i.underlying for i in hins} | {i.underlying for i in cins}))
    scen = model.scenario_set(market, unds)
    tp = model.params.vol_tenor_power
    n = scen.n
    ph = (instrument_pnl(hins, market, scen, ccy, vol_tenor_power=tp) if hins
          else np.empty((0, n)))
    sizes = np.array([q.size for q in held])
    v = sizes @ ph if hins else np.zeros(n)
    v_und = {u: sizes[[i.underlying == u for i in hins]] @ ph[[i.underlying == u for i in hins]]
             for u in {i.underlying for i in hins}}
    r = instrument_pnl(cins, market, scen, ccy, vol_tenor_power=tp) if cins else np.empty((0, n))
    w = normalise_weights(scen.weights, n)
    p = model.params
    return ScenarioProblem(p.measure, 1.0 - p.confidence,
                           np.full(n, 1.0 / n) if w is None else w, p.diversification_cap,
                           v, v_und, tuple(symbols), r, tuple(i.underlying for i in cins), ccy)


@dataclass(frozen=True)
class ExactResult:
    """The LP's hedge, its bound and the evaluated objective (amounts in ``currency``)."""

    trades: dict[str, float]
    cost_usd: float
    objective_before: float  #: F(0)
    objective: float  #: F(h*) with the engine's measures
    lower_bound: float  #: the LP optimum
    gap: float  #: objective − lower_bound (≥ 0 up to solver tolerance)
    initial_margin_before: float
    initial_margin_after: float  #: recomputed from scratch with the trades filled
    currency: str
    solve_seconds: float
    variables: int
    constraints: int

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["trades"] = dict(self.trades)
        d["relative_gap"] = self.gap / self.lower_bound if self.lower_bound > 0 else 0.0
        # the guarantee is on F; add-ons outside it are recomputed, and a plan whose full
        # requirement rises is reported, not suggested
        d["suggested"] = self.initial_margin_after <= self.initial_margin_before
        return d


def solve(prob: ScenarioProblem, cands: Candidates, costs: Mapping[str, TradeCost],
          budget: float = math.inf) -> tuple[np.ndarray, float, float, int, int]:
    """Solve the LP; returns ``(h, lower_bound, seconds, n_variables, n_constraints)``."""
    k = len(prob.symbols)
    n = prob.v.size
    blocks: list[tuple[float, str | None]] = [(1.0, None)]
    unds = sorted(set(prob.v_und) | set(prob.und_of))
    if prob.cap is not None and len(unds) > 1:
        blocks = [(prob.cap, None)] + [(1.0 - prob.cap, u) for u in unds]
    es = prob.measure == "es"
    per = n + 2 if es else 1  # (m, t, u_1..u_n) or (m)
    nv = 3 * k + len(blocks) * per
    c = np.zeros(nv)
    rows: list[sparse.spmatrix] = []
    rhs: list[np.ndarray] = []
    for b, (coef, u) in enumerate(blocks):
        base = 3 * k + b * per
        c[base] = coef
        if u is None:
            rb, vb = prob.r, prob.v
        else:
            mine = np.array([x == u for x in prob.und_of], dtype=bool)
            rb = np.where(mine[:, None], prob.r, 0.0)
            vb = prob.v_und.get(u, np.zeros(n))
        # loss_s = −(v_s + R_s·(h⁺ − h⁻))
        hpart = sparse.hstack([sparse.csr_matrix(-rb.T), sparse.csr_matrix(rb.T),
                               sparse.csr_matrix((n, k))])
        if es:
            # loss_s − t − u_s ≤ 0
            blk = sparse.lil_matrix((n, nv - 3 * k))
            for s in range(n):
                blk[s, b * per + 1] = -1.0
                blk[s, b * per + 2 + s] = -1.0
            rows.append(sparse.hstack([hpart, blk.tocsr()]))
            rhs.append(vb)
            # t + Σ w_s u_s / p − m ≤ 0
            row = np.zeros(nv)
            row[base] = -1.0
            row[base + 1] = 1.0
            row[base + 2: base + 2 + n] = prob.weights / prob.p
            rows.append(sparse.csr_matrix(row))
            rhs.append(np.zeros(1))
        else:
            blk = sparse.lil_matrix((n, nv - 3 * k))
            for s in range(n):
                blk[s, b * per] = -1.0
            rows.append(sparse.hstack([hpart, blk.tocsr()]))
            rhs.append(vb)
    # cost: z_j ≥ cost(q) + slope(q)·(h⁺_j + h⁻_j − q) at CUTS points of [0, bound]
    bounds: list[tuple[float | None, float | None]] = []
    cost_rows, cost_rhs = trading_cost_rows(prob.symbols, cands, costs, budget, nv)
    rows += cost_rows
    rhs += cost_rhs
    bounds += [(0.0, cands.bound[s]) for s in prob.symbols] * 2
    bounds += [(0.0, None)] * k
    for _ in blocks:
        bounds += [(0.0, None)] + ([(None, None)] + [(0.0, None)] * n if es else [])
    h, fun, secs, nc = run_highs(c, rows, rhs, bounds, prob.symbols, cands)
    return h, fun, secs, nv, nc


def plan_cost(h: np.ndarray, symbols: Sequence[str], costs: Mapping[str, TradeCost]) -> float:
    """Trading cost (USD) of the trades ``h`` in ``symbols``."""
    return float(sum(costs[s].cost(q) for s, q in zip(symbols, h.tolist(), strict=True)))


def exact_hedge(model: RiskBasedModel, account: Account, market: MarketSnapshot,
                cands: Candidates, costs: Mapping[str, TradeCost], *,
                budget: float = math.inf, initial_margin_before: float,
                recompute: Any) -> ExactResult:
    """The LP hedge over ``cands`` (see the module docstring); ``recompute(trades)`` gives the
    initial margin from scratch with the trades filled."""
    prob = build_problem(model, account, market, cands.symbols)
    h, bound, secs, nv, nc = solve(prob, cands, costs, budget)
    h, more = within_budget(h, budget, lambda x: plan_cost(x, prob.symbols, costs),
                            lambda b: itemgetter(0, 2)(solve(prob, cands, costs, b)))
    secs += more
    trades = {s: float(q) for s, q in zip(prob.symbols, h.tolist(), strict=True) if q != 0.0}
    f0 = prob.objective(np.zeros(len(prob.symbols)))
    f = prob.objective(h)
    im = recompute(trades)
    return ExactResult(trades, plan_cost(h, prob.symbols, costs), f0, f, bound, f - bound,
                       initial_margin_before, im, prob.currency, secs, nv, nc)


def trading_cost_rows(symbols: Sequence[str], cands: Candidates, costs: Mapping[str, TradeCost],
                      budget: float, nv: int) -> tuple[list[Any], list[Any]]:
    """The trading-cost rows of the LPs (variables laid out ``h⁺``, ``h⁻``, ``z`` for the
    ``k`` symbols first, ``nv`` in all): ``z_j ≥ cost(q) + slope(q)·(h⁺_j + h⁻_j − q)`` at
    CUTS points of ``[0, bound]`` (the cost is concave, so the cuts bound it from above
    between points), and ``Σ z_j ≤ budget`` when the budget is finite."""
    k = len(symbols)
    rows: list[Any] = []
    rhs: list[Any] = []
    for j, sym in enumerate(symbols):
        tc = costs[sym]
        for q in [0.0, *(cands.bound[sym] * RATIO ** -np.arange(CUTS))]:
            row = np.zeros(nv)
            sl = tc.slope(float(q))
            row[j] = row[k + j] = sl
            row[2 * k + j] = -1.0
            rows.append(sparse.csr_matrix(row))
            rhs.append(np.array([sl * q - tc.cost(float(q))]))
    if math.isfinite(budget):
        row = np.zeros(nv)
        row[2 * k: 3 * k] = 1.0
        rows.append(sparse.csr_matrix(row))
        rhs.append(np.array([budget]))
    return rows, rhs


def within_budget(h: np.ndarray, budget: float, cost: Callable[[np.ndarray], float],
                  resolve: Callable[[float], tuple[np.ndarray, float]]
                  ) -> tuple[np.ndarray, float]:
    """Trade sizes ``h`` brought within ``budget``: the tangent cuts under-state the cost a
    little between cut points, so re-solve (``resolve(inner) -> (h, seconds)``, at most 4 times)
    with the budget shrunk by the excess (the first solve's optimum stays the lower bound),
    then scale ``h`` down by bisection if it is still over. Returns ``h`` and the seconds the
    re-solves took."""
    secs, inner = 0.0, budget
    for _ in range(4):
        spent = cost(h)
        if not math.isfinite(budget) or spent <= budget:
            break
        inner *= budget / spent
        h, more = resolve(inner)
        secs += more
    if math.isfinite(budget) and cost(h) > budget:
        lo, hi = 0.0, 1.0
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if cost(mid * h) <= budget else (lo, mid)
        h = lo * h
    return h, secs


def run_highs(c: np.ndarray, rows: list[Any], rhs: list[Any], bounds: list[Any],
              symbols: Sequence[str], cands: Candidates) -> tuple[np.ndarray, float, float, int]:
    """Solve ``min c·x, A x ≤ b`` (``rows``/``rhs`` stacked) with HiGHS; the trades are
    ``h = h⁺ − h⁻`` (the first ``2k`` variables), sizes below 1e-9 of their bound set to 0.
    Returns ``h``, the objective, the solve's seconds and the number of constraints."""
    k = len(symbols)
    a = sparse.vstack(rows).tocsr()
    t0 = time.perf_counter()
    res = linprog(c, A_ub=a, b_ub=np.concatenate(rhs), bounds=bounds, method="highs")
    secs = time.perf_counter() - t0
    if res.status != 0:
        raise SolverError(f"HiGHS: {res.message}")
    h = res.x[:k] - res.x[k: 2 * k]
    h[np.abs(h) <= 1e-9 * np.maximum(1.0, np.array([cands.bound[s] for s in symbols]))] = 0
    return h, float(res.fun), secs, a.shape[0]
