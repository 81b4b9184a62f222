"""``margin-engine backtest``: JSON that round-trips, tables, reports, and the error policy."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from design_examples import REAL_DATA
from margin_engine.analysis import backtest_stats as bs
from margin_engine.analysis.backtest import backtest_json, result_from_json
from margin_engine.cli.main import app
from margin_engine.demo.synthetic import generate_history, history_csv

runner = CliRunner()
HISTORY = generate_history(seed=11, start="2024-01-01", days=160)
BOOK = {"accounts": [{"id": "long-btc", "collateral": {"USDT": 100000},
                      "positions": [{"symbol": "BTCUSDT", "size": 1.5},
                                    {"symbol": "ETH-PERPETUAL", "size": -500}]}]}


@pytest.fixture
def files(tmp_path):
    h = tmp_path / "hist.csv"
    h.write_text(history_csv(HISTORY))
    b = tmp_path / "book.json"
    b.write_text(json.dumps(BOOK))
    return h, b


def run(h, b, *extra):
    return runner.invoke(app, ["backtest", "--history", str(h), "--book", str(b), *extra])


def test_json_holds_the_series_and_the_statistics_recompute_from_it(files):
    res = run(*files, "--model", "historical-var", "--start", "2024-03-01", "--format", "json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    (bt,) = doc["backtests"]
    s = bt["series"]
    n = len(s["date"])
    assert n == bt["n_days"] == 160 - 60 - 1  # from 2024-03-01 (day 60) to the day before last
    assert s["date"][0] == "2024-03-01" and bt["currency"] == "USD"
    for key in ("margin", "realised_loss", "exceedance", "notional"):
        assert len(s[key]) == n
    # realised loss by hand from the input CSV: 1.5·ΔBTC and −500 USD face of ETH inverse
    closes = HISTORY["closes"]
    i0 = HISTORY["dates"].index("2024-03-01")
    b0, b1 = closes["BTC"][i0], closes["BTC"][i0 + 1]
    e0, e1 = closes["ETH"][i0], closes["ETH"][i0 + 1]
    pnl = 1.5 * (b1 - b0) + (-500) * 1.0 * (1 / e0 - 1 / e1) * e1
    assert s["realised_loss"][0] == pytest.approx(-pnl, rel=1e-12)
    # every statistic recomputed from the published series by backtest_stats
    flags = np.array(s["realised_loss"]) > np.array(s["margin"])
    assert s["exceedance"] == flags.tolist()
    st = bt["statistics"]
    k = bs.kupiec_pof(flags, 0.01)
    assert st["kupiec"]["lr"] == pytest.approx(k.lr, rel=1e-12, abs=1e-12)
    assert st["coverage"]["n_exceptions"] == int(flags.sum())
    pc = bs.procyclicality(np.array(s["margin"]), (1, 5, 30))
    assert st["procyclicality"]["peak_to_trough"]["ratio"] == pytest.approx(
        pc.peak_to_trough.ratio, rel=1e-14)
    # and the document round-trips through the library
    assert backtest_json(result_from_json(bt)) == bt


def test_json_is_bit_identical_across_runs(files):
    args = ("--model", "filtered-es", "--start", "2024-04-01", "--format", "json")
    a, b = run(*files, *args), run(*files, *args)
    assert a.exit_code == 0 and a.stdout == b.stdout
    (bt,) = json.loads(a.stdout)["backtests"]
    assert "var" in bt["series"] and "es" in bt["series"]
    assert bt["statistics"]["z2"]["alpha"] == pytest.approx(0.025)


def test_several_models_with_per_model_parameters_and_the_table(files):
    res = run(*files, "-m", "historical-var", "-m", "deribit-standard", "--horizon", "2",
              "-p", "historical-var:confidence=0.995", "--start", "2024-05-01",
              "--format", "json")
    assert res.exit_code == 0, res.output
    hv, bn = json.loads(res.stdout)["backtests"]
    assert hv["params"]["confidence"] == 0.995 and hv["params"]["horizon_days"] == 2
    assert hv["horizon_days"] == bn["horizon_days"] == 2 and bn["model"] == "deribit-standard"
    table = run(*files, "-m", "historical-var", "-m", "deribit-standard", "--start", "2024-05-01")
    assert table.exit_code == 0, table.output
    for word in ("historical-var", "deribit-standard", "Kupiec p", "peak/trough", "2024"):
        assert word in table.stdout


def test_report_option_writes_html_and_pngs(files, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "report"
    res = run(*files, "-m", "historical-var", "--start", "2024-04-01", "--report", str(out),
              "--format", "json")
    assert res.exit_code == 0, res.output
    json.loads(res.stdout)  # stdout stays pure JSON
    assert (out / "index.html").is_file()
    assert len(list((out / "png").glob("*.png"))) == 5
    assert "report:" in res.stderr


@pytest.mark.parametrize("extra, must", [
    (["-m", "nope"], "error: --model: unknown model 'nope'"),
    (["-m", "historical-var", "--start", "2024-04-01", "--end", "2024-03-01"],
     "error: --start: 2024-04-01 is after --end 2024-03-01"),
    (["-m", "historical-var", "--start", "2031-01-01"],
     "error: --start: no days with data between 2031-01-01"),
    (["-m", "historical-var", "--start", "yesterday"], "error: --start: not a date"),
    (["-m", "historical-var", "--horizon", "0"], "error: --horizon: must be a whole number"),
    (["-m", "historical-var", "-p", "lookback=3"],
     "error: --param lookback: unknown parameter of historical-var"),
    (["-m", "historical-var", "-p", "filtered-es:decay=0.9"],
     "error: --param filtered-es:decay: 'filtered-es' is not one of the --model names"),
    (["-m", "historical-var", "--end", "2024-01-20"],
     "error: --start: no day between 2024-01-01 and 2024-01-20 could be backtested"),
])
def test_bad_input_gives_a_clear_error_and_exit_2(files, extra, must):
    res = run(*files, *extra)
    assert res.exit_code == 2
    assert must in res.stderr
    assert res.stdout == ""


def test_unknown_symbol_and_bad_files_exit_2(files, tmp_path):
    h, _ = files
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"accounts": [{"id": "a", "positions": [
        {"symbol": "BTCUSDT", "size": 1}, {"symbol": "SOLUSDT", "size": 1}]}]}))
    res = run(h, bad, "-m", "historical-var")
    assert res.exit_code == 2
    assert ("error: accounts[0].positions[1].symbol: unknown symbol 'SOLUSDT': no price "
            "history for SOL (history has BTC, ETH)") in res.stderr
    res = run(tmp_path / "missing.csv", files[1], "-m", "historical-var")
    assert res.exit_code == 2 and "error: --history:" in res.stderr
    garbage = tmp_path / "garbage.csv"
    garbage.write_text("a,b\n1,2\n")
    res = run(garbage, files[1], "-m", "historical-var")
    assert res.exit_code == 2 and "error: --history:" in res.stderr
    res = run(h, tmp_path / "nobook.json", "-m", "historical-var")
    assert res.exit_code == 2 and "cannot read file" in res.stderr


@pytest.mark.realdata
@pytest.mark.skipif(not (REAL_DATA / "binance_spot_daily_ETHUSDT_cdd.csv").exists(),
                    reason="real data absent: ../shared/data/real")
def test_real_eth_file_backtests_from_the_cli(tmp_path):
    """A CDD file straight from data/real: the ETH loss on 2020-03-12 (SOURCES.md: close
    107.82, −44.6%) is an exceedance of the 99% historical VaR."""
    path = REAL_DATA / "binance_spot_daily_ETHUSDT_cdd.csv"
    b = tmp_path / "b.json"
    b.write_text(json.dumps({"accounts": [{"id": "eth", "positions": [
        {"symbol": "ETHUSDT", "size": 10}]}]}))
    res = run(path, b, "-m", "historical-var", "--start", "2020-01-01", "--end", "2020-04-30",
              "--format", "json")
    assert res.exit_code == 0, res.output
    (bt,) = json.loads(res.stdout)["backtests"]
    with open(path, newline="") as f:
        next(f)
        raw = {r["Date"][:10]: float(r["Close"]) for r in csv.DictReader(f)}
    k = bt["series"]["date"].index("2020-03-11")
    assert raw["2020-03-12"] == 107.82
    loss = 10 * (raw["2020-03-11"] - raw["2020-03-12"])
    assert math.isclose(bt["series"]["realised_loss"][k], loss, rel_tol=1e-12)
    assert bt["series"]["exceedance"][k] is True
