"""The dashboard's read-only endpoints and static pages (issue 13), on a fresh SQLite database.

Figures are checked by independent computations in this file (``derived``): a linear perpetual's
scenario P&L is ``size · mark · x``, a coin collateral's is ``amount · index · x``, an inverse
call's is ``V(F(1+x), σ+Δσ)/F(1+x) − V(F, σ)/F`` with a Black-76 price written out here with
``math.erf``; the active model's column equals the account report the service already serves.
"""

from __future__ import annotations

import fnmatch
import math
import re
import tomllib
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from margin_engine.domain.book import Account, Position
from margin_engine.io.loaders import load_market
from margin_engine.io.model_options import build_model
from margin_engine.models.core.registry import model_names
from margin_engine.service.app import create_app
from margin_engine.service.dashboard import STATIC
from margin_engine.service.dashboard.views import risk_matrix

ROOT = Path(__file__).resolve().parents[2]
MARKET = load_market(ROOT / "docs" / "examples" / "market-2026-02-04.json")
OP = "operator-key-for-tests-0123456789"
ERROR = re.compile(r"^[^\n]+: [^\n]+$")


def op() -> dict[str, str]:
    return {"Authorization": f"Bearer {OP}"}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    model, _ = build_model("binance-usdm", {}, None, MARKET)
    with TestClient(create_app(model, MARKET, f"sqlite:///{tmp_path / 'd.db'}",
                               operator_key=OP)) as c:
        keys = {}
        for name, coll, size in (("alice", "10000", "1"), ("bob", "50000", "-2")):
            r = c.post("/v1/accounts", json={"id": name, "collateral": {"USDT": coll}},
                       headers=op())
            assert r.status_code == 201, r.text
            keys[name] = r.json()["api_key"]
            r = c.post(f"/v1/accounts/{name}/fills", headers=op(), json={
                "fill_id": f"f-{name}", "symbol": "BTCUSDT", "size": size, "price": "72999.3"})
            assert r.status_code == 200, r.text
        yield c, keys


def test_operator_lists_every_account_an_account_key_only_its_own(client):
    c, keys = client
    every = c.get("/v1/accounts", headers=op()).json()
    assert [a["id"] for a in every["accounts"]] == ["alice", "bob"]
    assert every["model"] == "binance-usdm"
    mine = c.get("/v1/accounts", headers={"Authorization": f"Bearer {keys['alice']}"}).json()
    assert [a["id"] for a in mine["accounts"]] == ["alice"]
    # the same headline figures as the account report
    rep = c.get("/v1/accounts/alice", headers=op()).json()
    row = mine["accounts"][0]
    for k in ("initial_margin", "maintenance_margin", "equity", "margin_ratio", "status"):
        assert row[k] == rep[k]
    r = c.get("/v1/accounts")
    assert r.status_code == 401 and ERROR.match(r.json()["error"])


def test_an_account_key_cannot_read_another_accounts_matrix_or_models(client):
    c, keys = client
    alice = {"Authorization": f"Bearer {keys['alice']}"}
    for path in ("/v1/accounts/bob/risk-matrix", "/v1/accounts/bob/models"):
        r = c.get(path, headers=alice)
        assert r.status_code == 404 and r.json() == {"error": "id: no account 'bob'"}
    assert c.get("/v1/accounts/alice/risk-matrix", headers=alice).status_code == 200


def test_risk_matrix_of_a_perpetual_is_size_times_mark_times_move(client):
    c, _ = client
    doc = c.get("/v1/accounts/bob/risk-matrix", headers=op()).json()
    mark = MARKET.instrument("BTCUSDT").mark_price
    moves = np.linspace(-0.3, 0.3, 13)  # derived: the documented default grid
    assert doc["price_moves"] == pytest.approx(moves.tolist(), abs=1e-15)
    assert doc["vol_shifts"] == [-0.2, -0.1, 0.0, 0.1, 0.2]
    for row in doc["pnl"]:  # a perpetual does not care about vol
        assert row == pytest.approx((-2 * mark * moves).tolist(), rel=1e-12)
    # short 2: the worst is the +30 % move, first vol row on the tie
    assert doc["worst"]["price_index"] == 12 and doc["worst"]["vol_index"] == 0
    assert doc["worst"]["pnl"] == pytest.approx(-2 * mark * 0.3, rel=1e-12)
    rep = c.get("/v1/accounts/bob", headers=op()).json()
    assert doc["equity"] == rep["equity"] and doc["maintenance_margin"] == rep[
        "maintenance_margin"]
    assert doc["positions"] == [{"symbol": "BTCUSDT", "size": -2.0, "underlying": "BTC",
                                 "mark_price": mark}]


def test_risk_matrix_counts_coin_collateral_against_the_position():
    acct = Account(id="h", collateral={"BTC": 1.0, "USDT": 500.0},
                   positions=(Position(symbol="BTCUSDT", size=-1.0),))
    rm = risk_matrix(acct, MARKET, "USDT", price_range=0.2, n_price=5, vol_shifts=(0.0,))
    x = np.linspace(-0.2, 0.2, 5)
    mark, index = MARKET.instrument("BTCUSDT").mark_price, MARKET.index["BTC"]
    assert rm.pnl[0] == pytest.approx(-mark * x + index * x, rel=1e-12, abs=1e-9)


