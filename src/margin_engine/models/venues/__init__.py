"""The venues' published methodologies, one module each: binance-usdm, deribit-standard,
deribit-pm, derive-pmrm, dydx-v4, hyperliquid, okx-pm, span."""
