"""``margin-engine import``: recorded exchange exports → the expected book, and ``compute`` on it.

The samples are the venues' published documentation examples (tests/fixtures/exchange/README.md
names each page). Expected values are read off those documents by hand, not from the code:
Deribit's ``size`` is in the unit of ``contract_size`` (USD for BTC-PERPETUAL, 10 USD a
contract; BTC for options), so 50 → 5 contracts; Binance's ``positionAmt`` is base units =
contracts (contract size 1).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from margin_engine.cli.main import app

runner = CliRunner()
FIX = Path(__file__).resolve().parents[1] / "fixtures" / "exchange"
DERIBIT_PERP = [FIX / "deribit" / n for n in
                ("get_positions.json", "get_instruments.json", "ticker_BTC-PERPETUAL.json")]
DERIBIT_OPT = [FIX / "deribit" / n for n in
               ("get_positions_option.json", "get_instruments.json",
                "get_book_summary_by_currency_option.json")]


def run_import(tmp_path, fmt, files, *extra):
    book, market = tmp_path / "book.json", tmp_path / "market.json"
    res = runner.invoke(app, ["import", fmt, *map(str, files), "-o", str(book),
                              "--market-out", str(market), *extra])
    assert res.exit_code == 0, res.output
    return json.loads(book.read_text()), json.loads(market.read_text()), (book, market)


def compute(paths, model):
    res = runner.invoke(app, ["compute", str(paths[0]), str(paths[1]), "-m", model,
                              "-f", "json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_binance_v2_hedge_mode_example(tmp_path):
    book, market, paths = run_import(tmp_path, "binance",
                                     [FIX / "binance" / "positionRisk_v2_hedge.json"])
    # the LONG leg (0.001 BTC at 22,185.2, leverage 4, cross); the empty SHORT leg is skipped
    assert book == {"accounts": [{
        "id": "binance", "margin_mode": "cross", "collateral": {},
        "positions": [{"symbol": "BTCUSDT", "size": 0.001, "entry_price": 22185.2}],
        "leverage": {"BTCUSDT": 4.0}}]}
    assert market["timestamp"] == "2022-06-14T14:37:41.579000Z"  # updateTime 1655217461579
    assert market["instruments"] == [{
        "symbol": "BTCUSDT", "kind": "perpetual", "underlying": "BTC", "settle": "USDT",
        "inverse": False, "contract_size": 1.0, "mark_price": 21123.05052574}]
    doc = compute(paths, "binance-usdm")
    # initial margin at leverage 4: notional / 4 = 0.001 × 21,123.05052574 / 4
    assert doc["accounts"][0]["initial_margin"] == pytest.approx(0.001 * 21123.05052574 / 4,
                                                                 rel=1e-12)


def test_binance_v2_isolated_short_and_cross_split_into_two_accounts(tmp_path):
    book, _, paths = run_import(tmp_path, "binance",
                                [FIX / "binance" / "positionRisk_v2_isolated_short.json"],
                                "--collateral", "USDT=1000", "--account", "acct-7")
    iso, cross = book["accounts"]
    assert iso == {"id": "acct-7", "margin_mode": "isolated", "collateral": {"USDT": 1000.0},
                   "positions": [{"symbol": "ETHUSDT", "size": -2.5, "entry_price": 1850.4,
                                  "isolated_margin": 925.08}],
                   "leverage": {"ETHUSDT": 5.0}}
    assert cross["id"] == "acct-7-cross" and cross["positions"][0]["size"] == 0.001
    doc = compute(paths, "binance-usdm")
    assert [a["id"] for a in doc["accounts"]] == ["acct-7", "acct-7-cross"]
    # ETHUSDT at leverage 5: 2.5 × 1,862.17 / 5
    assert doc["accounts"][0]["initial_margin"] == pytest.approx(2.5 * 1862.17 / 5, rel=1e-12)


def test_binance_v3_example_and_forced_margin_mode(tmp_path):
    book, market, _ = run_import(tmp_path, "binance",
                                 [FIX / "binance" / "positionRisk_v3_oneway.json"],
                                 "--margin-mode", "portfolio")
    assert book["accounts"][0]["margin_mode"] == "portfolio"
    assert book["accounts"][0]["positions"] == [
        {"symbol": "ADAUSDT", "size": 30.0, "entry_price": 0.385}]
    assert "leverage" not in book["accounts"][0]  # v3 rows carry no leverage
    assert market["instruments"][0]["settle"] == "USDT"  # marginAsset
    assert market["index"] == {"ADA": 0.4104759}


def test_deribit_get_positions_example_is_five_contracts(tmp_path):
    book, market, paths = run_import(tmp_path, "deribit", DERIBIT_PERP,
                                     "--collateral", "BTC=0.01")
    assert book["accounts"][0]["positions"] == [
        {"symbol": "BTC-PERPETUAL", "size": 5.0, "entry_price": 7440.18}]
    assert book["accounts"][0]["margin_mode"] == "cross"
    ins = market["instruments"][0]
    assert (ins["kind"], ins["inverse"], ins["contract_size"], ins["mark_price"]) == (
        "perpetual", True, 10.0, 36288.31)
    assert market["index"] == {"BTC": 36297.02}  # the ticker's index_price
    assert market["timestamp"] == "2021-06-07T09:54:41.955000Z"  # ticker 1623059681955
    doc = compute(paths, "deribit-standard")
    pos = doc["accounts"][0]["positions"][0]
    assert pos["size"] == 5.0 and doc["accounts"][0]["currency"] == "BTC"
    # 5 contracts × 10 USD = 50 USD face, i.e. 50 / 36,297.02 BTC at the index
    assert pos["notional"] == pytest.approx(50 / 36297.02, rel=1e-9)


def test_deribit_option_with_book_summary(tmp_path):
    book, market, paths = run_import(tmp_path, "deribit", DERIBIT_OPT,
                                     "--collateral", "BTC=1")
    assert book["accounts"][0]["positions"] == [
        {"symbol": "BTC-13JAN23-16000-P", "size": -2.0, "entry_price": 0.0062}]
    ins = market["instruments"][0]
    assert ins["expiry"] == "2023-01-13T08:00:00Z"  # expiration_timestamp 1673596800000
    assert (ins["strike"], ins["option_type"], ins["mark_iv"], ins["underlying_price"]) == (
        16000.0, "put", pytest.approx(0.4012), 16858.7)
    assert market["index"] == {"BTC": 16852.21}  # the position's index_price
    for model in ("deribit-standard", "deribit-pm"):
        acct = compute(paths, model)["accounts"][0]
        assert acct["initial_margin"] > acct["maintenance_margin"] > 0


def test_ccxt_manual_example_and_a_binance_position(tmp_path):
    book, market, paths = run_import(tmp_path, "ccxt", [
        FIX / "ccxt" / "fetch_positions.json", FIX / "ccxt" / "fetch_positions_binanceusdm.json"])
    iso, cross = book["accounts"]
    # the manual's example: long 5 contracts of 100 USD at 20,000, isolated, collateral 5,300
    assert iso == {"id": "ccxt", "margin_mode": "isolated", "collateral": {},
                   "positions": [{"symbol": "BTC-PERPETUAL", "size": 5.0, "entry_price": 20000.0,
                                  "isolated_margin": 5300.0}],
                   "leverage": {"BTC-PERPETUAL": 100.0}}
    assert cross["positions"] == [{"symbol": "BTCUSDT", "size": 0.001, "entry_price": 22185.2}]
    assert {i["symbol"]: i["contract_size"] for i in market["instruments"]} == {
        "BTC-PERPETUAL": 100.0, "BTCUSDT": 1.0}
    doc = compute(paths, "historical-var")
    assert len(doc["accounts"]) == 2


@pytest.mark.parametrize("symbol, expected", [
    ("ETH/USDT:USDT", "ETHUSDT"), ("BTC/USD:BTC-250328", "BTC-28MAR25"),
    ("BTC/USDT:USDT-250328", "BTC_USDT-28MAR25"),
    ("BTC/USD:BTC-250328-80000-C", "BTC-28MAR25-80000-C")])
def test_ccxt_unified_symbols_map_to_venue_names(symbol, expected):
    from margin_engine.io.exchange.ccxt import instrument_of

    assert instrument_of(symbol, "x")["symbol"] == expected


def test_book_to_stdout_without_output(tmp_path):
    res = runner.invoke(app, ["import", "binance",
                              str(FIX / "binance" / "positionRisk_v2_hedge.json")])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["accounts"][0]["positions"][0]["symbol"] == "BTCUSDT"


# --- malformed exports: one line `error: <path>: <reason>`, exit 2, nothing on stdout --------
HEDGE = (FIX / "binance" / "positionRisk_v2_hedge.json").read_text()
CCXT = (FIX / "ccxt" / "fetch_positions.json").read_text()
POS = (FIX / "deribit" / "get_positions.json").read_text()
BAD = [
    ("binance", HEDGE[:-5], "malformed JSON"),
    ("binance", HEDGE.replace('"positionAmt": "0.001",', '"positionAmt": "0.001", '
                              '"positionAmt": "5",'), "duplicate key 'positionAmt'"),
    ("binance", HEDGE.replace('"0.001"', "NaN", 1), "NaN is not a JSON number"),
    ("binance", HEDGE.replace('"0.001"', '"1_000"', 1), "[0].positionAmt: not a decimal"),
    ("binance", HEDGE.replace('"0.001"', "true", 1), "[0].positionAmt: not a number"),
    ("binance", HEDGE.replace('"0.001"', '"１"', 1), "[0].positionAmt: not a decimal"),
    ("binance", HEDGE.replace('"21123.05052574"', '"-1"', 1), "[0].markPrice: must be > 0"),
    ("binance", HEDGE.replace('"0.001"', '"-0.001"', 1), "contradicts positionSide LONG"),
    ("binance", HEDGE.replace('"0.000"', '"-0.002"', 1), "second non-zero position"),
    ("binance", HEDGE.replace('"BTCUSDT"', '"BTCEUR"', 1), "[0].symbol: 'BTCEUR' is not"),
    ("binance", HEDGE.replace("1655217461579", "20250907", 1), "[0].updateTime: "),
    ("binance", '{"code": -2015, "msg": "Invalid API-key"}', "expected a JSON array"),
    ("binance", "[1, 2]", "[0]: expected a JSON object"),
    ("binance", "[" * 100000 + "]" * 100000, "malformed JSON"),
    ("ccxt", CCXT.replace('"BTC/USD:BTC"', '"BTC/USD"'), "[0].symbol: 'BTC/USD' is not a unified"),
    ("ccxt", CCXT.replace('"side": "long",', ""), "[0].side: missing"),
    ("ccxt", CCXT.replace('"contracts": 5', '"contracts": -5'), "[0].contracts: must be >= 0"),
    ("ccxt", CCXT.replace('"leverage": 100', '"leverage": 5e-324'),
     "[0].leverage: 5e-324 is outside [1, 1000]"),
    ("deribit", POS.replace('"direction": "buy"', '"direction": "long"'),
     "[0].direction: 'long' is not one of buy, sell, zero"),
    ("deribit", POS.replace('"size": 50', '"size": -50'), "[0].size: -50.0 contradicts"),
    ("deribit", POS.replace('"result": [', '"error": {"code": 13009}, "result": ['),
     ".error: the export is an API error response"),
    ("deribit", '{"foo": 1}', "not a Deribit export"),
]


@pytest.mark.parametrize("fmt, content, must", BAD, ids=[f"{f}-{i}" for i, (f, _, _) in
                                                          enumerate(BAD)])
def test_malformed_export_is_one_error_line(tmp_path, fmt, content, must):
    f = tmp_path / "export.json"
    f.write_text(content, encoding="utf-8")
    files = [f] if fmt != "deribit" else [f, FIX / "deribit" / "get_instruments.json"]
    res = runner.invoke(app, ["import", fmt, *map(str, files)])
    assert res.exit_code == 2, res.output
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith(f"error: {f}"), lines[0]
    assert must in lines[0]
    assert res.stdout == ""


@pytest.mark.parametrize("files, must", [
    (["deribit/get_positions.json"], "no public/get_instruments record for 'BTC-PERPETUAL'"),
    (["deribit/get_positions_option.json", "deribit/get_instruments.json"],
     "'BTC-13JAN23-16000-P': no mark_iv"),
    (["binance/positionRisk_v2_oneway.json"], "no non-zero position"),
])
def test_incomplete_exports_say_what_is_missing(tmp_path, files, must):
    fmt = files[0].split("/")[0]
    res = runner.invoke(app, ["import", fmt, *(str(FIX / p) for p in files),
                              "--market-out", str(tmp_path / "m.json")])
    assert res.exit_code == 2, res.output
    assert len(res.stderr.splitlines()) == 1 and must in res.stderr
    assert res.stderr.startswith("error: ")


def test_invalid_utf8_is_refused(tmp_path):
    f = tmp_path / "x.json"
    f.write_bytes(b'[{"symbol": "\xff"}]')
    res = runner.invoke(app, ["import", "binance", str(f)])
    assert res.exit_code == 2 and res.stderr.startswith(f"error: {f}: not UTF-8")


def test_bad_collateral_and_unknown_format():
    res = runner.invoke(app, ["import", "binance", str(FIX / "binance" /
                                                       "positionRisk_v2_hedge.json"),
                              "--collateral", "USDT=abc"])
    assert res.exit_code == 2 and res.stderr.startswith("error: --collateral.USDT: not a")
    res = runner.invoke(app, ["import", "okx", "x.json"])
    assert res.exit_code == 2


def test_docs_import_page_blocks_run(tmp_path):
    """Every ```bash block of docs/import.md runs from the repository root (out/ only)."""
    import os
    import re
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    page = (root / "docs" / "import.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", page, re.S)
    assert len(blocks) == 2
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}"
                                 f"{os.environ.get('PATH', '')}"}
    for block in blocks:
        res = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=root, env=env,
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr
    book = json.loads((root / "out" / "import" / "book.json").read_text())
    assert [p["size"] for p in book["accounts"][0]["positions"]] == [300.0, -2.0]
