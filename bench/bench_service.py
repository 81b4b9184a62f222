"""Load on the service's what-if route over loopback (issue 10's load script).

    python -m bench.bench_service [--seconds 60] [--accounts 20] [--concurrency 16]
                                  [--model binance-usdm] [--port 0]

Starts ``margin-engine serve`` on a temporary SQLite file (demo market), creates ``--accounts``
accounts with collateral and two fills each, then for ``--seconds`` keeps ``--concurrency``
requests in flight (asyncio + httpx, keep-alive), each an account asking ``POST
/v1/accounts/{id}/what-if`` for one BTCUSDT order with its own key (so the per-key rate limit
is not what is measured). Prints requests/s, p50/p99/max latency and the count of non-200
answers. Loopback only; the client shares the machine's cores with the server, so the figures
are a lower bound on the server alone.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import httpx
import numpy as np

OP = "bench-operator-key-0123456789"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _start(db: str, port: int, model: str, cwd: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "MARGIN_ENGINE_OPERATOR_KEY": OP}
    src = Path(__file__).resolve().parents[1] / "src"
    env["PYTHONPATH"] = str(src) + os.pathsep + env.get("PYTHONPATH", "")
    server = subprocess.Popen(
        [sys.executable, "-c", "from margin_engine.cli.main import app; app()", "serve",
         "--model", model, "--db", db, "--port", str(port)], env=env, cwd=cwd,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz"):
                return server
        except OSError:
            if server.poll() is not None:
                raise SystemExit("error: server exited at start") from None
            time.sleep(0.1)
    server.kill()
    raise SystemExit("error: server did not start in 60 s")


async def _load(url: str, keys: dict[str, str], seconds: float,
                concurrency: int) -> tuple[list[float], int, float]:
    lat: list[float] = []
    errors = 0
    ids = list(keys)
    body = {"orders": [{"symbol": "BTCUSDT", "size": 0.5}]}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as c:
        end = time.perf_counter() + seconds

        async def worker(w: int) -> None:
            nonlocal errors
            n = w
            while time.perf_counter() < end:
                acct = ids[n % len(ids)]
                n += concurrency
                t0 = time.perf_counter()
                try:
                    r = await c.post(f"/v1/accounts/{acct}/what-if", json=body,
                                     headers={"Authorization": f"Bearer {keys[acct]}"})
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                lat.append(time.perf_counter() - t0)
                errors += not ok

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        wall = time.perf_counter() - t0
    return lat, errors, wall


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--accounts", type=int, default=20)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--model", default="binance-usdm")
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args(argv)
    port = a.port or _free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        server = _start(f"sqlite:///{tmp}/bench.db", port, a.model, tmp)
        try:
            keys: dict[str, str] = {}
            head = {"Authorization": f"Bearer {OP}"}
            with httpx.Client(base_url=url, headers=head, timeout=30) as c:
                for i in range(a.accounts):
                    acct = f"acct-{i:03d}"
                    r = c.post("/v1/accounts", json={"id": acct,
                                                     "collateral": {"USDT": "100000"}})
                    keys[acct] = r.json()["api_key"]
                    for j, (sym, size) in enumerate((("BTCUSDT", 1), ("ETHUSDT", -10))):
                        c.post(f"/v1/accounts/{acct}/fills", json={
                            "fill_id": f"{acct}-{j}", "symbol": sym, "size": size,
                            "price": 73000 if sym == "BTCUSDT" else 2100})
            lat, errors, wall = asyncio.run(_load(url, keys, a.seconds, a.concurrency))
        finally:
            server.terminate()
            server.wait()
    ms = np.array(lat) * 1e3
    print(f"what-if over loopback: {a.model}, {a.accounts} accounts, concurrency "
          f"{a.concurrency}, {wall:.1f} s, {os.cpu_count()} CPUs")
    print(f"  {len(lat):,} requests, {len(lat) / wall:,.0f}/s, p50 {np.percentile(ms, 50):.2f} ms,"
          f" p99 {np.percentile(ms, 99):.2f} ms, max {ms.max():.1f} ms, errors {errors}")


if __name__ == "__main__":
    main()
