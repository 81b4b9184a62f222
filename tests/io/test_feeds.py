"""``--feed`` grammar and the replay of the real files (../shared/data/real, SOURCES.md there).

Numbers: the file values are read here with ``gzip``/``csv`` independently of the reader under
test; the index and mark figures of the synthetic cases are derived by hand in each test.
"""

from __future__ import annotations

import csv
import gzip
import statistics
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError
from margin_engine.io.feeds.replay import Quote, ReplayPricer, file_kind, read_quotes
from margin_engine.io.feeds.spec import NatsSpec, ReplaySpec, parse_feed
from margin_engine.live.market_update import apply_update, parse_update

REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "real"
BARS = REAL / "binance_usdm_perp_1h_BTCUSDT_2025-09-13_2026-03-19.csv.gz"
CHAIN = REAL / "deribit_options_chain_intraday_2026-02-01_2026-02-10.csv.gz"


def _need(*paths: Path) -> None:
    for p in paths:
        if not p.exists():
            pytest.skip(f"real data file absent: {p}")


# -- the grammar ------------------------------------------------------------------------------

def test_replay_grammar(tmp_path: Path) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b@x.csv"
    a.write_text("x")
    b.write_text("x")
    assert parse_feed(f"replay:{a}") == ReplaySpec((a,), 1.0)
    assert parse_feed(f"replay:{a},{b}@3600") == ReplaySpec((a, b), 3600.0)
    assert parse_feed(f"replay:{a}@max") == ReplaySpec((a,), None)
    assert parse_feed(f"replay:{b}@0.5") == ReplaySpec((b,), 0.5)
    for bad, reason in ((f"replay:{a}@0", "speed '0'"), (f"replay:{a}@-2", "speed '-2'"),
                        (f"replay:{a}@inf", "speed 'inf'"), (f"replay:{a}@fast", "speed"),
                        ("replay:", "at least one file"), (f"replay:{a}.nope", "no such file"),
                        ("kafka://x/y", "expected replay:")):
        with pytest.raises(InputError) as err:
            parse_feed(bad)
        assert err.value.path == "--feed" and reason in err.value.reason, bad


def test_nats_grammar() -> None:
    assert parse_feed("nats://127.0.0.1:4222/margin.market") == NatsSpec(
        "nats://127.0.0.1:4222", "margin.market", "margin-engine")
    spec = parse_feed("nats://localhost:4223/a.b?durable=me-1")
    assert spec == NatsSpec("nats://localhost:4223", "a.b", "me-1")
    assert spec.key == "nats://localhost:4223/a.b#me-1"
    for bad in ("nats://127.0.0.1/x", "nats://127.0.0.1:4222/", "nats://h:1/x?group=a",
                "nats://h:1/x?durable=a%20b", "nats://h:99999/x"):
        with pytest.raises(InputError) as err:
            parse_feed(bad)
        assert err.value.path == "--feed", bad


def test_a_file_of_another_kind_is_refused_in_one_line(tmp_path: Path) -> None:
    p = tmp_path / "prices.csv"
    p.write_text("date,close\n2026-01-01,1\n")
    with pytest.raises(InputError) as err:
        file_kind(p)
    assert err.value.path == "replay:prices.csv" and "neither" in err.value.reason
    bars = tmp_path / "bars.csv"
    bars.write_text("timestamp,open,high,low,close,volume,quote_volume,trades,close_time\n")
    with pytest.raises(InputError) as err:  # no symbol in the name
        list(read_quotes([bars]))
    assert "perp_1h_<SYMBOL>" in err.value.reason


# -- the real files -----------------------------------------------------------------------------

def _bar_closes() -> dict[datetime, float]:
    out = {}
    with gzip.open(BARS, "rt") as f:
        for row in csv.DictReader(f):
            out[datetime.fromtimestamp((int(row["close_time"]) + 1) / 1000, UTC)] = float(
                row["close"])
    return out


