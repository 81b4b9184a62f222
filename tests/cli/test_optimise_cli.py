"""``margin-engine optimise`` on the demo book with every registered model (issue 14): each
suggestion recomputed from scratch here, the exact solver's applicability said, bad input one
line and exit 2, and the command ``make demo`` suggests runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from margin_engine.cli.main import app
from margin_engine.demo.run import OPTIMISE_ACCOUNT, next_commands, write_sample
from margin_engine.errors import InputError
from margin_engine.io.loaders import load_book, load_market
from margin_engine.io.model_options import build_model
from margin_engine.live.fills import fill_account
from margin_engine.models.core.registry import model_names
from margin_engine.policy.assess import assess_account

runner = CliRunner()
SCENARIO_MODELS = {"filtered-es", "monte-carlo-es", "deribit-pm", "span"}  # an exact LP applies


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    market, book, _ = write_sample(tmp_path_factory.mktemp("demo"), seed=7)
    return book, market


def run(*args: str | Path):
    return runner.invoke(app, [str(a) for a in args])


def first_margined(model, book, market):
    """The smallest cross/portfolio account the model margins (else any it margins)."""
    ok = []
    for a in book.accounts:
        try:
            assess_account(model, a, market, liquidation_prices=False)
        except InputError:  # the model refuses this account
            continue
        ok.append(a)
    assert ok, f"{model.name} margins no demo account"
    return min(ok, key=lambda a: (a.margin_mode.value == "isolated", len(a.positions), a.id))


@pytest.mark.parametrize("name", model_names())
def test_optimise_runs_with_every_model_and_its_suggestions_hold(demo, name):
    book_path, market_path = demo
    book, market = load_book(book_path), load_market(market_path)
    model, _ = build_model(name, {}, None, market)
    acct = first_margined(model, book, market)
    res = run("optimise", book_path, market_path, "--model", name, "--account", acct.id,
              "--budget", "500", "--format", "json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    before = assess_account(model, acct, market, liquidation_prices=False).initial_margin
    assert doc["initial_margin"] == pytest.approx(before, rel=1e-12)
    for h in doc["hedges"]:
        after = assess_account(model, fill_account(acct, market, h["symbol"], h["size"]),
                               market, liquidation_prices=False).initial_margin
        assert after == pytest.approx(h["initial_margin_after"], rel=1e-9)
        assert after < before
        assert h["cost_usd"] <= 500.0
    plan = doc["plan"]
    filled = acct
    for s, q in plan["trades"].items():
        filled = fill_account(filled, market, s, q)
    after = assess_account(model, filled, market, liquidation_prices=False).initial_margin
    assert after == pytest.approx(plan["initial_margin_after"], rel=1e-9) and after <= before
    ex = doc["exact"]
    if name in SCENARIO_MODELS:
        assert ex["applicable"], ex
        assert ex["objective"] <= ex["greedy_objective"] * (1 + 1e-6) + 1e-9
    else:
        assert not ex["applicable"] and ex["reason"]
    assert doc["collateral"]["choices"]


def test_the_table_and_the_file(demo, tmp_path):
    book, market = demo
    out = tmp_path / "o" / "opt.json"
    res = run("optimise", book, market, "--model", "filtered-es", "--account", "basis-trader",
              "--budget", "1000", "--versus", "deribit-pm", "-o", out)
    assert res.exit_code == 0, res.output
    assert "hedges" in res.stdout and "exact (Rockafellar–Uryasev LP, HiGHS)" in res.stdout
    doc = json.loads(out.read_text())
    assert doc["venues"]["total_usd"] <= min(
        v for k, v in doc["venues"].items() if k.startswith("all_") and v is not None) + 1e-6
    assert doc["audit"]["model"] == "filtered-es"


@pytest.mark.parametrize("args,line", [
    (["--budget", "-5"], "error: --budget: must be a finite number > 0"),
    (["--budget", "nan"], "error: --budget: must be a finite number > 0"),
    (["--budget", "abc"], "error: --budget: not a number: 'abc'"),
    (["--universe", ","], "error: --universe[0]: empty symbol"),
    (["--universe", "BTCUSDT,NOPE"], "error: --universe[1]: unknown symbol 'NOPE'"),
    (["--account", "nobody"], "error: --account: unknown account 'nobody'"),
    (["--versus", "binance-usdm"], "error: --versus: must name a model other than --model"),
    (["--model", "nope"], "error: --model: unknown model 'nope'"),
])
def test_bad_input_is_one_line_and_exit_2(demo, args, line):
    book, market = demo
    base = {"--model": "binance-usdm", "--account": "btc-long-cross"}
    base.update(zip(args[::2], args[1::2], strict=True))
    argv: list[str | Path] = ["optimise", book, market]
    for k, v in base.items():
        argv += [k, v]
    res = run(*argv)
    assert res.exit_code == 2, res.output
    assert res.stderr.startswith(line), res.stderr
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr


def test_a_model_that_does_not_margin_the_account_says_so(demo):
    book, market = demo
    res = run("optimise", book, market, "--model", "binance-usdm", "--account", "market-maker")
    assert res.exit_code == 2
    assert res.stderr.startswith("error: accounts[11].margin_mode: 'portfolio' is not offered")


def test_the_optimise_command_the_demo_suggests_runs(demo):
    book, market = demo
    line = next(x for x in next_commands(book, market, "binance-usdm") if " optimise " in x)
    argv = line.split("#")[0].removeprefix("next:").split()[1:]
    res = run(*argv, "--format", "json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["account"] == OPTIMISE_ACCOUNT and doc["hedges"]


def test_the_demo_prints_the_top_hedge_and_it_holds(tmp_path):
    res = run("demo", "--out", tmp_path / "demo")
    assert res.exit_code == 0, res.output
    line = next(x for x in res.stdout.splitlines() if x.startswith(f"optimise {OPTIMISE_ACCOUNT}"))
    # "optimise ACCOUNT (MODEL): trade SYMBOL SIZE (cost C USD) → initial margin A → B CCY"
    words = line.split()
    model_name = words[2].strip("():")
    symbol, size = words[4], float(words[5])
    after = float(words[-2].replace(",", ""))
    before = float(words[-4].replace(",", ""))
    market = load_market(tmp_path / "demo" / "market.json")
    book = load_book(tmp_path / "demo" / "book.json")
    model, _ = build_model(model_name, {}, None, market)
    acct = next(a for a in book.accounts if a.id == OPTIMISE_ACCOUNT)
    again = assess_account(model, fill_account(acct, market, symbol, size), market,
                           liquidation_prices=False).initial_margin
    assert again == pytest.approx(after, abs=0.006) and again < before
