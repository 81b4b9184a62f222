"""``margin-engine backtest``: JSON that round-trips, tables, reports, and the error policy."""

from __future__ import annotations

import csv
import dataclasses
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


# ---------------------------------------------------------------------------------------------
# --dynamic: each model without and with the controller (policy.dynamic) on the same days
# ---------------------------------------------------------------------------------------------


def _aux_files(tmp_path):
    """A DVOL file (recognised by 'dvol' in its name) and a daily-mean funding file for BTC,
    with funding high (0.08%/8 h) in April 2024 so that the liquidity regime starts."""
    dvol = tmp_path / "btc_dvol.csv"
    dvol.write_text("date,symbol,open,high,low,close\n" + "".join(
        f"{d},BTC,60,60,60,{55 + (k % 7)}\n" for k, d in enumerate(HISTORY["dates"])))
    fund = tmp_path / "BTCUSDT_funding.csv"
    fund.write_text("date,funding_mean,funding_abs\n" + "".join(
        f"{d},{0.0008 if d.startswith('2024-04') else 0.0001},0.0008\n"
        for d in HISTORY["dates"]))
    return dvol, fund


def _by_label(doc):
    return {b["label"]: b for b in doc["backtests"]}


def test_dynamic_pairs_each_model_with_an_independent_controller_recomputation(files, tmp_path):
    """The run with --dynamic is checked against policy.dynamic.run_controller applied by hand:
    the base margin is the plain run's margin, the regime inputs come from
    regime_inputs_series on the same BTC closes (BTC is the book's largest exposure: 1.5 BTC
    against 500 USD of ETH), DVOL and funding from the two extra files, and the APC floor of
    historical-var is a separate plain run of historical-var with lookback_days=3650 (the
    model itself looks back 40 days, so that the floor binds on some days)."""
    from margin_engine.policy.dynamic import regime_inputs_series, run_controller

    h, b = files
    dvol, fund = _aux_files(tmp_path)
    args = ("--start", "2024-03-01", "--format", "json")
    res = runner.invoke(app, ["backtest", "--history", str(h), "--history", str(dvol),
                              "--history", str(fund), "--book", str(b), "-m", "historical-var",
                              "-m", "deribit-standard", "-p", "historical-var:lookback_days=40",
                              "--dynamic", *args])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    runs = _by_label(doc)
    assert list(runs) == ["historical-var", "historical-var + dynamic", "deribit-standard",
                          "deribit-standard + dynamic"]
    plain = _by_label(json.loads(run(h, b, "-m", "historical-var", "-m", "deribit-standard",
                                     "-p", "historical-var:lookback_days=40", *args).stdout))
    floor_run = json.loads(run(h, b, "-m", "historical-var", "-p", "lookback_days=3650",
                               *args).stdout)["backtests"][0]
    pairs = {p["model"]: p for p in doc["dynamic"]["pairs"]}
    dates = np.array(HISTORY["dates"], dtype="datetime64[D]")
    closes = np.array(HISTORY["closes"]["BTC"])
    dv = np.array([55 + (k % 7) for k in range(dates.size)]) / 100.0
    fu = np.array([0.0008 if d.startswith("2024-04") else 0.0001 for d in HISTORY["dates"]])
    reg = regime_inputs_series(dates, closes, dvol=(dates, dv), funding=(dates, fu))
    for name in ("historical-var", "deribit-standard"):
        base, dyn = runs[name], runs[f"{name} + dynamic"]
        # the run without the controller is exactly the run without --dynamic
        assert base["series"] == plain[name]["series"]
        assert base["statistics"] == plain[name]["statistics"]
        assert base["controller"] is None and dyn["controller"] == "DynamicController"
        s, sd = base["series"], dyn["series"]
        assert sd["date"] == s["date"] and sd["model_margin"] == s["margin"]
        assert sd["realised_loss"] == s["realised_loss"]
        days = np.array(s["date"], dtype="datetime64[D]")
        inputs = [reg.at(d) for d in days]
        if name == "historical-var":
            assert floor_run["series"]["date"] == s["date"]
            no_floor = run_controller(days, np.array(s["margin"]), inputs).margin
            inputs = [dataclasses.replace(x, floor_margin=f)
                      for x, f in zip(inputs, floor_run["series"]["margin"], strict=True)]
            assert pairs[name]["floor_days"] == len(days)
            assert np.any(np.array(sd["margin"]) > no_floor * (1 + 1e-9))  # the floor binds
        else:  # a rule-based model has no look-back model: no floor
            assert pairs[name]["floor_days"] == 0 and pairs[name]["floor"].startswith("none")
        want = run_controller(days, np.array(s["margin"]), inputs)
        np.testing.assert_allclose(sd["margin"], want.margin, rtol=1e-12)
        assert [e["entry"]["reason"] for e in dyn["controller_log"]] == [
            e.reason for e in want.log]
        assert pairs[name]["regime_underlying"] == "BTC"
        assert pairs[name]["signals"] == "EWMA vol, DVOL, funding"
        assert pairs[name]["changes"] == len(want.log)
        assert pairs[name]["with_controller"]["exceedances"] == int(
            np.sum(np.array(s["realised_loss"]) > want.margin))
    # the April funding stress was seen and logged with its reason
    reasons = " ".join(e["entry"]["reason"] for e in runs["deribit-standard + dynamic"][
        "controller_log"])
    assert "liquidity stress starts (|funding|" in reasons
    # the side-by-side statistics are those of the two series
    for p in pairs.values():
        for side, label in (("without_controller", p["without"]), ("with_controller", p["with"])):
            st = runs[label]["statistics"]
            assert p[side]["coverage"] == st["coverage"]["coverage"]
            assert p[side]["of_share"]["peak_to_trough"] == st["procyclicality_of_share"][
                "peak_to_trough"]["ratio"]


