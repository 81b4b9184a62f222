"""Imports every built-in model module so that each registers itself."""

from margin_engine.models import (  # noqa: F401
    binance_usdm,
    deribit_pm,
    deribit_standard,
    derive_pmrm,
    dydx_v4,
    hyperliquid,
    okx_pm,
    risk_based,
    span,
)
