"""The service's REST and WebSocket routes (DESIGN §8) on a fresh database.

The walkthrough runs on SQLite and on PostgreSQL (127.0.0.1:5432, database ``test``; skipped
when unreachable). Margin figures are checked against ``assess_book`` (the batch path of
``compute``) on the equivalent book, and against Binance USDⓈ-M's published BTCUSDT brackets by
hand: at 73,005 USDT notional the position is in bracket 2 (50,000–600,000: maintenance rate
0.5 %, maintenance amount 50), so MM = 73,005 × 0.005 − 50 = 315.025; IM at the default
leverage 20 is 73,005 / 20 = 3,650.25.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from margin_engine.domain.book import Account, Book, Position
from margin_engine.io.loaders import load_market
from margin_engine.io.model_options import build_model
from margin_engine.policy.assess import assess_book
from margin_engine.service.app import create_app
from margin_engine.service.merkle import InclusionProof
from margin_engine.service.ratelimit import RateLimiter

ROOT = Path(__file__).resolve().parents[2]
MARKET = load_market(ROOT / "docs" / "examples" / "market-2026-02-04.json")
OP = "operator-key-for-tests-0123456789"
ERROR = re.compile(r"^[^\n]+: [^\n]+$")


def _client(db_url: str) -> TestClient:
    model, _ = build_model("binance-usdm", {}, None, MARKET)
    return TestClient(create_app(model, MARKET, db_url, operator_key=OP))


@pytest.fixture
def client(db_url: str) -> Iterator[TestClient]:
    with _client(db_url) as c:
        yield c


def op() -> dict[str, str]:
    return {"Authorization": f"Bearer {OP}"}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _create(c: TestClient, account_id: str, **extra: Any) -> str:
    r = c.post("/v1/accounts", json={"id": account_id, **extra}, headers=op())
    assert r.status_code == 201, r.text
    key: str = r.json()["api_key"]
    return key


def _audit_len(c: TestClient) -> int:
    return len(c.get("/v1/audit", headers=op()).json()["entries"])


def _state(c: TestClient) -> tuple[int, int, dict[str, Any]]:
    """Audit length, event count and a1's stored collateral: what a refusal must not change."""
    events = c.get("/v1/events", headers=op()).json()["events"]
    return _audit_len(c), len(events), c.get("/v1/accounts/a1", headers=op()).json()["collateral"]


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_walkthrough(db_url: str) -> None:
    with _client(db_url) as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        assert c.get("/v1/models").json()["model"] == "binance-usdm"
        key = _create(c, "a1")
        r = c.post("/v1/accounts/a1/collateral", json={"currency": "USDT", "amount": "10000"},
                   headers=op())
        assert r.status_code == 200 and r.json()["balance"] == "10000"
        fill = {"fill_id": "f-1", "symbol": "BTCUSDT", "size": 1, "price": "73005"}
        first = c.post("/v1/accounts/a1/fills", json=fill, headers=op())
        assert first.status_code == 200 and first.json()["replayed"] is False
        n = _audit_len(c)
        again = c.post("/v1/accounts/a1/fills", json=fill, headers=op())
        assert again.json()["replayed"] is True
        assert again.json()["position_after"] == "1" and _audit_len(c) == n

        doc = c.get("/v1/accounts/a1", headers=bearer(key)).json()
        assert doc["initial_margin"] == pytest.approx(73005 / 20, rel=1e-12)
        assert doc["maintenance_margin"] == pytest.approx(73005 * 0.005 - 50, rel=1e-12)
        assert doc["equity"] == pytest.approx(10000.0) and doc["status"] == "healthy"
        assert [p["symbol"] for p in doc["positions"]] == ["BTCUSDT"]
        assert doc["audit"]["model"] == "binance-usdm" and doc["units"]
        model, _ = build_model("binance-usdm", {}, None, MARKET)
        ref = assess_book(model, Book(accounts=(Account(
            id="a1", collateral={"USDT": 10000.0},
            positions=(Position(symbol="BTCUSDT", size=1.0, entry_price=73005.0),)),)),
            MARKET)[0]
        assert doc["initial_margin"] == pytest.approx(ref.initial_margin, rel=1e-12)

        # the WebSocket, subscribed before the move (after=0 also replays what it missed)
        with c.websocket_connect(f"/v1/stream?token={key}") as ws:
            r = c.post("/v1/market", headers=op(), json={
                "index": {"BTC": 66000.0},
                "instruments": [{"symbol": "BTCUSDT", "mark_price": 66000.0}]})
            assert r.status_code == 200, r.text
            pushed = ws.receive_json()
        # equity 10000 − 7005 = 2995 < IM 66000/20 = 3300, > MM 66000·0.005 − 50 = 280
        assert pushed["type"] == "margin_call" and pushed["account"] == "a1"
        assert float(pushed["equity"]) == pytest.approx(2995.0)
        assert float(pushed["initial_margin"]) == pytest.approx(3300.0)
        events = c.get("/v1/events", headers=bearer(key)).json()["events"]
        assert [(e["seq"], e["type"]) for e in events] == [(pushed["seq"], "margin_call")]
        doc = c.get("/v1/accounts/a1", headers=op()).json()
        assert doc["status"] == "margin_call"
        assert doc["initial_margin"] == pytest.approx(3300.0)

        # proof of a1's figures under the latest commitment
        root = c.get("/v1/commitments/latest").json()
        bundle = c.get("/v1/accounts/a1/proof", headers=bearer(key)).json()
        assert bundle["commitment"] == root
        proof = InclusionProof(**{**bundle["proof"], "hashes": tuple(bundle["proof"]["hashes"])})
        assert proof.verify(root["root"])
        leaf = json.loads(proof.leaf)
        assert leaf["account"] == hashlib.sha256(bytes.fromhex(bundle["salt"])
                                                 + b"a1").hexdigest()
        assert float(leaf["initial_margin"]) == pytest.approx(3300.0)
        forged = InclusionProof(proof.leaf.replace('"3300', '"33'), proof.leaf_index,
                                proof.tree_size, proof.hashes)
        assert not forged.verify(root["root"])


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_restart_rebuilds_the_live_book_from_storage(db_url: str) -> None:
    with _client(db_url) as c:
        _create(c, "a1", collateral={"USDT": 5000})
        c.post("/v1/accounts/a1/fills", headers=op(), json={
            "fill_id": "f-1", "symbol": "BTCUSDT", "size": 2, "price": 70000})
        c.post("/v1/accounts/a1/fills", headers=op(), json={
            "fill_id": "f-2", "symbol": "BTCUSDT", "size": -1, "price": 72000})
        before = c.get("/v1/accounts/a1", headers=op()).json()
    with _client(db_url) as c:
        after = c.get("/v1/accounts/a1", headers=op()).json()
    # realised 1·(72000 − 70000) = 2000 into collateral, 1 BTC left at entry 70000, mark 73005
    assert after["equity"] == pytest.approx(5000 + 2000 + 3005)
    assert after == before


