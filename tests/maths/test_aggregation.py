"""Tests of the fused aggregation kernel against its plain NumPy/SciPy reference (DESIGN §6).

The reference (`aggregate_reference`) materialises the unit P&L with one scipy.sparse product
and applies `risk_measures`; the unit P&L itself is checked against a dense loop. The kernel is
checked against the reference on random books (units with 0, 1 and many positions, repeated
instruments, every measure, equal and stressed weights, every selection method) and with
hypothesis on small books.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from margin_engine.maths import aggregation as ag
from margin_engine.maths.aggregation import (
    aggregate,
    aggregate_reference,
    positions_to_csr,
    unit_pnl_reference,
)
from margin_engine.maths.risk_measures import (
    expected_shortfall,
    stressed_weights,
    value_at_risk,
    worst_loss,
)


def _book(
    seed: int, n_inst: int = 40, n_scen: int = 250, n_units: int = 300
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Random book: ~20 % empty units, ~20 % single-position units, a few with hundreds."""
    rng = np.random.default_rng(seed)
    pnl = rng.standard_t(3, size=(n_inst, n_scen)) * rng.lognormal(0.0, 1.0, size=(n_inst, 1))
    kind = rng.random(n_units)
    counts = np.where(kind < 0.2, 0, np.where(kind < 0.4, 1, rng.integers(2, 12, n_units)))
    counts[rng.integers(0, n_units, 3)] = rng.integers(200, 600, 3)
    ptr = np.zeros(n_units + 1, dtype=np.int64)
    np.cumsum(counts, out=ptr[1:])
    inst = rng.integers(0, n_inst, ptr[-1])  # repeats of an instrument inside a unit included
    size = rng.normal(0.0, 5.0, ptr[-1])
    return pnl, ptr, inst, size


CASES = [
    ("worst_loss", None, False),
    ("var", 0.99, False),
    ("es", 0.99, False),
    ("es", 0.975, False),
    ("var", 0.9, True),
    ("es", 0.99, True),
    ("es", 0.975, True),
    ("es", 0.5, False),  # m = 126: insertion buffer
    ("es", 0.3, False),  # m = 176 > 128: np.partition path
    ("es", 0.5, True),
]


def _assert_same(a: ag.UnitRisk, b: ag.UnitRisk) -> None:
    scale = max(1.0, float(np.abs(b.values).max(initial=0.0)))
    np.testing.assert_allclose(a.values, b.values, rtol=1e-12, atol=1e-12 * scale)
    np.testing.assert_array_equal(a.worst_scenario, b.worst_scenario)
    assert a.measure == b.measure and a.confidence == b.confidence


def test_unit_pnl_reference_matches_dense_loop() -> None:
    pnl, ptr, inst, size = _book(1)
    x = unit_pnl_reference(pnl, ptr, inst, size)
    expect = np.zeros((ptr.shape[0] - 1, pnl.shape[1]))
    for u in range(ptr.shape[0] - 1):
        for j in range(ptr[u], ptr[u + 1]):
            expect[u] += size[j] * pnl[inst[j]]
    np.testing.assert_allclose(x, expect, rtol=1e-12, atol=1e-9)


def test_hand_checked_book() -> None:
    """Two instruments, three scenarios; unit 0 long 2 of A and short 1 of B, unit 1 empty,
    unit 2 long 1 of B.

    A per contract [-1, 2, 0.5], B [3, -1, 0]: unit 0 P&L = 2A - B = [-5, 5, 1] (worst loss 5 in
    scenario 0); unit 2 P&L = [3, -1, 0] (worst loss 1 in scenario 1). ES at 50 % (p = 0.5,
    n p = 1.5): unit 0 losses worst first 5, -1, -5: (5 + 0.5*(-1))/1.5 = 3; VaR = -1 -> 0.
    """
    pnl = np.array([[-1.0, 2.0, 0.5], [3.0, -1.0, 0.0]])
    ptr = np.array([0, 2, 2, 3])
    inst = np.array([0, 1, 1])
    size = np.array([2.0, -1.0, 1.0])
    wl = aggregate(pnl, ptr, inst, size, measure="worst_loss")
    np.testing.assert_array_equal(wl.values, [5.0, 0.0, 1.0])
    np.testing.assert_array_equal(wl.worst_scenario, [0, -1, 1])
    es = aggregate(pnl, ptr, inst, size, measure="es", confidence=0.5)
    assert es.values[0] == pytest.approx(3.0, rel=1e-14)
    var = aggregate(pnl, ptr, inst, size, measure="var", confidence=0.5)
    np.testing.assert_array_equal(var.values, [0.0, 0.0, 0.0])


@pytest.mark.parametrize(("measure", "confidence", "weighted"), CASES)
def test_kernel_matches_reference(measure: str, confidence: float | None, weighted: bool) -> None:
    pnl, ptr, inst, size = _book(7)
    w = None
    if weighted:
        stressed = np.zeros(pnl.shape[1], dtype=bool)
        stressed[::7] = True
        w = stressed_weights(stressed, 0.25)
    kw = {"measure": measure, "confidence": confidence, "weights": w}
    fast = aggregate(pnl, ptr, inst, size, **kw)  # type: ignore[arg-type]
    ref = aggregate_reference(pnl, ptr, inst, size, block_units=97, **kw)  # type: ignore[arg-type]
    _assert_same(fast, ref)
    assert np.all(fast.values >= 0.0)
    assert np.all(fast.worst_scenario[np.diff(ptr) == 0] == -1)


