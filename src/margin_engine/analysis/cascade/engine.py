"""The cascade: rounds of re-margining (through the live book), liquidation, impact and
re-marking at every time step, until nothing more liquidates.

Per step ``t`` (step 0 is the market as given), the exogenous path sets each coin's price; the
impact displacement of earlier liquidations moves it further (``ImpactModel``). Then, round
after round:

1. **Re-margin.** The marks go to the :class:`~margin_engine.live.LiveBook` (one market update);
   its maintenance margin (times ``mm_multiplier``: a stress knob and the dynamic controller's
   lever) and equity say who is liquidatable: ``equity < 0`` or ``0 < MM`` and
   ``equity ≤ MM`` (``policy.health.status``).
2. **Size.** A solvent account closes part of its largest position by the venue rule
   (``minimal``: just back to maintenance after costs; ``hyperliquid``: whole, 20 % at a time
   above 100,000 USD; ``dydx``: whole). A bankrupt one (equity ≤ 0) closes everything.
3. **Fund or ADL.** Bankrupt accounts whose expected deficit the insurance fund can pay (in
   account order) go to the book; the others are **auto-deleveraged**: their positions are
   closed at the bankruptcy price against opposite positions in the venue's ADL ranking
   (Hyperliquid: ``(mark/entry)·leverage``; Binance: ``PnL% × margin ratio``; dYdX: a seeded
   random order), counterparties that the price would take below zero equity skipped.
4. **Execute.** Per market, the net flow of the book orders moves the price by the square-root
   law; every order fills at the flow's average price. Cash is integer cents: what an account
   receives the book's makers pay.
5. **Settle.** The surplus over the bankruptcy value pays a fee (≤ ``fee_rate`` of the fill) to
   the fund; a flat account left with a negative balance is a deficit (bad debt): the fund
   pays what it can, the rest is clawed back from the ranked winners (up to their unrealised
   profit); what nobody can pay stays ``uncovered``.
6. **Re-mark.** The permanent share of the move stays; the transient share decays over the
   round (and over the step between steps). The fills and transfers go to the live book in one
   batch (fills at the mark plus one collateral transfer per account: the same equity).

Σ balances + fund + makers' cash is constant to the cent (the ledger; tested).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from margin_engine.analysis.cascade.impact import ImpactModel
from margin_engine.analysis.cascade.population import Population, to_book
from margin_engine.analysis.cascade.shock import PricePath
from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError
from margin_engine.live import LiveBook
from margin_engine.models.core.base import MarginModel

RULES = ("minimal", "hyperliquid", "dydx")
_RULE_OF_MODEL = {"hyperliquid": "hyperliquid", "dydx-v4": "dydx"}
HYPERLIQUID_STEP_USD = 100_000.0  # Hyperliquid docs "Liquidations" (crypto-venues.md §5.3)


def rule_for(model_name: str) -> str:
    """The venue liquidation rule of a model (``minimal`` for Binance and risk-based)."""
    return _RULE_OF_MODEL.get(model_name, "minimal")


@dataclass(frozen=True)
class CascadeConfig:
    """Parameters of the liquidation engine.

    Parameters
    ----------
    rule : {"auto", "minimal", "hyperliquid", "dydx"}
        Liquidation size rule; ``auto`` follows the model (docs/liquidation.md §2).
    fee_rate : float
        Cap of the liquidation fee, a fraction of the fill value. Default 0.005: dYdX
        ``max_liquidation_fee_ppm`` 5,000 (LiquidationsConfig_Default at v4-chain 84d4664,
        2026-03-04; crypto-venues.md §4.3).
    cost_rate : float
        Expected fee plus slippage rate the ``minimal`` rule sizes for (0.006; UNCONFIRMED,
        as the docs/liquidation.md example).
    fund_usd : float or None
        Insurance fund at the start (USD); None: 1 % of the population's collateral
        (UNCONFIRMED; venue funds are published in USD, not against a population).
    min_order_usd : float
        Smallest partial order (USD notional): smaller positions close whole.
    max_rounds : int
        Rounds per step before giving up (the result says whether a step hit it).
    mm_multiplier : float
        Maintenance margin multiplier (1: the model as it is).
    impact : ImpactModel
    seed : int
        Seed of the dYdX ADL order.
    """

    rule: str = "auto"
    fee_rate: float = 0.005
    cost_rate: float = 0.006
    fund_usd: float | None = None
    min_order_usd: float = 100.0
    max_rounds: int = 500
    mm_multiplier: float = 1.0
    impact: ImpactModel = field(default_factory=ImpactModel)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.rule not in ("auto", *RULES):
            raise InputError("rule", f"unknown rule {self.rule!r} (auto, {', '.join(RULES)})")
        for name in ("fee_rate", "cost_rate", "min_order_usd", "mm_multiplier"):
            v = getattr(self, name)
            if not math.isfinite(v) or v < 0:
                raise InputError(name, f"must be a finite number >= 0, got {v!r}")
        if self.fund_usd is not None and (not math.isfinite(self.fund_usd) or self.fund_usd < 0):
            raise InputError("fund_usd", f"must be a finite number >= 0, got {self.fund_usd!r}")
        if self.max_rounds < 1:
            raise InputError("max_rounds", "must be >= 1")


@dataclass(frozen=True)
class CascadeResult:
    """What a cascade did. Money in USD unless the name says cents.

    ``rounds`` columns: step, round, accounts liquidated, notional liquidated on the book, by
    ADL, fees, fund draw, ledger change since the start (cents; 0 when conserved);
    ``events`` (one row per account liquidation): step, account index, notional closed (USD
    at the mark), account value before (USD).
    """

    model: str
    rule: str
    symbols: tuple[str, ...]
    price_without: np.ndarray
    price_with: np.ndarray
    rounds: np.ndarray
    events: np.ndarray
    first_liquidation: np.ndarray
    fund_start_cents: int
    fund_end_cents: int
    fees_cents: int
    fund_draw_cents: int
    bad_debt_cents: int
    clawback_cents: int
    uncovered_cents: int
    adl_fills: int
    ledger_start_cents: int
    ledger_end_cents: int
    final_equity: np.ndarray
    capital_usd: float
    capped_steps: int

    @property
    def liquidated_usd(self) -> float:
        """Notional liquidated (book + ADL), USD."""
        return float(self.rounds[:, 3].sum() + self.rounds[:, 4].sum()) if self.rounds.size \
            else 0.0

    @property
    def accounts_liquidated(self) -> int:
        return int((self.first_liquidation >= 0).sum())

    def liquidated_by_step(self) -> np.ndarray:
        """Notional liquidated (USD) at each step."""
        out = np.zeros(self.price_without.shape[0])
        if self.rounds.size:
            np.add.at(out, self.rounds[:, 0].astype(np.int64),
                      self.rounds[:, 3] + self.rounds[:, 4])
        return out

    def drawdown(self, with_cascade: bool = True) -> np.ndarray:
        """Largest fall from step 0 of each market (a fraction, ≥ 0)."""
        p = self.price_with if with_cascade else self.price_without
        return np.maximum(0.0, 1.0 - p.min(axis=0) / p[0])

    def amplification(self) -> np.ndarray:
        """Per market: drawdown with the cascade ÷ without (1: none; NaN: no fall)."""
        base = self.drawdown(False)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(base > 0, self.drawdown(True) / np.where(base > 0, base, 1), np.nan)


def _cents(x: np.ndarray) -> np.ndarray:
    return np.rint(np.asarray(x, dtype=float) * 100.0).astype(np.int64)


class _Sim:
    """The mutable state of one run (arrays); :func:`simulate` drives it."""

    def __init__(self, model: MarginModel, pop: Population, market: MarketSnapshot,
                 path: PricePath, cfg: CascadeConfig) -> None:
        self.model, self.pop, self.cfg = model, pop, cfg
        self.rule = rule_for(model.name) if cfg.rule == "auto" else cfg.rule
        self.live = LiveBook(model, to_book(pop), market)
        self.syms = pop.symbols
        ins = [market.instrument(s) for s in self.syms]
        self.coins = [i.underlying for i in ins]
        missing = sorted(set(path.coins) - set(self.coins))
        if missing:
            raise InputError("--shock" if path.label.startswith("shock") else "--path",
                             f"no perpetual in the population on {missing[0]}")
        self.mark0 = np.array([float(i.mark_price or 0.0) for i in ins])
        self.index0 = np.array([market.usd_price(c) for c in self.coins])
        cols = [path.coins.index(c) if c in path.coins else -1 for c in self.coins]
        self.rel = np.ones((path.relative.shape[0], len(self.syms)))
        for j, c in enumerate(cols):
            if c >= 0:
                self.rel[:, j] = path.relative[:, c]
        self.q = pop.sizes.astype(float).copy()
        self.entry = pop.entries.astype(float).copy()
        self.bal = _cents(pop.collateral) - _cents((self.q * self.entry).sum(axis=1))
        fund = cfg.fund_usd if cfg.fund_usd is not None else 0.01 * float(pop.collateral.sum())
        self.fund = round(fund * 100)
        self.fund0 = self.fund
        self.makers = 0
        self.fees = self.draw = self.bad = self.claw = self.uncovered = self.adl_fills = 0
        self.ledger0 = self.ledger()
        arr = self.live.margin_arrays()
        self.capital0 = float(arr["im"].sum())  # initial margin the policy demands at step 0
        self.d_perm = np.zeros(len(self.syms))
        self.d_tr = np.zeros(len(self.syms))
        self.first = np.full(pop.n, -1, dtype=np.int64)
        self.rounds: list[tuple[float, ...]] = []
        self.events: list[np.ndarray] = []
        self.rng = np.random.default_rng(cfg.seed)
        self.capped = 0
        self.ids = list(pop.ids)
        self.live_q = self.q.copy()
        self.extra = np.empty(0, dtype=np.int64)
        self.mm_now = np.zeros(pop.n)

    def ledger(self) -> int:
        return int(self.bal.sum()) + self.fund + self.makers

    def marks(self, t: int) -> np.ndarray:
        return self.mark0 * self.rel[t] * np.maximum(1.0 + self.d_perm + self.d_tr, 0.01)

    def push_marks(self, m: np.ndarray, t: int) -> None:
        idx = self.index0 * self.rel[t] * np.maximum(1.0 + self.d_perm + self.d_tr, 0.01)
        self.live.update_market({
            "index": dict(zip(self.coins, idx.tolist(), strict=True)),
            "instruments": [{"symbol": s, "mark_price": p}
                            for s, p in zip(self.syms, m.tolist(), strict=True)]})

    def equity(self, m: np.ndarray) -> np.ndarray:
        return self.bal / 100.0 + self.q @ m

    def adl_score(self, m: np.ndarray, j: int, eq: np.ndarray) -> np.ndarray:
        """Higher first; per account for market ``j``."""
        q, e = self.q[:, j], self.entry[:, j]
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.rule == "hyperliquid":
                ratio = np.where(q > 0, m[j] / e, e / m[j])
                s = ratio * np.abs(q) * m[j] / np.maximum(eq, 1e-9)
            elif self.rule == "dydx":
                s = self.rng.random(q.size)
            else:
                upnl = (self.q * (m - self.entry)).sum(axis=1)
                wb = self.bal / 100.0 + (self.q * self.entry).sum(axis=1)
                s = (np.maximum(upnl, 0.0) / np.maximum(wb, 1.0) * self.mm_now
                     / np.maximum(eq, 1e-9))
        return np.nan_to_num(s, nan=-np.inf)

    # -- one round ---------------------------------------------------------------------------
    def round(self, t: int, r: int, mult: float) -> bool:
        cfg, imp = self.cfg, self.cfg.impact
        m = self.marks(t)
        self.push_marks(m, t)
        arr = self.live.margin_arrays()
        self.mm_now = arr["mm"] * mult
        eq_live = arr["eq"]
        has = (self.q != 0).any(axis=1)
        liq = has & ((eq_live < 0) | ((self.mm_now > 0) & (eq_live <= self.mm_now)))
        if not liq.any():
            return False
        idx = np.flatnonzero(liq)
        E = self.equity(m)
        Ei, MMi = E[idx], self.mm_now[idx]
        notion = np.abs(self.q[idx]) * m
        tot = notion.sum(axis=1)
        k = np.arange(idx.size)
        j = notion.argmax(axis=1)
        Vj = notion[k, j]
        bankrupt = Ei <= 0
        if self.rule == "dydx":
            x = Vj
        elif self.rule == "hyperliquid":
            x = np.where(Vj > HYPERLIQUID_STEP_USD, 0.2 * Vj, Vj)
        else:
            rate = MMi / np.maximum(tot, 1e-300)
            with np.errstate(divide="ignore", invalid="ignore"):
                need = (MMi - Ei) / (rate - cfg.cost_rate)
            x = np.where(rate > cfg.cost_rate, np.maximum(need, cfg.min_order_usd), Vj)
            x = np.where(Vj <= cfg.min_order_usd, Vj, x)
        full = x >= Vj * (1.0 - 1e-12)
        dq = np.zeros((idx.size, len(self.syms)))
        qj = self.q[idx, j]
        dq[k, j] = np.where(full, -qj, -np.sign(qj) * np.minimum(x, Vj) / m[j])
        dq[bankrupt] = -self.q[idx[bankrupt]]
        # -- fund or ADL for the bankrupt ---------------------------------------------------
        book = np.ones(idx.size, dtype=bool)
        prelim = np.abs((dq * (self.q[idx] != 0)).sum(axis=0)) * m
        slip = (np.abs(dq) * m * (2.0 / 3.0) * imp.move(prelim)).sum(axis=1)
        bk = np.flatnonzero(bankrupt)
        adl_rows = np.empty(0, dtype=np.int64)
        if bk.size:
            est = _cents(-Ei[bk] + slip[bk])
            fits = np.cumsum(est) <= self.fund
            adl_rows = bk[~fits]
        adl_done = self.deleverage(idx, adl_rows, dq, m, E) if adl_rows.size else \
            np.empty(0, dtype=np.int64)
        book[adl_done] = False
        # -- execute on the book ------------------------------------------------------------
        bi = idx[book]
        bdq = dq[book]
        net = bdq.sum(axis=0)
        move = imp.move(np.abs(net) * m)
        sgn = np.sign(net)
        pavg = m * (1.0 + sgn * (2.0 / 3.0) * move)
        cash_ij = _cents(-bdq * pavg)
        cash = cash_ij.sum(axis=1)
        self.bal[bi] += cash
        self.makers -= int(cash.sum())
        self.q[bi] += bdq
        self.q[np.abs(self.q) < 1e-15] = 0.0
        # fee: the surplus over the bankruptcy value, capped
        share = np.divide((np.abs(bdq) * m).sum(axis=1), tot[book], out=np.ones(bi.size),
                          where=tot[book] > 0)
        bval = np.ceil(((-bdq * m).sum(axis=1) - Ei[book] * share) * 100.0 - 1e-6)
        surplus = cash - bval.astype(np.int64)
        cap = np.floor(cfg.fee_rate * np.abs(cash) + 1e-9).astype(np.int64)
        fee = np.clip(surplus, 0, cap)
        self.bal[bi] -= fee
        self.fund += int(fee.sum())
        self.fees += int(fee.sum())
        # deficits of flat accounts: fund, then clawback
        flat = ~(self.q[bi] != 0).any(axis=1)
        dfc = np.where(flat & (self.bal[bi] < 0), -self.bal[bi], 0)
        drawn = 0
        if dfc.any():
            self.bad += int(dfc.sum())
            cum = np.cumsum(dfc)
            cover = np.clip(self.fund - (cum - dfc), 0, dfc)
            self.bal[bi] += cover
            drawn = int(cover.sum())
            self.fund -= drawn
            self.draw += drawn
            rest = dfc - cover
            if rest.any():
                self.clawback(bi, rest, m)
        # -- book-keeping -------------------------------------------------------------------
        self.sync(np.concatenate([bi, idx[adl_done]]), m, eq_live)
        self.first[idx] = np.where(self.first[idx] < 0, t, self.first[idx])
        closed = (np.abs(dq) * m).sum(axis=1)
        self.events.append(np.column_stack([np.full(idx.size, t), idx, closed, Ei]))
        adl_usd = float(closed[adl_done].sum())
        self.rounds.append((t, r, idx.size, float(closed[book].sum()), adl_usd,
                            int(fee.sum()) / 100, drawn / 100,
                            float(self.ledger() - self.ledger0)))
        self.d_perm += imp.permanent * sgn * move
        self.d_tr = (self.d_tr + (1.0 - imp.permanent) * sgn * move) * imp.decay(
            imp.round_seconds)
        return True

    def deleverage(self, idx: np.ndarray, rows: np.ndarray, dq: np.ndarray, m: np.ndarray,
                   E: np.ndarray) -> np.ndarray:
        """ADL of bankrupt accounts ``idx[rows]`` (all positions) at the bankruptcy price;
        returns the rows done (the others go to the book)."""
        acc = idx[rows]
        busy = np.zeros(self.pop.n, dtype=bool)
        busy[idx] = True
        done = np.ones(rows.size, dtype=bool)
        tot = (np.abs(self.q[acc]) * m).sum(axis=1)
        # per-market cash of each account: its share of −balance (bankruptcy value)
        share = np.abs(self.q[acc]) * m / np.maximum(tot, 1e-300)[:, None]
        cash = _cents(self.q[acc] * m - E[acc][:, None] * share)
        last = (self.q[acc] != 0).cumsum(axis=1).argmax(axis=1)
        cash[np.arange(acc.size), last] += -self.bal[acc] - cash.sum(axis=1)
        plans = []
        for j in range(len(self.syms)):
            for side in (1.0, -1.0):
                g = np.flatnonzero((np.sign(self.q[acc, j]) == side) & done)
                if not g.size:
                    continue
                need = float(np.abs(self.q[acc[g], j]).sum())
                c_total = int(cash[g, j].sum())
                pb = abs(c_total) / 100.0 / need if need else m[j]
                eq = self.equity(m)
                cand = np.flatnonzero((np.sign(self.q[:, j]) == -side) & ~busy & (eq > 0)
                                      & (eq > np.abs(self.q[:, j]) * abs(pb - m[j])))
                size = np.abs(self.q[cand, j])
                if size.sum() < need * (1 - 1e-12):
                    done[g] = False  # nobody to take it: to the book
                    continue
                order = cand[np.argsort(-self.adl_score(m, j, eq)[cand], kind="stable")]
                size = np.abs(self.q[order, j])
                cum = np.cumsum(size)
                take = np.clip(need - (cum - size), 0.0, size)
                use = take > 0
                plans.append((j, side, g, order[use], take[use], c_total, need))
        changed = True
        while changed:  # an account refused in one market goes to the book in all of them
            changed = False
            for plan in plans:
                g = plan[2]
                if done[g].any() and not done[g].all():
                    done[g] = False
                    changed = True
        for j, side, g, cps, take, c_total, need in plans:
            if not done[g].all():
                continue
            pay = np.floor(c_total * take / need).astype(np.int64)
            pay[0] += c_total - int(pay.sum())
            self.bal[acc[g]] += cash[g, j]
            self.bal[cps] -= pay
            self.q[cps, j] += side * take
            self.q[acc[g], j] = 0.0
            self.adl_fills += int(cps.size)
            self.extra = np.union1d(self.extra, cps)
        self.q[np.abs(self.q) < 1e-15] = 0.0
        return rows[done]

    def clawback(self, bi: np.ndarray, rest: np.ndarray, m: np.ndarray) -> None:
        """Cover ``rest`` cents of the accounts ``bi`` from the winners' unrealised profit."""
        eq = self.equity(m)
        upnl = (self.q * (m - self.entry)).sum(axis=1)
        avail = np.floor(np.minimum(upnl, eq) * 100.0).astype(np.int64)
        avail[bi] = 0
        score = upnl / np.maximum(eq, 1.0)
        order = np.argsort(-score, kind="stable")
        order = order[avail[order] > 0]
        need = int(rest.sum())
        cum = np.cumsum(avail[order])
        take = np.clip(need - (cum - avail[order]), 0, avail[order])
        got = int(take.sum())
        self.bal[order] -= take
        self.claw += got
        # give what was got to the accounts in order
        cum_r = np.cumsum(rest)
        give = np.clip(got - (cum_r - rest), 0, rest)
        self.bal[bi] += give
        self.uncovered += int((rest - give).sum())
        self.extra = np.union1d(self.extra, order[take > 0])

    def sync(self, rows: np.ndarray, m: np.ndarray, eq_live: np.ndarray) -> None:
        """Send the changed accounts to the live book in one batch: fills at the mark (which
        leave equity unchanged) and one transfer per account making its equity the ledger's."""
        rows = np.union1d(rows, self.extra).astype(np.int64)
        self.extra = np.empty(0, np.int64)
        if not rows.size:
            return
        dq = self.q[rows] - self.live_q[rows]
        rr, jj = np.nonzero(dq)
        fills = [(self.ids[r], self.syms[j], float(d), float(m[j]))
                 for r, j, d in zip(rows[rr].tolist(), jj.tolist(), dq[rr, jj].tolist(),
                                    strict=True)]
        delta = self.equity(m)[rows] - eq_live[rows]
        deposits = [(self.ids[r], self.pop.currency, float(d))
                    for r, d in zip(rows.tolist(), delta.tolist(), strict=True) if d != 0.0]
        self.live.apply_fills(fills, deposits)
        self.live_q[rows] = self.q[rows]


