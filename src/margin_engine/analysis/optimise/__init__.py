"""Margin optimisation (issue 14): hedge suggestions (greedy on the live book's what-if, and the
exact Rockafellar–Uryasev LP for scenario models), isolated/cross and cross-venue allocation, and
collateral choice. ``margin-engine optimise`` (``cli/optimise.py``) drives :func:`run.optimise`."""
