"""Tests of margin_engine.maths.risk_measures.

Three kinds of check: hand-computed vectors (arithmetic in the comments), the ccp-standards §5.4
FHS toy vector, an independent exact-arithmetic reference written from the quantile-integral
definition of ES (``ES_a = 1/(1-a) * integral_a^1 q_u du``, with exact fractions), and
hypothesis properties (ordering, monotonicity, scaling, cash invariance, subadditivity,
duplication of scenarios = integer weights, Euler allocation).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from margin_engine.maths.risk_measures import (
    _tail_rows,
    _worst_first,
    euler_es_contributions,
    expected_shortfall,
    expected_shortfall_rows,
    normalise_weights,
    stressed_weights,
    tail_scenarios,
    value_at_risk,
    value_at_risk_rows,
    var_contributions,
    worst_loss,
    worst_loss_rows,
    worst_scenario_contributions,
)

# --------------------------------------------------------------------------------------------
# independent reference: exact fractions, lower quantile and the quantile integral


def _ref_var_es(
    pnl: np.ndarray, confidence: float, weights: np.ndarray | None
) -> tuple[float, float]:
    """VaR and ES from the definitions, in exact rational arithmetic.

    The confidence is read as its decimal (``Fraction(str(c))``), so ``n (1 - c)`` integer is exact.
    VaR = inf{l : F(l) >= c - tol} (F the loss distribution function, tol = 1e-12 the documented
    tolerance on tail probability); ES = (1/(1-c)) * integral over u in (c, 1] of the lower
    quantile q_u, the integral summed piece by piece over the jumps of F.
    """
    n = len(pnl)
    w = [Fraction(1, n)] * n if weights is None else [Fraction(float(x)) for x in weights]
    tot = sum(w)
    w = [x / tot for x in w]
    losses = [Fraction(float(-x)) for x in pnl]
    order = sorted(range(n), key=lambda i: losses[i])  # ascending loss
    alpha = Fraction(str(confidence))
    cum = Fraction(0)
    var = None
    integral = Fraction(0)
    for i in order:
        lo, hi = cum, cum + w[i]
        cum = hi
        if var is None and hi >= alpha - _TOL and w[i] > 0:
            var = losses[i]
        overlap = min(hi, Fraction(1)) - max(lo, alpha)
        if overlap > 0:
            integral += overlap * losses[i]
    assert var is not None
    es = integral / (1 - alpha)
    return max(0.0, float(var)), max(0.0, float(es))


_TOL = Fraction(1, 10**12)
finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
pnl_vectors = arrays(np.float64, st.integers(1, 60), elements=finite)
confidences = st.sampled_from([0.5, 0.8, 0.9, 0.95, 0.975, 0.99, 0.995]) | st.floats(0.01, 0.999)


# --------------------------------------------------------------------------------------------
# hand-checked vectors


def test_hundred_equal_scenarios_at_99() -> None:
    """100 equal-weight scenarios, losses 1..100: at 99 % VaR is the 2nd-worst loss, ES the worst.

    p = 0.01, n p = 1: P(L > 99) = 1/100 <= p so VaR = 99; the tail holds only the loss 100, so
    ES = 100 = worst loss.
    """
    pnl = -np.random.default_rng(3).permutation(np.arange(1.0, 101.0))
    assert worst_loss(pnl) == 100.0
    assert value_at_risk(pnl, 0.99) == 99.0
    assert expected_shortfall(pnl, 0.99) == 100.0


def test_hundred_equal_scenarios_fractional_atom() -> None:
    """Losses 1..100 at 97.5 %: n p = 2.5, VaR = 3rd worst = 98, ES = (100+99+0.5*98)/2.5 = 99.2.

    At 95 %: n p = 5, VaR = 6th worst = 95, ES = mean(100, 99, 98, 97, 96) = 98.
    """
    pnl = -np.arange(1.0, 101.0)
    assert value_at_risk(pnl, 0.975) == 98.0
    assert expected_shortfall(pnl, 0.975) == pytest.approx(99.2, rel=1e-14)
    assert value_at_risk(pnl, 0.95) == 95.0
    assert expected_shortfall(pnl, 0.95) == pytest.approx(98.0, rel=1e-14)


def test_ccp_standards_5_4_fhs_toy_vector() -> None:
    """ccp-standards §5.4 FHS toy vector: worst loss 0.04, ES at 80 % on 10 obs = 0.035.

    Sorted losses 0.04, 0.03, 0.025, 0.025, ...; p = 0.2, n p = 2: ES = (0.04 + 0.03)/2 = 0.035
    and VaR = 3rd worst = 0.025 (P(L > 0.025) = 0.2 <= p).
    """
    revol = np.array([-0.04, 0.024, -0.016, 0.033333, -0.03, 0.009091, -0.025, 0.02, -0.025, 0.004])
    assert worst_loss(revol) == pytest.approx(0.04, abs=1e-15)
    assert expected_shortfall(revol, 0.80) == pytest.approx(0.035, abs=1e-15)
    assert value_at_risk(revol, 0.80) == pytest.approx(0.025, abs=1e-15)


def test_rounding_of_one_minus_confidence() -> None:
    """1 - 0.9 = 0.09999999999999998 in float64; with 10 scenarios n p must still count as 1.

    Losses 1..10 at 90 %: VaR = 2nd worst = 9, ES = worst = 10 (not VaR = 10, ES = 10).
    """
    pnl = -np.arange(1.0, 11.0)
    assert value_at_risk(pnl, 0.9) == 9.0
    assert expected_shortfall(pnl, 0.9) == 10.0


def test_weighted_hand_vector() -> None:
    """P&L [-10, -5, 0, 5] with weights [.1, .2, .3, .4] at 75 % (p = 0.25).

    Losses worst first 10 (.1), 5 (.2): c1 = .1 <= .25 < c2 = .3, so VaR = 5 and
    ES = (.1*10 + (.25 - .1)*5)/.25 = 1.75/.25 = 7. Unnormalised weights give the same.
    """
    pnl = np.array([-10.0, -5.0, 0.0, 5.0])
    w = np.array([0.1, 0.2, 0.3, 0.4])
    assert value_at_risk(pnl, 0.75, w) == 5.0
    assert expected_shortfall(pnl, 0.75, w) == pytest.approx(7.0, rel=1e-14)
    assert expected_shortfall(pnl, 0.75, 10 * w) == pytest.approx(7.0, rel=1e-14)


def test_stressed_weights_apc_option_b() -> None:
    """EMIR Art. 28(1)(b) as in ccp-standards §3.1(b): stressed scenarios carry 25 % in total.

    1,000 scenarios of which 250 stressed: each stressed 0.25/250 = 0.001, others 0.75/750 =
    0.001: uniform, so the same as unweighted. With 100 stressed: 0.0025 each vs 0.75/900.
    """
    m = np.zeros(1000, dtype=bool)
    m[:250] = True
    w = stressed_weights(m, 0.25)
    assert w[m].sum() == pytest.approx(0.25, rel=1e-12)
    np.testing.assert_allclose(w, 0.001, rtol=1e-12)
    m2 = np.zeros(1000, dtype=bool)
    m2[:100] = True
    w2 = stressed_weights(m2)
    assert w2[0] == pytest.approx(0.0025) and w2[-1] == pytest.approx(0.75 / 900)
    # a stressed-period loss of 100 on 10 stressed scenarios dominates the 99 % tail (p = 0.01):
    # 10 stressed scenarios weigh 10 * 0.0025 = 0.025 > p, so ES = VaR = 100
    pnl = np.zeros(1000)
    pnl[:10] = -100.0
    assert expected_shortfall(pnl, 0.99, w2) == pytest.approx(100.0)
    # unweighted the same ten scenarios are exactly the 1 % tail: ES = 100, VaR = 0 (11th worst)
    assert value_at_risk(pnl, 0.99) == 0.0
    assert expected_shortfall(pnl, 0.99) == pytest.approx(100.0, rel=1e-14)


def test_all_gains_give_zero() -> None:
    pnl = np.array([1.0, 2.0, 3.0])
    assert worst_loss(pnl) == 0.0
    assert value_at_risk(pnl, 0.5) == 0.0
    assert expected_shortfall(pnl, 0.5) == 0.0
    att = euler_es_contributions(np.array([[1.0, 2.0, 3.0], [0.5, 0.0, -1.0]]), 0.5)
    assert att.total == 0.0 and np.all(att.contributions == 0.0)


# --------------------------------------------------------------------------------------------
# attribution: hand vectors


POS = np.array([[-10.0, 0.0, 2.0, 1.0], [4.0, -3.0, -1.0, 0.0]])
"""Two positions, four scenarios; total P&L [-6, -3, 1, 1], losses [6, 3, -1, -1]."""


def test_worst_scenario_contributions_hand() -> None:
    """Worst scenario 0 (total loss 6): A loses 10, B gains 4 -> contributions [10, -4]."""
    att = worst_scenario_contributions(POS)
    assert att.total == 6.0
    np.testing.assert_array_equal(att.contributions, [10.0, -4.0])
    np.testing.assert_array_equal(att.scenarios, [0])


def test_es_contributions_hand_50() -> None:
    """ES 50 %: tail = scenarios {0, 1} with 1/2 each: ES = (6+3)/2 = 4.5; A (10+0)/2 = 5,
    B (-4+3)/2 = -0.5."""
    att = euler_es_contributions(POS, 0.5)
    assert att.total == pytest.approx(4.5)
    np.testing.assert_allclose(att.contributions, [5.0, -0.5], rtol=1e-14)
    np.testing.assert_array_equal(att.scenarios, [0, 1])
    np.testing.assert_allclose(att.shares, [0.5, 0.5])


def test_es_and_var_contributions_hand_70() -> None:
    """70 %: p = 0.3, n p = 1.2 -> VaR scenario = 2nd worst (scenario 1, loss 3), atom 0.05.

    ES = (0.25*6 + 0.05*3)/0.3 = 5.5; A = (0.25*10 + 0.05*0)/0.3 = 8.333..,
    B = (0.25*(-4) + 0.05*3)/0.3 = -2.8333..; VaR contributions = losses in scenario 1 = [0, 3].
    """
    att = euler_es_contributions(POS, 0.7)
    assert att.total == pytest.approx(5.5, rel=1e-14)
    np.testing.assert_allclose(att.contributions, [2.5 / 0.3, -0.85 / 0.3], rtol=1e-12)
    np.testing.assert_allclose(att.shares, [0.25 / 0.3, 0.05 / 0.3], rtol=1e-12)
    v = var_contributions(POS, 0.7)
    assert v.total == 3.0
    np.testing.assert_array_equal(v.contributions, [0.0, 3.0])
    np.testing.assert_array_equal(v.scenarios, [1])


def test_tail_scenarios_tie_break_by_index() -> None:
    """Equal losses: the lower scenario index counts as the worse (deterministic drivers)."""
    pnl = np.array([0.0, -5.0, -5.0, -5.0, 1.0])
    t = tail_scenarios(pnl, 0.6)  # p = 0.4, n p = 2: two of the three tied scenarios
    np.testing.assert_array_equal(t.scenarios, [1, 2])
    assert t.var_scenario == 3
    assert tail_scenarios(pnl, None, measure="worst_loss").var_scenario == 1



@settings(max_examples=200, deadline=None)
@given(arrays(np.float64, st.integers(1, 60), elements=st.sampled_from([-3.0, -1.0, -0.0, 0.0,
                                                                        2.0, 2.5])),
       st.integers(1, 70))
def test_worst_first_is_the_stable_sort_prefix(pnl: np.ndarray, m: int) -> None:
    """The partial order of the tail is the full stable argsort's first m (ties by index)."""
    np.testing.assert_array_equal(_worst_first(pnl, m), np.argsort(pnl, kind="stable")[:m])


