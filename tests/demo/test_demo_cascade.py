"""The demo's cascade: it runs on the demo market, and the simulate command it suggests runs."""

from __future__ import annotations

import io

from rich.console import Console
from typer.testing import CliRunner

from margin_engine.cli.main import app
from margin_engine.demo.run import demo_cascade, next_commands, write_sample
from margin_engine.io.loaders import load_market


def test_demo_cascade_and_its_suggestion_run(tmp_path):
    market_path, book_path, _ = write_sample(tmp_path, 7)
    buf = io.StringIO()
    line = demo_cascade(load_market(market_path), Console(file=buf, width=300))
    assert line is not None and line in buf.getvalue()
    assert "accounts liquidated" in line
    sim = next(ln for ln in next_commands(book_path, market_path, "binance-usdm")
               if " simulate " in ln)
    args = sim.split("#")[0].split()[2:]
    res = CliRunner().invoke(app, ["simulate", *args])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "cascade.png").read_bytes()[:4] == b"\x89PNG"