def test_what_if_answers_and_stores_nothing(client: TestClient) -> None:
    key = _create(client, "a1", collateral={"USDT": "10000"})
    before = _state(client)
    r = client.post("/v1/accounts/a1/what-if", headers=bearer(key),
                    json={"orders": [{"symbol": "BTCUSDT", "size": 1}]})
    assert r.status_code == 200
    w = r.json()
    assert set(w) >= {"before", "after", "initial_margin_change", "accept", "reason"}
    assert w["accept"] is True
    assert w["initial_margin_change"] == pytest.approx(73005 / 20)
    r = client.post("/v1/accounts/a1/what-if", headers=bearer(key),
                    json={"orders": [{"symbol": "BTCUSDT", "size": 4}]})
    assert r.json()["accept"] is False  # IM 4·73005/20 = 14601 > equity 10000
    assert _state(client) == before
    assert client.get("/v1/accounts/a1", headers=op()).json()["positions"] == []


def test_withdrawal_breaching_initial_margin_is_409(client: TestClient) -> None:
    key = _create(client, "a1", collateral={"USDT": "10000"})
    client.post("/v1/accounts/a1/fills", headers=op(), json={
        "fill_id": "f-1", "symbol": "BTCUSDT", "size": 1, "price": 73005})
    before = _state(client)
    # IM 3650.25: withdrawing 6400 leaves 3600 < IM
    r = client.post("/v1/accounts/a1/collateral", headers=bearer(key),
                    json={"currency": "USDT", "amount": -6400})
    assert r.status_code == 409
    assert r.json()["error"].startswith("amount: withdrawal would leave equity 3600 below")
    assert _state(client) == before
    r = client.post("/v1/accounts/a1/collateral", headers=bearer(key),
                    json={"currency": "USDT", "amount": "-6300.5"})
    assert r.status_code == 200 and r.json()["balance"] == "3699.5"
    # an owner may withdraw but not deposit
    r = client.post("/v1/accounts/a1/collateral", headers=bearer(key),
                    json={"currency": "USDT", "amount": 1})
    assert r.status_code == 403


