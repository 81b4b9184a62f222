"""The risk-based family (historical-var, filtered-es, monte-carlo-es): scenario sets, VaR/ES
with attribution, add-ons, and the whole-book market-risk pass."""
