"""The risk engine's incremental tick and its APC floor (issue 9, tick-to-margin).

A tick adds only the moved rows' changes to each holding unit's cached vector and re-measures
the total and the moved underlyings' standalone; these tests drive many ticks and compare the
cached figures with summing every unit again from its rows, the accumulated-rounding bound with
the actual drift, and the book with ``assess_book``.
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from margin_engine.live import LiveBook, risk_engine
from margin_engine.live.risk_engine import RiskEngine, _Family, _measure_vec
from margin_engine.policy.assess import assess_book

from .sequences import check_states, check_what_if, revalidated
from .test_live_book import MARKET, build, margined


def tick(rng: random.Random, market, live: LiveBook):
    """A move of one underlying's index (its instruments revalued), or of one instrument's mark
    or implied vol alone."""
    if rng.random() < 0.5:
        und = rng.choice(["ETH", "ETH", "BTC"])
        change: dict = {"index": {und: market.index[und] * math.exp(rng.gauss(0, 0.03))}}
    else:
        ins = rng.choice([i for i in market.instruments if i.mark_price is not None])
        item: dict = {"symbol": ins.symbol}
        if ins.is_option and rng.random() < 0.5:
            item["mark_iv"] = market.implied_vol(ins) * rng.uniform(0.9, 1.1)
        else:
            item["mark_price"] = ins.mark_price * rng.uniform(0.97, 1.03)
        change = {"instruments": [item]}
    live.update_market(change)
    return revalidated(market, change)


def from_rows(fam: _Family, li: int) -> np.ndarray:
    a, b = int(fam.pa[li]), int(fam.pb[li])
    return fam.psize[a:b] @ fam.pnl[fam.prow[a:b]]


def measured(engine: RiskEngine) -> list[tuple[_Family, int]]:
    return [(f, li) for f in engine._fams if f is not None
            for li in np.flatnonzero(f.ok[: f.n_units]).tolist()]


@pytest.mark.parametrize("name", ["filtered-es", "filtered-es:floor"])
def test_many_ticks_stay_within_the_drift_bound_and_equal_assess_book(name):
    model = build(name)
    book = margined(model)
    market = MARKET
    live = LiveBook(model, book, market)
    engine = live.engine
    assert isinstance(engine, RiskEngine)
    rng = random.Random(5)
    drifted = 0
    multi = [a for a in book.accounts  # accounts on BTC and ETH: the cap's groups
             if {market.instrument(p.symbol).underlying for p in a.positions} >= {"BTC", "ETH"}]
    assert multi
    for step in range(40):
        market = tick(rng, market, live)
        for fam, li in measured(engine):
            exact = from_rows(fam, li)
            gap = float(np.abs(fam.vec[li] - exact).max())
            # the kept bound covers the actual drift (plus the re-summing's own rounding)
            assert gap <= fam.err[li] + 1e-13 * max(1.0, float(np.abs(exact).max()))
            assert fam.val[li] == pytest.approx(_measure_vec(exact, fam.measure()),
                                                rel=1e-10, abs=1e-12)
            drifted += fam.err[li] > 0
        if step % 20 == 19:
            check_states(live, book, market)
        if step % 2:  # a what-if after the tick: the kept group vectors moved with it
            acct = multi[step % len(multi)]
            sym = next(p.symbol for p in acct.positions
                       if market.instrument(p.symbol).underlying == "ETH")
            check_what_if([live], model, acct, market, [(sym, 2.0, None)])
    assert drifted  # the ticks went through the incremental path, not only re-summing
    check_states(live, book, market)


def test_a_zero_drift_tolerance_re_sums_every_touched_unit(monkeypatch):
    monkeypatch.setattr(risk_engine, "DRIFT_TOL", 0.0)
    model = build("filtered-es")
    book = margined(model)
    market = MARKET
    live = LiveBook(model, book, market)
    rng = random.Random(9)
    for _ in range(20):
        market = tick(rng, market, live)
        for fam, li in measured(live.engine):  # type: ignore[arg-type]
            assert fam.err[li] == 0.0
            exact = from_rows(fam, li)  # re-summed: only the summing order's rounding
            assert np.abs(fam.vec[li] - exact).max() <= 1e-13 * np.abs(exact).max()
    check_states(live, book, market)


def test_the_apc_floor_runs_on_the_fast_engine_and_binds():
    model = build("filtered-es:floor")
    book = margined(model)
    live = LiveBook(model, book, MARKET)
    assert isinstance(live.engine, RiskEngine)
    assert live.engine._stressed  # the stressed scenario set's own instrument rows
    reports = assess_book(model, book, MARKET, liquidation_prices=False)
    assert any(r.components.get("anti_procyclicality", 0.0) > 0 for r in reports)
    check_states(live, book, MARKET)


def test_position_blocks_survive_compaction():
    """Re-laid and released units leave garbage in a family's position arrays; compacting
    them must keep every live unit's block (rows, sizes, group starts) intact."""
    from types import SimpleNamespace

    fam = _Family("USD", SimpleNamespace(n=2), np.empty(0), (0, 0.0, 1, 0), 0, 0.9, False)
    fam.vec = np.empty((0, 2))
    rng = np.random.default_rng(1)
    want: dict[int, np.ndarray] = {}
    li = fam.alloc(list(range(8)))
    for step in range(300):
        u = int(rng.integers(8))
        if step % 7 == 3 and fam.slot[li[u]] >= 0:
            fam.release(int(li[u]))
            want.pop(int(li[u]), None)
            li[u] = fam.alloc([u])[0]
            continue
        n = int(rng.integers(1, 40))
        rows = rng.integers(0, 1000, n)
        fam.lay_out(li[u: u + 1], rows, rows * 0.5, rows % 3 == 0, rows % 5,
                    np.array([n]))
        want[int(li[u])] = rows
    assert fam.prow.shape[0] < 300 * 40  # compacted along the way, not grown without bound
    for k, rows in want.items():
        a, b = int(fam.pa[k]), int(fam.pb[k])
        assert np.array_equal(fam.prow[a:b], rows)
        assert np.array_equal(fam.psize[a:b], rows * 0.5)
        assert np.array_equal(fam.pstart[a:b], rows % 3 == 0)
        assert np.array_equal(fam.pund[a:b], rows % 5)
