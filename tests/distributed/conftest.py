"""A Dask scheduler and two workers on loopback for the scale-out tests, always torn down."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import margin_engine

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples"
START_TIMEOUT_S = 60.0


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """Kill the throwaway processes (they hold nothing) and reap them."""
    for p in procs:
        if p.poll() is None:
            p.kill()
    for p in procs:
        p.wait(timeout=10)


@pytest.fixture(scope="session")
def tcp_scheduler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``tcp://127.0.0.1:PORT`` of a ``dask scheduler`` with two ``dask worker`` processes
    (free ports chosen by the scheduler; each process bounded by idle/death timeouts)."""
    from distributed import Client

    folder = tmp_path_factory.mktemp("dask")
    sched_file = folder / "scheduler.json"
    env = {**os.environ, "PYTHONPATH": str(Path(margin_engine.__file__).parents[1]),
           "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    dask = [sys.executable, "-m", "dask"]
    procs = [subprocess.Popen(
        [*dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
         "--scheduler-file", str(sched_file), "--idle-timeout", "600"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not sched_file.exists():
            if time.monotonic() > deadline or procs[0].poll() is not None:
                pytest.fail("dask scheduler did not start")
            time.sleep(0.1)
        procs += [subprocess.Popen(
            [*dask, "worker", "--scheduler-file", str(sched_file), "--host", "127.0.0.1",
             "--no-nanny", "--nthreads", "1", "--no-dashboard", "--death-timeout", "60",
             "--name", f"w{k}"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for k in range(2)]
        address = json.loads(sched_file.read_text())["address"]
        with Client(address, timeout=START_TIMEOUT_S) as client:
            client.wait_for_workers(2, timeout=START_TIMEOUT_S)
        yield address
    finally:
        _stop(procs[::-1])


@pytest.fixture(scope="session")
def market_path() -> Path:
    return EXAMPLES / "market-2026-02-04.json"


def scale_book() -> dict[str, Any]:
    """Seven accounts of uneven sizes on the example market (portfolio and cross), so that
    partitions cut between accounts of different weights."""
    legs = [("BTCUSDT", 1.5), ("ETHUSDT", -20.0), ("BTC-PERPETUAL", -5000.0),
            ("BTC-27MAR26", 3000.0), ("BTC-27MAR26-80000-C", -10.0),
            ("BTC-27MAR26-65000-P", -10.0)]
    shapes = [(0, 1, 2, 3, 4, 5), (0,), (2, 4), (1, 3, 5), (0, 2), (4, 5), (3,)]
    accounts = []
    for a, shape in enumerate(shapes):
        accounts.append({
            "id": f"acct-{a}", "margin_mode": "portfolio" if a % 2 == 0 else "cross",
            "collateral": {"USDT": 50000.0 + 10000 * a, "BTC": 1.0 + 0.25 * a},
            "credit_rating": "A",
            "positions": [{"symbol": legs[k][0], "size": legs[k][1] * (1 + 0.5 * a),
                           "entry_price": 70000.0 if legs[k][0].startswith("BTC") and
                           k < 4 else None} for k in shape]})
    for acct in accounts:
        for p in acct["positions"]:
            if p["entry_price"] is None:
                del p["entry_price"]
    return {"accounts": accounts}


@pytest.fixture(scope="session")
def book_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("book") / "book.json"
    p.write_text(json.dumps(scale_book()))
    return p
