"""Imports every built-in model module so that each registers itself."""

from margin_engine.models.risk_based import model as risk_based  # noqa: F401
from margin_engine.models.venues import (  # noqa: F401
    binance_usdm,
    deribit_pm,
    deribit_standard,
    derive_pmrm,
    dydx_v4,
    hyperliquid,
    okx_pm,
    span,
)