@pytest.mark.parametrize("method", [ag.SELECT_INSERTION, ag.SELECT_SORT, ag.SELECT_PARTITION])
@pytest.mark.parametrize(("measure", "confidence"), [("var", 0.99), ("es", 0.975), ("es", 0.8)])
def test_every_selection_method_matches_reference(
    method: int, measure: str, confidence: float
) -> None:
    pnl, ptr, inst, size = _book(8, n_scen=200)
    a = ag._validate(pnl, ptr, inst, size, measure, confidence, None)
    _assert_same(
        ag._run_kernel(a, method=method),
        aggregate_reference(
            pnl,
            ptr,
            inst,
            size,
            measure=measure,  # type: ignore[arg-type]
            confidence=confidence,
        ),
    )


def test_automatic_method_choice_and_weighted_sort_path() -> None:
    """Small tails use the insertion buffer; large ones np.partition (equal weights) or a sort
    (weights). 700 scenarios at 50 % with weights need m > 256: the sort path, checked here."""
    assert ag.choose_method(11, weighted=False) == ag.SELECT_INSERTION
    assert ag.choose_method(500, weighted=False) == ag.SELECT_PARTITION
    assert ag.choose_method(11, weighted=True) == ag.SELECT_INSERTION
    assert ag.choose_method(500, weighted=True) == ag.SELECT_SORT
    pnl, ptr, inst, size = _book(12, n_scen=700, n_units=60)
    w = np.random.default_rng(12).random(700) + 0.5
    assert ag.tail_plan(700, 0.5, w / w.sum())[2] > 256
    kw = {"measure": "es", "confidence": 0.5, "weights": w}
    _assert_same(
        aggregate(pnl, ptr, inst, size, **kw),  # type: ignore[arg-type]
        aggregate_reference(pnl, ptr, inst, size, **kw),  # type: ignore[arg-type]
    )


def test_random_weights_and_chunking_do_not_change_results() -> None:
    """Arbitrary (non-stressed) weights, and 1, 3 or many chunks: identical output."""
    pnl, ptr, inst, size = _book(9)
    w = np.random.default_rng(9).random(pnl.shape[1]) ** 3
    ref = aggregate_reference(pnl, ptr, inst, size, measure="es", confidence=0.99, weights=w)
    a = ag._validate(pnl, ptr, inst, size, "es", 0.99, w)
    first = ag._run_kernel(a, n_chunks=1)
    _assert_same(first, ref)
    for n_chunks in (3, 1000):
        again = ag._run_kernel(a, n_chunks=n_chunks)
        np.testing.assert_array_equal(again.values, first.values)  # bit-identical
        np.testing.assert_array_equal(again.worst_scenario, first.worst_scenario)


def test_single_unit_matches_one_dimensional_measures() -> None:
    """One unit holding every instrument once: the measures of the summed row."""
    rng = np.random.default_rng(4)
    pnl = rng.standard_normal((30, 500))
    size = rng.normal(size=30)
    ptr = np.array([0, 30])
    inst = np.arange(30)
    total = size @ pnl
    assert aggregate(pnl, ptr, inst, size, measure="worst_loss").values[0] == pytest.approx(
        worst_loss(total), rel=1e-12
    )
    assert aggregate(pnl, ptr, inst, size, measure="var", confidence=0.99).values[
        0
    ] == pytest.approx(value_at_risk(total, 0.99), rel=1e-12)
    assert aggregate(pnl, ptr, inst, size, measure="es", confidence=0.99).values[
        0
    ] == pytest.approx(expected_shortfall(total, 0.99), rel=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    n_inst=st.integers(1, 5),
    n_scen=st.integers(1, 30),
    n_units=st.integers(0, 8),
    case=st.sampled_from(CASES),
)
def test_kernel_matches_reference_hypothesis(
    data: st.DataObject,
    n_inst: int,
    n_scen: int,
    n_units: int,
    case: tuple[str, float | None, bool],
) -> None:
    measure, confidence, weighted = case
    pnl = data.draw(arrays(np.float64, (n_inst, n_scen), elements=st.floats(-100, 100)))
    counts = data.draw(arrays(np.int64, n_units, elements=st.integers(0, 6)))
    ptr = np.zeros(n_units + 1, dtype=np.int64)
    np.cumsum(counts, out=ptr[1:])
    n_pos = int(ptr[-1])
    inst = data.draw(arrays(np.int64, n_pos, elements=st.integers(0, n_inst - 1)))
    size = data.draw(arrays(np.float64, n_pos, elements=st.floats(-10, 10)))
    w = (
        data.draw(arrays(np.float64, n_scen, elements=st.just(0.0) | st.floats(0.01, 3.0)))
        if weighted
        else None
    )
    if w is not None and w.sum() == 0.0:
        w[0] = 1.0
    kw = {"measure": measure, "confidence": confidence, "weights": w}
    fast = aggregate(pnl, ptr, inst, size, **kw)  # type: ignore[arg-type]
    ref = aggregate_reference(pnl, ptr, inst, size, **kw)  # type: ignore[arg-type]
    np.testing.assert_allclose(fast.values, ref.values, rtol=1e-9, atol=1e-9)
    # worst-scenario indices agree unless two scenarios tie within rounding
    x = unit_pnl_reference(pnl, ptr, inst, size)
    for u in range(n_units):
        if fast.worst_scenario[u] != ref.worst_scenario[u]:
            assert x[u, fast.worst_scenario[u]] == pytest.approx(x[u, ref.worst_scenario[u]])