def _black76_call(F: float, K: float, T: float, vol: float) -> float:
    def N(z: float) -> float:
        return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))
    d1 = (math.log(F / K) + 0.5 * vol * vol * T) / (vol * math.sqrt(T))
    return F * N(d1) - K * N(d1 - vol * math.sqrt(T))


def test_risk_matrix_of_an_inverse_call_matches_black76_by_hand():
    ins = MARKET.instrument("BTC-27MAR26-80000-C")
    acct = Account(id="o", collateral={"BTC": 1.0},
                   positions=(Position(symbol=ins.symbol, size=2.0),))
    shifts = (-0.1, 0.0, 0.15)
    rm = risk_matrix(acct, MARKET, "BTC", price_range=0.1, n_price=3, vol_shifts=shifts)
    F, K, vol = 73500.0, 80000.0, 0.55  # the example market's underlying_price, strike, mark_iv
    T = (ins.expiry - MARKET.timestamp).total_seconds() / (365.0 * 86400.0)
    v0 = _black76_call(F, K, T, vol) / F
    for i, dv in enumerate(shifts):
        for j, x in enumerate((-0.1, 0.0, 0.1)):
            F1 = F * (1 + x)
            want = 2.0 * (_black76_call(F1, K, T, vol + dv) / F1 - v0)
            assert rm.pnl[i, j] == pytest.approx(want, rel=1e-9, abs=1e-12)
    assert rm.worst == (0, 0)  # the long call loses most when price and vol both fall
    assert rm.pnl[0, 0] == rm.pnl.min()


@pytest.mark.parametrize("query, field", [
    ("n_price=1", "n_price"), ("price_range=1.5", "price_range"),
    ("vol_shifts=a,b", "vol_shifts"), ("vol_shifts=nan", "vol_shifts"),
    ("vol_shifts=" + ",".join(["0.1"] * 12), "vol_shifts")])
def test_a_bad_grid_is_one_line_and_changes_nothing(client, query, field):
    c, _ = client
    before = c.get("/v1/audit", headers=op()).json()
    r = c.get(f"/v1/accounts/alice/risk-matrix?{query}", headers=op())
    assert r.status_code in (400, 422)
    assert ERROR.match(r.json()["error"]) and r.json()["error"].startswith(f"{field}: ")
    assert c.get("/v1/audit", headers=op()).json() == before


def test_models_gives_every_registered_model_and_the_active_one_as_served(client):
    c, _ = client
    doc = c.get("/v1/accounts/alice/models", headers=op()).json()
    assert [m["model"] for m in doc["models"]] == model_names()
    active = [m for m in doc["models"] if m["active"]]
    assert [m["model"] for m in active] == ["binance-usdm"]
    rep = c.get("/v1/accounts/alice", headers=op()).json()
    assert active[0]["initial_margin"] == pytest.approx(rep["initial_margin"], rel=1e-12)
    assert active[0]["maintenance_margin"] == pytest.approx(rep["maintenance_margin"],
                                                            rel=1e-12)
    # published: Binance USDⓈ-M BTCUSDT at default leverage 20 → IM = notional / 20
    assert active[0]["initial_margin"] == pytest.approx(
        MARKET.instrument("BTCUSDT").mark_price / 20, rel=1e-12)
    for m in doc["models"]:
        assert ("not_applicable" in m) != ("initial_margin" in m)
        if "initial_margin" in m:
            assert math.isfinite(m["initial_margin_usd"]) and m["initial_margin"] >= 0


def test_pages_are_served_and_reach_no_other_host(client):
    c, _ = client
    r = c.get("/", follow_redirects=False)
    assert r.status_code in (302, 307) and r.headers["location"] == "/dashboard/"
    r = c.get("/dashboard", follow_redirects=False)  # relative module URLs need the slash
    assert r.status_code in (302, 307) and r.headers["location"].endswith("/dashboard/")
    page = c.get("/dashboard/")
    assert page.status_code == 200 and 'type="module"' in page.text
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "connect-src 'self'" in csp
    assert "unsafe-inline" not in csp and page.headers["x-content-type-options"] == "nosniff"
    for f in sorted(STATIC.iterdir()):
        text = f.read_text()
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", text), f.name  # no CDN
        assert c.get(f"/dashboard/{f.name}").status_code == 200
    r = c.get("/dashboard/missing.js")
    assert r.status_code == 404 and ERROR.match(r.json()["error"])


def test_the_static_files_ship_in_the_package():
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = conf["tool"]["setuptools"]["package-data"]["margin_engine"]
    pkg = ROOT / "src" / "margin_engine"
    for f in STATIC.iterdir():
        rel = f.relative_to(pkg).as_posix()
        assert any(fnmatch.fnmatch(rel, g) for g in globs), rel
