"""The whole-book liquidation solver (``live.liquidation.book_bands``) against the per-unit one.

For every model without a closed-form liquidation price, on randomised accounts (1-3 of a demo
account's positions, random sizes and collateral: safe units, units with one or two liquidation
sides, units already at maintenance, units on two underlyings), each unit's band on each
underlying equals ``fast_liquidation_band``'s to 1e-9 relative (``None`` where it gives
``None``); and ``assess_book`` with the solver reports what it reports without.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import replace
from functools import partial

import numpy as np
import pytest

from margin_engine.domain.book import Account, Book, net_positions
from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError
from margin_engine.io.model_options import build_model
from margin_engine.live.book import LiveBook
from margin_engine.live.engines import SCAN_FROM_UNITS, positions_per_move, scans_whole_book
from margin_engine.live.liquidation import book_bands
from margin_engine.models.core.base import MarginModel
from margin_engine.models.core.results import PositionMargin, UnitMargin
from margin_engine.models.core.units import MarginUnit
from margin_engine.policy.assess import AccountReport, assess_book
from margin_engine.policy.health import HealthPolicy
from margin_engine.policy.liquidation import Band, fast_liquidation_band

from ..policy.test_liquidation_fast import (
    GENERIC,
    MARKET,
    _model,
    _random_accounts,
    _RefusesAbove,
)

REL = 1e-9


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=REL, abs_tol=0.0)


def _same_band(a: Band, b: Band) -> bool:
    return all(_same(x, y) for x, y in zip(a, b, strict=True))


def _check_bands(model: MarginModel, accounts: list[Account], per_move: float = 0.0
                 ) -> Counter[str]:
    """``book_bands`` (by default moving the book to every grid point asked for) equals
    ``fast_liquidation_band`` unit by unit; what kinds of band the draw held."""
    policy = HealthPolicy()
    accounts = [net_positions(a, MARKET) for a in accounts]
    units = [model.units(a, MARKET) for a in accounts]
    got = book_bands(model, accounts, units, MARKET, policy, every_engine=True,
                     per_move=per_move)
    kinds: Counter[str] = Counter()
    for account, us, bands in zip(accounts, units, got, strict=True):
        assert len(bands) == len(us)
        for unit, by_und in zip(us, bands, strict=True):
            unds = {MARKET.instrument(account.positions[j].symbol).underlying
                    for j in unit.position_indices}
            assert set(by_und) == unds
            kinds["multi-underlying"] += len(unds) > 1
            for und, band in by_und.items():
                want = fast_liquidation_band(model, unit, account, MARKET, und, policy)
                assert _same_band(band, want), (
                    f"{account.id} {unit.id} {und}: book {band} vs per unit {want}")
                kinds["at maintenance"] += want == (1.0, 1.0)
                kinds["root"] += sum(b is not None for b in want) * (want != (1.0, 1.0))
                kinds["no root"] += sum(b is None for b in want)
    return kinds


@pytest.mark.parametrize("name", GENERIC)
def test_book_bands_equal_the_per_unit_solver(name: str) -> None:
    """Every engine (fewer accounts where ``compute`` does not scan: the check of the machinery
    on those engines, kept cheap)."""
    model = _model(name)
    n = 8 if scans_whole_book(model, SCAN_FROM_UNITS) else 3
    kinds = _check_bands(model, _random_accounts(model, n, seed=11 + len(name)))
    assert kinds["root"] > 0 and kinds["no root"] > 0, kinds  # both outcomes exercised


#: The risk-based family with every per-position add-on the engine computes over arrays
#: (liquidity on the market's order books, concentration, both minimum charges, the credit
#: add-on of unrated accounts) and each APC: the engine's requirement, not only its market risk.
RISK_VARIANTS: dict[str, tuple[str, dict[str, object]]] = {
    "filtered-es:buffer+addons": ("filtered-es", {
        "apc": "buffer", "liquidity_threshold_usd": 2_000.0,
        "open_interest": {i.symbol: 40.0 for i in MARKET.instruments},
        "short_option_min_rate": 0.08, "min_per_contract_usd": 3.0, "credit_unrated": 0.1}),
    "historical-var:none+minimum": ("historical-var", {
        "apc": "none", "min_per_contract_usd": 400.0, "short_option_min_rate": 0.3}),
    "filtered-es:floor": ("filtered-es", {"apc": "floor"}),
    "monte-carlo-es:floor": ("monte-carlo-es", {"n_paths": 200, "apc": "floor"}),
}


@pytest.mark.parametrize("variant", list(RISK_VARIANTS))
def test_the_risk_engines_surplus_is_the_models_on_shifted_markets(variant: str) -> None:
    """The live risk engine's equity − MM of every unit, add-ons included, equals the model's
    (``surplus_function``) today and on markets with BTC moved down and up."""
    from margin_engine.models.core.revaluation import shift_underlying
    from margin_engine.policy.liquidation import surplus_function

    name, options = RISK_VARIANTS[variant]
    model = build_model(name, dict(options), None, MARKET)[0]
    accounts = [net_positions(a, MARKET) for a in _random_accounts(model, 6, seed=21)]
    live = LiveBook(model, Book.model_construct(accounts=tuple(accounts)), MARKET)
    slots = live.live_slots()
    units = [u for a in accounts for u in model.units(a, MARKET)]
    owners = [a for a in accounts for _ in model.units(a, MARKET)]
    assert [u.position_indices for u in units] == [live.unit(s).position_indices
                                                   for s in slots]
    for factor in (1.0, 0.55, 1.7):
        live.move_market(shift_underlying(MARKET, "BTC", factor), frozenset({"BTC"}))
        got = live.unit_surplus(slots).tolist()
        want = [surplus_function(model, u, a, MARKET, "BTC", HealthPolicy())(factor)
                for u, a in zip(units, owners, strict=True)]
        assert all(math.isclose(x, y, rel_tol=REL, abs_tol=1e-9 * abs(y) + 1e-12)
                   for x, y in zip(got, want, strict=True)), (factor, got, want)


@pytest.mark.parametrize("name", ["okx-pm", "deribit-pm"])
def test_an_engines_surplus_function_is_the_per_unit_solvers(name: str) -> None:
    """An engine's own ``surplus_function`` (the Brent stage's) gives every unit the per-unit
    solver's equity − MM on each underlying it holds, today and moved down and up, and leaves
    the engine's cached figures as they were."""
    from margin_engine.policy.liquidation import fast_surplus_function

    model = _model(name)
    accounts = [net_positions(a, MARKET) for a in _random_accounts(model, 8, seed=33)]
    live = LiveBook(model, Book.model_construct(accounts=tuple(accounts)), MARKET)
    slots = live.live_slots()
    before = [m.tolist() for m in live.engine.margins(slots)]
    checked = 0
    for s in slots:
        unit, account = live.unit(s), live.account_object(live.unit_account(s))
        for und in sorted({MARKET.instrument(account.positions[j].symbol).underlying
                           for j in unit.position_indices}):
            got = live.engine.surplus_function(s, und)
            want = fast_surplus_function(model, unit, account, MARKET, und, HealthPolicy())
            for factor in (1.0, 0.41, 0.93, 1.08, 2.6):
                x, y = got(factor), want(factor)
                assert math.isclose(x, y, rel_tol=REL, abs_tol=1e-9 * abs(y) + 1e-12), (
                    s, und, factor, x, y)
                checked += 1
    assert checked > 20
    assert [m.tolist() for m in live.engine.margins(slots)] == before