def simulate(model: MarginModel, population: Population, market: MarketSnapshot,
             path: PricePath, config: CascadeConfig | None = None,
             multipliers: np.ndarray | None = None) -> CascadeResult:
    """Run the cascade of ``population`` on ``market`` along ``path``.

    Parameters
    ----------
    model : MarginModel
        The margin model the live book computes with.
    population : Population
    market : MarketSnapshot
        The market at step 0 (it prices the population's perpetuals).
    path : PricePath
        Exogenous relative prices per coin; coins the path does not name stay still.
    config : CascadeConfig, optional
    multipliers : ndarray, optional
        Maintenance multiplier at each step (the dynamic controller's), shape (steps + 1,);
        ``config.mm_multiplier`` at every step otherwise.

    Returns
    -------
    CascadeResult

    Raises
    ------
    InputError
        When the path names a coin the population holds no perpetual on, or the live book
        refuses the population.
    """
    cfg = config or CascadeConfig()
    sim = _Sim(model, population, market, path, cfg)
    T = path.steps
    mult = np.full(T + 1, cfg.mm_multiplier) if multipliers is None else np.asarray(
        multipliers, dtype=float)
    if mult.shape != (T + 1,) or not np.all(np.isfinite(mult)) or np.any(mult < 0):
        raise InputError("multipliers", f"need {T + 1} finite numbers >= 0")
    with_cascade = np.empty((T + 1, len(sim.syms)))
    for t in range(T + 1):
        if t > 0:
            sim.d_tr *= cfg.impact.decay(path.step_seconds)
        for r in range(cfg.max_rounds):
            if not sim.round(t, r, float(mult[t])):
                break
        else:
            sim.capped += 1
        with_cascade[t] = sim.marks(t)
    rounds = np.array(sim.rounds, dtype=float).reshape(-1, 8)
    events = np.concatenate(sim.events) if sim.events else np.empty((0, 4))
    return CascadeResult(
        model=model.name, rule=sim.rule, symbols=sim.syms,
        price_without=sim.mark0 * sim.rel, price_with=with_cascade, rounds=rounds,
        events=events, first_liquidation=sim.first, fund_start_cents=sim.fund0,
        fund_end_cents=sim.fund, fees_cents=sim.fees, fund_draw_cents=sim.draw,
        bad_debt_cents=sim.bad, clawback_cents=sim.claw, uncovered_cents=sim.uncovered,
        adl_fills=sim.adl_fills, ledger_start_cents=sim.ledger0,
        ledger_end_cents=sim.ledger(), final_equity=sim.equity(sim.marks(T)),
        capital_usd=sim.capital0, capped_steps=sim.capped)