def test_positions_to_csr_groups_by_unit() -> None:
    unit = np.array([2, 0, 2, 1, 0])
    inst = np.array([10, 11, 12, 13, 14])
    size = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    ptr, i2, s2, order = positions_to_csr(unit, inst, size, n_units=4)
    np.testing.assert_array_equal(ptr, [0, 2, 3, 5, 5])
    np.testing.assert_array_equal(i2, [11, 14, 13, 10, 12])  # stable inside a unit
    np.testing.assert_array_equal(s2, size[order])


def test_deterministic() -> None:
    pnl, ptr, inst, size = _book(2)
    a = aggregate(pnl, ptr, inst, size, measure="es", confidence=0.99)
    b = aggregate(pnl, ptr, inst, size, measure="es", confidence=0.99)
    np.testing.assert_array_equal(a.values, b.values)


def test_no_units() -> None:
    pnl = np.ones((2, 5))
    r = aggregate(
        pnl,
        np.array([0]),
        np.array([], dtype=np.int64),
        np.array([]),
        measure="es",
        confidence=0.99,
    )
    assert r.values.shape == (0,) and r.worst_scenario.shape == (0,)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"unit_ptr": np.array([0, 3, 2])}, "unit_ptr: offsets must be non-decreasing"),
        ({"unit_ptr": np.array([1, 2])}, "unit_ptr: must start at 0"),
        ({"pos_instrument": np.array([0, 5])}, "pos_instrument: indices must lie"),
        ({"pos_size": np.array([1.0, np.nan])}, "pos_size: .*finite"),
        ({"pos_size": np.array([1.0])}, "pos_instrument, pos_size"),
        ({"instrument_pnl": np.array([[np.inf, 0.0], [0.0, 0.0]])}, "instrument_pnl: .*finite"),
        ({"instrument_pnl": np.zeros(3)}, "instrument_pnl: expected a 2-D"),
        ({"measure": "cvar"}, "measure"),
        ({"measure": "es", "confidence": None}, "confidence: required"),
        ({"measure": "es", "confidence": 1.5}, "confidence: must be"),
        ({"measure": "worst_loss", "confidence": 0.99}, "not used"),
        ({"weights": np.array([1.0, -1.0])}, "weights: must be non-negative"),
    ],
)
def test_bad_input_is_rejected(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {
        "instrument_pnl": np.array([[1.0, -1.0], [0.5, 2.0]]),
        "unit_ptr": np.array([0, 2]),
        "pos_instrument": np.array([0, 1]),
        "pos_size": np.array([1.0, 2.0]),
        "measure": "es",
        "confidence": 0.9,
    }
    args.update(kwargs)
    for f in (aggregate, aggregate_reference):
        with pytest.raises(ValueError, match=match):
            f(**args)  # type: ignore[arg-type]


def test_partition_rejects_weights() -> None:
    pnl, ptr, inst, size = _book(3, n_units=5)
    a = ag._validate(pnl, ptr, inst, size, "es", 0.99, np.arange(1.0, pnl.shape[1] + 1))
    with pytest.raises(ValueError, match="partition"):
        ag._run_kernel(a, method=ag.SELECT_PARTITION)


@settings(max_examples=300, deadline=None)
@given(x=arrays(np.float64, st.integers(1, 80),
                elements=st.sampled_from([-3.0, -1.0, 0.0, 0.5, 2.0, 7.0])
                | st.floats(-1e6, 1e6, allow_nan=False)),
       k_frac=st.floats(0.0, 1.0))
def test_selection_and_heapsort_give_numpys_values(x: np.ndarray, k_frac: float) -> None:
    """The partition path's own selection and sort (quick to compile) leave the k-th value and
    the values after it that ``np.partition`` and ``np.sort`` give, ties included."""
    k = min(int(k_frac * x.size), x.size - 1)
    a = x.copy()
    ag._select(a, k)
    ref = np.partition(x, k)
    assert a[k] == ref[k]
    assert (a[:k] <= a[k]).all() and (a[k + 1:] >= a[k]).all()
    assert sorted(a.tolist()) == sorted(x.tolist())  # a permutation
    tail = a[k + 1:].copy()
    ag._heapsort(tail)
    np.testing.assert_array_equal(tail, np.sort(ref[k + 1:]))