@pytest.mark.parametrize("per_move", [0.0, 1.0])
@pytest.mark.parametrize("variant", list(RISK_VARIANTS))
def test_book_bands_of_the_risk_family_equal_the_per_unit_solver(variant: str,
                                                                 per_move: float) -> None:
    """The scan of the risk-based family under every APC and with every add-on, moving the
    book to every grid point asked for (``per_move`` 0) or only to those most units ask for,
    the others evaluated unit by unit (1: the schedule's first points, which every walk asks
    for, are moves; the bisections, a few units each, are not)."""
    name, options = RISK_VARIANTS[variant]
    model = build_model(name, dict(options), None, MARKET)[0]
    kinds = _check_bands(model, _random_accounts(model, 6, seed=5 + len(variant)), per_move)
    assert kinds["root"] > 0 and kinds["no root"] > 0, kinds


def test_the_draws_hold_every_kind_of_unit() -> None:
    """Across two models, the random accounts include units already at maintenance, units on
    two underlyings, sides with and without a root (so the parametrised test above covers
    them)."""
    kinds: Counter[str] = Counter()
    for name in ("okx-pm", "span"):
        model = _model(name)
        kinds += _check_bands(model, _random_accounts(model, 12, seed=4))
    assert all(kinds[k] > 0 for k in ("at maintenance", "multi-underlying", "root",
                                      "no root")), kinds


def _liquidation_fields(reports: list[AccountReport]
                        ) -> list[tuple[float | None, tuple[float | None, float | None] | None]]:
    return [(p.liquidation_price, p.liquidation_range) for r in reports for p in r.positions]


