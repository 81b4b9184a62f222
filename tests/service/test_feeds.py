"""Market feeds inside the service (DESIGN §8 ``--feed``): the replay of the real Binance
hourly file and the NATS JetStream consumer, with the market stored so a restart resumes.

Replay numbers (derived by hand from the file's closes, read here with ``gzip``/``csv``): with
one venue the composite index is the bar's close and Binance's mark ``median(index, index +
basis, last)`` is the close too. One BTCUSDT bought at 73,005 with 10,000 USDT under
``binance-usdm`` (bracket 2: maintenance rate 0.5 %, amount 50; leverage 20) at mark M has
equity 10,000 + M − 73,005, IM M / 20 and MM 0.005 M − 50: a margin call below
M = 63,005 / 0.95 = 66,321.05 and liquidation at or below M = 62,955 / 0.995 = 63,271.36.
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import json
import time
import uuid
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from margin_engine.io.feeds.spec import NatsSpec, ReplaySpec
from margin_engine.io.loaders import load_market
from margin_engine.io.model_options import build_model
from margin_engine.service.app import create_app

ROOT = Path(__file__).resolve().parents[2]
MARKET = load_market(ROOT / "docs" / "examples" / "market-2026-02-04.json")
REAL = ROOT.parent / "shared" / "data" / "real"
BARS = REAL / "binance_usdm_perp_1h_BTCUSDT_2025-09-13_2026-03-19.csv.gz"
OP = "operator-key-for-feed-tests-0123"
HEAD = {"Authorization": f"Bearer {OP}"}
NATS = "nats://127.0.0.1:4222"


def _app(db: str, feeds: list[Any]) -> TestClient:
    model, _ = build_model("binance-usdm", {}, None, MARKET)
    return TestClient(create_app(model, MARKET, db, operator_key=OP, feeds=feeds))


def _wait(cond: Any, what: str, limit_s: float = 120.0) -> None:
    """Wait for a background feed (a deadline against hanging, not a timing assertion)."""
    end = time.monotonic() + limit_s
    while not cond():
        if time.monotonic() > end:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.05)


def _figs(m: float) -> tuple[float, float, float]:
    """(IM, MM, equity) at mark ``m`` (module docstring)."""
    return m / 20, 0.005 * m - 50, 10_000 + m - 73_005


def _status(m: float) -> str:
    equity, im, mm = 10_000 + m - 73_005, m / 20, 0.005 * m - 50
    return "liquidation" if equity <= mm else "margin_call" if equity < im else "healthy"


BACKENDS = pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)


@pytest.mark.realdata
@BACKENDS
def test_replay_moves_margin_and_a_restart_resumes(tmp_path: Path, db_url: str) -> None:
    if not BARS.exists():
        pytest.skip(f"real data file absent: {BARS}")
    start, stop = MARKET.timestamp, datetime(2026, 2, 8, tzinfo=UTC)
    closes: list[tuple[datetime, float]] = []
    # the real bars of 2026-02-01..07 (the crash of 02-05 and the rebound), cut into tmp_path
    # to keep the test short; the whole file is replayed by tests/io and the docs walkthrough
    cut = tmp_path / "binance_usdm_perp_1h_BTCUSDT_2026-02-01_2026-02-07.csv.gz"
    with gzip.open(BARS, "rt") as f, gzip.open(cut, "wt") as out:
        reader = csv.DictReader(f)
        writer = csv.DictWriter(out, reader.fieldnames or [])
        writer.writeheader()
        for row in reader:
            t = datetime.fromtimestamp((int(row["close_time"]) + 1) / 1000, UTC)
            if datetime(2026, 2, 1, tzinfo=UTC) < t <= stop:
                writer.writerow(row)
                if t > start:
                    closes.append((t, float(row["close"])))
    db = db_url
    with _app(db, []) as c:  # the account first, then the feed
        c.post("/v1/accounts", headers=HEAD, json={"id": "a1"})
        c.post("/v1/accounts/a1/collateral", headers=HEAD,
               json={"currency": "USDT", "amount": "10000"})
        r = c.post("/v1/accounts/a1/fills", headers=HEAD,
                   json={"fill_id": "f1", "symbol": "BTCUSDT", "size": "1", "price": "73005"})
        assert r.status_code == 200, r.text
    spec = ReplaySpec((cut,), None)
    with _app(db, [spec]) as c:
        st = c.app.state.feeds[0]  # type: ignore[attr-defined]
        _wait(lambda: st.finished, "the replay")
        core = c.app.state.core  # type: ignore[attr-defined]
        events = core.repo.events_after(0, limit=100_000)
        doc = c.get("/v1/accounts/a1", headers=HEAD).json()
        latest = c.get("/v1/commitments/latest").json()
    assert st.note == "end of the files" and st.errors == 0
    assert st.applied == len(closes) == 14 + 3 * 24 + 1  # 02-04T10:00 .. 02-08T00:00
    # the expected events, from the closes alone
    # (``margin`` events coalesced: one only when IM, MM or equity moved by more than 1 %,
    # relative to the larger of old and new, since the last published figures)
    want: list[str] = []
    prev_status, last = "healthy", _figs(73_005.0)
    for _t, m in closes:
        s = _status(m)
        if s != prev_status:
            want.append("recovery" if s == "healthy" else s)
            last = _figs(m)
        elif any(abs(n - o) > 0.01 * max(abs(n), abs(o)) for o, n in zip(last, _figs(m),
                                                                  strict=True)):
            want.append("margin")
            last = _figs(m)
        prev_status = s
    assert [e.kind for e in events] == want
    assert {"margin_call", "liquidation", "recovery"} <= set(want)  # 2026-02-05/06
    first_call = next(e for e in events if e.kind == "margin_call")
    assert first_call.payload["cause"] == "market"
    last_t, last_m = closes[-1]
    assert doc["equity"] == pytest.approx(10_000 + last_m - 73_005, rel=1e-12)
    assert doc["initial_margin"] == pytest.approx(last_m / 20, rel=1e-12)
    assert doc["audit"]["market_timestamp"] == last_t.isoformat().replace("+00:00", "Z")
    assert latest["market_timestamp"] == doc["audit"]["market_timestamp"]
    # a restart resumes from the stored market: nothing is replayed twice
    with _app(db, [spec]) as c:
        st2 = c.app.state.feeds[0]  # type: ignore[attr-defined]
        _wait(lambda: st2.finished, "the second replay")
        assert st2.applied == 0 and st2.skipped >= len(closes)
        assert c.app.state.core.repo.events_after(0, limit=100_000) == events  # type: ignore
        assert c.get("/v1/models").json()["market_timestamp"] == doc["audit"][
            "market_timestamp"]


# -- NATS JetStream -----------------------------------------------------------------------------

def _update(k: int) -> bytes:
    return json.dumps({"timestamp": f"2026-02-04T10:{k:02d}:00Z", "index": {"BTC": 70_000 + k},
                       "instruments": [{"symbol": "BTCUSDT", "mark_price": 70_000 + k}]}
                      ).encode()


async def _js(stream: str, subject: str, payloads: list[bytes], *, create: bool = False) -> None:
    import nats

    nc = await nats.connect(NATS, connect_timeout=2)
    try:
        js = nc.jetstream()
        if create:
            await js.add_stream(name=stream, subjects=[subject])
        for p in payloads:
            await js.publish(subject, p)
    finally:
        await nc.close()


async def _consumer(stream: str, durable: str) -> tuple[int, int]:
    import nats

    nc = await nats.connect(NATS, connect_timeout=2)
    try:
        info = await nc.jetstream().consumer_info(stream, durable)
        return int(info.num_pending or 0), int(info.num_ack_pending or 0)
    finally:
        await nc.close()


async def _drop(stream: str) -> None:
    import nats

    nc = await nats.connect(NATS, connect_timeout=2)
    try:
        await nc.jetstream().delete_stream(stream)
    finally:
        await nc.close()


@pytest.fixture
def stream() -> Any:
    pytest.importorskip("nats")
    name = f"ME_FEED_{uuid.uuid4().hex[:10].upper()}"
    try:
        asyncio.run(_js(name, f"me.{name.lower()}.market", [], create=True))
    except Exception as exc:  # no server
        pytest.skip(f"NATS JetStream at {NATS} unavailable: {type(exc).__name__}: {exc}")
    yield name, f"me.{name.lower()}.market"
    asyncio.run(_drop(name))


@BACKENDS
def test_nats_feed_resumes_after_restart_without_loss_or_double_apply(
        db_url: str, stream: tuple[str, str]) -> None:
    name, subject = stream
    spec = NatsSpec(NATS, subject, "me-test")
    db = db_url
    # stream sequences 1-3 good, 4 not JSON, 5 refused (no XRP in the market)
    asyncio.run(_js(name, subject, [_update(1), _update(2), _update(3), b"{not json",
                                    json.dumps({"index": {"XRP": 1}}).encode()]))
    with _app(db, [spec]) as c:
        st = c.app.state.feeds[0]  # type: ignore[attr-defined]
        _wait(lambda: st.applied + st.errors >= 5, "the first five messages", 60)
        assert (st.applied, st.errors, st.skipped) == (3, 2, 0)
        assert "index.XRP" in (st.last_error or "")
        assert c.app.state.core.live.market.index["BTC"] == 70_003  # type: ignore[attr-defined]
    # while the service is down: three more (sequences 6-8)
    asyncio.run(_js(name, subject, [_update(4), _update(5), _update(6)]))
    with _app(db, [spec]) as c:
        st = c.app.state.feeds[0]  # type: ignore[attr-defined]
        _wait(lambda: st.applied >= 3, "the three published while down", 60)
        core = c.app.state.core  # type: ignore[attr-defined]
        assert (st.applied, st.errors) == (3, 0)
        assert core.live.market.index["BTC"] == 70_006
        rec = core.feed_position(spec.key)
        assert (rec.position, rec.applied) == (8, 6)  # six applications, each once
        assert rec.market_timestamp == "2026-02-04T10:06:00Z"
        # a redelivery of an applied message (a crash between storing and acking) is skipped
        assert core.update_market(json.loads(_update(6)), feed=(spec.key, 8)) is None
        assert core.feed_position(spec.key).applied == 6
        assert c.get("/v1/models").json()["market_timestamp"] == "2026-02-04T10:06:00Z"
    assert asyncio.run(_consumer(name, "me-test")) == (0, 0)  # everything acknowledged


def _serve(db: str, port: int, feed: str, cwd: Path) -> Any:
    """``margin-engine serve --feed FEED`` as a real process, once it answers."""
    import os
    import subprocess
    import sys
    import urllib.request

    env = {**os.environ, "MARGIN_ENGINE_OPERATOR_KEY": OP,
           "PYTHONPATH": str(ROOT / "src")}
    server = subprocess.Popen(
        [sys.executable, "-c", "from margin_engine.cli.main import app; app()", "serve",
         "--model", "binance-usdm", "--market", str(ROOT / "docs" / "examples" /
                                                    "market-2026-02-04.json"),
         "--db", db, "--port", str(port), "--feed", feed],
        env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    end = time.monotonic() + 60  # a start deadline, not a timing assertion
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz") as r:
                if r.status == 200:
                    return server
        except OSError:
            if server.poll() is not None:
                pytest.fail(f"server exited: {server.stdout.read() if server.stdout else ''}")
            time.sleep(0.1)
    server.kill()
    pytest.fail("server did not start")


@pytest.mark.slow
def test_nats_feed_survives_sigkill_mid_stream(tmp_path: Path,
                                               stream: tuple[str, str]) -> None:
    """SIGKILL while the feed is applying; after a restart every message is applied exactly
    once: the stored count of applications equals the number of messages, the position is the
    last sequence and the market is the last message's."""
    import signal
    import socket

    from margin_engine.service.repository import Repository

    name, subject = stream
    n = 300
    asyncio.run(_js(name, subject, [json.dumps({
        "timestamp": f"2026-02-04T{10 + k // 60:02d}:{k % 60:02d}:00Z",
        "index": {"BTC": 70_000 + k},
        "instruments": [{"symbol": "BTCUSDT", "mark_price": 70_000 + k}]}).encode()
        for k in range(1, n + 1)]))
    db = f"sqlite:///{tmp_path / 'kill.db'}"
    feed = f"{NATS}/{subject}?durable=me-kill"
    key = NatsSpec(NATS, subject, "me-kill").key
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    repo = Repository.open(db)
    try:
        server = _serve(db, port, feed, tmp_path)
        try:
            _wait(lambda: (repo.feed_position(key) or _NONE).applied >= 20, "20 applied")
        finally:
            server.send_signal(signal.SIGKILL)
            server.wait()
        at_kill = (repo.feed_position(key) or _NONE).applied
        server = _serve(db, port, feed, tmp_path)
        try:
            _wait(lambda: (repo.feed_position(key) or _NONE).position >= n, "all messages")
        finally:
            server.terminate()
            server.wait()
        rec = repo.feed_position(key)
        stored = repo.stored_market()
    finally:
        repo.close()
    assert at_kill < n  # killed mid-stream
    assert rec is not None and stored is not None
    assert (rec.position, rec.applied) == (n, n)
    assert stored.updates == n
    assert stored.market_timestamp == "2026-02-04T15:00:00Z"
    assert json.loads(stored.snapshot)["index"]["BTC"] == 70_000 + n