@settings(max_examples=200, deadline=None)
@given(arrays(np.float64, st.integers(1, 80), elements=st.integers(-4, 4).map(float)),
       st.sampled_from([0.5001, 0.6, 0.9, 0.95, 0.975, 0.99]),
       st.sampled_from(["es", "var"]))
def test_tail_scenarios_counting_path_matches_the_full_sort(pnl: np.ndarray, c: float,
                                                            measure: str) -> None:
    """Equal weights: the same drivers, shares (to the bit) and VaR scenario as the full sort."""
    t = tail_scenarios(pnl, c, measure=measure)  # type: ignore[arg-type]
    full = _tail_rows(-pnl[None, :], 1.0 - c, None)
    k = int(full.k[0])
    assert t.var_scenario == int(full.order[0, k])
    if measure == "var":
        np.testing.assert_array_equal(t.scenarios, [full.order[0, k]])
        return
    probs = np.concatenate([full.sorted_w[0, :k], [full.atom[0]]])
    keep = probs > 0.0
    np.testing.assert_array_equal(t.scenarios, full.order[0, : k + 1][keep])
    assert t.shares.tobytes() == (probs[keep] / float(full.prev[0] + full.atom[0])).tobytes()


# --------------------------------------------------------------------------------------------
# reference cross-check and properties