@pytest.mark.parametrize("name", ["span", "deribit-pm"])
def test_assess_book_with_the_solver_reports_the_same(name: str) -> None:
    """Everything but the liquidation prices is the same object-for-object; those agree to
    1e-9 relative."""
    model = _model(name)
    book = Book(accounts=tuple(_random_accounts(model, 6, seed=2)))
    plain = assess_book(model, book, MARKET)
    fast = assess_book(_model(name), book, MARKET, band_solver=book_bands)
    for a, b in zip(fast, plain, strict=True):
        assert (a.initial_margin, a.maintenance_margin, a.equity, a.units) == (
            b.initial_margin, b.maintenance_margin, b.equity, b.units)
        assert [p.margin for p in a.positions] == [p.margin for p in b.positions]
    found = 0
    for (lp, band), (lp0, band0) in zip(_liquidation_fields(fast), _liquidation_fields(plain),
                                        strict=True):
        assert _same(lp, lp0)
        assert band is not None and band0 is not None and _same_band(band, band0)
        found += lp is not None
    assert found > 0


class _RefusesAboveByPosition(_RefusesAbove):
    """:class:`_RefusesAbove` with its positions in the requirement (so that the report lists
    them, with their liquidation prices)."""

    def margin_unit(self, unit: MarginUnit, account: Account,
                    market: MarketSnapshot) -> UnitMargin:
        req = super().margin_unit(unit, account, market)
        return replace(req, positions=tuple(
            PositionMargin(j, account.positions[j].symbol, account.positions[j].size,
                           req.initial_margin, req.maintenance_margin, req.initial_margin, 0.0)
            for j in unit.position_indices))


@pytest.mark.parametrize("name", GENERIC)
def test_compute_scans_only_where_it_pays(name: str) -> None:
    """Without ``every_engine`` the bands of a model whose engine does not scan are all left to
    the per-unit solver; the scanning engines are the scenario grids and the risk-based family
    (here made to move the book at every point, ``per_move=0``), and deribit-standard's from
    ``SCAN_FROM_UNITS`` units on."""
    model = _model(name)
    accounts = [net_positions(a, MARKET) for a in _random_accounts(model, 1, seed=3)]
    units = [model.units(a, MARKET) for a in accounts]
    got = book_bands(model, accounts, units, MARKET, HealthPolicy(), per_move=0.0)
    grid = name in ("span", "okx-pm", "deribit-pm", "derive-pmrm", "filtered-es",
                    "historical-var", "monte-carlo-es")
    assert scans_whole_book(model, 1) is grid
    assert scans_whole_book(model, SCAN_FROM_UNITS) is (grid or name == "deribit-standard")
    assert all(bool(b) is grid for us in got for b in us)


@pytest.mark.parametrize("scanned", [False, True])
def test_the_risk_family_scans_a_book_whose_units_share_instruments(scanned: bool) -> None:
    """By default the risk-based family's scan moves the book only where the units asking for
    a point hold ``positions_per_move`` positions per instrument the book holds: one account
    alone (one position per instrument) is left to the per-unit solver, enough copies of it
    are scanned, with the per-unit solver's bands."""
    model = _model("filtered-es")
    per_move = positions_per_move(model)
    assert per_move > 1.0
    copies = math.ceil(per_move) if scanned else 1
    account = net_positions(_random_accounts(model, 1, seed=3)[0], MARKET)
    accounts = [account.model_copy(update={"id": f"{account.id}-{k}"}) for k in range(copies)]
    units = [model.units(a, MARKET) for a in accounts]
    got = book_bands(model, accounts, units, MARKET, HealthPolicy())
    assert all(bool(b) is scanned for us in got for b in us)
    if scanned:
        _check_bands(model, accounts, per_move=per_move)


def test_a_refused_shifted_market_leaves_the_underlying_to_the_per_unit_solver() -> None:
    """A model that refuses BTC above 1.24× today's (``_RefusesAbove``): the book's scan is
    refused at the schedule's 1.259, so BTC is left out of the bands and ``assess_book`` solves
    it per unit, giving the reference's root 1.2 (derived in the per-unit solver's test)."""
    perp = next(i for i in MARKET.instruments if i.kind.value == "perpetual"
                and i.underlying == "BTC" and not i.inverse)
    assert perp.mark_price is not None
    account = Account.model_validate({
        "id": "a", "margin_mode": "cross", "collateral": {perp.settle: 0.32 * perp.mark_price},
        "positions": [{"symbol": perp.symbol, "size": -1, "entry_price": perp.mark_price}]})
    model = _RefusesAboveByPosition()
    units = [model.units(account, MARKET)]
    assert book_bands(model, [account], units, MARKET, HealthPolicy(),
                      every_engine=True) == [[{}]]
    report = assess_book(model, Book(accounts=(account,)), MARKET,
                         band_solver=partial(book_bands, every_engine=True))[0]
    band = report.positions[0].liquidation_range
    assert band is not None and band[0] is None and band[1] is not None
    assert math.isclose(band[1], 1.2 * perp.mark_price, rel_tol=1e-9)


