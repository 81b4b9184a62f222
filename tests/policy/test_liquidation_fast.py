"""The fast liquidation solver against the reference one, on randomised books, for every model.

``fast_liquidation_band`` (what ``compute`` uses) must give the band of the reference
``solve_liquidation_band`` (every grid point, fully shifted market) to 1e-9 relative in the
factor; in practice they agree to the bit, as both end in Brent's method on the same bracket.
The books are drawn from the demo book's positions with random sizes and collateral so that
some units are safe, some have one or two liquidation sides, and some are already liquidated.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import pytest

from margin_engine.demo.synthetic import generate_book, generate_market
from margin_engine.domain.book import Account, Book
from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError
from margin_engine.io.loaders import parse_model
from margin_engine.io.model_options import build_model
from margin_engine.models.core.base import MarginModel, ModelParams
from margin_engine.models.core.registry import model_class, model_names
from margin_engine.models.core.results import UnitMargin
from margin_engine.models.core.revaluation import shift_underlying
from margin_engine.models.core.units import MarginUnit
from margin_engine.policy.assess import assess_account
from margin_engine.policy.health import HealthPolicy
from margin_engine.policy.liquidation import (
    UnitShifter,
    fast_liquidation_band,
    solve_liquidation_band,
)

REL = 1e-9
MARKET_DOC = generate_market(seed=7)
BOOK_DOC = generate_book(MARKET_DOC, seed=7)
MARKET = parse_model(MarketSnapshot, MARKET_DOC, "market")
GENERIC = [n for n in model_names() if not model_class(n).has_closed_form_liquidation()]
#: Cheaper Monte Carlo for the reference solver's 320 evaluations per side.
OPTIONS: dict[str, dict[str, Any]] = {"monte-carlo-es": {"n_paths": 400}}


def _model(name: str) -> MarginModel:
    return build_model(name, dict(OPTIONS.get(name, {})), None, MARKET)[0]


def _accepted(model: MarginModel) -> list[dict[str, Any]]:
    """The demo accounts the model margins (as JSON documents)."""
    book = parse_model(Book, BOOK_DOC, "book")
    out = []
    for raw, account in zip(BOOK_DOC["accounts"], book.accounts, strict=True):
        try:
            assess_account(model, account, MARKET, liquidation_prices=False)
        except InputError:
            continue
        out.append(raw)
    return out


def _random_accounts(model: MarginModel, n: int, seed: int) -> list[Account]:
    """Accounts of 1-3 of a demo account's positions, sizes scaled by 0.3-2 (sign kept) and
    collateral by a log-uniform factor in [0.05, 5], that the model accepts."""
    rng = np.random.default_rng(seed)
    pool = _accepted(model)
    out: list[Account] = []
    while len(out) < n:
        src = copy.deepcopy(pool[int(rng.integers(len(pool)))])
        k = int(rng.integers(1, min(3, len(src["positions"])) + 1))
        picks = sorted(rng.choice(len(src["positions"]), size=k, replace=False).tolist())
        positions = []
        for j in picks:
            p = src["positions"][j]
            scale = float(rng.uniform(0.3, 2.0))
            size = p["size"] * scale
            p["size"] = float(round(size)) if float(p["size"]).is_integer() else size
            if p["size"] == 0:
                continue
            positions.append(p)
        if not positions:
            continue
        src["positions"] = positions
        factor = float(np.exp(rng.uniform(np.log(0.05), np.log(5.0))))
        src["collateral"] = {c: v * factor for c, v in src["collateral"].items()}
        src["id"] = f"{src['id']}-{len(out)}"
        try:
            account = parse_model(Book, {"accounts": [src]}, "book").accounts[0]
            assess_account(model, account, MARKET, liquidation_prices=False)
        except InputError:
            continue
        out.append(account)
    return out


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=REL, abs_tol=0.0)


@pytest.mark.parametrize("name", GENERIC)
def test_fast_band_equals_the_reference(name: str) -> None:
    model = _model(name)
    policy = HealthPolicy()
    found_root = 0
    for account in _random_accounts(model, 3, seed=len(name)):
        for unit in model.units(account, MARKET):
            unds = sorted({MARKET.instrument(account.positions[j].symbol).underlying
                           for j in unit.position_indices})
            for und in unds:
                fast = fast_liquidation_band(model, unit, account, MARKET, und, policy)
                ref = solve_liquidation_band(model, unit, account, MARKET, und, policy)
                assert all(_same(a, b) for a, b in zip(fast, ref, strict=True)), (
                    f"{account.id} {unit.id} {und}: fast {fast} vs reference {ref}")
                found_root += sum(b is not None for b in ref)
    assert found_root > 0  # the draw exercised the root finding, not only "no root"


@pytest.mark.parametrize("name", [n for n in model_names() if n in (
    "historical-var", "filtered-es", "monte-carlo-es")])
@pytest.mark.parametrize("apc", ["none", "buffer", "floor", "stressed_weight"])
def test_risk_based_maintenance_margin_path_equals_margin_unit(name: str, apc: str) -> None:
    """The MM-only path the solver calls gives ``margin_unit``'s MM to the last bit, with the
    diversification cap (two underlyings), liquidity and every anti-procyclicality option."""
    model = build_model(name, {**OPTIONS.get(name, {}), "apc": apc,
                               "short_option_min_rate": 0.05}, None, MARKET)[0]
    for account in _random_accounts(model, 4, seed=3):
        for unit in model.units(account, MARKET):
            for factor in (1.0, 0.8, 1.3):
                moved = shift_underlying(MARKET, "BTC", factor)
                assert (model.maintenance_margin(unit, account, moved)
                        == model.margin_unit(unit, account, moved).maintenance_margin)


def test_unit_shifter_moves_what_shift_underlying_moves() -> None:
    """Held instruments, the futures a held option takes its forward from, and the index move
    exactly as in ``shift_underlying``; everything else stays put."""
    doc = copy.deepcopy(MARKET_DOC)
    opts = [i for i in doc["instruments"] if i["kind"] == "option" and i["underlying"] == "BTC"]
    dated = {i["expiry"] for i in doc["instruments"] if i["kind"] == "future"}
    no_fwd = next(i for i in opts if i["expiry"] in dated)
    no_fwd.pop("underlying_price", None)  # its forward comes from the same-expiry future
    market = parse_model(MarketSnapshot, doc, "market")
    perp = next(i.symbol for i in market.instruments
                if i.kind.value == "perpetual" and i.underlying == "BTC")
    held = {opts[0]["symbol"], opts[1]["symbol"], no_fwd["symbol"], perp}
    fut = next(i.symbol for i in market.instruments
               if i.kind.value == "future" and i.expiry is not None
               and i.expiry.isoformat().replace("+00:00", "Z") == no_fwd["expiry"])
    shifter = UnitShifter(market, "BTC", held)
    for factor in (0.37, 1.0, 2.5):
        fast, full = shifter.at(factor), shift_underlying(market, "BTC", factor)
        assert fast.index == full.index
        for ins in market.instruments:
            got = fast.instrument(ins.symbol)
            if ins.symbol in held or ins.symbol == fut:
                assert got == full.instrument(ins.symbol)
            else:
                assert got == ins
        assert [i.symbol for i in fast.instruments] == [i.symbol for i in market.instruments]
        for sym in held:
            assert fast.forward(fast.instrument(sym)) == full.forward(full.instrument(sym))


def test_compute_reports_the_fast_band() -> None:
    """``assess_account`` (``compute``) reports the reference band times the reference price."""
    model = _model("deribit-pm")
    account = _random_accounts(model, 1, seed=5)[0]
    report = assess_account(model, account, MARKET)
    unit = model.units(account, MARKET)[0]
    for pos in report.positions:
        ins = MARKET.instrument(pos.margin.symbol)
        lo, hi = solve_liquidation_band(model, unit, account, MARKET, ins.underlying,
                                        HealthPolicy())
        ref_price = MARKET.index[ins.underlying] if ins.is_option else ins.mark_price
        assert ref_price is not None and pos.liquidation_range is not None
        for got, f in zip(pos.liquidation_range, (lo, hi), strict=True):
            assert _same(got, None if f is None else ref_price * f)


class _RefusesAbove(MarginModel):
    """MM 10% of |size|·mark; refuses markets with BTC above 1.24× today's (as a model whose
    brackets end would), to test the solver past the reference's first crossing."""

    name, version, source, summary = "test-refuses-above", "0", "test", "test"
    Params = ModelParams

    def margin_unit(self, unit: MarginUnit, account: Account,
                    market: MarketSnapshot) -> UnitMargin:
        if market.index["BTC"] > 1.24 * MARKET.index["BTC"]:
            raise InputError("size", "beyond the last bracket")
        mm = 0.0
        for j in unit.position_indices:
            mark = market.instrument(account.positions[j].symbol).mark_price
            assert mark is not None
            mm += 0.1 * abs(account.positions[j].size) * mark
        return UnitMargin(unit.id, unit.currency, mm, mm, {}, ())


