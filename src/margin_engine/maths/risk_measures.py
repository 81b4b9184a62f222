"""Scenario risk measures on P&L vectors: worst loss, VaR, expected shortfall, attribution.

Pure functions on float64 NumPy arrays; no domain objects. Amounts are in whatever currency the
P&L is in (the margin unit's currency); every measure is returned as a non-negative *loss*.

Sign convention (``research/ccp-standards.md`` §0.1): P&L ``X`` is positive for a gain and
negative for a loss; the loss is ``L = -X``; VaR and ES are positive numbers.

Definitions (fixed once here and used by the aggregation kernel too; see ``docs/risk-kernel.md``).
With scenario probabilities ``w`` (non-negative, normalised to sum to 1; equal if not given) and
tail probability ``p = 1 - confidence``:

- ``worst_loss = max(0, max_s L_s)`` over all scenarios of the set, whatever their weight.
- ``VaR = max(0, q)`` with ``q = inf{l : P(L > l) <= p}`` = ``inf{l : P(L <= l) >= confidence}``,
  the lower ``confidence``-quantile of the loss (``VaR_c = -quantile_{1-c}(P&L)``, ccp-standards
  §5.3). With ``n`` equal-weight scenarios sorted worst first ``L_(1) >= L_(2) >= ...`` it is
  ``L_(k)`` with ``k = floor(n p) + 1``: at 99 % on 100 scenarios the second-worst loss.
- ``ES = max(0, E)`` with the Acerbi–Tasche tail mean
  ``E = (sum_{j<k} w_(j) L_(j) + (p - c_(k-1)) L_(k)) / p``, where ``c_(j)`` is the probability of
  the ``j`` worst scenarios and ``k`` the VaR scenario: the probability-weighted mean of the worst
  ``p`` of the distribution, the VaR atom entering with the fraction of its weight that fills the
  tail to exactly ``p``. This is coherent, ``ES >= VaR`` always, and with equal weights and
  ``n p`` an integer it is the mean of the ``n p`` worst losses.

Tail probabilities are compared with an absolute tolerance ``TAIL_TOLERANCE`` (1e-12) so that a
cumulative probability equal to ``p`` up to rounding (``n p`` integer with equal weights, such as
``1 - 0.9 = 0.09999999999999998``) counts as equal. Ties are broken by scenario index (the lower
index is the worse), so the scenarios named as drivers are deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "TAIL_TOLERANCE",
    "Attribution",
    "TailSet",
    "euler_es_contributions",
    "expected_shortfall",
    "expected_shortfall_rows",
    "normalise_weights",
    "stressed_weights",
    "tail_scenarios",
    "value_at_risk",
    "value_at_risk_rows",
    "var_contributions",
    "worst_loss",
    "worst_loss_rows",
    "worst_scenario_contributions",
]

TAIL_TOLERANCE = 1e-12
"""Absolute tolerance (probability) when comparing cumulative tail probability with ``1 - c``."""
_ES_BLOCK = 8192
"""Numbers per block of the equal-weight ES's temporary (64 KiB of float64)."""

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
Measure = Literal["worst_loss", "var", "es"]


@dataclass(frozen=True)
class TailSet:
    """The scenarios that drive a measure and their share of it.

    Attributes
    ----------
    scenarios : int64 array
        Scenario indices, worst loss first.
    shares : float64 array
        Each scenario's share of the measure (non-negative, sums to 1): the measure's raw value
        is ``sum(shares * loss[scenarios])``.
    var_scenario : int
        Index of the scenario whose loss is the VaR (the worst scenario for ``worst_loss``).
    """

    scenarios: IntArray
    shares: FloatArray
    var_scenario: int


