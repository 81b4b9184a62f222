"""Studies that run the engine on the real data in ``../shared/data/real`` and write docs pages
(``python -m studies.<name>`` from the repository root)."""