@settings(max_examples=200, deadline=None)
@given(pnl=pnl_vectors, conf=confidences)
def test_matches_exact_reference_unweighted(pnl: np.ndarray, conf: float) -> None:
    var_ref, es_ref = _ref_var_es(pnl, conf, None)
    scale = max(1.0, float(np.abs(pnl).max()))
    assert value_at_risk(pnl, conf) == pytest.approx(var_ref, abs=1e-12 * scale)
    assert expected_shortfall(pnl, conf) == pytest.approx(es_ref, abs=1e-9 * scale)


@settings(max_examples=200, deadline=None)
@given(
    data=st.data(),
    pnl=pnl_vectors,
    conf=confidences,
)
def test_matches_exact_reference_weighted(
    data: st.DataObject, pnl: np.ndarray, conf: float
) -> None:
    w = data.draw(arrays(np.float64, pnl.shape[0], elements=st.just(0.0) | st.floats(1e-3, 10.0)))
    assume(w.sum() > 0.0)
    var_ref, es_ref = _ref_var_es(pnl, conf, w)
    scale = max(1.0, float(np.abs(pnl).max()))
    assert value_at_risk(pnl, conf, w) == pytest.approx(var_ref, abs=1e-12 * scale)
    assert expected_shortfall(pnl, conf, w) == pytest.approx(es_ref, abs=1e-9 * scale)


