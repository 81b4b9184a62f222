"""Order-book fits recover known parameters from synthetic data (derived: generated here)."""

from __future__ import annotations

import numpy as np
import pytest

from margin_engine.analysis.liquidation.orderbook_fit import (
    book_impact,
    depth_within,
    fit_half_life,
    fit_power_law,
    fit_sqrt,
)


def test_book_impact_by_hand() -> None:
    # Asks 101 ×1, 102 ×1, mid 100: 1.5 units cost (101 + 51)/1.5 = 101.333… → 1.333 %.
    got = book_impact([101.0, 102.0], [1.0, 1.0], 100.0, [1.0, 1.5, 3.0])
    assert got[0] == pytest.approx(0.01)
    assert got[1] == pytest.approx((152 / 1.5 - 100) / 100)
    assert np.isnan(got[2])


def test_depth_within() -> None:
    assert depth_within([99.9, 99.0, 100.05], [1, 2, 4], 100.0, 10) == 5


def test_power_and_sqrt_fits_recover_parameters() -> None:
    rng = np.random.default_rng(1)
    q = np.exp(rng.uniform(-3, 3, 400))
    z = 0.002 * q ** 0.5 * np.exp(rng.normal(0, 0.05, q.size))
    pw = fit_power_law(q, z)
    assert pw.delta == pytest.approx(0.5, abs=0.02) and pw.y == pytest.approx(0.002, rel=0.05)
    assert pw.r2 > 0.95
    sq = fit_sqrt(q, z)
    assert sq.y == pytest.approx(0.002, rel=0.05) and sq.r2 > 0.9
    lin = 0.001 * q  # a linear law is fitted worse by the square root
    assert fit_power_law(q, lin).delta == pytest.approx(1.0)


def test_half_life_fit() -> None:
    tau = np.array([0.5, 1, 2, 5, 10, 20, 40.0])
    r = 1 - 2 ** (-tau / 7.0)
    fit = fit_half_life(tau, r)
    assert fit.half_life == pytest.approx(7.0, rel=1e-3) and fit.rmse < 1e-6
