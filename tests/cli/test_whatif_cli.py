"""``margin-engine whatif``: before/after, IM change, accept/reject; bad orders exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from margin_engine.cli.main import app
from margin_engine.domain.book import Book
from margin_engine.io.loaders import load_book, load_market
from margin_engine.live.fills import fill_account
from margin_engine.models.core.registry import get_model
from margin_engine.policy.assess import assess_account

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
BOOK, MARKET = EXAMPLES / "book-mixed.json", EXAMPLES / "market-2026-02-04.json"
runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, ["whatif", str(BOOK), str(MARKET), *args])


def test_json_answer_equals_assessing_the_filled_account(tmp_path):
    out = tmp_path / "w.json"
    res = run("-m", "binance-usdm", "--account", "btc-long-cross", "--order", "BTCUSDT:2",
              "--order", "BTCUSDT:-0.5@70000", "-f", "json", "-o", str(out))
    assert res.exit_code == 0, res.output
    assert res.stdout == ""  # the JSON went to the file instead
    doc = json.loads(out.read_text())
    market, book = load_market(MARKET), load_book(BOOK)
    acct = next(a for a in book.accounts if a.id == "btc-long-cross")
    model = get_model("binance-usdm")
    before = assess_account(model, acct, market, liquidation_prices=False)
    after_acct = fill_account(fill_account(acct, market, "BTCUSDT", 2.0), market, "BTCUSDT",
                              -0.5, 70000.0)
    after = assess_account(model, after_acct, market, liquidation_prices=False)
    assert doc["before"]["initial_margin"] == pytest.approx(before.initial_margin, rel=1e-12)
    assert doc["after"]["initial_margin"] == pytest.approx(after.initial_margin, rel=1e-12)
    assert doc["after"]["equity"] == pytest.approx(after.equity, rel=1e-12)
    assert doc["initial_margin_change"] == pytest.approx(
        after.initial_margin - before.initial_margin, rel=1e-12)
    assert doc["accept"] is (after.available_balance >= 0 or
                             after.initial_margin <= before.initial_margin)
    assert isinstance(doc["reason"], str) and doc["reason"]
    assert Book(accounts=(after_acct,))  # the filled account is a valid book


def test_a_reducing_order_is_accepted_and_a_large_one_rejected():
    small = json.loads(run("-m", "binance-usdm", "--account", "btc-long-cross", "--order",
                           "BTCUSDT:-0.1", "-f", "json").stdout)
    assert small["accept"] and small["initial_margin_change"] < 0
    big = json.loads(run("-m", "binance-usdm", "--account", "btc-long-cross", "--order",
                         "BTCUSDT:50", "-f", "json").stdout)
    assert not big["accept"] and "exceed" in big["reason"]


def test_table_output():
    res = run("-m", "binance-usdm", "--account", "btc-long-cross", "--order", "BTCUSDT:1")
    assert res.exit_code == 0 and "before" in res.output and "initial margin change" in res.output


@pytest.mark.parametrize("args, msg", [
    (["--order", "BTCUSDT:abc"], "error: --order[0].size: not a number: 'abc'"),
    (["--order", "BTCUSDT:0"], "error: --order[0].size: must be a finite non-zero number"),
    (["--order", "BTCUSDT:1@-5"], "error: --order[0].price: must be a finite number > 0"),
    (["--order", "BTCUSDT"], "error: --order[0]: expected SYMBOL:SIZE[@PRICE]"),
    (["--order", "NOPE:1"], "error: --order[0].symbol: unknown symbol 'NOPE'"),
    (["--order", "BTCUSDT:nan"], "error: --order[0].size: must be a finite non-zero number"),
])
def test_bad_orders_are_one_line_errors_with_exit_2(args, msg):
    res = run("-m", "binance-usdm", "--account", "btc-long-cross", *args)
    assert res.exit_code == 2
    assert res.stderr.strip().startswith(msg) and len(res.stderr.strip().splitlines()) == 1


def test_unknown_account_exits_2():
    res = run("-m", "binance-usdm", "--account", "nope", "--order", "BTCUSDT:1")
    assert res.exit_code == 2 and res.stderr.startswith("error: --account: unknown account")
