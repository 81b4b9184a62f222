"""``python -m margin_engine ARGS...``: the same command line as ``margin-engine ARGS...``."""

from margin_engine.cli.main import app

app(prog_name="margin-engine")
