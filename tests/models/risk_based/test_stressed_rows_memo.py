"""The anti-procyclicality floor reads each instrument's whole-history P&L row from a memo
kept for one market object: a unit's margin is the same to the bit whatever the model margined
before it, on that market or another."""

from __future__ import annotations

from margin_engine.domain.book import net_positions
from margin_engine.errors import InputError
from margin_engine.models.core.revaluation import shift_underlying

from ...policy.test_whole_book_path import DEMO, MARKET, build


def test_stressed_rows_shared_between_units_and_renewed_per_market() -> None:
    model = build("filtered-es")
    assert model.params.apc == "floor"
    units = []
    for account in DEMO.accounts:
        netted = net_positions(account, MARKET)
        try:
            units += [(u, netted) for u in model.units(netted, MARKET)]
        except InputError:
            continue
    assert len(units) >= 6
    moved = shift_underlying(MARKET, "BTC", 0.8)
    warm = build("filtered-es")
    for market in (MARKET, moved, MARKET):
        for unit, account in units:  # every unit after the others warmed the memo
            got = warm.margin_unit(unit, account, market)
            want = build("filtered-es").margin_unit(unit, account, market)
            assert got.initial_margin == want.initial_margin, unit.id
            assert got.components == want.components
    assert warm._stressed_rows  # the memo was used
