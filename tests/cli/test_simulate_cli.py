"""``margin-engine simulate``: runs from a shock or a real path, writes JSON and a PNG, and
refuses bad input with one ``error:`` line and exit 2."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from margin_engine.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
MARKET = str(ROOT / "docs" / "examples" / "market-2026-02-04.json")
REAL = ROOT.parent / "shared" / "data" / "real"
runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, ["simulate", "--market", MARKET, *args])


def test_shock_json_and_plot(tmp_path):
    png = tmp_path / "c.png"
    res = run("--accounts", "400", "--shock", "BTC:-15%~2,ETH:-15%~2", "--model", "binance-usdm",
              "--format", "json", "--plot", str(png), "--depth", "0.01", "-o",
              str(tmp_path / "r.json"))
    assert res.exit_code == 0, res.output
    assert res.stdout == ""  # the JSON went to the file instead
    doc = json.loads((tmp_path / "r.json").read_text())
    w, o = doc["with_cascade"], doc["without_cascade"]
    assert w["accounts_liquidated"] > 0 and w["ledger_change_cents"] == 0
    assert sum(w["liquidated_usd_by_step"]) == pytest.approx(w["liquidated_usd"], abs=0.05)
    # the no-impact run follows the exogenous path exactly: 15 % down (derived: 0.85)
    assert o["drawdown"]["BTCUSDT"] == pytest.approx(0.15)
    assert w["drawdown"]["BTCUSDT"] >= o["drawdown"]["BTCUSDT"]
    assert doc["amplification"]["drawdown"]["BTCUSDT"] >= 1.0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "NaN" not in res.stdout and "Infinity" not in res.stdout


def test_book_file_table(tmp_path):
    book = {"accounts": [{"id": "l", "collateral": {"USDT": 1000},
                          "positions": [{"symbol": "BTCUSDT", "size": 1, "entry_price": 73000}]},
                         {"id": "s", "collateral": {"USDT": 50000},
                          "positions": [{"symbol": "BTCUSDT", "size": -1,
                                         "entry_price": 73000}]}]}
    f = tmp_path / "b.json"
    f.write_text(json.dumps(book))
    res = run("--book", str(f), "--shock", "BTC:-5%", "--model", "dydx-v4", "--dynamic")
    assert res.exit_code == 0, res.output
    assert "accounts liquidated" in res.stdout


@pytest.mark.realdata
@pytest.mark.skipif(not REAL.exists(), reason="real data absent: ../shared/data/real")
def test_real_path():
    f = REAL / "binance_usdm_perp_1h_BTCUSDT_2025-09-13_2026-03-19.csv.gz"
    res = run("--accounts", "300", "--path", str(f), "--start", "2026-02-05", "--hours", "6",
              "--model", "hyperliquid", "--isolated", "--format", "json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["steps"] == 6 and doc["population"]["isolated"]
    p = doc["price_without_cascade"]["BTCUSDT"]
    assert len(p) == 7 and all(math.isfinite(x) for x in p)


@pytest.mark.parametrize("args, line", [
    (["--accounts", "5", "--model", "binance-usdm"], "error: --shock: give either"),
    (["--accounts", "5", "--shock", "BTC:-5%", "--path", "x.csv", "--model", "binance-usdm"],
     "error: --shock: give either"),
    (["--shock", "BTC:-5%", "--model", "binance-usdm"], "error: --book: give either"),
    (["--accounts", "0", "--shock", "BTC:-5%", "--model", "binance-usdm"],
     "error: --accounts: must be >= 1"),
    (["--accounts", "5", "--shock", "DOGE:-5%", "--model", "binance-usdm"],
     "error: --shock: no perpetual in the population on DOGE"),
    (["--accounts", "5", "--shock", "BTC:-5%", "--model", "binance-usdm", "--depth", "0"],
     "error: --depth:"),
    (["--accounts", "5", "--path", "nope_BTCUSDT.csv", "--model", "binance-usdm"],
     "error: --path: cannot read"),
    (["--accounts", "5", "--shock", "BTC:-5%", "--model", "binance-usdm", "--start", "2026"],
     "error: --start:"),
])
def test_bad_input_one_line_exit_2(args, line):
    res = run(*args)
    assert res.exit_code == 2
    assert res.stderr.strip().startswith(line), res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.output
