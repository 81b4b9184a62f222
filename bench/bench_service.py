"""Load on the service's what-if route over loopback (issue 10's load script).

    python -m bench.bench_service [--seconds 60] [--accounts 20] [--concurrency 16]
                                  [--model binance-usdm] [--client wrk|httpx] [--port 0]

Starts the service as ``margin-engine serve`` does (demo market, uvicorn) on a temporary SQLite
file, once with FastAPI's what-if route and once with the what-if fast path
(``--route both``, the default: the ratio is measured in the same run), creates ``--accounts``
accounts with collateral and two fills each, then for ``--seconds`` keeps ``--concurrency``
requests in flight (keep-alive), each ``POST /v1/accounts/{id}/what-if`` for one BTCUSDT order
asked with the account's own key (so the per-key rate limit is not what is measured).

The load client is a separate process: ``wrk`` (Debian's package; a Lua script rotates the
accounts) when it is on the PATH, else an asyncio + httpx client in this process
(``--client httpx``). Prints requests/s, p50/p99/max latency, the count of errors (non-200
answers and socket errors) and the CPU each side used: client and server share the machine's
cores over loopback, so both shares are printed (100 % = one core) and the server's figure is a
lower bound on what it would do alone. Loopback only, bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

OP = "bench-operator-key-0123456789"
BODY = {"orders": [{"symbol": "BTCUSDT", "size": 0.5}]}


@dataclass(frozen=True)
class Load:
    """One load run's figures (latencies in ms, CPU in seconds)."""

    requests: int
    errors: int
    wall_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    client_cpu_s: float


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _serve(model: str, db: str, port: int, fast: bool) -> None:
    """What ``margin-engine serve --model MODEL --db DB --port PORT`` runs (demo market), with
    the what-if fast path on or off (the A/B of this benchmark)."""
    import uvicorn

    from margin_engine.demo.synthetic import generate_market
    from margin_engine.domain.market import MarketSnapshot
    from margin_engine.io.loaders import parse_model
    from margin_engine.io.model_options import build_model
    from margin_engine.service.app import create_app

    snap = parse_model(MarketSnapshot, generate_market(seed=7), "market")
    mdl, _ = build_model(model, {}, None, snap)
    uvicorn.run(create_app(mdl, snap, db, operator_key=OP, fast_what_if=fast),
                host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _start(db: str, port: int, model: str, fast: bool) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    root = Path(__file__).resolve().parents[1]
    env["PYTHONPATH"] = os.pathsep.join([str(root / "src"), str(root),
                                         env.get("PYTHONPATH", "")])
    server = subprocess.Popen(
        [sys.executable, "-c", "import sys; from bench.bench_service import _serve; "
         "_serve(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == 'fast')",
         model, db, str(port), "fast" if fast else "route"], env=env, cwd=root,
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


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds a live process has used (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _setup(url: str, accounts: int) -> dict[str, str]:
    keys: dict[str, str] = {}
    head = {"Authorization": f"Bearer {OP}"}
    with httpx.Client(base_url=url, headers=head, timeout=30) as c:
        for i in range(accounts):
            acct = f"acct-{i:03d}"
            r = c.post("/v1/accounts", json={"id": acct, "collateral": {"USDT": "100000"}})
            keys[acct] = r.json()["api_key"]
            for j, (sym, size) in enumerate((("BTCUSDT", 1), ("ETHUSDT", -10))):
                c.post(f"/v1/accounts/{acct}/fills", json={
                    "fill_id": f"{acct}-{j}", "symbol": sym, "size": size,
                    "price": 73000 if sym == "BTCUSDT" else 2100})
        r = c.post(f"/v1/accounts/{next(iter(keys))}/what-if", json=BODY,
                   headers={"Authorization": f"Bearer {next(iter(keys.values()))}"})
        if r.status_code != 200:
            raise SystemExit(f"error: what-if answered {r.status_code}: {r.text}")
    return keys


_LUA = """
local ids = {%s}
local keys = {%s}
local body = '%s'
local n = 0
request = function()
  n = n + 1
  local i = (n %% #ids) + 1
  return wrk.format("POST", "/v1/accounts/" .. ids[i] .. "/what-if",
    {["Authorization"] = "Bearer " .. keys[i], ["Content-Type"] = "application/json"}, body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %%d %%d %%d %%d %%d %%d %%.1f %%.1f %%.1f\\n",
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    0, 0, latency:percentile(50), latency:percentile(99), latency.max))
end
"""


def _load_wrk(url: str, keys: dict[str, str], seconds: float, concurrency: int,
              threads: int) -> Load:
    ids = ",".join(f'"{k}"' for k in keys)
    ks = ",".join(f'"{v}"' for v in keys.values())
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(_LUA % (ids, ks, json.dumps(BODY)))
        script = f.name
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        out = subprocess.run(
            ["wrk", "-t", str(threads), "-c", str(concurrency), "-d", f"{seconds:g}s",
             "--timeout", "10s", "-s", script, url], capture_output=True, text=True,
            check=True, timeout=seconds + 60).stdout
    finally:
        os.unlink(script)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    m = re.search(r"^RESULT (.*)$", out, re.M)
    if m is None:
        raise SystemExit(f"error: wrk printed no result:\n{out}")
    req, dur_us, sock, status, _, _, p50, p99, mx = m.group(1).split()
    return Load(int(req), int(sock) + int(status), int(dur_us) / 1e6, float(p50) / 1e3,
                float(p99) / 1e3, float(mx) / 1e3,
                (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime))


async def _load_httpx(url: str, keys: dict[str, str], seconds: float,
                      concurrency: int) -> Load:
    lat: list[float] = []
    errors = 0
    ids = list(keys)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
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
                    r = await c.post(f"/v1/accounts/{acct}/what-if", json=BODY,
                                     headers={"Authorization": f"Bearer {keys[acct]}"})
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                lat.append(time.perf_counter() - t0)
                errors += not ok

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    ms = np.array(lat) * 1e3
    return Load(len(lat), errors, wall, float(np.percentile(ms, 50)),
                float(np.percentile(ms, 99)), float(ms.max()),
                (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime))


def _run(a: argparse.Namespace, fast: bool) -> None:
    port = a.port or _free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        server = _start(f"sqlite:///{tmp}/bench.db", port, a.model, fast)
        try:
            keys = _setup(url, a.accounts)
            s0 = _cpu_s(server.pid)
            if a.client == "wrk":
                res = _load_wrk(url, keys, a.seconds, a.concurrency, a.threads)
            else:
                res = asyncio.run(_load_httpx(url, keys, a.seconds, a.concurrency))
            server_cpu = _cpu_s(server.pid) - s0
        finally:
            server.terminate()
            server.wait()
    print(f"what-if over loopback ({'fast path' if fast else 'FastAPI route'}): {a.model}, "
          f"{a.accounts} accounts, client {a.client}, concurrency {a.concurrency}, "
          f"{res.wall_s:.1f} s, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print(f"  {res.requests:,} requests, {res.requests / res.wall_s:,.0f}/s, "
          f"p50 {res.p50_ms:.2f} ms, p99 {res.p99_ms:.2f} ms, max {res.max_ms:.1f} ms, "
          f"errors {res.errors}")
    print(f"  CPU: server {100 * server_cpu / res.wall_s:.0f} %, client "
          f"{100 * res.client_cpu_s / res.wall_s:.0f} % (100 % = one core); server "
          f"{1e6 * server_cpu / max(res.requests, 1):.0f} µs CPU per request", flush=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--accounts", type=int, default=20)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1, help="wrk threads")
    ap.add_argument("--model", default="binance-usdm")
    ap.add_argument("--client", choices=("wrk", "httpx"),
                    default="wrk" if shutil.which("wrk") else "httpx")
    ap.add_argument("--route", choices=("both", "fast", "fastapi"), default="both",
                    help="the what-if fast path, FastAPI's route, or one after the other")
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args(argv)
    if a.route in ("both", "fastapi"):
        _run(a, fast=False)
    if a.route in ("both", "fast"):
        _run(a, fast=True)


if __name__ == "__main__":
    main()