@settings(max_examples=200, deadline=None)
@given(pnl=pnl_vectors, conf=confidences)
def test_ordering_worst_ge_es_ge_var_ge_zero(pnl: np.ndarray, conf: float) -> None:
    wl, es, var = worst_loss(pnl), expected_shortfall(pnl, conf), value_at_risk(pnl, conf)
    assert wl >= es >= var >= 0.0
    assert (var > 0.0) <= (es > 0.0)  # a positive VaR implies a positive ES


@settings(max_examples=150, deadline=None)
@given(pnl=pnl_vectors, c1=st.floats(0.01, 0.999), c2=st.floats(0.01, 0.999))
def test_monotone_in_confidence(pnl: np.ndarray, c1: float, c2: float) -> None:
    lo, hi = min(c1, c2), max(c1, c2)
    scale = max(1.0, float(np.abs(pnl).max()))
    assert expected_shortfall(pnl, lo) <= expected_shortfall(pnl, hi) + 1e-12 * scale
    assert value_at_risk(pnl, lo) <= value_at_risk(pnl, hi)


@settings(max_examples=150, deadline=None)
@given(pnl=pnl_vectors, conf=confidences, k=st.floats(1e-3, 1e3))
def test_positive_homogeneity(pnl: np.ndarray, conf: float, k: float) -> None:
    scale = k * max(1.0, float(np.abs(pnl).max()))
    for f in (expected_shortfall, value_at_risk):
        assert f(k * pnl, conf) == pytest.approx(k * f(pnl, conf), abs=1e-12 * scale)
    assert worst_loss(k * pnl) == pytest.approx(k * worst_loss(pnl), abs=1e-12 * scale)


