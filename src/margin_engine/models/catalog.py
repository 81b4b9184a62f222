"""Imports every built-in model module so that each registers itself."""

from margin_engine.models import (  # noqa: F401
    binance_usdm,
    deribit_pm,
    deribit_standard,
    dydx_v4,
    hyperliquid,
    risk_based,
)
