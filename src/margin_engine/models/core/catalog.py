"""Where each built-in model lives: its registered name → the module that registers it.

The registry imports a model's module only when that model is asked for, so that ``compute``
with a rule-based venue model does not import numba, SciPy and the scenario machinery of the
risk-based family (``tests/models/test_registry_catalog.py`` checks this table against what
the modules register).
"""

_RISK_BASED = "margin_engine.models.risk_based.model"
_VENUES = "margin_engine.models.venues."

MODULES: dict[str, str] = {
    "historical-var": _RISK_BASED,
    "filtered-es": _RISK_BASED,
    "monte-carlo-es": _RISK_BASED,
    "binance-usdm": _VENUES + "binance_usdm",
    "deribit-pm": _VENUES + "deribit_pm",
    "deribit-standard": _VENUES + "deribit_standard",
    "derive-pmrm": _VENUES + "derive_pmrm",
    "dydx-v4": _VENUES + "dydx_v4",
    "hyperliquid": _VENUES + "hyperliquid",
    "okx-pm": _VENUES + "okx_pm",
    "span": _VENUES + "span",
}