class _NONE:
    applied = 0
    position = 0


@pytest.mark.parametrize("feed, line", [
    ("replay:nope.csv.gz@60", "error: --feed: no such file: nope.csv.gz"),
    ("replay:prices.csv@0", "error: --feed: speed '0': expected a number > 0 or max"),
    ("replay:prices.csv", "error: replay:prices.csv: neither Binance hourly perpetual bars"),
    ("nats://127.0.0.1/x", "error: --feed: 'nats://127.0.0.1/x': expected nats://HOST:PORT/"),
])
def test_serve_refuses_a_bad_feed_in_one_line(feed: str, line: str, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from margin_engine.cli.main import app

    monkeypatch.chdir(tmp_path)
    (tmp_path / "prices.csv").write_text("date,close\n2026-02-04,1\n")
    monkeypatch.setenv("MARGIN_ENGINE_OPERATOR_KEY", OP)
    res = CliRunner().invoke(app, ["serve", "--model", "binance-usdm", "--db",
                                   f"sqlite:///{tmp_path / 'x.db'}", "--feed", feed])
    out = res.output.strip().splitlines()
    assert res.exit_code == 2 and len(out) == 1 and out[0].startswith(line), res.output


@pytest.mark.realdata
def test_a_damaged_replay_file_stops_the_feed_not_the_service(tmp_path: Path) -> None:
    if not BARS.exists():
        pytest.skip(f"real data file absent: {BARS}")
    cut = tmp_path / "binance_usdm_perp_1h_BTCUSDT_cut.csv.gz"
    cut.write_bytes(BARS.read_bytes()[:100_000])  # the gzip stream ends mid-way (2025-12)
    with _app(f"sqlite:///{tmp_path / 'd.db'}", [ReplaySpec((cut,), None)]) as c:
        st = c.app.state.feeds[0]  # type: ignore[attr-defined]
        _wait(lambda: st.finished, "the damaged replay")
        assert st.note == "stopped: unreadable file" and st.errors == 1
        assert "EOFError" in (st.last_error or "")
        assert c.get("/healthz").json() == {"status": "ok"}
