"""Liquidation engine foundations: venue rules (dYdX v4 in quantums), generic liquidation
mechanics (partial liquidation, book execution with impact, fees, insurance fund, ADL) and the
order-book impact model. Pure functions over small frozen dataclasses (docs/liquidation.md)."""
