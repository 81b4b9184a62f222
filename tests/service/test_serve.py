"""``margin-engine serve`` as a real process under uvicorn: the curl walkthrough of
docs/service.md (docs/examples/service-walkthrough.sh) runs against it, WebSocket included, and
its output is checked line by line where the numbers are derived by hand.

Demo market BTCUSDT mark 72,999.3; Binance USDⓈ-M brackets (bracket 2: maintenance rate 0.5 %,
amount 50) and default leverage 20: IM = 72,999.3 / 20 = 3,649.965, MM = 72,999.3 × 0.005 − 50 =
314.9965. After BTC falls to 66,000: equity 10,000 + 66,000 − 72,999.3 = 3,000.7 < IM 3,300.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "docs" / "examples" / "service-walkthrough.sh"
OP = "walkthrough-operator-key-0123"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _start(db: str, port: int, env: dict[str, str], cwd: Path,
           extra: tuple[str, ...] = ("--model", "binance-usdm")) -> subprocess.Popen[str]:
    """``margin-engine serve --model binance-usdm`` (or ``extra``) on ``db`` and ``port``, once
    it answers."""
    server = subprocess.Popen(
        [sys.executable, "-c", "from margin_engine.cli.main import app; app()", "serve",
         *extra, "--db", db, "--port", str(port)],
        env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for _ in range(300):  # up to 30 s to start (a start deadline, not a timing assertion)
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz") as r:
                if r.status == 200:
                    return server
        except OSError:
            if server.poll() is not None:
                pytest.fail(f"server exited: {server.stdout.read() if server.stdout else ''}")
            time.sleep(0.1)
    server.kill()
    pytest.fail("server did not start in 30 s")


def _env(port: int) -> dict[str, str]:
    return {**os.environ, "MARGIN_ENGINE_OPERATOR_KEY": OP,
            "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
            "PYTHONPATH": str(ROOT / "src"), "U": f"http://127.0.0.1:{port}"}


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_acknowledged_fills_survive_sigkill(db_url: str, tmp_path: Path) -> None:
    """Kill -9 the server while a client writes fills; after a restart every fill answered 2xx
    is stored exactly once, and resending every fill (acknowledged or not) applies each once."""
    port = _free_port()
    env = _env(port)
    url = f"http://127.0.0.1:{port}"
    head = {"Authorization": f"Bearer {OP}"}
    server = _start(db_url, port, env, tmp_path)
    acked: list[str] = []
    try:
        with httpx.Client(base_url=url, headers=head, timeout=10) as c:
            assert c.post("/v1/accounts", json={"id": "a1", "collateral": {
                "USDT": "1000000000"}}).status_code == 201

            def write() -> None:
                for n in range(10_000):
                    fid = f"f-{n}"
                    try:
                        r = c.post("/v1/accounts/a1/fills", json={
                            "fill_id": fid, "symbol": "BTCUSDT", "size": 1, "price": 73000})
                    except httpx.HTTPError:
                        return
                    if r.status_code == 200:
                        acked.append(fid)

            writer = threading.Thread(target=write)
            writer.start()
            while len(acked) < 25 and writer.is_alive():
                time.sleep(0.01)
            os.kill(server.pid, signal.SIGKILL)
            writer.join(timeout=30)
        server.wait()
        server = _start(db_url, port, env, tmp_path)
        with httpx.Client(base_url=url, headers=head, timeout=10) as c:
            entries = c.get("/v1/audit").json()["entries"]
            stored = [e["changes"]["fill_id"] for e in entries if e["action"] == "fill.apply"]
            assert len(stored) == len(set(stored))
            assert set(acked) <= set(stored) and len(acked) >= 25
            sent = len(acked) + 1  # the one in flight at the kill may or may not be stored
            for n in range(sent):
                r = c.post("/v1/accounts/a1/fills", json={
                    "fill_id": f"f-{n}", "symbol": "BTCUSDT", "size": 1, "price": 73000})
                assert r.status_code == 200
            doc = c.get("/v1/accounts/a1").json()
            assert [p["size"] for p in doc["positions"]] == [float(sent)]
    finally:
        server.kill()
        server.wait()


@pytest.mark.skipif(shutil.which("curl") is None or shutil.which("bash") is None,
                    reason="the walkthrough needs curl and bash")
def test_serve_runs_the_documented_walkthrough(tmp_path: Path) -> None:
    port = _free_port()
    env = _env(port)
    server = _start(f"sqlite:///{tmp_path / 'walk.db'}", port, env, tmp_path)
    try:
        out = subprocess.run(["bash", str(SCRIPT)], env=env, cwd=tmp_path, text=True,
                             capture_output=True, timeout=120)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert lines[lines.index("$ deposit 10000 USDT, buy 1 BTCUSDT at 72999.3, send the same "
                             "fill again") + 1:][:3] == ["10000", "False", "True"]
    margin = lines[lines.index("$ alice reads her margin") + 1]
    assert margin == ("{'initial_margin': 3649.965, 'maintenance_margin': 314.9965, "
                      "'equity': 10000.0, 'status': 'healthy'}")
    pushed = next(x for x in lines if x.startswith("margin_call alice equity"))
    equity = float(pushed.split()[3])
    assert equity == pytest.approx(3000.7) and pushed.endswith("IM 3300")
    assert ('{"error":"amount: withdrawal would leave equity 2500.7 below initial margin 3300 '
            'USDT"} 409') in lines
    assert any(x.startswith("ok: leaf 0 of 1 is included under root ") for x in lines)
    assert '{"error":"id: no account \'bob\'"} 404' in lines
    assert '{"error":"Authorization: operator key required"} 403' in lines
    assert lines[-1].endswith(" 422") and lines[-1].startswith('{"error":"size: ')


REAL = ROOT.parent / "shared" / "data" / "real"
CHAIN = REAL / "deribit_options_chain_intraday_2026-02-01_2026-02-10.csv.gz"
BARS = REAL / "binance_usdm_perp_1h_BTCUSDT_2025-09-13_2026-03-19.csv.gz"
FEED_SCRIPT = ROOT / "docs" / "examples" / "feed-walkthrough.sh"


@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.skipif(shutil.which("curl") is None or shutil.which("bash") is None,
                    reason="the walkthrough needs curl and bash")
def test_serve_with_the_replay_feed_runs_the_documented_walkthrough(tmp_path: Path) -> None:
    """``serve --model deribit-pm --feed replay:...@21600``: margin moves with the feed, a
    what-if answers, the 2026-02-05 sell-off pushes a margin call on the WebSocket, the proof
    checks. The margin call comes at the Binance bar ending 2026-02-05T21:00Z (close 63,750.9,
    the index then: the Deribit snapshot of 15:51 is stale); by hand the account's equity is
    1 BTC + 200,000 USD × (1/73,000 − 1/63,750.9) = 0.60250 BTC (the perpetual's mark carries
    the demo market's small basis over the index, hence the tolerance)."""
    for p in (CHAIN, BARS):
        if not p.exists():
            pytest.skip(f"real data file absent: {p}")
    port = _free_port()
    env = _env(port)
    server = _start(f"sqlite:///{tmp_path / 'feed.db'}", port, env, tmp_path, (
        "--model", "deribit-pm", "--feed", f"replay:{CHAIN},{BARS}@21600"))
    try:
        out = subprocess.run(["bash", str(FEED_SCRIPT)], env=env, cwd=tmp_path, text=True,
                             capture_output=True, timeout=240)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    head = lines.index("$ create an account, deposit 1 BTC, buy 20000 BTC-PERPETUAL "
                       "(USD 200,000) at 73000 (sent twice)")
    assert lines[head + 1:head + 4] == ["1", "20000", "True"]  # the same fill_id: applied once
    at = lines.index("$ her margin moves with the feed (read now, and again once the feed has "
                     "moved the market)")
    first, second = (ln.split() for ln in lines[at + 1:at + 3])
    assert first[0] < second[0] and first[2] != second[2]  # market time and equity moved
    what_if = lines[lines.index("$ what if she sold 10000 back? (stores nothing)") + 1].split()
    assert float(what_if[3]) < float(what_if[1]) and what_if[-1] == "True"  # risk-reducing
    pushed = next(ln for ln in lines if " margin events, then margin_call at " in ln).split()
    assert int(pushed[0]) > 0
    assert pushed[6] == "2026-02-05T21:00:00Z:"
    equity, im = float(pushed[8]), float(pushed[11])
    assert equity == pytest.approx(1 + 200_000 * (1 / 73_000 - 1 / 63_750.9), abs=1e-3)
    assert equity < im and pushed[12] == "BTC"
    assert any(ln.startswith("ok: leaf 0 of 1 is included under root ") for ln in lines)
