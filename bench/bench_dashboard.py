"""What the dashboard's read-only endpoints cost, in process (issue 13).

    python -m bench.bench_dashboard [--accounts 50] [--calls 30]

Opens ``--accounts`` accounts (0.1 BTCUSDT each) on a temporary SQLite file through FastAPI's
test client, then times ``--calls`` requests of each endpoint and prints medians and the ratio
to ``/healthz`` measured in the same run (the framework's floor on this machine now).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

from margin_engine.io.loaders import load_market
from margin_engine.io.model_options import build_model
from margin_engine.service.app import create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parents[1]
OP = "operator-key-for-the-benchmark-0123"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=50)
    ap.add_argument("--calls", type=int, default=30)
    args = ap.parse_args()
    market = load_market(ROOT / "docs" / "examples" / "market-2026-02-04.json")
    model, _ = build_model("binance-usdm", {}, None, market)
    head = {"Authorization": f"Bearer {OP}"}
    with tempfile.TemporaryDirectory() as tmp, TestClient(create_app(
            model, market, f"sqlite:///{tmp}/bench.db", operator_key=OP,
            rate_limit=None)) as c:
        for i in range(args.accounts):
            c.post("/v1/accounts", json={"id": f"a{i}", "collateral": {"USDT": "10000"}},
                   headers=head).raise_for_status()
            c.post(f"/v1/accounts/a{i}/fills", headers=head, json={
                "fill_id": f"f{i}", "symbol": "BTCUSDT", "size": "0.1", "price": "73000"}
                   ).raise_for_status()

        def median_ms(path: str, n: int) -> float:
            xs = []
            for _ in range(n):
                t = time.perf_counter()
                c.get(path, headers=head).raise_for_status()
                xs.append(time.perf_counter() - t)
            return 1000 * statistics.median(xs)

        first = median_ms("/v1/accounts/a1/models", 1)
        floor = median_ms("/healthz", args.calls)
        print(f"{args.accounts} accounts, {args.calls} calls each, medians")
        print(f"{'/healthz':34s} {floor:8.1f} ms   1.0 x")
        for path in ("/v1/accounts", "/v1/accounts/a1/risk-matrix",
                     "/v1/accounts/a1/models"):
            ms = median_ms(path, args.calls)
            print(f"{path:34s} {ms:8.1f} ms {ms / floor:5.1f} x /healthz")
        print(f"{'models, first call (builds them)':34s} {first:8.1f} ms")


if __name__ == "__main__":
    main()
