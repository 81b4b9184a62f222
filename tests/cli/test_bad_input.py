"""Issue 8's audit examples: each bad input is refused with one line ``error: <path>: <reason>``
and exit 2 (never a traceback, never a number), and no output holds a non-finite number."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from design_examples import DESIGN_BOOK, DESIGN_MARKET
from margin_engine.cli.main import app
from margin_engine.io.loaders import MAX_JSON_BYTES

runner = CliRunner()
ERROR_LINE = re.compile(r"^error: \S.*: .+$")


def _one_error(res: Any, must: str) -> str:
    assert res.exit_code == 2, (res.exit_code, res.stdout, res.stderr, res.exception)
    assert res.stdout == ""
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and ERROR_LINE.match(lines[0]), res.stderr
    assert must in lines[0], lines[0]
    return str(lines[0])


def _files(tmp_path: Path, book: Any = None, market: Any = None) -> tuple[str, str]:
    b, m = tmp_path / "book.json", tmp_path / "market.json"
    for p, doc, default in ((b, book, DESIGN_BOOK), (m, market, DESIGN_MARKET)):
        doc = copy.deepcopy(default) if doc is None else doc
        if isinstance(doc, bytes):
            p.write_bytes(doc)
        else:
            p.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return str(b), str(m)


def _book(edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    doc = copy.deepcopy(DESIGN_BOOK)
    edit(doc)
    return doc


def _market(edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    doc = copy.deepcopy(DESIGN_MARKET)
    edit(doc)
    return doc


def _set_leverage(d: dict[str, Any]) -> None:
    d["accounts"][0]["leverage"]["BTCUSDT"] = 5e-324


def test_tiny_leverage_is_refused_not_infinity_in_stress_json(tmp_path: Path) -> None:
    b, m = _files(tmp_path, book=_book(_set_leverage))
    res = runner.invoke(app, ["stress", b, m, "-m", "binance-usdm", "-f", "json"])
    _one_error(res, "accounts[0].leverage.BTCUSDT: must be in [1, 200], got 5e-324")


def test_tiny_leverage_is_refused_not_inf_in_the_table(tmp_path: Path) -> None:
    b, m = _files(tmp_path, book=_book(_set_leverage))
    res = runner.invoke(app, ["compute", b, m, "-m", "binance-usdm", "-f", "table"])
    _one_error(res, "must be in [1, 200]")


@pytest.mark.parametrize(("book", "market", "must"), [
    ('{"accounts": [], "accounts": []}', None, "duplicate key 'accounts'"),
    (None, json.dumps(DESIGN_MARKET).replace('"index": {"BTC": 73000.0,',
                                             '"index": {"BTC": 73000.0, "BTC": 1.0,'),
     "duplicate key 'BTC'"),
    (_book(lambda d: d["accounts"][0]["positions"][0].update(size=True)), None,
     "accounts[0].positions[0].size: expected a number, got true"),
    (_book(lambda d: d["accounts"][0]["positions"][0].update(size="2.5")), None,
     "accounts[0].positions[0].size: expected a number, got a string"),
    (None, _market(lambda d: d["index"].update(BTC="73000")), "index.BTC: expected a number"),
    (None, _market(lambda d: d["instruments"][0].update(inverse=1)),
     "instruments[0].inverse: expected true or false"),
    (b'{"accounts": [{"id": "\xff"}]}', None, "not valid UTF-8 (byte 0xff"),
    ('{"accounts": []}'.encode("utf-16"), None, "not UTF-8 (it starts with a UTF-16"),
    ("[" * 1000 + "]" * 1000, None, "nested too deeply"),
    (None, _market(lambda d: d.update(vol_surface={"BTC": [
        {"expiry": "2026-03-27T08:00:00", "strikes": [70000], "vols": [0.5]}]})),
     "vol_surface.BTC[0].expiry: must carry a time zone"),
    (None, _market(lambda d: d["instruments"][2].update(mark_price=1e-300)),
     "instruments[2].mark_price: must be in (1e-08, 1e+12], got 1e-300"),
    (None, _market(lambda d: d.update(timestamp="0001-01-01T00:00:00Z")),
     "timestamp: 0001-01-01T00:00:00+00:00 is outside 2009-01-01..2100-01-01"),
    (None, _market(lambda d: d.update(timestamp=1757203200)),
     "timestamp: expected an ISO-8601 string"),
    (None, _market(lambda d: d.update(timestamp="20250907")),
     "timestamp: expected an ISO-8601 date-time"),
    (_book(lambda d: d["accounts"][0]["positions"][0].update(size=1e13)), None,
     "size: magnitude must be at most 1e+12, got 1e+13"),
    (_book(lambda d: d["accounts"][0]["positions"][0].update(size=5e-324)), None,
     "size: a nonzero size must have magnitude at least 1e-12, got 5e-324"),
    (_book(lambda d: d["accounts"][0].update(id="a\nb")), None,
     "accounts[0].id: contains a control character"),
])
def test_audit_examples_are_one_line_errors(tmp_path: Path, book: Any, market: Any,
                                            must: str) -> None:
    b, m = _files(tmp_path, book, market)
    for cmd in ("compute", "stress"):
        res = runner.invoke(app, [cmd, b, m, "-m", "binance-usdm", "-f", "json"])
        _one_error(res, must)


def test_option_im_floor_zero_is_a_parameter_error(tmp_path: Path) -> None:
    book = {"accounts": [{"id": "a", "collateral": {"BTC": 10},
                          "positions": [{"symbol": "BTC-27MAR26-80000-C", "size": -5}]}]}
    b, m = _files(tmp_path, book=book)
    res = runner.invoke(app, ["compute", b, m, "-m", "deribit-standard", "-p",
                              "option_im_floor=0"])
    _one_error(res, "--param option_im_floor: must be at least option_mm (0.075)")


@pytest.mark.parametrize("value", ["true", '"0.1"'])
def test_numeric_parameters_take_numbers_only(tmp_path: Path, value: str) -> None:
    b, m = _files(tmp_path)
    res = runner.invoke(app, ["compute", b, m, "-m", "deribit-standard", "-p",
                              f"option_mm={value}"])
    _one_error(res, "--param option_mm: expected a number")


def test_long_errors_stay_on_one_line_without_markup_or_emoji(tmp_path: Path) -> None:
    symbol = ":x: [bold]" + "S" * 300
    b, m = _files(tmp_path, book=_book(
        lambda d: d["accounts"][0]["positions"][0].update(symbol=symbol[:128])))
    res = runner.invoke(app, ["compute", b, m, "-m", "binance-usdm"], env={"COLUMNS": "40"})
    line = _one_error(res, "accounts[0].positions[0].symbol: unknown symbol")
    assert ":x: [bold]SSS" in line and "❌" not in line
    assert "pydantic" not in line and "http" not in line


def test_a_json_file_over_the_size_limit_is_refused_before_parsing(tmp_path: Path) -> None:
    b, m = _files(tmp_path)
    Path(b).write_bytes(b'{"accounts": [' + b" " * MAX_JSON_BYTES + b"]}")
    res = runner.invoke(app, ["compute", b, m, "-m", "binance-usdm"])
    _one_error(res, "over the 16 MiB limit for JSON input")


def test_valid_input_still_computes(tmp_path: Path) -> None:
    b, m = _files(tmp_path)
    res = runner.invoke(app, ["stress", b, m, "-m", "binance-usdm", "-f", "json"])
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout, parse_constant=lambda c: pytest.fail(f"constant {c}"))
    assert doc["rows"] and all(r["initial_margin_usd"] > 0 for r in doc["rows"])


def test_a_compact_backtest_date_is_not_a_year(tmp_path: Path) -> None:
    from margin_engine.demo.synthetic import generate_history, history_csv

    h = tmp_path / "h.csv"
    h.write_text(history_csv(generate_history(seed=2, start="2025-01-01", days=60)))
    b = tmp_path / "b.json"
    b.write_text(json.dumps({"accounts": [{"id": "a", "collateral": {"USDT": 1e5},
                                           "positions": [{"symbol": "BTCUSDT", "size": 1}]}]}))
    res = runner.invoke(app, ["backtest", "--history", str(h), "--book", str(b), "-m",
                              "binance-usdm", "--start", "20250907"])
    _one_error(res, "--start: not a date (YYYY-MM-DD): '20250907'")
