"""Cascade simulator invariants (hypothesis) and a worked example derived by hand.

Invariants (issue 12): the ledger (Σ balances + fund + makers' cash) is conserved to the cent;
no account ends below zero equity unless the result reports it uncovered (and with winners
to claw from, nothing is uncovered); a higher maintenance margin never liquidates later on
the same path; with zero impact there is no amplification; a seed reproduces the run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from margin_engine.analysis.cascade.engine import CascadeConfig, simulate
from margin_engine.analysis.cascade.impact import NO_IMPACT, ImpactModel
from margin_engine.analysis.cascade.population import (
    Population,
    generate_population,
    isolate,
)
from margin_engine.analysis.cascade.shock import parse_shock
from margin_engine.domain.market import MarketSnapshot
from margin_engine.io.loaders import load_market
from margin_engine.models.core.registry import get_model

MODELS = ("binance-usdm", "hyperliquid", "dydx-v4")


EXAMPLE = Path(__file__).resolve().parents[3] / "docs" / "examples" / "market-2026-02-04.json"


@pytest.fixture(scope="module")
def market() -> MarketSnapshot:
    """BTCUSDT mark 73,005 and ETHUSDT (USDT-settled linear perpetuals) of the docs example."""
    return load_market(EXAMPLE)


def _run(market, model="binance-usdm", n=150, seed=1, shock="BTC:-12%~3,ETH:-15%~3",
         **cfg):
    pop = generate_population(n, market, seed=seed)
    return pop, simulate(get_model(model, {}), pop, market, parse_shock(shock),
                         CascadeConfig(**cfg))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=st.sampled_from(MODELS), seed=st.integers(0, 10_000),
       drop=st.integers(3, 40), steps=st.integers(1, 4), fund=st.sampled_from([0.0, 500.0, None]),
       y=st.sampled_from([0.0, 1.4e-4, 1e-3]))
def test_ledger_conserved_and_nobody_left_negative(market, model, seed, drop, steps, fund, y):
    _, r = _run(market, model, n=120, seed=seed, shock=f"BTC:-{drop}%~{steps},ETH:+{drop}%",
                  fund_usd=fund, impact=ImpactModel(y=y))
    assert r.ledger_end_cents == r.ledger_start_cents  # to the cent
    assert not r.rounds[:, 7].any()  # and after every round of liquidations
    assert r.fund_end_cents >= 0
    assert r.fund_draw_cents + r.clawback_cents + r.uncovered_cents == r.bad_debt_cents
    if r.uncovered_cents == 0:
        assert r.final_equity.min() >= -0.01  # at most a cent of rounding
    event(f"adl fills {'>0' if r.adl_fills else '0'}, bad debt {'>0' if r.bad_debt_cents else 0}")


def test_fund_empty_forces_adl_and_covers(market):
    # a deep one-way fall with no fund: bankrupt longs are deleveraged against the shorts
    _, r = _run(market, "hyperliquid", n=300, shock="BTC:-35%,ETH:-35%", fund_usd=0.0)
    assert r.adl_fills > 0
    assert r.ledger_end_cents == r.ledger_start_cents
    assert r.uncovered_cents == 0 and r.final_equity.min() >= -0.01


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=st.sampled_from(MODELS), seed=st.integers(0, 10_000), k=st.floats(1.05, 3.0))
def test_higher_maintenance_never_liquidates_later(market, model, seed, k):
    # zero impact and a fund large enough that no ADL couples the accounts: each account's
    # fate depends on its own margin only
    shock = "BTC:-20%~5,ETH:+10%~5"
    _, lo = _run(market, model, n=120, seed=seed, shock=shock, impact=NO_IMPACT,
                 fund_usd=1e9)
    _, hi = _run(market, model, n=120, seed=seed, shock=shock, impact=NO_IMPACT,
                 fund_usd=1e9, mm_multiplier=k)
    a, b = lo.first_liquidation, hi.first_liquidation
    assert np.all((a < 0) | ((b >= 0) & (b <= a)))
    assert lo.accounts_liquidated > 0 and hi.accounts_liquidated >= lo.accounts_liquidated


def test_zero_impact_no_amplification(market):
    _, r = _run(market, impact=NO_IMPACT, shock="BTC:-25%~2,ETH:-25%~2")
    assert r.liquidated_usd > 0
    assert np.array_equal(r.price_with, r.price_without)
    assert r.amplification() == pytest.approx([1.0, 1.0])
    _, r2 = _run(market, impact=ImpactModel(y=1e-3), shock="BTC:-25%~2,ETH:-25%~2")
    assert (r2.drawdown() > r2.drawdown(False)).all()  # with impact the fall is deeper


@pytest.mark.parametrize("model", ["dydx-v4", "binance-usdm"])
def test_seed_reproducible(market, model):
    kw = {"shock": "BTC:-30%,ETH:-30%", "fund_usd": 0.0, "seed": 7}
    _, a = _run(market, model, **kw)
    _, b = _run(market, model, **kw)
    assert np.array_equal(a.rounds, b.rounds) and np.array_equal(a.events, b.events)
    assert np.array_equal(a.final_equity, b.final_equity)
    _, c = _run(market, model, **{**kw, "seed": 8})
    assert not np.array_equal(a.final_equity, c.final_equity)


def test_one_account_by_hand(market):
    """Derived by hand: 1 BTC long entered at 73,000 with 1,000 collateral, BTC −1 %:
    equity = 1,000 + (72,275.00 − 73,000) = 275.00 at the new mark 72,275 (the market's
    73,005 × 0.99 = 72,274.95). binance-usdm bracket 1 maintenance 0.4 % (BTCUSDT table):
    MM = 289.10 > 275 → liquidated. dYdX rule closes 1 BTC at the mark (no impact):
    value 72,274.95; bankruptcy value = value − equity; surplus = equity = 274.95, fee =
    min(274.95, 0.5 % × 72,274.95 = 361.37) = 274.95 → the account ends at 0, the fund +274.95."""
    pop = Population(("a",), ("BTCUSDT",), "USDT", np.array([1000.0]), np.array([[1.0]]),
                     np.array([[73_000.0]]))
    r = simulate(get_model("binance-usdm", {}), pop, market, parse_shock("BTC:-1%"),
                 CascadeConfig(rule="dydx", impact=NO_IMPACT, fund_usd=0.0))
    assert r.first_liquidation.tolist() == [1]
    assert r.fees_cents == 27_495
    assert r.fund_end_cents == 27_495
    assert r.final_equity[0] == pytest.approx(0.0, abs=0.005)
    assert r.liquidated_usd == pytest.approx(72_274.95)


def test_isolated_splits_collateral(market):
    pop = generate_population(50, market, seed=3)
    two = Population(pop.ids, pop.symbols, pop.currency, pop.collateral,
                     np.column_stack([pop.sizes.sum(1), -pop.sizes.sum(1) / 30]),
                     np.column_stack([pop.entries.max(1), pop.entries.max(1) / 30]))
    iso = isolate(two)
    assert iso.n == 100 and iso.isolated
    assert iso.collateral.sum() == pytest.approx(two.collateral.sum())
    # derived: each half gets collateral × its notional share
    share = abs(two.sizes[0, 0] * two.entries[0, 0]) / np.abs(two.sizes[0] * two.entries[0]).sum()
    assert iso.collateral[0] == pytest.approx(two.collateral[0] * share)


def test_hyperliquid_rule_closes_a_fifth_of_a_large_position(market):
    """Derived by hand: 2.74 BTC long (200,020 USD at entry 73,000) with 4,000 collateral;
    BTC −1 % → mark 72,274.95, equity 4,000 − 2.74 × 725.05 = 2,013.36, below the
    maintenance of a 200 k position (1.25 % at 40×: about 2,476). Above 100,000 USD the
    Hyperliquid rule sends 20 % of the position: 0.548 BTC = 39,606.67 USD at the mark."""
    pop = Population(("w",), ("BTCUSDT",), "USDT", np.array([4000.0]), np.array([[2.74]]),
                     np.array([[73_000.0]]))
    r = simulate(get_model("hyperliquid", {}), pop, market, parse_shock("BTC:-1%"),
                 CascadeConfig(impact=NO_IMPACT, fund_usd=0.0))
    assert r.rule == "hyperliquid"
    assert r.events[0, 2] == pytest.approx(0.2 * 2.74 * 72_274.95)
    assert r.events[0, 3] == pytest.approx(4000 - 2.74 * 725.05)
    assert r.ledger_end_cents == r.ledger_start_cents
