"""The service's state survives and proves itself (issue 10 follow-up):

- ``serve --dynamic`` killed with SIGKILL and restarted resumes the multiplier in force and an
  announced-but-pending increase (SQLite and PostgreSQL, real processes);
- the ``params_hash`` stamped on events, audit entries and the account report covers the margin
  multiplier, so it changes when the multiplier does;
- a market update whose database write fails leaves the live book, the controller and the
  event baseline exactly as before (an injected failing repository);
- ``margin`` events are coalesced per account (1 % relative move by default), status changes
  always published.

Figures (derived): the demo market's BTCUSDT mark is 72,999.3 and binance-usdm (bracket 2,
leverage 20) gives 1 BTCUSDT IM 72,999.3 / 20 = 3,649.965 USDT (tests/service/test_serve.py).
On docs/examples/market-2026-02-04.json (mark 73,005): IM 3,650.25, MM 0.005 M − 50 = 315.025,
and with 10,000 USDT after buying at 73,005 equity is 10,000 + M − 73,005. The controller's
multipliers (docs/dynamic-margin.md defaults): 1.25 at start, 1.25 × 1.10 = 1.375 under
liquidity stress (funding 0.001 ≥ 0.0005 per 8 h), announced with one day's notice.
"""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from margin_engine.io.loaders import load_market
from margin_engine.io.model_options import build_model
from margin_engine.io.series import synthetic_series
from margin_engine.live.dynamic import LiveDynamic, LiveDynamicConfig
from margin_engine.policy.margin_scale import IDENTITY, MarginScale, scaled_params_hash
from margin_engine.service.core import ServiceCore, moved_enough
from margin_engine.service.repository import Repository

from .test_serve import OP, _env, _free_port, _start

ROOT = Path(__file__).resolve().parents[2]
MARKET = load_market(ROOT / "docs" / "examples" / "market-2026-02-04.json")
DEMO_IM = 72_999.3 / 20
IM, MM = 3650.25, 315.025
BACKENDS = pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)