def test_access_rules(client: TestClient) -> None:
    k1 = _create(client, "a1")
    _create(client, "a2")
    assert client.get("/v1/accounts/a1").status_code == 401
    assert client.get("/v1/accounts/a1", headers=bearer("me_not-a-key")).status_code == 401
    r = client.get("/v1/accounts/a2", headers=bearer(k1))
    assert r.status_code == 404 and r.json() == {"error": "id: no account 'a2'"}
    assert client.get("/v1/accounts/a2/proof", headers=bearer(k1)).status_code == 404
    assert client.post("/v1/accounts/a2/what-if", headers=bearer(k1), json={
        "orders": [{"symbol": "BTCUSDT", "size": 1}]}).status_code == 404
    for method, path, body in (
            ("post", "/v1/accounts", {"id": "a3"}),
            ("post", "/v1/accounts/a1/fills", {"fill_id": "x", "symbol": "BTCUSDT",
                                               "size": 1, "price": 1}),
            ("post", "/v1/market", {"index": {"BTC": 1.0}}),
            ("get", "/v1/audit", None)):
        r = client.request(method.upper(), path, headers=bearer(k1), json=body)
        assert r.status_code == 403, path
        assert ERROR.match(r.json()["error"])
    assert client.get("/v1/accounts/a1", headers=bearer(k1)).status_code == 200
    assert client.get("/v1/events", headers=bearer(k1)).json() == {"events": []}


def test_websocket_key_rules(client: TestClient) -> None:
    key = _create(client, "a1")
    with (client.websocket_connect("/v1/stream?token=wrong") as ws,
          pytest.raises(WebSocketDisconnect) as exc):
        ws.receive_json()
    assert exc.value.code == 1008
    with client.websocket_connect("/v1/stream") as ws:
        ws.send_text(json.dumps({"token": "nope"}))
        with pytest.raises(WebSocketDisconnect) as exc:
            ws.receive_json()
    assert exc.value.code == 1008
    with client.websocket_connect("/v1/stream") as ws:  # the key as the first message
        ws.send_text(json.dumps({"token": key}))
        client.post("/v1/accounts/a1/collateral", headers=op(),
                    json={"currency": "USDT", "amount": 3000})
        client.post("/v1/accounts/a1/fills", headers=op(), json={
            "fill_id": "f", "symbol": "BTCUSDT", "size": 1, "price": 73005})
        got = ws.receive_json()  # MM 315.025 < equity 3000 < IM 3650.25
    assert (got["type"], got["cause"], got["account"]) == ("margin_call", "fill", "a1")


BAD = [
    ("/v1/accounts", b'{"id": ', 422, "body: not valid JSON"),
    ("/v1/accounts", {"margin_mode": "cross"}, 422, "id: required"),
    ("/v1/accounts", {"id": "a9", "margin_mode": "hedged"}, 422, "margin_mode: "),
    ("/v1/accounts", {"id": "a9", "colateral": {}}, 422, "colateral: "),
    ("/v1/accounts", {"id": "a9", "collateral": {"USDT": -5}}, 400,
     "collateral.USDT: must be > 0"),
    ("/v1/accounts", {"id": "a9", "collateral": {"XYZ": 5}}, 400, "collateral.XYZ: "),
    ("/v1/accounts", {"id": "a1"}, 409, "id: account 'a1' already exists"),
    ("/v1/accounts/a1/collateral", {"currency": "USDT", "amount": "NaN"}, 422, "amount: "),
    ("/v1/accounts/a1/collateral", {"currency": "USDT", "amount": "1e-19"}, 400,
     "amount: more than 18 decimal places"),
    ("/v1/accounts/a1/collateral", {"currency": "USDT", "amount": 0}, 400,
     "amount: must not be zero"),
    ("/v1/accounts/a1/collateral", {"currency": "USDT", "amount": -20000}, 409, "amount: "),
    ("/v1/accounts/a1/collateral", {"currency": "DOGE", "amount": 5}, 400, "currency: "),
    ("/v1/accounts/zz/collateral", {"currency": "USDT", "amount": 5}, 404, "id: "),
    ("/v1/accounts/a1/fills", {"fill_id": "f", "symbol": "NOPE", "size": 1, "price": 1}, 400,
     "symbol: unknown symbol 'NOPE'"),
    ("/v1/accounts/a1/fills", {"fill_id": "f", "symbol": "BTCUSDT", "size": 1, "price": -1},
     400, "price: must be > 0"),
    ("/v1/accounts/a1/fills", {"fill_id": "f0", "symbol": "BTCUSDT", "size": 2, "price": 1},
     409, "fill_id: 'f0' was already applied"),
    ("/v1/accounts/a1/what-if", {"orders": []}, 422, "orders: "),
    ("/v1/accounts/a1/what-if", {"orders": [{"symbol": "BTCUSDT", "size": "x"}]}, 422,
     "orders[0].size: "),
    ("/v1/accounts/a1/what-if", {"orders": [{"symbol": "BTCUSDT", "size": 1, "price": 0}]},
     400, "orders[0].price: "),
    ("/v1/market", {"index": {"BTC": -1}}, 400, "index.BTC: "),
    ("/v1/market", [1, 2], 422, "body: "),
    ("/v1/market", {"instruments": [{"symbol": "NOPE", "mark_price": 1}]}, 400,
     "instruments[0].symbol: "),
    ("/v1/nowhere", {}, 404, "/v1/nowhere: Not Found"),
]


