"""Machinery every model shares: the interface, margin units, results, the registry, valuation
and scenario revaluation."""