def test_a_model_error_past_the_first_crossing_falls_back_to_the_reference_scan() -> None:
    """Short 1 BTC perpetual (entry = mark M), collateral 0.32·M: surplus
    0.32·M − M·(f − 1) − 0.1·M·f = 0 at f = 1.32 / 1.1 = 1.2 (derived by hand). The reference
    stops at grid factor 1.2225; the schedule's next point, 1.259, is refused by the model."""
    perp = next(i for i in MARKET.instruments if i.kind.value == "perpetual"
                and i.underlying == "BTC" and not i.inverse)
    assert perp.mark_price is not None
    account = parse_model(Book, {"accounts": [{
        "id": "a", "margin_mode": "cross", "collateral": {perp.settle: 0.32 * perp.mark_price},
        "positions": [{"symbol": perp.symbol, "size": -1, "entry_price": perp.mark_price}]}]},
        "book").accounts[0]
    model = _RefusesAbove()
    unit = model.units(account, MARKET)[0]
    policy = HealthPolicy()
    ref = solve_liquidation_band(model, unit, account, MARKET, "BTC", policy)
    fast = fast_liquidation_band(model, unit, account, MARKET, "BTC", policy)
    assert ref[0] is None and ref[1] is not None
    assert math.isclose(ref[1], 1.2, rel_tol=1e-9)
    assert fast == ref