@settings(max_examples=150, deadline=None)
@given(pnl=pnl_vectors, conf=confidences)
def test_cash_invariance(pnl: np.ndarray, conf: float) -> None:
    """Taking cash c out of every scenario adds c to the (unfloored) ES and VaR."""
    c = 2.0 * float(np.abs(pnl).max()) + 1.0
    es1, es2 = expected_shortfall(pnl - c, conf), expected_shortfall(pnl - 2 * c, conf)
    assert es2 == pytest.approx(es1 + c, abs=1e-9 * c)
    assert value_at_risk(pnl - 2 * c, conf) == pytest.approx(value_at_risk(pnl - c, conf) + c)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), n=st.integers(1, 40), conf=confidences)
def test_es_subadditive(data: st.DataObject, n: int, conf: float) -> None:
    """ES is coherent: ES(x + y) <= ES(x) + ES(y), also with scenario weights."""
    x = data.draw(arrays(np.float64, n, elements=finite))
    y = data.draw(arrays(np.float64, n, elements=finite))
    w = data.draw(arrays(np.float64, n, elements=st.floats(0.01, 5.0)))
    scale = max(1.0, float(np.abs(x).max() + np.abs(y).max()))
    for ww in (None, w):
        lhs = expected_shortfall(x + y, conf, ww)
        rhs = expected_shortfall(x, conf, ww) + expected_shortfall(y, conf, ww)
        assert lhs <= rhs + 1e-9 * scale


@settings(max_examples=150, deadline=None)
@given(data=st.data(), pnl=pnl_vectors, conf=confidences)
def test_integer_weights_equal_duplicated_scenarios(
    data: st.DataObject, pnl: np.ndarray, conf: float
) -> None:
    """Weight k on a scenario = the scenario listed k times, unweighted (the weighted path is
    checked against the counting path)."""
    reps = data.draw(arrays(np.int64, pnl.shape[0], elements=st.integers(0, 4)))
    assume(reps.sum() > 0)
    expanded = np.repeat(pnl, reps)
    scale = max(1.0, float(np.abs(pnl).max()))
    w = reps.astype(float)
    assert value_at_risk(pnl, conf, w) == pytest.approx(value_at_risk(expanded, conf))
    assert expected_shortfall(pnl, conf, w) == pytest.approx(
        expected_shortfall(expanded, conf), abs=1e-9 * scale
    )


@settings(max_examples=100, deadline=None)
@given(pnl=pnl_vectors, conf=confidences, c=st.floats(1e-3, 1e3))
def test_uniform_weights_equal_unweighted(pnl: np.ndarray, conf: float, c: float) -> None:
    w = np.full(pnl.shape[0], c)
    assert value_at_risk(pnl, conf, w) == value_at_risk(pnl, conf)
    assert expected_shortfall(pnl, conf, w) == expected_shortfall(pnl, conf)


@settings(max_examples=100, deadline=None)
@given(data=st.data(), pnl=pnl_vectors, conf=confidences)
def test_permutation_invariance(data: st.DataObject, pnl: np.ndarray, conf: float) -> None:
    w = data.draw(arrays(np.float64, pnl.shape[0], elements=st.floats(0.01, 5.0)))
    perm = data.draw(st.permutations(list(range(pnl.shape[0]))))
    scale = max(1.0, float(np.abs(pnl).max()))
    assert expected_shortfall(pnl[perm], conf, w[perm]) == pytest.approx(
        expected_shortfall(pnl, conf, w), abs=1e-9 * scale
    )
    assert value_at_risk(pnl[perm], conf, w[perm]) == pytest.approx(value_at_risk(pnl, conf, w))


def test_rows_match_one_dimensional() -> None:
    rng = np.random.default_rng(11)
    x = rng.standard_t(3, size=(50, 137))
    w = rng.random(137)
    for conf in (0.9, 0.975, 0.99):
        for ww in (None, w):
            np.testing.assert_array_equal(
                expected_shortfall_rows(x, conf, ww),
                [expected_shortfall(r, conf, ww) for r in x],
            )
            np.testing.assert_array_equal(
                value_at_risk_rows(x, conf, ww), [value_at_risk(r, conf, ww) for r in x]
            )
    np.testing.assert_array_equal(worst_loss_rows(x), [worst_loss(r) for r in x])


