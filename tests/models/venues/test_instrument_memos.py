"""okx-pm, span and derive-pmrm keep what every account re-derived from the same instrument
or parameters (okx-pm: one contract's scenario P&L and one valuation per instrument; span: one
contract's risk array; derive-pmrm: the core's parameters and scenarios): a unit's margin,
positions and details are the same to the bit whatever the model margined before it, on that
market or another, as a fresh model's."""

from __future__ import annotations

import numpy as np
import pytest

from margin_engine.domain.book import net_positions
from margin_engine.errors import InputError
from margin_engine.models.core.revaluation import shift_underlying

from ...policy.test_whole_book_path import DEMO, MARKET, build


@pytest.mark.parametrize("name", ["okx-pm", "span", "derive-pmrm"])
def test_a_warm_model_margins_every_unit_as_a_fresh_one(name: str) -> None:
    warm = build(name)
    units = []
    for account in DEMO.accounts:
        netted = net_positions(account, MARKET)
        try:
            units += [(u, netted) for u in warm.units(netted, MARKET)]
        except InputError:
            continue
    assert len(units) >= 3
    moved = shift_underlying(MARKET, "BTC", 0.8)
    for market in (MARKET, moved, MARKET):
        for unit, account in units:  # every unit after the others warmed the memos
            try:
                want = build(name).margin_unit(unit, account, market)
            except InputError:
                continue
            got = warm.margin_unit(unit, account, market)
            assert got == want, (name, unit.id)


def test_span_risk_arrays_are_shared_read_only() -> None:
    model = build("span")
    ins = next(i for i in MARKET.instruments if model.check_instrument(i) is None)
    first, _ = model.contract_risk(ins, MARKET)
    again, _ = model.contract_risk(ins, MARKET)
    assert again is first and not first.flags.writeable
    with pytest.raises(ValueError):
        first[0] = 0.0
    fresh, _ = build("span").contract_risk(ins, MARKET)
    assert np.array_equal(first, fresh)
