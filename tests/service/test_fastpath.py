"""The what-if fast path (:mod:`margin_engine.service.fastpath`) answers exactly as the FastAPI
route does: the same requests — good ones and every kind of refusal — sent to an application
with the fast path and to one without it (each on its own fresh database, set up alike) get the
same status, the same headers that matter and the same JSON."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from margin_engine.io.loaders import load_market
from margin_engine.io.model_options import build_model
from margin_engine.service.app import create_app
from margin_engine.service.ratelimit import RateLimiter

ROOT = Path(__file__).resolve().parents[2]
MARKET = load_market(ROOT / "docs" / "examples" / "market-2026-02-04.json")
OP = "operator-key-for-tests-0123456789"


def _app(tmp: Path, fast: bool, clock: list[float]) -> Iterator[tuple[TestClient, str, str]]:
    model, _ = build_model("binance-usdm", {}, None, MARKET)
    app = create_app(model, MARKET, f"sqlite:///{tmp / f'{fast}.db'}", operator_key=OP,
                     fast_what_if=fast,
                     rate_limit=RateLimiter(rate=1.0, burst=40, clock=lambda: clock[0]))
    with TestClient(app) as c:
        head = {"Authorization": f"Bearer {OP}"}
        keys = []
        for acct in ("a1", "a2"):
            r = c.post("/v1/accounts", headers=head, json={"id": acct,
                                                           "collateral": {"USDT": "10000"}})
            keys.append(r.json()["api_key"])
        c.post("/v1/accounts/a1/fills", headers=head, json={
            "fill_id": "f0", "symbol": "BTCUSDT", "size": 1, "price": 73005})
        yield c, keys[0], keys[1]


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[tuple[TestClient, str, str],
                                           tuple[TestClient, str, str], list[float]]]:
    clock = [0.0]
    fast, slow = _app(tmp_path, True, clock), _app(tmp_path, False, clock)
    yield next(fast), next(slow), clock
    for gen in (fast, slow):
        next(gen, None)


GOOD = {"orders": [{"symbol": "BTCUSDT", "size": 0.5}]}
CASES: list[tuple[str, str, Any]] = [
    # (account in the path, who asks, body)
    ("a1", "owner", GOOD),
    ("a1", "operator", GOOD),
    ("a1", "owner", {"orders": [{"symbol": "BTCUSDT", "size": -3, "price": 70000}]}),
    ("a1", "owner", {"orders": [{"symbol": "BTCUSDT", "size": "2"},
                                {"symbol": "ETHUSDT", "size": 40}]}),
    ("a1", "owner", {"orders": [{"symbol": "BTCUSDT", "size": 1e6}]}),  # rejected: over IM
    ("a1", "owner", {"orders": [{"symbol": "NOPE", "size": 1}]}),  # 400 from the live book
    ("a1", "owner", {"orders": [{"symbol": "BTCUSDT", "size": 1, "price": 0}]}),
    ("a1", "owner", {"orders": []}),  # 422
    ("a1", "owner", {"orders": [{"symbol": "BTCUSDT", "size": "x"}]}),
    ("a1", "owner", {"orders": [{"symbol": "BTCUSDT", "size": 1}], "extra": 1}),
    ("a1", "owner", b'{"orders": '),  # not JSON
    ("a1", "owner", b'{"orders": [{"symbol": "BTCUSDT", "size": NaN}]}'),
    ("a1", "owner", b"\xbf\xff"),  # not UTF-8
    ("a2", "owner", GOOD),  # another account's key: 404
    ("zz", "operator", GOOD),  # no such account: 404
    ("a%00", "operator", GOOD),  # control character in the id: 422
    ("a1", "nobody", GOOD),  # no key: 401
    ("a1", "wrong", GOOD),  # unknown key: 401
    ("a1", "basic", GOOD),  # not a Bearer header: 401
]


def _send(c: TestClient, owner_key: str, path_id: str, who: str, body: Any) -> Any:
    heads = {"owner": {"Authorization": f"Bearer {owner_key}"},
             "operator": {"Authorization": f"Bearer {OP}"},
             "nobody": {}, "wrong": {"Authorization": "Bearer me_wrong"},
             "basic": {"Authorization": f"Basic {owner_key}"}}[who]
    content = body if isinstance(body, bytes) else None
    return c.post(f"/v1/accounts/{path_id}/what-if", headers=heads,
                  content=content, json=None if content is not None else body)


def test_fast_path_answers_as_the_route_does(pair: Any) -> None:
    (fast, key_f, _), (slow, key_s, _), _clock = pair
    for path_id, who, body in CASES:
        a = _send(fast, key_f, path_id, who, body)
        b = _send(slow, key_s, path_id, who, body)
        assert (a.status_code, a.json()) == (b.status_code, b.json()), (path_id, who, body)
        assert a.headers["content-type"] == b.headers["content-type"] == "application/json"
        assert a.headers.get("www-authenticate") == b.headers.get("www-authenticate")
    # the good cases did reach the live book: before/after figures of a1
    r = _send(fast, key_f, "a1", "owner", GOOD).json()
    assert r["after"]["initial_margin"] > r["before"]["initial_margin"] > 0
    assert r["accept"] is True


def test_fast_path_spends_the_rate_limit_as_the_route_does(pair: Any) -> None:
    (fast, key_f, _), (slow, key_s, _), clock = pair
    codes = {}
    for name, c, key in (("fast", fast, key_f), ("slow", slow, key_s)):
        got = []
        for i in range(45):  # burst 40 at a frozen clock: the 41st is refused
            body = GOOD if i % 3 else {"orders": [{"symbol": "NOPE", "size": 1}]}
            r = _send(c, key, "a1", "owner", body)
            got.append((r.status_code, r.headers.get("retry-after"), r.json().get("error")))
        codes[name] = got
    assert codes["fast"] == codes["slow"]
    assert [s for s, _, _ in codes["fast"]].count(429) == 5
    clock[0] += 1.0  # one token back
    assert _send(fast, key_f, "a1", "owner", GOOD).status_code == 200
