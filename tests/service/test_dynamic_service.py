"""``serve --dynamic``: the controller in the service (SQLite). Market updates carrying funding
stress make the controller announce a raise (``margin_parameters``, phase ``announced``, 24 h
ahead), then apply it; an account whose equity sits between the old and the new IM gets a margin
call whose cause is the raise, never a liquidation; account keys see the market-wide event; a bad
``regime`` is one 400 line and changes nothing.

Figures: binance-usdm BTCUSDT at 73,005 USDT notional, default leverage 20: IM 3,650.25, MM
315.025 (tests/service/test_app.py derives them from the published brackets). Multipliers:
1.25 at start, 1.25 × 1.10 = 1.375 in liquidity stress (docs/dynamic-margin.md defaults).
"""

from __future__ import annotations

import warnings
from datetime import date
from pathlib import Path

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from margin_engine.io.loaders import load_market
from margin_engine.io.model_options import build_model
from margin_engine.io.series import synthetic_series
from margin_engine.live.dynamic import LiveDynamic, LiveDynamicConfig
from margin_engine.service.app import create_app

ROOT = Path(__file__).resolve().parents[2]
MARKET = load_market(ROOT / "docs" / "examples" / "market-2026-02-04.json")
OP = {"Authorization": "Bearer operator-key-for-tests-0123456789"}
IM, MM = 3650.25, 315.025


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_raise_is_announced_applied_and_causes_a_margin_call(db_url: str) -> None:
    model, _ = build_model("binance-usdm", {}, None, MARKET)
    dyn = LiveDynamic(LiveDynamicConfig(atm_iv=False), synthetic_series(date(2026, 2, 4)))
    app = create_app(model, MARKET, db_url, operator_key=OP["Authorization"][7:], dynamic=dyn)
    with TestClient(app) as c:
        # equity 1.3 × IM: healthy under 1.25, margin call under 1.375
        r = c.post("/v1/accounts", json={"id": "a1", "margin_mode": "cross",
                                         "collateral": {"USDT": 1.3 * IM}}, headers=OP)
        assert r.status_code == 201
        key = {"Authorization": f"Bearer {r.json()['api_key']}"}
        r = c.post("/v1/accounts/a1/fills", json={"fill_id": "f1", "symbol": "BTCUSDT",
                                                  "size": 1, "price": 73005}, headers=OP)
        assert r.status_code == 200, r.text
        acct = c.get("/v1/accounts/a1", headers=OP).json()
        assert acct["initial_margin"] == pytest.approx(1.25 * IM)
        assert acct["status"] == "healthy"
        assert acct["components"]["dynamic_adjustment"] == pytest.approx(0.25 * IM)

        bad = c.post("/v1/market", json={"timestamp": "2026-02-05T00:00:00Z",
                                         "regime": {"funding": "high"}}, headers=OP)
        assert bad.status_code == 400 and bad.json()["error"].startswith("regime.funding: ")
        assert c.get("/v1/events", headers=OP).json()["events"] == []

        kinds = []
        with c.websocket_connect(f"/v1/stream?token={key['Authorization'][7:]}") as ws:
            for ts in ("2026-02-04T12:00:00Z", "2026-02-05T00:00:00Z",
                       "2026-02-05T12:00:00Z", "2026-02-06T00:00:00Z"):
                r = c.post("/v1/market", json={"timestamp": ts, "regime": {"funding": 0.001}},
                           headers=OP)
                assert r.status_code == 200, r.text
                kinds.append([(e["type"], e.get("phase")) for e in r.json()["events"]])
            # the owner's stream carries the market-wide announcements and its margin call
            pushed = [ws.receive_json() for _ in range(3)]
        assert [(e["type"], e.get("phase")) for e in pushed] == [
            ("margin_parameters", "announced"), ("margin_parameters", "in_effect"),
            ("margin_call", None)]
        assert kinds == [[], [("margin_parameters", "announced")], [],
                         [("margin_parameters", "in_effect"), ("margin_call", None)]]
        events = c.get("/v1/events", headers=OP).json()["events"]
        ann, eff, call = events
        assert eff["phase"] == "in_effect" and eff["effective_time"] == "2026-02-06T00:00:00Z"
        # amounts are exact decimals as JSON strings, like every stored event's
        assert ann["old"] == "1.25" and float(ann["new"]) == pytest.approx(1.375)
        assert ann["effective_time"] == "2026-02-06T00:00:00Z" and "funding" in ann["reason"]
        assert ann["account"] is None
        assert call["cause"] == "margin_parameters" and call["previous_status"] == "healthy"
        assert float(call["initial_margin"]) == pytest.approx(1.375 * IM)
        assert float(call["maintenance_margin"]) == pytest.approx(1.375 * MM)  # far under the cap
        # the owner sees the market-wide announcements and its own margin call
        mine = c.get("/v1/events", headers=key).json()["events"]
        assert [e["type"] for e in mine] == ["margin_parameters", "margin_parameters",
                                             "margin_call"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_without_dynamic_a_regime_field_is_refused(db_url: str) -> None:
    model, _ = build_model("binance-usdm", {}, None, MARKET)
    app = create_app(model, MARKET, db_url, operator_key=OP["Authorization"][7:])
    with TestClient(app) as c:
        r = c.post("/v1/market", json={"regime": {"funding": 0.001}}, headers=OP)
        assert r.status_code == 400 and r.json()["error"].startswith("regime: ")


def test_serve_dynamic_as_a_process_publishes_margin_parameters(tmp_path: Path) -> None:
    """``margin-engine serve --model binance-usdm --dynamic`` (demo market, synthetic seed
    history): a day of funding stress pushed over HTTP gives an ``announced`` increase 1.25 →
    1.375 effective 24 h after the update that closed the day."""
    import os
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    key = "dynamic-operator-key-0123456789"
    env = {**os.environ, "MARGIN_ENGINE_OPERATOR_KEY": key,
           "PYTHONPATH": str(ROOT / "src")}
    server = subprocess.Popen(
        [sys.executable, "-c", "from margin_engine.cli.main import app; app()", "serve",
         "--model", "binance-usdm", "--db", f"sqlite:///{tmp_path / 'd.db'}", "--port",
         str(port), "--dynamic"], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):  # a start deadline, not a timing assertion
            try:
                with urllib.request.urlopen(f"{url}/healthz") as r:
                    if r.status == 200:
                        break
            except OSError:
                assert server.poll() is None, server.stdout.read() if server.stdout else ""
                time.sleep(0.1)
        h = {"Authorization": f"Bearer {key}"}
        for ts in ("2026-02-04T12:00:00Z", "2026-02-05T00:00:00Z"):
            r = httpx.post(f"{url}/v1/market", headers=h,
                           json={"timestamp": ts, "regime": {"funding": 0.001}})
            assert r.status_code == 200, r.text
        (ev,) = httpx.get(f"{url}/v1/events", headers=h).json()["events"]
        assert (ev["type"], ev["phase"], ev["old"]) == ("margin_parameters", "announced", "1.25")
        assert float(ev["new"]) == pytest.approx(1.375)
        assert ev["effective_time"] == "2026-02-06T00:00:00Z"
    finally:
        server.terminate()
        server.wait(timeout=10)
