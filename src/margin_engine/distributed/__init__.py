"""Scale-out on Dask (DESIGN §8): ``compute --scheduler local[:N] | tcp://HOST:PORT``.

Accounts are partitioned, the market and model (with the risk-based family's instrument P&L)
broadcast once, each partition assessed by :func:`margin_engine.policy.assess.assess_book`,
and the reports gathered in the book's order: the same numbers as the single process.
``dask.distributed`` is imported only when a scheduler is used.
"""