def test_a_band_solver_that_refuses_an_account_leaves_it_to_the_per_account_path() -> None:
    """An :class:`InputError` from the solver (a LiveBook refusing an account) is not
    reported as such: the per-account path reports each account's own answer or error."""
    model = _model("span")
    book = Book(accounts=tuple(_random_accounts(model, 2, seed=1)))

    def refuses(*args: object) -> list[list[dict[str, Band]]]:
        raise InputError("accounts[0]", "refused by the live book")

    plain = assess_book(model, book, MARKET)
    assert _liquidation_fields(assess_book(model, book, MARKET, band_solver=refuses)) == (
        _liquidation_fields(plain))


def test_the_live_book_is_back_at_todays_market_after_a_scan() -> None:
    """``move_market`` leaves the book where ``update_market`` would: after a scan and the move
    back, every unit's surplus is today's again."""
    model = _model("okx-pm")
    accounts = [net_positions(a, MARKET) for a in _random_accounts(model, 4, seed=9)]
    live = LiveBook(model, Book(accounts=tuple(accounts)), MARKET)
    slots = live.live_slots()
    before = live.unit_surplus(slots).tolist()
    from margin_engine.models.core.revaluation import shift_underlying

    live.move_market(shift_underlying(MARKET, "BTC", 0.5), frozenset({"BTC"}))
    moved = live.unit_surplus(slots).tolist()
    live.move_market(MARKET, frozenset({"BTC"}))
    after = live.unit_surplus(slots).tolist()
    assert moved != before
    assert all(math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-9) for a, b in zip(after, before,
                                                                               strict=True))


@pytest.mark.parametrize("name", ["okx-pm", "deribit-pm", "span", "derive-pmrm"])
def test_a_move_of_some_units_margins_them_as_a_move_of_all(name: str) -> None:
    """``move_market(..., slots)`` (the scan re-margins only the units still asking) gives
    those units the surplus a move of the whole book gives them, and the move back without
    ``slots`` leaves every unit at today's surplus."""
    from margin_engine.models.core.revaluation import shift_underlying

    model = _model(name)
    accounts = [net_positions(a, MARKET) for a in _random_accounts(model, 6, seed=21)]
    live = LiveBook(model, Book(accounts=tuple(accounts)), MARKET)
    slots = np.array(live.live_slots(), dtype=np.int64)
    today = live.unit_surplus(slots).tolist()
    moved = shift_underlying(MARKET, "BTC", 0.7)
    live.move_market(moved, frozenset({"BTC"}))
    whole = live.unit_surplus(slots).tolist()
    assert whole != today
    live.move_market(MARKET, frozenset({"BTC"}))
    some = slots[::2]
    live.move_market(moved, frozenset({"BTC"}), some)
    assert all(math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-9)  # equity re-summed exactly
               for a, b in zip(live.unit_surplus(some).tolist(), whole[::2], strict=True))
    live.move_market(MARKET, frozenset({"BTC"}))
    assert all(math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-9)
               for a, b in zip(live.unit_surplus(slots).tolist(), today, strict=True))


@pytest.mark.parametrize("name", ["okx-pm", "deribit-pm", "span", "derive-pmrm"])
def test_a_units_bands_do_not_depend_on_the_other_accounts(name: str) -> None:
    """The bands of the accounts of a part of the book (a Dask partition) are those the whole
    book's scan gives them, to the bit: Brent opens from the surpluses the scan measured, and
    those depend on the market alone, not on which other units moved the book before."""
    model = _model(name)
    accounts = [net_positions(a, MARKET) for a in _random_accounts(model, 10, seed=47)]
    units = [model.units(a, MARKET) for a in accounts]
    whole = book_bands(model, accounts, units, MARKET, HealthPolicy(), every_engine=True)
    part = book_bands(model, accounts[1::3], units[1::3], MARKET, HealthPolicy(),
                      every_engine=True)
    assert part == whole[1::3]
    assert any(b not in (None, 1.0) for bands in part for by in bands for band in by.values()
               for b in band)


def test_units_grouped_otherwise_are_left_to_the_per_unit_solver() -> None:
    """Units that are not the live book's grouping (here: one account's units left out) get
    no bands from the scan rather than another unit's."""
    model = _model("span")
    accounts = [net_positions(a, MARKET) for a in _random_accounts(model, 2, seed=5)]
    units = [model.units(a, MARKET) for a in accounts]
    assert book_bands(model, accounts, units, MARKET, HealthPolicy())[0][0]  # scanned
    units[1] = []
    got = book_bands(model, accounts, units, MARKET, HealthPolicy())
    assert got == [[{} for _ in units[0]], []]
