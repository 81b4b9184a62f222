"""The batched revaluation equals ``instrument_pnl`` (the per-instrument reference)."""

from __future__ import annotations

import numpy as np
import pytest

from margin_engine.live.revalue import instrument_pnl_batch
from margin_engine.models.core.scenario_pnl import instrument_pnl

from .test_live_book import HISTORY, MARKET, build


@pytest.mark.parametrize("target", ["USD", "BTC", "USDC"])
@pytest.mark.parametrize("name, power", [("historical-var", 0.5), ("filtered-es", 0.0)])
def test_batch_equals_reference(name, power, target):
    model = build(name)
    scen = model.scenario_set(MARKET, ("BTC", "ETH"))
    ins = list(MARKET.instruments)
    want = instrument_pnl(ins, MARKET, scen, target, vol_tenor_power=power)
    got = instrument_pnl_batch(ins, MARKET, scen, target, vol_tenor_power=power)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())
    assert HISTORY is not None
