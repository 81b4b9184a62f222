"""`margin-engine stress`: P&L under named stresses and margin coverage (issue 4)."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from margin_engine.analysis.stress_test import account_stress_pnl
from margin_engine.cli.main import app
from margin_engine.domain.book import Book
from margin_engine.domain.market import MarketSnapshot
from margin_engine.io.loaders import parse_model
from margin_engine.maths.stress_library import get_stress


def test_linear_and_inverse_stress_pnl_by_hand(market_doc):
    market = parse_model(MarketSnapshot, market_doc, "market")
    account = parse_model(Book, {"accounts": [{
        "id": "a", "collateral": {"USDT": 1000, "BTC": 2},
        "positions": [{"symbol": "BTCUSDT", "size": 3},
                      {"symbol": "BTC-PERPETUAL", "size": -100}]}]}, "book").accounts[0]
    ftx = get_stress("ftx-2022-11-09")
    x = ftx.price_move("BTC")
    pos, coll = account_stress_pnl(account, market, [ftx])
    linear = 3 * 73005.0 * x
    inverse_coin = -100 * 10 * (1 / 73010.5 - 1 / (73010.5 * (1 + x)))
    assert math.isclose(pos[0], linear + inverse_coin * 73000.0 * (1 + x), rel_tol=1e-12)
    assert math.isclose(coll[0], 2 * 73000.0 * x, rel_tol=1e-12)


def test_stress_command(write_json, book_doc, market_doc):
    res = CliRunner().invoke(app, ["stress", str(write_json("b.json", book_doc)),
                                   str(write_json("m.json", market_doc)), "-s", "btc-minus-30",
                                   "--format", "json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)["rows"]
    assert len(rows) == 1 and rows[0]["scenario"] == "btc-minus-30"
    r = rows[0]
    assert r["pnl_usd"] < 0 and math.isclose(r["coverage"], r["initial_margin_usd"] /
                                             -r["pnl_usd"], rel_tol=1e-12)


@pytest.mark.parametrize("args, must", [(["-s", "nope"], "unknown stress 'nope'"),
                                        (["-m", "nope"], "unknown model")])
def test_stress_bad_input(write_json, book_doc, market_doc, args, must):
    res = CliRunner().invoke(app, ["stress", str(write_json("b.json", book_doc)),
                                   str(write_json("m.json", market_doc)), *args])
    assert res.exit_code == 2 and must in res.stderr