@dataclass(frozen=True)
class Attribution:
    """A measure of the summed P&L split over positions (Euler allocation).

    Attributes
    ----------
    measure : {"worst_loss", "var", "es"}
    confidence : float or None
        ``None`` for ``worst_loss``.
    total : float
        The measure of the summed P&L (non-negative loss, P&L currency).
    contributions : float64 array [n_positions]
        Per-position contributions; they sum to ``total`` (up to rounding). All zero when the
        measure is floored at zero (no loss to attribute).
    scenarios, shares : arrays
        The driving scenarios and their weight in the measure (see :class:`TailSet`).
    """

    measure: Measure
    confidence: float | None
    total: float
    contributions: FloatArray
    scenarios: IntArray
    shares: FloatArray


# --------------------------------------------------------------------------------------------
# validation


def _check_confidence(confidence: float) -> float:
    c = float(confidence)
    if not np.isfinite(c) or not 0.0 < c < 1.0:
        raise ValueError(
            f"confidence: must be a number strictly between 0 and 1, got {confidence!r}"
        )
    return c


def _as_pnl_1d(pnl: ArrayLike, name: str = "pnl") -> FloatArray:
    x = np.asarray(pnl, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array of scenario P&L, got shape {x.shape}")
    if x.size == 0:
        raise ValueError(f"{name}: needs at least one scenario")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name}: contains a value that is not a finite number")
    return x


def _as_pnl_2d(pnl: ArrayLike, name: str = "pnl") -> FloatArray:
    x = np.asarray(pnl, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array [rows x scenarios], got shape {x.shape}")
    if x.shape[1] == 0:
        raise ValueError(f"{name}: needs at least one scenario (column)")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name}: contains a value that is not a finite number")
    return x


def normalise_weights(weights: ArrayLike | None, n_scenarios: int) -> FloatArray | None:
    """Validate scenario weights and scale them to probabilities summing to 1.

    Parameters
    ----------
    weights : array [n_scenarios] or None
        Non-negative finite relative weights (any positive total).
    n_scenarios : int

    Returns
    -------
    float64 array or None
        ``None`` when ``weights`` is ``None`` or all weights are equal: the measures then use the
        exact equal-weight (counting) path.
    """
    if weights is None:
        return None
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1 or w.shape[0] != n_scenarios:
        raise ValueError(
            f"weights: expected a 1-D array of {n_scenarios} scenario weights, got shape {w.shape}"
        )
    if not np.all(np.isfinite(w)):
        raise ValueError("weights: contains a value that is not a finite number")
    if np.any(w < 0.0):
        raise ValueError("weights: must be non-negative")
    total = float(w.sum())
    if not total > 0.0:
        raise ValueError("weights: must have a positive sum")
    if np.all(w == w[0]):
        return None
    return w / total


def stressed_weights(stressed: ArrayLike, stressed_share: float = 0.25) -> FloatArray:
    """Scenario probabilities giving the stressed scenarios a fixed total weight.

    EMIR RTS 153/2013 Art. 28(1)(b) anti-procyclicality option: stressed observations carry at
    least 25 % of the weight in the look-back (ccp-standards §3.1; the exact form is
    UNCONFIRMED there, so ``stressed_share`` is a parameter).

    Parameters
    ----------
    stressed : bool array [n_scenarios]
        True for scenarios drawn from the stressed period.
    stressed_share : float
        Total probability of the stressed scenarios, in (0, 1).

    Returns
    -------
    float64 array [n_scenarios]
        Stressed scenarios share ``stressed_share`` equally, the others ``1 - stressed_share``.
    """
    m = np.asarray(stressed)
    if m.ndim != 1 or m.size == 0 or m.dtype != np.bool_:
        raise ValueError("stressed: expected a non-empty 1-D boolean array")
    share = float(stressed_share)
    if not 0.0 < share < 1.0:
        raise ValueError(
            f"stressed_share: must be strictly between 0 and 1, got {stressed_share!r}"
        )
    n_s = int(m.sum())
    if n_s == 0 or n_s == m.size:
        raise ValueError("stressed: needs at least one stressed and one unstressed scenario")
    return np.where(m, share / n_s, (1.0 - share) / (m.size - n_s))


# --------------------------------------------------------------------------------------------
# core: the tail of each row


