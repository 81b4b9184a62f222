"""The implied-vol risk-factor parameters of the risk-based family (docs/vol-factors.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from margin_engine.models.core.base import ModelParams

VolFactor = Literal["implied", "beta"]
SurfaceDynamics = Literal["sticky-strike", "sticky-moneyness"]

#: Skew loading, derived: least-squares slope of the daily change of the 30-day skew dσ/dz on
#: the daily log-change of the 30-day ATM vol, Deribit BTC daily chains 2025-12-30 … 2026-08-22
#: (235 daily pairs, R² 0.35; ``python -m studies.option_books --factors``).
SKEW_LOADING = -0.14


class VolFactorParams(ModelParams):
    """How scenarios move the implied-vol surface."""

    vol_factor: VolFactor = Field("implied", description=(
        "implied: a '<U>_DVOL' column of the history (Deribit DVOL, decimal) is a risk factor: "
        "its daily log-changes are drawn jointly with the price by the model's own generator "
        "(historical, filtered, Monte Carlo), the EWMA realised-vol proxy before DVOL starts; "
        "underlyings without one use vol_beta. beta: vol_beta only (docs/vol-factors.md). "
        "House choice 2026-12-06"))
    surface_dynamics: SurfaceDynamics = Field("sticky-strike", description=(
        "sticky-strike (an option keeps its vol plus the shifts) | sticky-moneyness (it "
        "takes the smile's vol at its new log-moneyness, then the shifts). House choice "
        "2026-12-06, UNCONFIRMED which fits Deribit best; on a put skew sticky-strike "
        "charges short puts more in a fall"))
    skew_loading: float = Field(SKEW_LOADING, ge=-2.0, le=2.0, description=(
        "Change of the 30-day skew dσ/dz per unit log-change of the 30-day vol, with "
        "vol_factor=implied; derived 2026-12-06 from Deribit BTC daily chains "
        "2025-12-30…2026-08-22 (R² 0.35)"))
