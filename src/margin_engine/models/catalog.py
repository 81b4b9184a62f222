"""Imports every built-in model module so that each registers itself."""

from margin_engine.models import binance_usdm  # noqa: F401