@settings(max_examples=100, deadline=None)
@given(
    data=st.data(),
    n_pos=st.integers(1, 6),
    n_scen=st.integers(1, 40),
    conf=confidences,
    weighted=st.booleans(),
)
def test_contributions_sum_to_total(
    data: st.DataObject, n_pos: int, n_scen: int, conf: float, weighted: bool
) -> None:
    x = data.draw(arrays(np.float64, (n_pos, n_scen), elements=finite))
    w = data.draw(arrays(np.float64, n_scen, elements=st.floats(0.01, 5.0))) if weighted else None
    total = x.sum(axis=0)
    scale = max(1.0, float(np.abs(x).sum(axis=0).max()))
    es = euler_es_contributions(x, conf, w)
    assert es.total == pytest.approx(expected_shortfall(total, conf, w), abs=1e-9 * scale)
    assert es.contributions.sum() == pytest.approx(es.total, abs=1e-9 * scale)
    assert es.shares.sum() == pytest.approx(1.0) and np.all(es.shares > 0)
    v = var_contributions(x, conf, w)
    assert v.contributions.sum() == pytest.approx(v.total, abs=1e-9 * scale)
    wl = worst_scenario_contributions(x)
    assert wl.contributions.sum() == pytest.approx(wl.total, abs=1e-9 * scale)


