"""The command line as DESIGN §4 specifies it: fields, formats, and the error policy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from margin_engine.cli.main import app

runner = CliRunner()
ACCOUNT_FIELDS = ["id", "currency", "initial_margin", "maintenance_margin", "equity",
                  "margin_ratio", "status", "components", "positions", "units"]
POSITION_FIELDS = ["symbol", "initial_margin", "maintenance_margin", "contribution",
                   "liquidation_price"]


def compute(book, market, *extra):
    return runner.invoke(app, ["compute", str(book), str(market), *extra])


def test_compute_json_has_the_contract_fields(write_json, book_doc, market_doc):
    res = compute(write_json("b.json", book_doc), write_json("m.json", market_doc),
                  "--model", "binance-usdm", "--format", "json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    for key in ("model", "model_version", "params_hash", "market_timestamp", "engine_version"):
        assert doc[key]
    acct = doc["accounts"][0]
    assert set(ACCOUNT_FIELDS) <= set(acct)
    assert set(POSITION_FIELDS) <= set(acct["positions"][0])
    assert acct["initial_margin"] >= acct["maintenance_margin"] >= 0
    assert acct["status"] == "healthy" and acct["currency"] == "USDT"
    # 2.5 BTC at mark 73,005 at 20× → IM = 9,125.625; bracket 2 (0.5%, cum 50) → MM = 862.5625
    assert acct["initial_margin"] == pytest.approx(2.5 * 73005 / 20, rel=1e-15)
    assert acct["maintenance_margin"] == pytest.approx(2.5 * 73005 * 0.005 - 50, rel=1e-15)
    assert sum(p["contribution"] for p in acct["positions"]) == pytest.approx(
        acct["initial_margin"], rel=1e-15)


def test_compute_is_bit_identical_across_runs(write_json, book_doc, market_doc):
    args = (write_json("b.json", book_doc), write_json("m.json", market_doc),
            "--model", "binance-usdm", "--format", "json")
    assert compute(*args).stdout == compute(*args).stdout


def test_compute_table_for_people(write_json, book_doc, market_doc):
    res = compute(write_json("b.json", book_doc), write_json("m.json", market_doc),
                  "--model", "binance-usdm")
    assert res.exit_code == 0
    assert "acct-1" in res.stdout and "9,125.62" in res.stdout and "healthy" in res.stdout


def test_compute_draws_a_progress_bar_on_a_terminal_only(write_json, book_doc, market_doc,
                                                         monkeypatch):
    """A terminal's stderr gets the bar (stdout's JSON unchanged); a pipe gets nothing."""
    from io import StringIO

    from rich.console import Console

    import margin_engine.cli.main as cli

    args = (write_json("b.json", book_doc), write_json("m.json", market_doc),
            "--model", "binance-usdm", "--format", "json")
    piped = compute(*args)
    tty = StringIO()
    monkeypatch.setattr(cli, "err_console", Console(file=tty, force_terminal=True, width=100))
    shown = compute(*args)
    assert shown.exit_code == 0 and shown.stdout == piped.stdout
    assert "compute binance-usdm: accounts" in tty.getvalue()
    assert "compute binance-usdm" not in piped.stderr


@pytest.mark.parametrize("args, must", [
    (["--model", "nope"], "--model: unknown model 'nope'"),
    (["--model", "binance-usdm", "--param", "nope=1"], "--param nope: unknown parameter"),
    (["--model", "binance-usdm", "--param", "default_leverage=abc"], "--param default_leverage"),
    (["--model", "binance-usdm", "--param", "novalue"], "expected key=value"),
])
def test_bad_options_are_rejected(write_json, book_doc, market_doc, args, must):
    res = compute(write_json("b.json", book_doc), write_json("m.json", market_doc), *args)
    assert res.exit_code == 2
    assert must in res.stderr and '"initial_margin"' not in res.stdout


@pytest.mark.parametrize("book_text, must", [
    ("{not json", "malformed JSON"),
    ("[]", "expected a JSON object"),
    ('{"accounts": [{"id": "a", "positions": [{"symbol": "BTCUSDT", "size": NaN}]}]}',
     "accounts[0].positions[0].size: not a finite number"),
])
def test_malformed_files_are_rejected(write_json, market_doc, book_text, must):
    res = compute(write_json("b.json", book_text), write_json("m.json", market_doc),
                  "--model", "binance-usdm", "--format", "json")
    assert res.exit_code == 2 and must in res.stderr and res.stdout == ""


def test_missing_file(tmp_path, write_json, market_doc):
    res = compute(tmp_path / "none.json", write_json("m.json", market_doc), "--model",
                  "binance-usdm")
    assert res.exit_code == 2 and "cannot read file" in res.stderr


def test_models_lists_parameters_and_sources():
    res = runner.invoke(app, ["models", "--format", "json"])
    assert res.exit_code == 0
    models = {m["name"]: m for m in json.loads(res.stdout)["models"]}
    binance = models["binance-usdm"]
    assert binance["source"] and binance["version"]
    assert {p["name"] for p in binance["parameters"]} == {"brackets", "default_leverage"}
    assert runner.invoke(app, ["models"]).exit_code == 0


def _installed_command() -> Path:
    return Path(sys.executable).parent / "margin-engine"


CONTRACT_CHECK = Path(__file__).resolve().parents[3] / "shared" / "tools" / "contract-check"


@pytest.mark.skipif(not CONTRACT_CHECK.exists(), reason="../shared/tools/contract-check absent")
def test_public_contract_check():
    """The shared contract checker (DESIGN §4) passes against the installed command."""
    cmd = _installed_command()
    if not cmd.exists():
        pytest.skip("margin-engine is not installed in this environment")
    env = {**os.environ, "PATH": f"{cmd.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    res = subprocess.run([sys.executable, str(CONTRACT_CHECK), str(cmd)], capture_output=True,
                         text=True, timeout=900, env=env)
    assert res.returncode == 0, res.stdout[-3000:]
    assert "0 failure(s)" in res.stdout


def test_python_dash_m_runs_the_same_command_line():
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "margin_engine", "models", "--format", "json"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "historical-var" in res.stdout
    bad = subprocess.run([sys.executable, "-m", "margin_engine", "compute", "nope.json"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