def test_dynamic_config_file_sets_the_controller(files, tmp_path):
    """A 50% buffer without floor or liquidity add-on: in the calm synthetic market the
    controller charges exactly 1.5 × the model's margin from the first day (its start
    multiplier 1 + buffer), and the JSON records the configuration."""
    h, b = files
    cfg = tmp_path / "dyn.json"
    cfg.write_text(json.dumps({"buffer": 0.5, "floor": "off", "liquidity_addon": 0.0,
                               "stress_enter": 5.0, "stress_exit": 4.0}))
    res = run(h, b, "-m", "filtered-es", "--start", "2024-03-01", "--dynamic-config", str(cfg),
              "--format", "json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["dynamic"]["config"]["buffer"] == 0.5
    (pair,) = doc["dynamic"]["pairs"]
    assert pair["floor"] == "off" and pair["floor_days"] == 0 and pair["changes"] == 0
    dyn = _by_label(doc)["filtered-es + dynamic"]["series"]
    np.testing.assert_allclose(dyn["margin"], 1.5 * np.array(dyn["model_margin"]), rtol=1e-14)


def test_dynamic_table_and_report_show_both_rows(files, tmp_path):
    pytest.importorskip("matplotlib")
    h, b = files
    out = tmp_path / "rep"
    res = run(h, b, "-m", "historical-var", "--start", "2024-03-01", "--dynamic",
              "--report", str(out))
    assert res.exit_code == 0, res.output
    for text in ("historical-var + dynamic", "dynamic controller: each model without → with",
                 "APC floor: historical-var", "regime signal BTC (EWMA vol)"):
        assert text in res.stdout
    page = (out / "index.html").read_text()
    assert "dynamic controller: without → with" in page
    assert page.count("historical-var + dynamic") >= 2  # comparison table and its own section


@pytest.mark.parametrize("content, must", [
    ('{"bufer": 0.5}', "error: --dynamic-config bufer: Extra inputs are not permitted"),
    ('[1, 2]', "error: --dynamic-config: "),
    ('{"stress_enter": 1.2, "stress_exit": 1.4}',
     "error: --dynamic-config stress_exit: 1.4 must be <= stress_enter 1.2"),
    ('{"buffer": -1}', "error: --dynamic-config buffer: "),
])
def test_bad_dynamic_config_exits_2(files, tmp_path, content, must):
    h, b = files
    cfg = tmp_path / "dyn.json"
    cfg.write_text(content)
    res = run(h, b, "-m", "historical-var", "--dynamic-config", str(cfg))
    assert res.exit_code == 2, res.output
    assert must in res.stderr
    assert res.stdout == ""


def test_funding_file_without_dynamic_is_noted_and_changes_nothing(files, tmp_path):
    h, b = files
    _, fund = _aux_files(tmp_path)
    args = ("-m", "historical-var", "--start", "2024-03-01", "--format", "json")
    with_f = runner.invoke(app, ["backtest", "--history", str(h), "--history", str(fund),
                                 "--book", str(b), *args])
    assert with_f.exit_code == 0, with_f.output
    assert "note: funding files are used only with --dynamic" in with_f.stderr
    plain = run(h, b, *args)
    assert json.loads(with_f.stdout)["backtests"][0]["series"] == json.loads(
        plain.stdout)["backtests"][0]["series"]