@pytest.mark.parametrize(("path", "body", "status", "prefix"), BAD,
                         ids=[f"{i}:{b[0]}" for i, b in enumerate(BAD)])
def test_bad_requests_are_one_line_and_change_nothing(client: TestClient, path: str, body: Any,
                                                      status: int, prefix: str) -> None:
    _create(client, "a1", collateral={"USDT": "10000"})
    client.post("/v1/accounts/a1/fills", headers=op(), json={
        "fill_id": "f0", "symbol": "BTCUSDT", "size": 1, "price": 73005})
    before = _state(client)
    market = client.get("/v1/accounts/a1", headers=op()).json()
    if isinstance(body, bytes):
        r = client.post(path, content=body, headers={**op(), "content-type": "application/json"})
    else:
        r = client.post(path, json=body, headers=op())
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert ERROR.match(err) and err.startswith(prefix), err
    assert _state(client) == before
    assert client.get("/v1/accounts/a1", headers=op()).json() == market


def test_request_size_limit(client: TestClient) -> None:
    big = b'{"id": "' + b"x" * (1 << 20) + b'"}'
    r = client.post("/v1/accounts", content=big,
                    headers={**op(), "content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"].startswith("body: larger than")
    assert client.get("/v1/commitments/latest").status_code == 404  # nothing was created


def test_openapi_lists_the_contract(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for p in ("/healthz", "/v1/models", "/v1/accounts", "/v1/accounts/{account_id}",
              "/v1/accounts/{account_id}/collateral", "/v1/accounts/{account_id}/fills",
              "/v1/accounts/{account_id}/what-if", "/v1/market", "/v1/events", "/v1/audit",
              "/v1/commitments/latest", "/v1/accounts/{account_id}/proof"):
        assert p in paths, p


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_concurrent_fills_and_what_ifs_lose_no_update(client: TestClient) -> None:
    key = _create(client, "a1", collateral={"USDT": "100000000"})

    def work(n: int) -> list[int]:
        codes = []
        for j in range(6):
            codes.append(client.post("/v1/accounts/a1/fills", headers=op(), json={
                "fill_id": f"t{n}-{j}", "symbol": "BTCUSDT", "size": 1,
                "price": 73000 + n}).status_code)
            codes.append(client.post("/v1/accounts/a1/what-if", headers=bearer(key), json={
                "orders": [{"symbol": "BTCUSDT", "size": 1}]}).status_code)
        return codes

    with ThreadPoolExecutor(8) as pool:
        codes = [c for chunk in pool.map(work, range(8)) for c in chunk]
    assert codes == [200] * 96
    doc = client.get("/v1/accounts/a1", headers=op()).json()
    assert [p["size"] for p in doc["positions"]] == [48.0]
    fills = [e for e in client.get("/v1/audit", headers=op()).json()["entries"]
             if e["action"] == "fill.apply"]
    assert sorted(int(e["changes"]["position_after"]) for e in fills) == list(range(1, 49))
    # the entry price is the size-weighted mean of the 48 fills: 73000 + mean(n) = 73003.5
    model, _ = build_model("binance-usdm", {}, None, MARKET)
    ref = assess_book(model, Book(accounts=(Account(
        id="a1", collateral={"USDT": 1e8},
        positions=(Position(symbol="BTCUSDT", size=48.0, entry_price=73003.5),)),)), MARKET)[0]
    assert doc["equity"] == pytest.approx(ref.equity, rel=1e-12)
    assert doc["initial_margin"] == pytest.approx(ref.initial_margin, rel=1e-12)


def test_rate_limit_per_key(db_url: str) -> None:
    now = [0.0]
    model, _ = build_model("binance-usdm", {}, None, MARKET)
    app = create_app(model, MARKET, db_url, operator_key=OP,
                     rate_limit=RateLimiter(rate=2.0, burst=3, clock=lambda: now[0]))
    with TestClient(app) as c:
        key = _create(c, "a1")  # the operator's first request
        codes = [c.get("/v1/accounts/a1", headers=bearer(key)).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        r = c.get("/v1/accounts/a1", headers=bearer(key))
        assert r.status_code == 429 and r.headers["Retry-After"] == "1"
        assert r.json()["error"].startswith("Authorization: rate limit")
        assert c.get("/v1/accounts/a1", headers=op()).status_code == 200  # its own bucket
        assert c.get("/v1/accounts/a1", headers=bearer("me_wrong")).status_code == 401
        now[0] += 0.5  # one token back at 2/s
        assert c.get("/v1/accounts/a1", headers=bearer(key)).status_code == 200
        assert c.get("/v1/accounts/a1", headers=bearer(key)).status_code == 429
