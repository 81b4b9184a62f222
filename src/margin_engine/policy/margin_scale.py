"""How a dynamic margin multiplier is applied to a unit's requirements, safely.

A :class:`MarginScale` turns a unit's model requirements (IM, MM, currency amounts) into the
requirements in force::

    IM' = m × IM
    MM' = max(MM, min(m_mm × MM, c × IM))

- ``m`` (``im_multiplier``) is the controller's multiplier (:mod:`policy.dynamic`), ``>= 1``;
- ``m_mm = 1 + mm_share × (m − 1)`` (``mm_multiplier``) passes a share of the raise on to the
  maintenance margin (venues raise both together);
- ``c`` (``mm_ceiling``) caps the raised MM at a fraction of the unit's IM: when a scale ``B``
  replaces a scale ``A``, :func:`next_scale` sets ``c_B = mm_cap × m_A`` on a raise
  (``m_B > m_A``; ``mm_cap < 1``) and ``c_B = min(c_A, mm_cap × m_B)`` otherwise.

**The raise alone never liquidates a healthy unit.** A unit healthy under ``A`` has
``equity ≥ m_A × IM`` and ``equity > MM'_A ≥ MM`` (``health.status``). Under ``B`` either
``MM'_B = MM < equity``, or ``MM'_B ≤ c_B × IM ≤ mm_cap × m_A × IM < m_A × IM ≤ equity``
(when ``IM > 0``; with ``IM = 0`` the cap term is 0 and ``MM'_B = MM``). So ``equity > MM'_B``:
the unit may get a margin call (``equity < m_B × IM``), never a liquidation. On a decrease
``m_B``, ``m_mm`` and ``c`` all fall or stay, so IM' and MM' fall or stay and every status can
only improve (a ceiling that followed ``m_B`` up again after a decrease could raise MM and
liquidate an account already in margin call: hypothesis found that, hence the ``min``).
With ``m ≥ 1``, ``0 ≤ mm_share ≤ 1`` and the model's ``MM ≤ IM``, ``MM' ≤ IM'`` holds too.

``tests/policy/test_margin_scale.py`` checks the property with hypothesis on unit figures and
on the live book.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from margin_engine.models.core.results import AuditStamp, UnitMargin

__all__ = ["IDENTITY", "MarginScale", "next_scale", "scale_doc", "scaled_params_hash",
           "scaled_stamp", "scaled_unit"]


@dataclass(frozen=True)
class MarginScale:
    """Multipliers on a unit's IM and MM (dimensionless).

    Attributes
    ----------
    im_multiplier : float
        ``m``: IM' = m × IM; finite, >= 1.
    mm_multiplier : float
        ``m_mm``: the MM multiplier before the cap; finite, in [1, im_multiplier].
    mm_ceiling : float
        ``c``: MM' is at most ``c × IM`` unless the model's own MM is higher; >= 0 (``inf``:
        no cap).
    """

    im_multiplier: float = 1.0
    mm_multiplier: float = 1.0
    mm_ceiling: float = math.inf

    def __post_init__(self) -> None:
        m, mm, c = self.im_multiplier, self.mm_multiplier, self.mm_ceiling
        if not (math.isfinite(m) and m >= 1.0):
            raise ValueError(f"im_multiplier: must be a finite number >= 1, got {m!r}")
        if not (math.isfinite(mm) and 1.0 <= mm <= m):
            raise ValueError(f"mm_multiplier: must lie in [1, im_multiplier = {m}], got {mm!r}")
        if math.isnan(c) or c < 0.0:
            raise ValueError(f"mm_ceiling: must be >= 0, got {c!r}")

    @property
    def is_identity(self) -> bool:
        """Whether the scale leaves every requirement as the model computed it."""
        return self.im_multiplier == 1.0 and self.mm_multiplier == 1.0

    def apply(self, im: ArrayLike, mm: ArrayLike) -> tuple[NDArray[np.float64],
                                                          NDArray[np.float64]]:
        """The requirements in force from the model's (arrays of one currency per element).

        Parameters
        ----------
        im, mm : array_like
            The model's initial and maintenance margin per unit (currency amounts, >= 0).

        Returns
        -------
        (im', mm') : arrays
            ``m × im`` and ``max(mm, min(m_mm × mm, c × im))``.
        """
        im_a = np.asarray(im, dtype=np.float64)
        mm_a = np.asarray(mm, dtype=np.float64)
        if self.is_identity:
            return im_a.copy(), mm_a.copy()
        cap = self.mm_ceiling * im_a if math.isfinite(self.mm_ceiling) else np.inf
        mm_new = np.maximum(mm_a, np.minimum(self.mm_multiplier * mm_a, cap))
        return self.im_multiplier * im_a, mm_new

    def apply_one(self, im: float, mm: float) -> tuple[float, float]:
        """:meth:`apply` on one unit's figures."""
        a, b = self.apply([im], [mm])
        return float(a[0]), float(b[0])