def test_euler_contributions_are_directional_derivatives() -> None:
    """Euler: c_i = d/de ES(total + e * x_i) at e = 0 (ES is locally linear in the sizes)."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((6, 400)) * np.array([[1.0], [2.0], [0.5], [3.0], [1.0], [0.1]])
    w = rng.random(400)
    for conf, ww in ((0.99, None), (0.975, w), (0.9, None)):
        att = euler_es_contributions(x, conf, ww)
        total = x.sum(axis=0)
        eps = 1e-7
        for i in range(x.shape[0]):
            up = expected_shortfall(total + eps * x[i], conf, ww)
            dn = expected_shortfall(total - eps * x[i], conf, ww)
            assert (up - dn) / (2 * eps) == pytest.approx(att.contributions[i], rel=1e-5, abs=1e-7)


# --------------------------------------------------------------------------------------------
# input errors


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: value_at_risk([1.0, -1.0], 1.0), "confidence"),
        (lambda: value_at_risk([1.0, -1.0], 0.0), "confidence"),
        (lambda: expected_shortfall([1.0, float("nan")], 0.9), "pnl: .*finite"),
        (lambda: expected_shortfall([], 0.9), "pnl: needs at least one"),
        (lambda: expected_shortfall([[1.0]], 0.9), "pnl: expected a 1-D"),
        (lambda: expected_shortfall([1.0, 2.0], 0.9, [1.0, -1.0]), "weights: must be non-neg"),
        (lambda: expected_shortfall([1.0, 2.0], 0.9, [0.0, 0.0]), "weights: must have a pos"),
        (lambda: expected_shortfall([1.0, 2.0], 0.9, [1.0]), "weights: expected"),
        (lambda: expected_shortfall_rows([1.0, 2.0], 0.9), "pnl: expected a 2-D"),
        (lambda: euler_es_contributions([1.0, 2.0], 0.9), "position_pnl: expected a 2-D"),
        (lambda: tail_scenarios([1.0], 0.9, measure="foo"), "measure"),  # type: ignore[arg-type]
        (lambda: tail_scenarios([1.0], None, measure="es"), "confidence: required"),
        (lambda: tail_scenarios([1.0], 0.9, measure="worst_loss"), "not used"),
        (lambda: stressed_weights(np.zeros(3, dtype=bool)), "stressed: needs"),
        (lambda: stressed_weights(np.array([True, False]), 1.0), "stressed_share"),
        (lambda: normalise_weights([1.0, np.inf], 2), "weights: .*finite"),
    ],
)
def test_bad_input_is_rejected(call: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()  # type: ignore[operator]


def test_equal_weight_es_partial_sort_matches_full_sort_to_the_bit() -> None:
    """The equal-weight ES orders only its k + 1 worst losses (np.partition); the reference is
    the full stable sort of every row (``_tail_rows`` then ``_es_from_tail``, the path every
    equal-weight ES took before). Ties and constant rows included."""
    from margin_engine.maths import risk_measures as rm

    rng = np.random.default_rng(20261206)
    for trial in range(400):
        n = int(rng.integers(1, 300))
        x = rng.normal(size=(int(rng.integers(1, 4)), n))
        if trial % 3 == 0:
            x = np.round(x, 1)
        if trial % 7 == 0:
            x[:] = 0.5
        for confidence in (0.5, 0.9, 0.975, 0.99, 0.999):
            p = 1.0 - confidence
            full = np.maximum(rm._es_from_tail(rm._tail_rows(-x, p, None), True), 0.0)
            assert np.array_equal(expected_shortfall_rows(x, confidence), full)



@settings(max_examples=100, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 300)),
              elements=st.integers(-50, 50).map(float)),
       st.sampled_from([0.9, 0.975, 0.99]))
def test_rows_measure_each_row_as_alone(pnl: np.ndarray, c: float) -> None:
    """A rows call gives each row's VaR and ES to the bit of the row measured alone (the risk-based
    models stack a unit, its underlyings and its positions into one call)."""
    for rows, one in ((expected_shortfall_rows, expected_shortfall),
                      (value_at_risk_rows, value_at_risk)):
        together = rows(pnl, c)
        alone = np.array([one(r, c) for r in pnl])
        assert together.tobytes() == alone.tobytes()


def test_attribution_takes_the_callers_total() -> None:
    """``total=`` given (the same measure) leaves the attribution unchanged; not given, computed."""
    pnl = np.random.default_rng(3).standard_normal((4, 500))
    for attribute, total in ((euler_es_contributions, expected_shortfall(pnl.sum(0), 0.975)),
                             (var_contributions, value_at_risk(pnl.sum(0), 0.975))):
        a, b = attribute(pnl, 0.975), attribute(pnl, 0.975, total=total)
        assert a.total == b.total == total
        assert a.contributions.tobytes() == b.contributions.tobytes()
        np.testing.assert_array_equal(a.scenarios, b.scenarios)
    w = worst_scenario_contributions(pnl, total=worst_loss(pnl.sum(0)))
    assert w.total == worst_scenario_contributions(pnl).total


@pytest.mark.parametrize("shape", [(5, 3000), (3, 9000), (40, 200)])  # n p integer
def test_es_rows_across_blocks_of_rows(shape: tuple[int, int]) -> None:
    """Rows wider than a block, two to a block with a short last one, many to a block: each
    row's ES is, to the bit, the row's ES alone (ties and ±0 included)."""
    rng = np.random.default_rng(shape[0])
    pnl = np.round(rng.standard_t(3, shape), 1) * rng.choice([1.0, -1.0], shape)
    together = expected_shortfall_rows(pnl, 0.975)
    assert together.tobytes() == np.array([expected_shortfall(r, 0.975) for r in pnl]).tobytes()
    ref = [np.mean(np.sort(-r)[::-1][: int(0.025 * r.size)]) for r in pnl]
    np.testing.assert_allclose(together, np.maximum(ref, 0.0), rtol=1e-12)


@settings(max_examples=150, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 70), st.integers(1, 200)),
              elements=st.sampled_from([-2.0, -1.0, -0.0, 0.0, 1.0, 3.0])),
       st.sampled_from([0.5001, 0.9, 0.95, 0.975, 0.99]))
def test_var_rows_counting_path_matches_the_full_sort(pnl: np.ndarray, c: float) -> None:
    """Equal weights: the VaR from a partition is, to the bit (signed zeros included), the
    floored loss at the VaR position of the full stable sort."""
    t = _tail_rows(-pnl, 1.0 - c, None)
    full = np.maximum(t.sorted_loss[np.arange(pnl.shape[0]), t.k], 0.0)
    assert value_at_risk_rows(pnl, c).tobytes() == full.tobytes()
