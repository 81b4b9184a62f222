"""``compute --scheduler``: the same JSON as the single process, on a running scheduler
(``tcp://``, two worker processes) and on a local cluster; and the error policy."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from margin_engine.cli.main import app
from margin_engine.distributed import scheduler as dsched

runner = CliRunner()


def compute(book, market, model, *extra):
    res = runner.invoke(app, ["compute", str(book), str(market), "--model", model,
                              "--format", "json", *extra])
    return res


_SINGLE: dict[str, str] = {}


def _single(book, market, model):
    """The single-process JSON (computed once per model in this session)."""
    if model not in _SINGLE:
        res = compute(book, market, model)
        assert res.exit_code == 0, res.output
        _SINGLE[model] = res.stdout
    return _SINGLE[model]


@pytest.mark.parametrize("model", ["historical-var", "deribit-pm"])
def test_tcp_scheduler_gives_the_single_process_json(tcp_scheduler, book_path, market_path,
                                                     model):
    single = _single(book_path, market_path, model)
    res = compute(book_path, market_path, model, "--scheduler", tcp_scheduler)
    assert res.exit_code == 0, res.output
    assert res.stdout == single  # bit-identical, every account in book order
    doc = json.loads(res.stdout)
    assert [a["id"] for a in doc["accounts"]] == [f"acct-{k}" for k in range(7)]
    assert all(a["initial_margin"] > 0 for a in doc["accounts"])


def test_local_cluster_gives_the_single_process_json(book_path, market_path):
    single = _single(book_path, market_path, "historical-var")
    res = compute(book_path, market_path, "historical-var", "--scheduler", "local:2")
    assert res.exit_code == 0, res.output
    assert res.stdout == single


def test_a_bad_account_is_named_in_the_whole_book(tcp_scheduler, book_path, market_path):
    # binance-usdm offers no portfolio mode: with --strict the first portfolio account
    # (accounts[0]) is rejected with the path the single process gives; without it, both list
    # the same accounts as not margined.
    single = compute(book_path, market_path, "binance-usdm", "--strict")
    res = compute(book_path, market_path, "binance-usdm", "--strict", "--scheduler",
                  tcp_scheduler)
    assert single.exit_code == res.exit_code == 2
    assert res.output == single.output
    assert res.output.startswith("error: accounts[0].margin_mode: 'portfolio' is not offered")
    soft = [compute(book_path, market_path, "binance-usdm", "-f", "json", *extra)
            for extra in ((), ("--scheduler", tcp_scheduler))]
    assert soft[0].exit_code == soft[1].exit_code == 0
    assert soft[0].stdout == soft[1].stdout and '"not_margined": [\n    {' in soft[0].stdout


@pytest.mark.parametrize("spec, reason", [
    ("foo", "expected local, local:N (N workers) or tcp://HOST:PORT, got 'foo'"),
    ("local:0", "local:N needs a worker count from 1 to 256, got '0'"),
    ("local:two", "local:N needs a worker count from 1 to 256, got 'two'"),
    ("tcp://127.0.0.1", "expected local, local:N (N workers) or tcp://HOST:PORT"),
    ("tls://127.0.0.1:8786", "expected local, local:N (N workers) or tcp://HOST:PORT"),
    ("tcp://127.0.0.1:70000", "port must be 1..65535, got 70000"),
])
def test_a_bad_spec_is_one_line_exit_2(book_path, market_path, spec, reason):
    res = compute(book_path, market_path, "deribit-pm", "--scheduler", spec)
    assert res.exit_code == 2
    assert res.output.startswith(f"error: --scheduler: {reason}")
    assert res.output.count("\n") == 1 and "Traceback" not in res.output


def test_an_unreachable_scheduler_is_one_line_exit_2(book_path, market_path, monkeypatch):
    import socket

    with socket.socket() as s:  # a port nobody listens on: bound here, never listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        monkeypatch.setattr(dsched, "CONNECT_TIMEOUT_S", 1.0)
        res = compute(book_path, market_path, "deribit-pm", "--scheduler",
                      f"tcp://127.0.0.1:{port}")
    assert res.exit_code == 2
    assert res.output == (f"error: --scheduler: cannot reach tcp://127.0.0.1:{port} "
                          "within 1 s (OSError)\n")


def test_python_api_partitions_and_timings(tcp_scheduler, book_path, market_path):
    from distributed import Client
    from margin_engine.distributed.assess import assess_book_distributed
    from margin_engine.domain.book import Book
    from margin_engine.io.loaders import load_book, load_market
    from margin_engine.io.model_options import build_model
    from margin_engine.policy.assess import assess_book

    market, book = load_market(market_path), load_book(book_path)
    model, _ = build_model("deribit-pm", {}, None, market)
    single = assess_book(model, book, market, liquidation_prices=False)
    with Client(tcp_scheduler, timeout=30) as client:
        for parts in (1, 3, 7, 50):  # 50 > accounts: one account per partition
            tm: dict[str, float] = {}
            got = assess_book_distributed(client, model, book, market, partitions=parts,
                                          liquidation_prices=False, timings=tm)
            assert got == single
            assert tm["partitions"] == min(parts, 7) and tm["worker_cpu"] > 0
        assert assess_book_distributed(client, model, Book(), market) == []


def test_spec_parsing():
    import os

    assert dsched.parse_scheduler("local") == dsched.SchedulerSpec(workers=os.cpu_count() or 1)
    assert dsched.parse_scheduler("local:3") == dsched.SchedulerSpec(workers=3)
    assert dsched.parse_scheduler(" tcp://10.0.0.5:8786 ") == dsched.SchedulerSpec(
        address="tcp://10.0.0.5:8786")
    assert str(dsched.parse_scheduler("local:2")) == "local:2"