@pytest.mark.realdata
def test_the_real_files_merge_in_time_order_with_their_published_values() -> None:
    _need(BARS, CHAIN)
    closes = _bar_closes()
    chain_index: dict[str, list[float]] = {}
    fut: list[float] = []
    with gzip.open(CHAIN, "rt") as f:
        for row in csv.DictReader(f):
            if row["currency"] == "BTC":
                chain_index.setdefault(row["timestamp"], []).append(float(row["index_price"]))
            if (row["timestamp"] == "2026-02-01T04:54:02.172460+00:00"
                    and row["futures_instrument_name"] == "BTC-6FEB26"):
                fut.append(float(row["futures_price"]))
    quotes = list(read_quotes([CHAIN, BARS]))
    times = [q.time for q in quotes]
    assert times == sorted(times)
    bars = [q for q in quotes if q.source == "binance-usdm"]
    snaps = [q for q in quotes if q.source == "deribit"]
    assert len(bars) == len(closes) == 4500 and len(snaps) == len(chain_index) == 39  # SOURCES.md
    for q in bars:
        assert q.index == {"BTC": closes[q.time]} and q.last == {"BTCUSDT": closes[q.time]}
    for q in snaps:
        stamp = q.time.isoformat()
        assert q.index["BTC"] == statistics.median(chain_index[stamp])
    first = snaps[0]
    assert first.time == datetime(2026, 2, 1, 4, 54, 2, 172460, tzinfo=UTC)
    assert min(chain_index[first.time.isoformat()]) <= first.index["BTC"] <= max(
        chain_index[first.time.isoformat()])  # rows of one snapshot differ slightly
    # the first row's option: mark 0.11642793 BTC, IV 55.15 %, forward 78919.8
    assert first.options["BTC-6FEB26-88000-P"] == (0.11642793, 0.5515, 78919.8)
    assert first.marks["BTC-6FEB26"] == statistics.median(fut)  # listed (SYN.* ones are not)
    assert not any(s.startswith("SYN.") for s in first.marks)


# -- the pricer (hand-derived numbers) ---------------------------------------------------------

T0 = datetime(2026, 2, 4, tzinfo=UTC)


def _market() -> MarketSnapshot:
    return MarketSnapshot.model_validate({
        "timestamp": "2026-02-03T23:00:00Z", "index": {"BTC": 100.0}, "fx": {"USDT": 1.0},
        "instruments": [
            {"symbol": "BTCUSDT", "kind": "perpetual", "underlying": "BTC", "settle": "USDT",
             "mark_price": 100.0},
            {"symbol": "BTC-27FEB26", "kind": "future", "underlying": "BTC", "settle": "BTC",
             "inverse": True, "contract_size": 10, "expiry": "2026-02-27T08:00:00Z",
             "mark_price": 102.0}]})


def _apply(m: MarketSnapshot, body: dict) -> MarketSnapshot:
    return apply_update(m, parse_update(body, m))[0]


def test_pricer_index_mark_staleness_and_caps() -> None:
    m = _market()
    pr = ReplayPricer()
    # Deribit alone: index 100 (unchanged), the future follows the index (ratio 1)
    up = pr.update(Quote(T0, "deribit", {"BTC": 100.0}), m)
    assert up["index"] == {"BTC": 100.0}
    m = _apply(m, up)
    # Binance 60 s later at 101: median of {100, 101} = 100.5, both within ±0.5 % → 100.5.
    # Mark: price1 = 100.5 (no funding), price2 = 100.5 + (101 − 100.5) = 101, last 101 → 101.
    up = pr.update(Quote(T0 + timedelta(seconds=60), "binance-usdm", {"BTC": 101.0},
                         {"BTCUSDT": 101.0}), m)
    assert up["index"]["BTC"] == pytest.approx(100.5, rel=1e-15)
    marks = {i["symbol"]: i for i in up["instruments"]}
    assert marks["BTCUSDT"]["mark_price"] == pytest.approx(101.0, rel=1e-15)
    # the unquoted future keeps its basis as a ratio: 102 × 100.5 / 100
    assert marks["BTC-27FEB26"]["mark_price"] == pytest.approx(102.51, rel=1e-13)
    assert up["timestamp"] == "2026-02-04T00:01:00Z"
    m = _apply(m, up)
    # 3,700 s after Deribit's quote it is stale (> 3,600 s): Binance alone at 102 → 102.
    # Mark: basis window [(101 − 100.5), (102 − 102)] → 0.25; price2 = 102.25, price1 = 102,
    # last 102 → median 102.
    up = pr.update(Quote(T0 + timedelta(seconds=3700), "binance-usdm", {"BTC": 102.0},
                         {"BTCUSDT": 102.0}), m)
    assert up["index"] == {"BTC": 102.0}
    assert {i["symbol"]: i for i in up["instruments"]}["BTCUSDT"]["mark_price"] == 102.0
    # Deribit back at 90, Binance at 102: median 96, capped into 96 × [0.995, 1.005] =
    # [95.52, 96.48] → mean 96.
    up = pr.update(Quote(T0 + timedelta(seconds=3750), "deribit", {"BTC": 90.0}), m)
    assert up["index"]["BTC"] == pytest.approx(96.0, rel=1e-15)


def test_pricer_ignores_what_the_market_does_not_have() -> None:
    m = _market()
    pr = ReplayPricer()
    up = pr.update(Quote(T0, "binance-usdm", {"ETH": 2000.0}, {"ETHUSDT": 2000.0},
                         {"BTC-27MAR26": 99.0}, {"BTC-27FEB26-100-C": (0.1, 0.5, 100.0)}), m)
    assert up == {"timestamp": "2026-02-04T00:00:00Z"}