def _hash(params_hash: str, m: float, mm: float, ceiling: float | None) -> str:
    """The documented scaled hash, recomputed here with hashlib and json alone."""
    text = json.dumps({"margin_scale": {"im_multiplier": m, "mm_multiplier": mm,
                                        "mm_ceiling": ceiling}, "params_hash": params_hash},
                      sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# -- 1. a real restart resumes the controller ---------------------------------------------------

def _kill(server: subprocess.Popen[str]) -> None:
    server.send_signal(signal.SIGKILL)
    server.wait(timeout=10)


@BACKENDS
def test_sigkill_restart_resumes_the_multiplier_and_the_announced_increase(
        db_url: str, tmp_path: Path) -> None:
    port = _free_port()
    env = _env(port)
    url, h = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {OP}"}
    extra = ("--model", "binance-usdm", "--dynamic")

    def push(*stamps: str) -> list[dict[str, Any]]:
        out = []
        for ts in stamps:
            r = httpx.post(f"{url}/v1/market", headers=h,
                           json={"timestamp": ts, "regime": {"funding": 0.001}})
            assert r.status_code == 200, r.text
            out += r.json()["events"]
        return out

    def im() -> float:
        return float(httpx.get(f"{url}/v1/accounts/a1", headers=h).json()["initial_margin"])

    server = _start(db_url, port, env, tmp_path, extra)
    try:
        r = httpx.post(f"{url}/v1/accounts", headers=h,
                       json={"id": "a1", "collateral": {"USDT": "10000"}})
        assert r.status_code == 201, r.text
        r = httpx.post(f"{url}/v1/accounts/a1/fills", headers=h, json={
            "fill_id": "f1", "symbol": "BTCUSDT", "size": "1", "price": "72999.3"})
        assert r.status_code == 200, r.text
        assert im() == pytest.approx(1.25 * DEMO_IM)
        (ann,) = push("2026-02-04T12:00:00Z", "2026-02-05T00:00:00Z")
        assert (ann["phase"], ann["effective_time"]) == ("announced", "2026-02-06T00:00:00Z")
    finally:
        _kill(server)
    # restarted with the increase pending: it comes due as announced, with its reason
    server = _start(db_url, port, env, tmp_path, extra)
    try:
        assert im() == pytest.approx(1.25 * DEMO_IM)
        eff, move = push("2026-02-05T12:00:00Z", "2026-02-06T00:00:00Z")
        assert (move["type"], move["cause"]) == ("margin", "margin_parameters")  # IM +10 %
        assert (eff["phase"], eff["old"]) == ("in_effect", "1.25")
        assert float(eff["new"]) == pytest.approx(1.375)
        assert eff["announced_time"] == "2026-02-05T00:00:00Z"
        assert eff["reason"].startswith("in force as announced at 2026-02-05T00:00:00Z: ")
        assert "funding" in eff["reason"]
        assert im() == pytest.approx(1.375 * DEMO_IM)
        events = httpx.get(f"{url}/v1/events", headers=h).json()["events"]
    finally:
        _kill(server)
    # restarted again: the raised multiplier is still in force (not the initial 1.25)
    server = _start(db_url, port, env, tmp_path, extra)
    try:
        assert im() == pytest.approx(1.375 * DEMO_IM)
        info = httpx.get(f"{url}/v1/models").json()
        sc = info["margin_scale"]
        assert sc["im_multiplier"] == pytest.approx(1.375)
        assert sc["mm_ceiling"] == pytest.approx(0.95 * 1.25)  # mm_cap × the old multiplier
        assert info["stamp_params_hash"] == _hash(info["params_hash"], sc["im_multiplier"],
                                                  sc["mm_multiplier"], sc["mm_ceiling"])
        acct = httpx.get(f"{url}/v1/accounts/a1", headers=h).json()
        assert acct["audit"]["params_hash"] == info["stamp_params_hash"]
        again = httpx.get(f"{url}/v1/events", headers=h).json()["events"]
        assert again == events  # nothing re-published
        assert [e["type"] for e in events] == ["margin_parameters", "margin_parameters",
                                               "margin"]
    finally:
        _kill(server)


# -- in-process helpers -------------------------------------------------------------------------

@pytest.fixture
def core(db_url: str) -> Iterator[ServiceCore]:
    """A service core with the controller (no ATM IV), one account a1: 10,000 USDT and
    1 BTCUSDT bought at 73,005; its key margin figures above."""
    repo = Repository.open(db_url)
    model, _ = build_model("binance-usdm", {}, None, MARKET)
    dyn = LiveDynamic(LiveDynamicConfig(atm_iv=False), synthetic_series(date(2026, 2, 4)))
    c = ServiceCore.open(model, MARKET, repo, dynamic=dyn)
    c.create_account("a1", "cross", {}, None, "operator")
    c.change_collateral("a1", "USDT", Decimal(10_000), "operator")
    c.apply_fill("a1", "f1", "BTCUSDT", Decimal(1), Decimal(73_005), "operator")
    yield c
    repo.close()


def _mark(ts: str, m: float, funding: float | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"timestamp": ts, "index": {"BTC": m},
                            "instruments": [{"symbol": "BTCUSDT", "mark_price": m}]}
    if funding is not None:
        body["regime"] = {"funding": funding}
    return body


# -- 2. the stamp covers the multiplier ---------------------------------------------------------

def test_scaled_params_hash_is_the_documented_digest() -> None:
    assert scaled_params_hash("0123456789abcdef", IDENTITY) == "0123456789abcdef"
    a = MarginScale(1.25, 1.25)
    b = MarginScale(1.375, 1.375, 0.95 * 1.25)
    assert scaled_params_hash("0123456789abcdef", a) == _hash("0123456789abcdef", 1.25, 1.25,
                                                              None)
    assert scaled_params_hash("0123456789abcdef", b) == _hash("0123456789abcdef", 1.375,
                                                              1.375, 0.95 * 1.25)
    assert len({scaled_params_hash("0123456789abcdef", s) for s in (IDENTITY, a, b)}) == 3


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_stamp_changes_when_the_multiplier_does(core: ServiceCore) -> None:
    raw = core.live.model.params.params_hash()
    at_125 = _hash(raw, 1.25, 1.25, 0.95)  # at start: MM capped at mm_cap 0.95 × 1 × IM
    assert core.stamp().params_hash == at_125 != raw
    assert core.report("a1").audit.params_hash == at_125
    log = core.repo.audit_after(0)
    fill = next(e for e in reversed(log) if e.action == "fill.apply")
    assert fill.params_hash == at_125
    assert log[-1].action == "commitment.publish" and log[-1].params_hash == at_125
    for ts in ("2026-02-04T12:00:00Z", "2026-02-05T00:00:00Z", "2026-02-05T12:00:00Z"):
        core.update_market(_mark(ts, 73_005.0, 0.001))
    # 72,000 the day the raise applies: a margin move (market, still 1.25), then the raise
    out = core.update_market(_mark("2026-02-06T00:00:00Z", 72_000.0, 0.001))
    assert out is not None
    assert [(e.kind, e.payload.get("phase"), e.payload.get("cause")) for e in out] == [
        ("margin", None, "market"), ("margin_parameters", "in_effect", None),
        ("margin", None, "margin_parameters")]
    scale = core.live.scale
    assert (scale.im_multiplier, scale.mm_ceiling) == (pytest.approx(1.375), 0.95 * 1.25)
    at_1375 = _hash(raw, scale.im_multiplier, scale.mm_multiplier, scale.mm_ceiling)
    assert out[0].payload["audit"]["params_hash"] == at_125
    assert out[2].payload["audit"]["params_hash"] == at_1375 != at_125
    assert core.stamp().params_hash == at_1375
    assert core.report("a1").audit.params_hash == at_1375
    last = core.repo.audit_after(0)[-1]  # the update's commitment, stamped at 1.375
    assert last.action == "commitment.publish" and last.params_hash == at_1375
    assert core.repo.verify_audit().ok


# -- 3. a failed write leaves the live book as it was ------------------------------------------

@BACKENDS
def test_a_failed_market_write_rolls_the_live_book_back(core: ServiceCore,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    for ts in ("2026-02-04T12:00:00Z", "2026-02-05T00:00:00Z", "2026-02-05T12:00:00Z"):
        core.update_market(_mark(ts, 73_005.0, 0.001))
    before = (core.live.market, core.live.scale, core.live.states(),
              json.dumps(core.dynamic.state_doc() if core.dynamic else None),
              dict(core._published))
    events_before = core.repo.events_after(0)
    stored_before = core.repo.stored_market()
    dyn_before = core.repo.stored_dynamic()

    def boom(*_a: Any, **_k: Any) -> Any:
        raise RuntimeError("injected: the database is gone")

    # a crash to 66,000 on the day the raise applies: margin call and a new multiplier, live
    crash = _mark("2026-02-06T00:00:00Z", 66_000.0, 0.001)
    monkeypatch.setattr(core.repo, "record_market_update", boom)
    with pytest.raises(RuntimeError, match="injected"):
        core.update_market(crash)
    after = (core.live.market, core.live.scale, core.live.states(),
             json.dumps(core.dynamic.state_doc() if core.dynamic else None),
             dict(core._published))
    assert after == before
    assert core.live.state("a1").status.value == "healthy"
    assert core.live.state("a1").initial_margin == pytest.approx(1.25 * IM)
    monkeypatch.undo()
    assert core.repo.events_after(0) == events_before
    assert core.repo.stored_market() == stored_before
    assert core.repo.stored_dynamic() == dyn_before
    # the same update once storage is back: applied once, as if the failure never happened
    out = core.update_market(crash)
    assert out is not None
    # the raise moves a1's IM by 10 % more: a margin move caused by the parameters
    assert [(e.kind, e.payload.get("phase"), e.payload.get("cause")) for e in out] == [
        ("margin_call", None, "market"), ("margin_parameters", "in_effect", None),
        ("margin", None, "margin_parameters")]
    st = core.live.state("a1")
    assert st.equity == pytest.approx(10_000 + 66_000 - 73_005)
    assert st.initial_margin == pytest.approx(1.375 * 66_000 / 20)
    stored = core.repo.stored_dynamic()
    assert stored is not None and stored.im_multiplier == pytest.approx(1.375)


# -- 4. margin events coalesced -----------------------------------------------------------------

def _figs(m: float) -> tuple[float, float, float]:
    return 1.25 * m / 20, 1.25 * (0.005 * m - 50), 10_000 + m - 73_005


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_margin_events_are_coalesced_status_changes_are_not(core: ServiceCore) -> None:
    marks = [73_050.0, 73_110.0, 73_150.0, 66_500.0, 66_490.0, 66_300.0, 73_200.0]
    # by hand (equity moves dominate): +45 (0.45 %) none; +105 (1.04 %) margin; +40 from
    # 10,105 (0.40 %) none; 66,500: equity 3,495 < IM 1.25 × 3,325 = 4,156.25, margin call;
    # −10 from 3,495 (0.29 %) none; −200 (5.9 %) margin; 73,200: recovery
    want = ["none", "margin", "none", "margin_call", "none", "margin", "recovery"]
    got = []
    for k, m in enumerate(marks):
        out = core.update_market(_mark(f"2026-02-04T10:{k:02d}:00Z", m))
        assert out is not None
        got.append(out[0].kind if out else "none")
    assert got == want
    # the same rule recomputed from the figures alone
    last, status, derived = _figs(73_005.0), "healthy", []
    for m in marks:
        im, _, eq = _figs(m)
        s = "margin_call" if eq < im else "healthy"
        if s != status:
            derived.append("recovery" if s == "healthy" else s)
            last = _figs(m)
        elif any(abs(n - o) > 0.01 * max(abs(n), abs(o)) for o, n in zip(last, _figs(m),
                                                                  strict=True)):
            derived.append("margin")
            last = _figs(m)
        else:
            derived.append("none")
        status = s
    assert derived == want
    assert not moved_enough((1.0, 0.0), (1.01, 0.0), 0.01)
    assert moved_enough((1.0, 0.0), (1.0, 1e-9), 0.01)  # a move away from 0 counts
    assert moved_enough((1.0,), (1.0 + 1e-12,), 0.0)  # threshold 0: every move
    from margin_engine.cli import serve
    from margin_engine.service import core as core_mod
    assert serve.MARGIN_EVENT_THRESHOLD == core_mod.MARGIN_EVENT_THRESHOLD == 0.01


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_threshold_zero_publishes_every_move(db_url: str) -> None:
    repo = Repository.open(db_url)
    try:
        model, _ = build_model("binance-usdm", {}, None, MARKET)
        c = ServiceCore.open(model, MARKET, repo, margin_threshold=0.0)
        c.create_account("a1", "cross", {"USDT": Decimal(10_000)}, None, "operator")
        c.apply_fill("a1", "f1", "BTCUSDT", Decimal(1), Decimal(73_005), "operator")
        kinds = []
        for k, m in enumerate((73_006.0, 73_007.0, 73_007.0)):
            out = c.update_market(_mark(f"2026-02-04T10:{k:02d}:00Z", m))
            assert out is not None
            kinds.append([e.kind for e in out])
        assert kinds == [["margin"], ["margin"], []]
        with pytest.raises(Exception, match="margin_threshold"):
            ServiceCore.open(model, MARKET, repo, margin_threshold=1.5)
    finally:
        repo.close()


# -- the controller's state document (live.dynamic) ---------------------------------------------

def _run(dyn: LiveDynamic, hours: range, prices: list[float]) -> list[dict[str, Any]]:
    """Hourly updates from 2026-02-04 00:00: BTC index ``prices[h]``, funding stress on day 1,
    calm after; the ``margin_parameters`` payloads they trigger."""
    from datetime import UTC, datetime, timedelta

    from margin_engine.live.dynamic import RegimeSignals
    out = []
    for h in hours:
        t = datetime(2026, 2, 4, tzinfo=UTC) + timedelta(hours=h)
        mk = MARKET.model_copy(update={"timestamp": t, "index": {**MARKET.index,
                                                                 "BTC": prices[h]}})
        sig = RegimeSignals(funding=0.001 if h < 24 else 0.0001, dvol=0.5 + 0.01 * (h % 7))
        out += [ch.payload() for ch in dyn.observe(mk, sig)]
    return out


def test_state_document_resumes_the_controller_exactly() -> None:
    """Cut a 12-day run at every 37th hour into a state document, resume a fresh controller
    (same seed) from it: the same decisions, payloads and scale as the uninterrupted run."""
    seed = synthetic_series(date(2026, 2, 4))
    prices = [73_000.0 * (1 + 0.03 * ((h // 24) % 3 - 1)) for h in range(24 * 12 + 1)]
    cfg = LiveDynamicConfig(atm_iv=False)
    whole = LiveDynamic(cfg, seed)
    want = _run(whole, range(len(prices)), prices)
    assert [(p["phase"], p["market_time"]) for p in want][:2] == [
        ("announced", "2026-02-05T00:00:00Z"), ("in_effect", "2026-02-06T00:00:00Z")]
    for cut in (13, 30, 47, 50, 121, 250):  # 30, 47: with the increase pending
        first = LiveDynamic(cfg, seed)
        got = _run(first, range(cut), prices)
        doc = json.loads(json.dumps(first.state_doc()))  # through JSON, as stored
        resumed = LiveDynamic(cfg, seed)
        resumed.restore_doc(doc)
        assert resumed.state_doc() == doc
        got += _run(resumed, range(cut, len(prices)), prices)
        assert got == want, cut
        assert resumed.scale == whole.scale


def test_checkpoint_rollback_undoes_observations() -> None:
    seed = synthetic_series(date(2026, 2, 4))
    prices = [73_000.0] * 60
    dyn = LiveDynamic(LiveDynamicConfig(atm_iv=False), seed)
    _run(dyn, range(20), prices)
    doc, cp = dyn.state_doc(), dyn.checkpoint()
    assert _run(dyn, range(20, 60), prices)  # decisions were taken
    dyn.rollback(cp)
    assert dyn.state_doc() == doc and len(dyn.records) == 0
    twin = LiveDynamic(LiveDynamicConfig(atm_iv=False), seed)
    _run(twin, range(20), prices)
    assert _run(dyn, range(20, 60), prices) == _run(twin, range(20, 60), prices)


def test_a_state_for_another_underlying_is_refused() -> None:
    from margin_engine.errors import InputError
    dyn = LiveDynamic(LiveDynamicConfig(atm_iv=False), synthetic_series(date(2026, 2, 4)))
    doc = dyn.state_doc()
    other = LiveDynamic(LiveDynamicConfig(atm_iv=False, underlying="ETH"),
                        synthetic_series(date(2026, 2, 4)))
    with pytest.raises(InputError, match=r"dynamic_state\.underlying"):
        other.restore_doc(doc)
    with pytest.raises(InputError, match="dynamic_state"):
        dyn.restore_doc({**doc, "controller": {"multiplier": "x"}})


@pytest.mark.parametrize(("state", "extra", "line"), [
    ('{"version": 99}', (), "error: dynamic_state.version: expected 1, got 99"),
    ("[1]", (), "error: dynamic_state.state: not a JSON object"),
    (None, ("--margin-event-threshold", "1.5"),
     "error: --margin-event-threshold: must lie in [0, 1), got 1.5"),
])
def test_serve_refuses_a_bad_state_or_threshold_in_one_line(
        state: str | None, extra: tuple[str, ...], line: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from margin_engine.cli.main import app
    from margin_engine.service.repository import StoredDynamic
    url = f"sqlite:///{tmp_path / 'bad.db'}"
    if state is not None:
        repo = Repository.open(url)
        repo.record_market_update(MARKET.model_dump_json(), "2026-02-04T00:00:00Z",
                                  dynamic=StoredDynamic(state, 1.25))
        repo.close()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MARGIN_ENGINE_OPERATOR_KEY", OP)
    res = CliRunner().invoke(app, ["serve", "--model", "binance-usdm", "--dynamic", "--db",
                                   url, *extra])
    assert res.exit_code == 2 and res.output.strip().splitlines() == [line], res.output
