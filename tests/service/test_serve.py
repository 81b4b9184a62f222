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


def _start(db: str, port: int, env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    """``margin-engine serve --model binance-usdm`` on ``db`` and ``port``, once it answers."""
    server = subprocess.Popen(
        [sys.executable, "-c", "from margin_engine.cli.main import app; app()", "serve",
         "--model", "binance-usdm", "--db", db, "--port", str(port)],
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