IDENTITY = MarginScale()
"""No dynamic adjustment: the model's requirements as they are."""


def next_scale(current: MarginScale, multiplier: float, *, mm_share: float,
               mm_cap: float) -> MarginScale:
    """The scale that replaces ``current`` when the controller's multiplier becomes
    ``multiplier``.

    Parameters
    ----------
    current : MarginScale
        The scale in force.
    multiplier : float
        The new IM multiplier (>= 1).
    mm_share : float
        Share of the raise passed on to MM, in [0, 1].
    mm_cap : float
        On a raise the MM is capped at ``mm_cap × old multiplier × IM``; on a decrease (or
        no change) the cap is the lower of ``current``'s and ``mm_cap × new multiplier × IM``;
        in [0, 1) (strictly below 1: the safety argument needs it).

    Returns
    -------
    MarginScale
    """
    if not (0.0 <= mm_share <= 1.0):
        raise ValueError(f"mm_share: must lie in [0, 1], got {mm_share!r}")
    if not (0.0 <= mm_cap < 1.0):
        raise ValueError(f"mm_cap: must lie in [0, 1), got {mm_cap!r}")
    m = float(multiplier)
    if not (math.isfinite(m) and m >= 1.0):
        raise ValueError(f"multiplier: must be a finite number >= 1, got {multiplier!r}")
    old = current.im_multiplier
    ceiling = mm_cap * old if m > old else min(current.mm_ceiling, mm_cap * m)
    return MarginScale(im_multiplier=m, mm_multiplier=1.0 + mm_share * (m - 1.0),
                       mm_ceiling=ceiling)


def scaled_unit(req: UnitMargin, scale: MarginScale) -> UnitMargin:
    """A unit's requirement with ``scale`` applied: IM and MM raised, the IM raise shown as the
    ``dynamic_adjustment`` component, the multipliers in ``details["dynamic"]``."""
    im, mm = scale.apply_one(req.initial_margin, req.maintenance_margin)
    comps = dict(req.components)
    comps["dynamic_adjustment"] = im - req.initial_margin
    details = {**req.details, "dynamic": {
        "im_multiplier": scale.im_multiplier, "mm_multiplier": scale.mm_multiplier,
        "mm_ceiling": scale.mm_ceiling if math.isfinite(scale.mm_ceiling) else None,
        "model_initial_margin": req.initial_margin,
        "model_maintenance_margin": req.maintenance_margin}}
    return dataclasses.replace(req, initial_margin=im, maintenance_margin=mm, components=comps,
                               details=details)


def scale_doc(scale: MarginScale) -> dict[str, float | None]:
    """The scale as JSON (``mm_ceiling`` None for no cap)."""
    return {"im_multiplier": scale.im_multiplier, "mm_multiplier": scale.mm_multiplier,
            "mm_ceiling": scale.mm_ceiling if math.isfinite(scale.mm_ceiling) else None}


def scaled_params_hash(params_hash: str, scale: MarginScale) -> str:
    """The parameters hash of a model's requirements with ``scale`` in force.

    The identity scale leaves ``params_hash`` as it is (requirements as the model computed
    them). Otherwise it is the first 16 hex digits of SHA-256 over the compact, key-sorted JSON
    ``{"margin_scale": {"im_multiplier", "mm_multiplier", "mm_ceiling"}, "params_hash": H}``
    (floats as Python's shortest ``repr``; ``mm_ceiling`` null for no cap), so a number stamped
    with it names the model parameters *and* the multipliers that produced it, and anyone who
    knows both (the ``margin_parameters`` events publish the multipliers) can recompute it.
    """
    if scale.is_identity:
        return params_hash
    canon = json.dumps({"margin_scale": scale_doc(scale), "params_hash": params_hash},
                       sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()[:16]


def scaled_stamp(stamp: AuditStamp, scale: MarginScale) -> AuditStamp:
    """``stamp`` with its ``params_hash`` replaced by :func:`scaled_params_hash` (the same
    field names: the stamp says which parameters, multiplier included, produced a number)."""
    if scale.is_identity:
        return stamp
    return dataclasses.replace(stamp, params_hash=scaled_params_hash(stamp.params_hash, scale))