@dataclass(frozen=True)
class _Tail:
    order: IntArray  # [rows, n] scenario indices, worst loss first (stable)
    sorted_loss: FloatArray  # [rows, n]
    k: IntArray  # [rows] 0-based position of the VaR scenario in `order`
    prev: FloatArray  # [rows] probability of the scenarios before k (c_(k-1))
    atom: FloatArray  # [rows] probability of the VaR scenario inside the tail
    sorted_w: FloatArray  # [rows, n] probabilities in sorted order


def _counting_tail(n: int, p: float) -> tuple[int, float, float]:
    """Equal weights: (0-based VaR position k, probability before it, its atom in the tail);
    the cumulative probability of the j worst of ``n`` scenarios is exactly j / n."""
    tail_count = p * n
    tol_count = TAIL_TOLERANCE * n
    k = min(int(np.floor(tail_count + tol_count)), n - 1)
    prev = k / n
    atom = p - prev
    if k > 0 and atom < TAIL_TOLERANCE:
        atom = 0.0
    return k, prev, min(max(atom, 0.0), 1.0 / n)


def _worst_losses(pnl: FloatArray, m: int) -> FloatArray:
    """The ``m`` largest losses of each row of ``pnl`` [rows × n], in no particular order.

    The losses are negated and partitioned in place a block of rows at a time (at most
    ``_ES_BLOCK`` numbers): a whole-matrix temporary, and ``np.partition``'s copy of it, were
    matrix-sized arrays that glibc gave back and faulted in again on every call (5-6× the time
    at 10,000 scenarios and a few rows). Rows are independent, so blocks change no number."""
    n_rows, n = pnl.shape
    out = np.empty((n_rows, m))
    step = max(1, _ES_BLOCK // n)
    for start in range(0, n_rows, step):
        losses = -pnl[start:start + step]
        losses.partition(n - m, axis=1)
        out[start:start + step] = losses[:, n - m:]
    return out


def _es_equal_weights(pnl: FloatArray, p: float) -> FloatArray:
    """:func:`_es_from_tail` of the counting path, from the k + 1 worst losses only.

    A partition finds them in linear time (:func:`_worst_losses`); sorted, they are exactly
    the first k + 1 columns of the full stable sort (equal values are interchangeable), so every
    sum below runs over the same numbers in the same order and the result is the same to the
    last bit."""
    k, _, atom = _counting_tail(pnl.shape[1], p)
    n_rows, n = pnl.shape
    worst = -np.sort(-_worst_losses(pnl, k + 1), axis=1)
    var = worst[:, k]
    head = np.cumsum(worst, axis=1)[:, k - 1] if k > 0 else np.zeros(n_rows)
    raw: FloatArray = (head + (atom * n) * var) / (k + atom * n)
    return np.minimum(np.maximum(raw, var), worst[:, 0])


def _worst_first(pnl: FloatArray, m: int) -> IntArray:
    """The ``m`` scenarios of ``pnl`` with the largest loss, worst first, ties by lower index.

    Exactly ``np.argsort(pnl, kind="stable")[:m]`` (the order :func:`_tail_rows` uses), in
    linear time plus a sort of ``m``: the ``m``-th lowest P&L is found by ``np.partition``, every
    scenario below it is in, and of those equal to it the lowest indices fill the rest.
    """
    n = pnl.size
    if m >= n:
        return np.argsort(pnl, kind="stable").astype(np.int64)
    cut = np.partition(pnl, m - 1)[m - 1]
    below = np.flatnonzero(pnl < cut)
    at = np.flatnonzero(pnl == cut)[: m - below.size]
    chosen = np.sort(np.concatenate([below, at]))
    return chosen[np.argsort(pnl[chosen], kind="stable")].astype(np.int64)


def _tail_rows(losses: FloatArray, p: float, w: FloatArray | None) -> _Tail:
    """Locate the VaR scenario and the tail composition of every row of ``losses``."""
    n_rows, n = losses.shape
    order = np.argsort(-losses, axis=1, kind="stable").astype(np.int64)
    sorted_loss = np.take_along_axis(losses, order, axis=1)
    rows = np.arange(n_rows)
    if w is None:
        k_scalar, prev_scalar, atom_scalar = _counting_tail(n, p)
        k = np.full(n_rows, k_scalar, dtype=np.int64)
        prev = np.full(n_rows, prev_scalar)
        atom = np.full(n_rows, atom_scalar)
        sorted_w = np.full((n_rows, n), 1.0 / n)
    else:
        sorted_w = w[order]
        cum = np.cumsum(sorted_w, axis=1)
        exceed = cum > p + TAIL_TOLERANCE
        k = np.where(exceed.any(axis=1), exceed.argmax(axis=1), n - 1).astype(np.int64)
        prev = np.where(k > 0, cum[rows, np.maximum(k - 1, 0)], 0.0)
        atom = p - prev
        atom = np.where((k > 0) & (atom < TAIL_TOLERANCE), 0.0, atom)
        atom = np.clip(atom, 0.0, sorted_w[rows, k])
    return _Tail(order, sorted_loss, k, prev, atom, sorted_w)


def _es_from_tail(t: _Tail, w_is_none: bool) -> FloatArray:
    n_rows, n = t.sorted_loss.shape
    rows = np.arange(n_rows)
    var = t.sorted_loss[rows, t.k]
    if w_is_none:
        # sum of the k worst losses, then divide by the tail count (exact counting arithmetic)
        csum = np.cumsum(t.sorted_loss, axis=1)
        head = np.where(t.k > 0, csum[rows, np.maximum(t.k - 1, 0)], 0.0)
        num = head + (t.atom * n) * var
        den = t.k + t.atom * n
    else:
        csum = np.cumsum(t.sorted_w * t.sorted_loss, axis=1)
        head = np.where(t.k > 0, csum[rows, np.maximum(t.k - 1, 0)], 0.0)
        num = head + t.atom * var
        den = t.prev + t.atom
    raw: FloatArray = num / den
    # a tail mean lies between VaR and the worst loss; guard against last-ulp rounding
    return np.minimum(np.maximum(raw, var), t.sorted_loss[:, 0])


# --------------------------------------------------------------------------------------------
# measures over rows (vectorised)


def worst_loss_rows(pnl: ArrayLike) -> FloatArray:
    """Worst loss of each row of a [rows x scenarios] P&L matrix (non-negative, P&L currency)."""
    x = _as_pnl_2d(pnl)
    out: FloatArray = np.maximum(-x.min(axis=1), 0.0)
    return out


def value_at_risk_rows(
    pnl: ArrayLike, confidence: float, weights: ArrayLike | None = None
) -> FloatArray:
    """VaR at ``confidence`` of each row of a [rows x scenarios] P&L matrix.

    Parameters
    ----------
    pnl : float array [rows, n_scenarios]
        P&L, gains positive, in the rows' currency.
    confidence : float
        In (0, 1), e.g. 0.99.
    weights : array [n_scenarios] or None
        Scenario weights (non-negative, normalised internally); equal if ``None``.

    Returns
    -------
    float64 array [rows]
        Non-negative VaR per row, same currency as ``pnl``.
    """
    x = _as_pnl_2d(pnl)
    p = 1.0 - _check_confidence(confidence)
    w = normalise_weights(weights, x.shape[1])
    if w is None:  # the (k+1)-th largest loss is the least of the k + 1 largest (a partition);
        # the value is the full sort's but for the sign of a zero, which the floor makes +0
        k = _counting_tail(x.shape[1], p)[0]
        out: FloatArray = np.maximum(_worst_losses(x, k + 1).min(axis=1), 0.0)
        return out
    t = _tail_rows(-x, p, w)
    out = np.maximum(t.sorted_loss[np.arange(x.shape[0]), t.k], 0.0)
    return out


def expected_shortfall_rows(
    pnl: ArrayLike, confidence: float, weights: ArrayLike | None = None
) -> FloatArray:
    """Expected shortfall at ``confidence`` of each row of a [rows x scenarios] P&L matrix.

    Same arguments as :func:`value_at_risk_rows`; returns the non-negative Acerbi–Tasche tail
    mean per row (module docstring), same currency as ``pnl``.
    """
    x = _as_pnl_2d(pnl)
    p = 1.0 - _check_confidence(confidence)
    w = normalise_weights(weights, x.shape[1])
    if w is None:  # partial sort: only the tail's k + 1 worst are ordered
        out: FloatArray = np.maximum(_es_equal_weights(x, p), 0.0)
        return out
    t = _tail_rows(-x, p, w)
    out = np.maximum(_es_from_tail(t, w is None), 0.0)
    return out


# --------------------------------------------------------------------------------------------
# measures of one P&L vector


def worst_loss(pnl: ArrayLike) -> float:
    """Worst loss over the scenarios, ``max(0, -min(pnl))``, in the P&L currency."""
    return float(worst_loss_rows(_as_pnl_1d(pnl)[None, :])[0])


def value_at_risk(pnl: ArrayLike, confidence: float, weights: ArrayLike | None = None) -> float:
    """Value at risk: the lower ``confidence``-quantile of the loss, floored at 0.

    Parameters
    ----------
    pnl : float array [n_scenarios]
        Scenario P&L, gains positive.
    confidence : float
        In (0, 1).
    weights : array [n_scenarios] or None
        Scenario weights, normalised internally (e.g. :func:`stressed_weights`).

    Returns
    -------
    float
        Non-negative loss in the P&L currency.
    """
    return float(value_at_risk_rows(_as_pnl_1d(pnl)[None, :], confidence, weights)[0])


def expected_shortfall(
    pnl: ArrayLike, confidence: float, weights: ArrayLike | None = None
) -> float:
    """Expected shortfall (Acerbi–Tasche tail mean beyond VaR), floored at 0.

    Same arguments as :func:`value_at_risk`. ``expected_shortfall >= value_at_risk`` always.
    """
    return float(expected_shortfall_rows(_as_pnl_1d(pnl)[None, :], confidence, weights)[0])


def tail_scenarios(
    pnl: ArrayLike,
    confidence: float | None,
    weights: ArrayLike | None = None,
    *,
    measure: Measure = "es",
) -> TailSet:
    """The scenarios that drive a measure of ``pnl`` and their shares.

    Parameters
    ----------
    pnl : float array [n_scenarios]
    confidence : float or None
        Required for ``var`` and ``es``; must be ``None`` for ``worst_loss``.
    weights : array or None
        Scenario weights (``var`` and ``es`` only).
    measure : {"es", "var", "worst_loss"}

    Returns
    -------
    TailSet
        For ``es`` the tail scenarios (worst first) with shares ``w_s / p`` (the VaR scenario
        with its fractional atom; zero-share scenarios are left out); for ``var`` and
        ``worst_loss`` the single scenario with share 1.
    """
    x = _as_pnl_1d(pnl)
    if measure == "worst_loss":
        if confidence is not None or weights is not None:
            raise ValueError("confidence/weights: not used by measure 'worst_loss'; pass None")
        s = int(np.argmax(-x))
        return TailSet(np.array([s], dtype=np.int64), np.array([1.0]), s)
    if measure not in ("var", "es"):
        raise ValueError(f"measure: must be 'worst_loss', 'var' or 'es', got {measure!r}")
    if confidence is None:
        raise ValueError(f"confidence: required for measure {measure!r}")
    p = 1.0 - _check_confidence(confidence)
    w = normalise_weights(weights, x.size)
    if w is None:  # counting path: only the k + 1 worst scenarios are ordered
        k, prev, atom = _counting_tail(x.size, p)
        head = _worst_first(x, k + 1)
        if measure == "var":
            return TailSet(head[k:].copy(), np.array([1.0]), int(head[k]))
        probs = np.concatenate([np.full(k, 1.0 / x.size), [atom]])
        keep = probs > 0.0
        return TailSet(head[keep], probs[keep] / (prev + atom), int(head[k]))
    t = _tail_rows(-x[None, :], p, w)
    k = int(t.k[0])
    order = t.order[0]
    var_s = int(order[k])
    if measure == "var":
        return TailSet(np.array([var_s], dtype=np.int64), np.array([1.0]), var_s)
    probs = np.concatenate([t.sorted_w[0, :k], [t.atom[0]]])
    den = float(t.prev[0] + t.atom[0])
    scen = order[: k + 1]
    keep = probs > 0.0
    return TailSet(scen[keep].astype(np.int64), probs[keep] / den, var_s)


# --------------------------------------------------------------------------------------------
# attribution


def _measure_of(pnl: FloatArray, confidence: float | None, weights: ArrayLike | None,
                measure: Measure) -> float:
    """``measure`` of one P&L vector (``confidence`` is ``None`` for ``worst_loss``)."""
    if measure == "worst_loss":
        return worst_loss(pnl)
    assert confidence is not None
    if measure == "var":
        return value_at_risk(pnl, confidence, weights)
    return expected_shortfall(pnl, confidence, weights)


def _attribute(
    position_pnl: ArrayLike,
    confidence: float | None,
    weights: ArrayLike | None,
    measure: Measure,
    total: float | None = None,
) -> Attribution:
    x = _as_pnl_2d(position_pnl, "position_pnl")
    total_pnl = x.sum(axis=0)
    tail = tail_scenarios(total_pnl, confidence, weights, measure=measure)
    # raw measure of the total as the share-weighted loss of its driving scenarios
    position_loss = -x[:, tail.scenarios]
    contributions = position_loss @ tail.shares
    raw = float(contributions.sum())
    if total is None:
        total = _measure_of(total_pnl, confidence, weights, measure)
    if total == 0.0 or raw <= 0.0:
        contributions = np.zeros(x.shape[0])
    return Attribution(
        measure=measure,
        confidence=None if confidence is None else float(confidence),
        total=total,
        contributions=contributions,
        scenarios=tail.scenarios,
        shares=tail.shares,
    )


def euler_es_contributions(
    position_pnl: ArrayLike, confidence: float, weights: ArrayLike | None = None, *,
    total: float | None = None,
) -> Attribution:
    """Euler allocation of the ES of the summed P&L to positions.

    The tail is identified on the total P&L (``position_pnl.sum(axis=0)``); each position's
    contribution is its share-weighted mean loss in those tail scenarios, with the same
    fractional weight on the VaR atom. Contributions sum to the ES of the total; a hedge has a
    negative contribution.

    Parameters
    ----------
    position_pnl : float array [n_positions, n_scenarios]
        P&L per position per scenario (gains positive), all in the unit's currency.
    confidence : float
        In (0, 1).
    weights : array [n_scenarios] or None
        Scenario weights, normalised internally.
    total : float or None
        The measure of ``position_pnl.sum(axis=0)`` when the caller has it already (e.g. one
        row of an ``*_rows`` call, which measures each row exactly as alone); computed here when
        ``None``. It becomes ``Attribution.total`` unchecked.

    Returns
    -------
    Attribution
    """
    return _attribute(position_pnl, confidence, weights, "es", total)


def worst_scenario_contributions(position_pnl: ArrayLike, *,
                                 total: float | None = None) -> Attribution:
    """Split the worst loss of the summed P&L: each position's loss in that scenario.

    ``position_pnl`` is [n_positions, n_scenarios] P&L (gains positive). The worst scenario is the
    one with the largest total loss (lowest index on ties). ``total`` as in
    :func:`euler_es_contributions`.
    """
    return _attribute(position_pnl, None, None, "worst_loss", total)


def var_contributions(
    position_pnl: ArrayLike, confidence: float, weights: ArrayLike | None = None, *,
    total: float | None = None,
) -> Attribution:
    """Split the VaR of the summed P&L: each position's loss in the VaR scenario.

    Arguments as :func:`euler_es_contributions`. The VaR scenario is the scenario whose total
    loss is the VaR (ties broken by lowest index); contributions sum to the VaR.
    """
    return _attribute(position_pnl, confidence, weights, "var", total)
