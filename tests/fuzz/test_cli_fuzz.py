"""Fuzzing ``compute``, ``stress`` and ``backtest`` with mutated books, markets, histories and
parameters: exit 0 with finite numbers (valid JSON), or exit 2 with one ``error:`` line.

Deterministic (``derandomize=True``) and bounded (about half a minute of CPU); set
``MARGIN_ENGINE_FUZZ_SCALE=20`` to run twenty times as many examples locally, and
``MARGIN_ENGINE_FUZZ_RANDOM=1`` (with ``--hypothesis-seed=N``) to explore other examples.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz.harness import (
    BOOKS,
    HISTORY,
    MARKET,
    MODELS,
    RISK_BASED,
    check_contract,
    mutated_history,
    mutated_json,
    params,
    write,
)

SCALE = float(os.environ.get("MARGIN_ENGINE_FUZZ_SCALE", "1"))
DERANDOMIZE = not os.environ.get("MARGIN_ENGINE_FUZZ_RANDOM")


def fuzz_settings(n: int) -> settings:
    return settings(max_examples=max(1, int(n * SCALE)), derandomize=DERANDOMIZE, deadline=None,
                    database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


VALID_BOOK = json.dumps(BOOKS[0]).encode()
VALID_MARKET = json.dumps(MARKET).encode()


@fuzz_settings(300)
@given(book=st.one_of(mutated_json(BOOKS), st.just(VALID_BOOK)),
       market=st.one_of(st.just(VALID_MARKET), mutated_json([MARKET])),
       model=st.sampled_from(MODELS), data=st.data(),
       fmt=st.sampled_from(["json", "table"]))
def test_compute(book: bytes, market: bytes, model: str, data: st.DataObject, fmt: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        args = ["compute", write(d / "book.json", book), write(d / "market.json", market),
                "-m", model, "-f", fmt, *data.draw(params(model))]
        if model in RISK_BASED:
            hist = data.draw(st.one_of(st.just(HISTORY.encode()), mutated_history()))
            args += ["--history", write(d / "hist.csv", hist)]
        check_contract(args, json_output=fmt == "json")


@fuzz_settings(120)
@given(book=mutated_json(BOOKS), market=st.one_of(st.just(VALID_MARKET), mutated_json([MARKET])),
       model=st.sampled_from(MODELS), data=st.data(), fmt=st.sampled_from(["json", "table"]),
       scenario=st.sampled_from([[], ["-s", "covid-2020-03-12"], ["-s", "nope:x:"]]))
def test_stress(book: bytes, market: bytes, model: str, data: st.DataObject, fmt: str,
                scenario: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        args = ["stress", write(d / "book.json", book), write(d / "market.json", market),
                "-m", model, "-f", fmt, *scenario, *data.draw(params(model))]
        if model in RISK_BASED:
            hist = data.draw(st.one_of(st.just(HISTORY.encode()), mutated_history()))
            args += ["--history", write(d / "hist.csv", hist)]
        check_contract(args, json_output=fmt == "json")


BACKTEST_BOOKS = [
    {"accounts": [{"id": "bt", "collateral": {"USDT": 100000},
                   "positions": [{"symbol": "BTCUSDT", "size": 1.5}]}]},
    {"accounts": [{"id": "bt", "collateral": {"USDT": 100000},
                   "positions": [{"symbol": "BTCUSDT", "size": 1.5},
                                 {"symbol": "ETH-PERPETUAL", "size": -500}]}]}]


@fuzz_settings(60)
@given(book=st.one_of(st.just(json.dumps(BACKTEST_BOOKS[0]).encode()),
                      mutated_json(BACKTEST_BOOKS)),
       history=st.one_of(st.just(HISTORY.encode()), mutated_history()),
       model=st.sampled_from(["historical-var", "binance-usdm", "hyperliquid", "filtered-es"]),
       data=st.data(), fmt=st.sampled_from(["json", "table"]))
def test_backtest(book: bytes, history: bytes, model: str, data: st.DataObject,
                  fmt: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        args = ["backtest", "--history", write(d / "hist.csv", history), "--book",
                write(d / "book.json", book), "-m", model, "--start", "2026-01-25", "-f", fmt,
                *data.draw(params(model))]
        check_contract(args, json_output=fmt == "json")
