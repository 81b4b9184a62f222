"""The exact worst-loss LP for the venue scenario-grid models (deribit-pm S:PM, span's scan risk):
its model of the requirement against the engine, against greedy, and one-instrument cases against
brute-force grid searches: for deribit-pm of the scenario part computed here from the published
formulas (``derived``: the Deribit grid of price buckets, inverse-future P&L ``q·x/(1+x)`` coin,
roll shock ``|q|·max(min_annualised_move, annualised_move_risk·T)`` — docs/models/deribit-pm.md),
not by the model's or the LP's code; for span of the engine's scan risk recomputed from scratch
at every grid point (independent of the LP)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from margin_engine.analysis.optimise import exact_grid
from margin_engine.analysis.optimise.candidates import Candidates, candidate_sizes, default_universe
from margin_engine.analysis.optimise.costs import trade_cost
from margin_engine.analysis.optimise.run import OptimiseConfig, optimise
from margin_engine.demo.run import write_sample
from margin_engine.io.loaders import load_book, load_market
from margin_engine.io.model_options import build_model
from margin_engine.live.fills import fill_account
from margin_engine.policy.assess import assess_account


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory):
    market_path, book_path, _ = write_sample(tmp_path_factory.mktemp("optgrid"), seed=7)
    return load_book(book_path), load_market(market_path)


@pytest.fixture(scope="module")
def demo(sample):
    book, mk = sample
    model, _ = build_model("deribit-pm", {}, None, mk)
    return book, mk, model


@pytest.fixture(scope="module", params=["deribit-pm", "span"])
def either(sample, request):
    book, mk = sample
    model, _ = build_model(request.param, {}, None, mk)
    return book, mk, model


def account(book, name):
    return next(a for a in book.accounts if a.id == name)


def im_after(model, acct, market, trades) -> float:
    for s, q in trades:
        acct = fill_account(acct, market, s, q)
    return assess_account(model, acct, market, liquidation_prices=False).initial_margin


@pytest.mark.parametrize("acct_id", ["basis-trader", "short-strangle-pm"])
def test_the_lp_model_is_the_engine_requirement(either, acct_id):
    book, mk, model = either
    acct = account(book, acct_id)
    cands = candidate_sizes(acct, mk, default_universe(acct, mk, model))
    prob = exact_grid.build_problem(model, acct, mk, cands.symbols)
    rng = np.random.default_rng(5)
    bound = np.array([cands.bound[s] for s in cands.symbols])
    for h in [np.zeros(len(bound)), *(rng.uniform(-0.5, 0.5, (3, len(bound))) * bound)]:
        trades = dict(zip(cands.symbols, h.tolist(), strict=True))
        assert prob.lp_objective(h) == pytest.approx(
            exact_grid.scenario_part(model, acct, mk, trades), rel=1e-9)


@pytest.mark.parametrize("acct_id", ["basis-trader", "short-strangle-pm", "miner-hedge"])
def test_exact_is_never_worse_than_greedy_and_never_raises_margin(either, acct_id):
    book, mk, model = either
    acct = account(book, acct_id)
    doc = optimise(model, acct, mk, OptimiseConfig(budget=300.0, max_steps=3, top=3))
    ex = doc["exact"]
    assert ex["applicable"] and ex["solved"], ex
    tol = 1e-6 * max(1.0, ex["objective_before"])
    assert ex["lower_bound"] <= ex["objective"] + tol
    assert ex["objective"] <= ex["greedy_objective"] + tol
    assert ex["objective"] <= ex["objective_before"] + tol
    assert ex["cost_usd"] <= 300.0 + 1e-6
    after = im_after(model, acct, mk, list(ex["trades"].items()))
    assert ex["initial_margin_after"] == pytest.approx(after, rel=1e-9)
    assert ex["suggested"] == (after <= doc["initial_margin"])
    assert ex["suggested"]  # on these accounts the add-ons outside F do not outgrow it


def _independent_part(model, acct, mk, sym: str, q: float) -> float:
    """Scenario part (USD) of an account of inverse futures with ``q`` contracts of ``sym``
    added: per coin, the worst loss over the standard price buckets (futures take the edge move
    in the extended table, times a factor ≤ 1, less a dampener ≥ 0: never worse), plus the
    roll shock."""
    p = model.params
    sizes: dict[str, float] = {}
    for pos in acct.positions:
        sizes[pos.symbol] = sizes.get(pos.symbol, 0.0) + pos.size
    sizes[sym] = sizes.get(sym, 0.0) + q
    total = 0.0
    for coin in sorted({mk.instrument(s).underlying for s in sizes}):
        pair = p.currency_pair[f"{coin.lower()}_usd"]
        assert pair.extended_table_factor <= 1.0
        n = p.buckets_count
        x = np.array([pair.price_range * (b - n) / n for b in range(2 * n + 1)])
        pnl = np.zeros_like(x)
        roll = 0.0
        cp = p.currency[coin.lower()]
        for s, size in sizes.items():
            ins = mk.instrument(s)
            if ins.underlying != coin:
                continue
            assert ins.inverse and not ins.is_option
            base = size * ins.contract_size / ins.mark_price  # coin
            pnl += base * x / (1 + x)
            t = mk.years_to_expiry(ins)
            g = {"linear": t, "sqrt": math.sqrt(t)}.get(p.roll_shock_term, 0.0)
            roll += abs(base) * max(cp.min_annualised_move, cp.annualised_move_risk * g)
        total += (max(0.0, float(-pnl.min())) + roll) * mk.index[coin]
    return total


def test_one_instrument_matches_a_brute_force_grid_search(demo):
    book, mk, model = demo
    acct = account(book, "basis-trader")
    sym = "BTC-PERPETUAL"
    bound = 400000.0  # contracts of 10 USD: ± about twice the account's BTC exposure
    cands = Candidates((sym,), {sym: (-bound, bound)}, {sym: bound})
    costs = {sym: trade_cost(mk.instrument(sym), mk)}
    prob = exact_grid.build_problem(model, acct, mk, (sym,))
    h, lower, *_ = exact_grid.solve(prob, cands, costs)
    assert _independent_part(model, acct, mk, sym, 0.0) == pytest.approx(
        exact_grid.scenario_part(model, acct, mk), rel=1e-9)
    grid = np.linspace(-bound, bound, 801)
    values = [_independent_part(model, acct, mk, sym, q) for q in grid]
    best = min(values)
    got = _independent_part(model, acct, mk, sym, float(h[0]))
    assert got == pytest.approx(exact_grid.scenario_part(model, acct, mk, {sym: float(h[0])}),
                                rel=1e-9)
    assert lower <= best + 1e-6 * best
    assert got <= best + 1e-6 * best
    assert got >= lower - 1e-6 * best
    assert got < 0.9 * values[len(grid) // 2]  # the hedge does something here


def test_span_one_instrument_matches_a_brute_force_grid_search(sample):
    book, mk = sample
    model, _ = build_model("span", {}, None, mk)
    acct = account(book, "basis-trader")
    sym = "BTC-PERPETUAL"
    bound = 400000.0
    cands = Candidates((sym,), {sym: (-bound, bound)}, {sym: bound})
    costs = {sym: trade_cost(mk.instrument(sym), mk)}
    prob = exact_grid.build_problem(model, acct, mk, (sym,))
    h, lower, *_ = exact_grid.solve(prob, cands, costs)
    grid = np.linspace(-bound, bound, 241)
    values = [exact_grid.scenario_part(model, acct, mk, {sym: float(q)}) for q in grid]
    best = min(values)
    got = exact_grid.scenario_part(model, acct, mk, {sym: float(h[0])})
    assert lower <= best + 1e-6 * best
    assert got <= best + 1e-6 * best
    assert got >= lower - 1e-6 * best
    assert got < 0.9 * values[len(grid) // 2]


def test_the_other_grid_models_say_why(demo):
    book, mk, _ = demo
    for name, acct_id, word in [("okx-pm", "short-strangle-pm", "greedy search only"),
                                ("derive-pmrm", "btc-long-cross", "greedy search only")]:
        model, _ = build_model(name, {}, None, mk)
        try:
            doc = optimise(model, account(book, acct_id), mk,
                           OptimiseConfig(budget=100.0, max_steps=1, top=1))
        except Exception as exc:  # the model does not margin that account
            pytest.fail(f"{name} {acct_id}: {exc}")
        assert not doc["exact"]["applicable"]
        assert word in doc["exact"]["reason"]
