"""Tests for margin_engine.io.history: formats, merge rule, malformed input, returns.

Synthetic files for every recognised format are written to tmp_path; the real files of
``../shared/data/real`` are smoke-tested against the row counts and coverage published in its
SOURCES.md (skipped when the data is absent). Independent references: plain-Python dict grouping
for resampling and merging, ``math.log`` loops for returns.
"""

from __future__ import annotations

import gzip
import math
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from margin_engine.io.history import (
    PriceHistory,
    load_dvol,
    load_funding,
    load_history,
    parse_frequency,
    returns,
)

REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "real"
needs_real = pytest.mark.skipif(not REAL.is_dir(), reason=f"real data absent: {REAL}")


def _ms(day: str, hour: int = 0) -> int:
    d = datetime.fromisoformat(day).replace(tzinfo=UTC) + timedelta(hours=hour)
    return int(d.timestamp() * 1000)


def _write(path: Path, text: str) -> Path:
    if path.name.endswith(".gz"):
        with gzip.open(path, "wt", newline="") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path


def _d(s: str) -> np.datetime64:
    return np.datetime64(s, "s")


# ---------------------------------------------------------------------------------------------
# Formats
# ---------------------------------------------------------------------------------------------


def test_generic_wide_csv_with_missing_cells(tmp_path: Path) -> None:
    p = _write(
        tmp_path / "prices.csv",
        "date,BTC,eth\n2024-01-02,42000.5,\n2024-01-01,41000,2300.25\n2024-01-03,43000,2400\n",
    )
    h = load_history([p])
    assert h.symbols == ("BTC", "ETH")
    assert h.frequency == "1d"
    assert list(h.dates) == [_d("2024-01-01"), _d("2024-01-02"), _d("2024-01-03")]
    np.testing.assert_array_equal(h.column("BTC"), [41000.0, 42000.5, 43000.0])
    assert math.isnan(h.column("ETH")[1])
    assert h.close_at("ETH", "2024-01-03") == 2400.0
    assert h.source_of("BTC") == "prices.csv"
    assert h.closes.dtype == np.float64 and h.dates.dtype == np.dtype("datetime64[s]")


def test_generic_wide_timestamp_ms_and_pair_names(tmp_path: Path) -> None:
    p = _write(
        tmp_path / "wide.csv",
        f"timestamp,BTCUSDT,ETH/USDT,SOL-USD\n{_ms('2024-03-01')},1,2,3\n"
        f"{_ms('2024-03-01', 1)},4,5,6\n",
    )
    h = load_history(p)
    assert h.symbols == ("BTC", "ETH", "SOL")
    assert h.frequency == "1h"
    assert h.dates[1] == _d("2024-03-01T01:00:00")
    np.testing.assert_array_equal(h.closes, [[1, 2, 3], [4, 5, 6]])


def test_cdd_daily_with_url_line_newest_first(tmp_path: Path) -> None:
    p = _write(
        tmp_path / "binance_spot_daily_BTCUSDT_cdd.csv",
        "https://www.CryptoDataDownload.com\n"
        "Unix,Date,Symbol,Open,High,Low,Close,Volume BTC,Volume USDT,tradecount\n"
        f"{_ms('2020-03-12')},2020-03-12,BTCUSDT,7932,7980,4410,4800.00,1,1,1\n"
        f"{_ms('2020-03-11')},2020-03-11,BTCUSDT,7900,8000,7600,7934.52,1,1,1\n",
    )
    h = load_history(p)
    assert h.symbols == ("BTC",)
    np.testing.assert_array_equal(h.column("BTC"), [7934.52, 4800.0])
    assert h.dates[0] == _d("2020-03-11")


def test_cdd_hourly_gz_legacy_duplicates_keep_ms_row(tmp_path: Path) -> None:
    """SOURCES.md quirk: legacy rows (unix s, '04-AM' dates) duplicate new ms rows; keep ms."""
    t = _ms("2020-08-01", 23) // 1000
    p = _write(
        tmp_path / "binance_spot_1h_ETHUSDT_cdd.csv.gz",
        "unix,date,symbol,open,high,low,close,Volume ETH,Volume USDT,tradecount\n"
        f"{(t + 3600) * 1000},2020-08-02 00:00:00,ETH/USDT,1,1,1,390.5,1,1,1\n"
        f"{t * 1000},2020-08-01 23:00:00,ETH/USDT,1,1,1,385.123,1,1,1\n"
        f"{t}.0,2020-08-01 11-PM,ETH/USDT,1,1,1,385.12,1,1,NULL\n"
        f"{t - 3600}.0,2020-08-01 10-PM,ETH/USDT,1,1,1,384,1,1,NULL\n",
    )
    h = load_history(p)
    assert h.symbols == ("ETH",)
    assert h.frequency == "1h"
    np.testing.assert_array_equal(h.column("ETH"), [384.0, 385.123, 390.5])


def test_lukmol_style_single_series_symbol_from_name(tmp_path: Path) -> None:
    p = _write(
        tmp_path / "btcusd_daily_close_volume_lukmol.csv",
        "date,price,volume\n2020-03-11,7911.43017578125,1\n2020-03-12,4970.7880859375,2\n",
    )
    h = load_history(p)
    assert h.symbols == ("BTC",)
    assert h.close_at("BTC", "2020-03-12") == 4970.7880859375


def test_binance_perp_hourly(tmp_path: Path) -> None:
    rows = "".join(
        f"{_ms('2025-10-10', k)},1,1,1,{100 + k},1,1,1,{_ms('2025-10-10', k + 1) - 1}\n"
        for k in range(3)
    )
    p = _write(
        tmp_path / "binance_usdm_perp_1h_SOLUSDT_x.csv.gz",
        "timestamp,open,high,low,close,volume,quote_volume,trades,close_time\n" + rows,
    )
    h = load_history(p)
    assert h.symbols == ("SOL",) and h.frequency == "1h"
    np.testing.assert_array_equal(h.column("SOL"), [100.0, 101.0, 102.0])


@pytest.mark.parametrize("unit", [1, 1000])  # ms (futures/old spot) and us (spot since 2025)
def test_binance_vision_klines_headerless_and_zip(tmp_path: Path, unit: int) -> None:
    lines = "".join(
        f"{_ms(f'2024-01-0{d}') * unit},1,2,0.5,{10 * d}.5,9,{_ms(f'2024-01-0{d + 1}') - 1},"
        "9,9,9,9,0\n"
        for d in (1, 2, 3)
    )
    csv_path = _write(tmp_path / "BTCUSDT-1d-2024-01.csv", lines)
    zpath = tmp_path / "ETHUSDT-1d-2024-01.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("ETHUSDT-1d-2024-01.csv", lines)
    h = load_history([csv_path, zpath])
    assert h.symbols == ("BTC", "ETH")
    np.testing.assert_array_equal(h.column("BTC"), [10.5, 20.5, 30.5])
    np.testing.assert_array_equal(h.column("ETH"), h.column("BTC"))
    assert h.dates[0] == _d("2024-01-01")


def test_vision_klines_with_header(tmp_path: Path) -> None:
    p = _write(
        tmp_path / "XRPUSDT-1h-2024-01.csv",
        "open_time,open,high,low,close,volume,close_time,quote_volume,count,"
        "taker_buy_volume,taker_buy_quote_volume,ignore\n"
        f"{_ms('2024-01-01')},1,1,1,0.61,1,1,1,1,1,1,0\n"
        f"{_ms('2024-01-01', 1)},1,1,1,0.62,1,1,1,1,1,1,0\n",
    )
    h = load_history(p)
    assert h.symbols == ("XRP",)
    np.testing.assert_array_equal(h.column("XRP"), [0.61, 0.62])


def test_dvol_in_history_and_load_dvol(tmp_path: Path) -> None:
    text = (
        "date,symbol,open,high,low,close\n2022-11-09,BTC,1,1,1,114.72\n2022-11-08,BTC,1,1,1,76.66\n"
    )
    p = _write(tmp_path / "deribit_dvol_daily_BTC.csv", text)
    h = load_history(p)
    assert h.symbols == ("BTC_DVOL",)
    np.testing.assert_allclose(h.column("BTC_DVOL"), [0.7666, 1.1472], rtol=0, atol=1e-15)
    other = _write(tmp_path / "btc_implied.csv", text)  # load_dvol does not need 'dvol' in name
    v = load_dvol(other)
    assert v.symbols == ("BTC",)
    np.testing.assert_allclose(v.column("BTC"), [0.7666, 1.1472], rtol=0, atol=1e-15)


def test_option_chain_index_is_snapshot_median(tmp_path: Path) -> None:
    head = "snapshot_file,timestamp,instrument_name,underlying,currency,index_price,strike\n"
    t1, t2 = "2026-02-05T09:30:00.5+00:00", "2026-02-06T09:31:00+00:00"
    body = (
        f"a,{t1},BTC-X-1-C,1,BTC,100,1\na,{t1},BTC-X-2-C,1,BTC,104,1\na,{t1},BTC-X-3-C,1,BTC,101,1\n"
        f"a,{t1},ETH-X-1-C,1,ETH,10,1\nb,{t2},BTC-X-1-C,1,BTC,90,1\nb,{t2},ETH-X-1-C,1,ETH,9,1\n"
    )
    h = load_history(_write(tmp_path / "chain.csv.gz", head + body))
    assert h.symbols == ("BTC", "ETH") and h.frequency is None  # 24h01m apart: irregular
    assert h.dates[0] == _d("2026-02-05T09:30:00")
    np.testing.assert_array_equal(h.closes, [[101.0, 10.0], [90.0, 9.0]])


def test_deribit_perp_snapshot_file(tmp_path: Path) -> None:
    p = _write(
        tmp_path / "perps.csv",
        "snapshot_file,snapshot_timestamp_ms,coin,perp_futures_mark_price\n"
        f"a,{_ms('2026-01-01') + 123},BTC,88000.5\na,{_ms('2026-01-01') + 123},ETH,2900\n",
    )
    h = load_history(p)
    assert h.symbols == ("BTC", "ETH")
    np.testing.assert_array_equal(h.closes, [[88000.5, 2900.0]])


def test_gz_is_transparent(tmp_path: Path) -> None:
    text = "date,BTC\n2024-01-01,1.5\n2024-01-02,2.5\n"
    a = load_history(_write(tmp_path / "a.csv", text))
    b = load_history(_write(tmp_path / "b.csv.gz", text))
    np.testing.assert_array_equal(a.closes, b.closes)
    np.testing.assert_array_equal(a.dates, b.dates)


def test_funding_formats(tmp_path: Path) -> None:
    lukmol = _write(
        tmp_path / "binance_BTCUSDT_perp_funding_daily_mean.csv",
        "date,funding_mean,funding_abs\n2022-11-10,-0.00085,0.00085\n2022-11-11,1e-04,1e-04\n",
    )
    api = _write(
        tmp_path / "funding_api.csv",
        "symbol,fundingTime,fundingRate,markPrice\n"
        f"ETHUSDT,{_ms('2024-01-01')},0.0001,2300\nETHUSDT,{_ms('2024-01-01', 8)},-0.0002,2310\n",
    )
    f = load_funding(lukmol)
    assert f.symbols == ("BTC",) and f.frequency == "1d"
    np.testing.assert_array_equal(f.rates[:, 0], [-0.00085, 1e-4])
    g = load_funding(api)
    assert g.symbols == ("ETH",) and g.frequency == "8h"
    np.testing.assert_array_equal(g.rates[:, 0], [1e-4, -2e-4])
    with pytest.raises(ValueError, match="funding-rate file; read it with load_funding"):
        load_history(lukmol)
    with pytest.raises(ValueError, match="funding-rate file; read it with load_funding"):
        load_dvol(lukmol)
    bad = _write(tmp_path / "BTCUSDT_funding.csv", "date,funding_mean\n2024-01-01,1.5\n")
    with pytest.raises(ValueError, match=r"line 2, column 'funding_mean'.*< 1"):
        load_funding(bad)


# ---------------------------------------------------------------------------------------------
# Merge rule and resampling
# ---------------------------------------------------------------------------------------------


def test_merge_first_file_wins_later_fill_gaps(tmp_path: Path) -> None:
    a = _write(tmp_path / "a.csv", "date,BTC\n2024-01-01,100\n2024-01-03,300\n")
    b = _write(tmp_path / "b.csv", "date,BTC,ETH\n2024-01-01,999,\n2024-01-02,200,20\n")
    h = load_history([a, b])
    np.testing.assert_array_equal(h.column("BTC"), [100.0, 200.0, 300.0])
    assert h.source_of("BTC") == "a.csv + b.csv"
    assert h.source_of("ETH") == "b.csv"
    assert math.isnan(h.column("ETH")[0]) and math.isnan(h.column("ETH")[2])
    h2 = load_history([b, a])
    np.testing.assert_array_equal(h2.column("BTC"), [999.0, 200.0, 300.0])
    assert h2.symbols == ("BTC", "ETH")


def test_mixed_frequencies_need_frequency(tmp_path: Path) -> None:
    daily = _write(tmp_path / "d.csv", "date,BTC\n2024-01-01,1\n2024-01-02,2\n")
    hourly_rows = "".join(f"{_ms('2024-01-02', k)},{10 + k}\n" for k in range(0, 24, 6))
    hourly = _write(tmp_path / "h.csv", "timestamp,ETH\n" + hourly_rows)
    with pytest.raises(ValueError, match=r"sampled differently \(d\.csv: 1d, h\.csv: 6h\)"):
        load_history([daily, hourly])
    h = load_history([daily, hourly], frequency="1d")
    assert h.frequency == "1d"
    np.testing.assert_array_equal(h.column("ETH"), [np.nan, 28.0])
    with pytest.raises(ValueError, match="cannot be resampled to the finer 1h"):
        load_history([daily, hourly], frequency="1h")


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 24 * 6 - 1), st.floats(1e-3, 1e6)), min_size=1, max_size=60)
)
def test_resample_to_daily_matches_plain_grouping(
    tmp_path_factory: pytest.TempPathFactory, obs: list[tuple[int, float]]
) -> None:
    """Daily resample keeps the last observation of each UTC day (reference: dict grouping)."""
    by_hour = dict(obs)  # unique hours
    path = tmp_path_factory.mktemp("rs") / "BTCUSDT_irregular.csv"
    rows = "".join(f"{_ms('2024-01-01', hr)},{v!r}\n" for hr, v in by_hour.items())
    _write(path, "timestamp,close\n" + rows)
    h = load_history(path, frequency="1d")
    ref: dict[int, tuple[int, float]] = {}
    for hr, v in by_hour.items():
        day = hr // 24
        if day not in ref or hr > ref[day][0]:
            ref[day] = (hr, v)
    days = sorted(ref)
    assert [str(d)[:10] for d in h.dates] == [f"2024-01-0{d + 1}" for d in days]
    assert list(h.column("BTC")) == [ref[d][1] for d in days]


@settings(max_examples=40, deadline=None)
@given(
    st.dictionaries(st.integers(0, 30), st.floats(1.0, 1e5), min_size=1, max_size=20),
    st.dictionaries(st.integers(0, 30), st.floats(1.0, 1e5), min_size=1, max_size=20),
)
def test_merge_property(
    tmp_path_factory: pytest.TempPathFactory, a: dict[int, float], b: dict[int, float]
) -> None:
    """Outer join; the first file's value wins where both have one (reference: dict update)."""
    base = datetime(2024, 1, 1)
    d = tmp_path_factory.mktemp("m")

    def wr(name: str, m: dict[int, float]) -> Path:
        body = "".join(
            f"{(base + timedelta(days=k)).date().isoformat()},{v!r}\n" for k, v in m.items()
        )
        return _write(d / name, "date,BTC\n" + body)

    h = load_history([wr("a.csv", a), wr("b.csv", b)], frequency="1d")
    ref = dict(b)
    ref.update(a)
    offsets = (h.dates - np.datetime64("2024-01-01", "s")) // np.timedelta64(1, "D")
    assert offsets.tolist() == sorted(ref)
    assert list(h.column("BTC")) == [ref[k] for k in sorted(ref)]


# ---------------------------------------------------------------------------------------------
# Malformed input
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("date,BTC\n2024-01-01,abc\n", r"bad\.csv: line 2, column 'BTC': not a number: 'abc'"),
        ("date,BTC\n2024-01-01,-5\n",
         r"line 2, column 'BTC': price must be in \(1e-08, 1e\+12\], got -5"),
        ("date,BTC\n2024-01-01,0\n", r"line 2, column 'BTC': price must be in \(1e-08"),
        ("date,BTC\n2024-01-01,1\n2024-01-02,NaN\n", r"line 3, column 'BTC': not a finite number"),
        ("date,BTC\n2024-01-01,inf\n", r"line 2, column 'BTC': not a finite number: 'inf'"),
        ("date,BTC\n2024-01-01,NULL\n", r"line 2, column 'BTC': not a number: 'NULL'"),
        ("date,BTC\n2024-13-01,1\n", r"line 2, column 'date': cannot read '2024-13-01'"),
        ("date,BTC\n2024-01-01,1,2\n", r"line 2: 3 fields, header has 2"),
        ("date,BTC,btcusdt\n2024-01-01,1,2\n", r"columns 'BTC' and 'btcusdt' both name .*BTC"),
        ("foo,bar\n1,2\n", r"line 1: unrecognised format: no 'date' or 'timestamp' column"),
        ("", r"empty file"),
        ("date,BTC\n", r"no data rows"),
        (
            "date,BTC\n2024-01-01,1\n2024-01-01,2\n",
            r"column 'BTC': duplicate timestamp 2024-01-01T00:00:00\+00:00 with different "
            r"values \(line 2: 1.0, line 3: 2.0\)",
        ),
        ("date,BTC,BTC\n2024-01-01,1,1\n", r"duplicate column names \['btc'\]"),
        ("date,symbol,close\n2024-01-01,,1\n", r"line 2, column 'symbol': empty symbol"),
    ],
)
def test_malformed_wide_and_long(tmp_path: Path, text: str, pattern: str) -> None:
    p = _write(tmp_path / "bad.csv", text)
    with pytest.raises(ValueError, match=pattern):
        load_history(p)


def test_malformed_single_series_and_cdd(tmp_path: Path) -> None:
    p = _write(tmp_path / "BTCUSDT_perp.csv", "timestamp,open,close\n1704067200000,1\n")
    with pytest.raises(ValueError, match=r"BTCUSDT_perp\.csv: line 2: 2 fields, expected at"):
        load_history(p)
    p = _write(tmp_path / "BTCUSDT_perp2.csv", "timestamp,close\n1704067200000,\n")
    with pytest.raises(ValueError, match=r"line 2, column 'close': empty value"):
        load_history(p)
    cdd = _write(
        tmp_path / "cdd.csv",
        "https://x\nunix,date,symbol,close\n1704067200000,2024-01-01,BTCUSDT,x1\n",
    )
    with pytest.raises(ValueError, match=r"cdd\.csv: line 3, column 'close': not a number"):
        load_history(cdd)
    nameless = _write(tmp_path / "prices_single.csv", "timestamp,close\n1704067200000,1\n")
    with pytest.raises(ValueError, match="cannot tell the underlying from the file name"):
        load_history(nameless)
    with pytest.raises(ValueError, match="file not found"):
        load_history(tmp_path / "missing.csv")
    with pytest.raises(ValueError, match="at least one file"):
        load_history([])
    with pytest.raises(ValueError, match="looks like trade prints"):
        load_history(_write(tmp_path / "t.csv", "trade_id,timestamp,price,amount\n1,1,1,1\n"))


def test_identical_duplicates_are_kept_once(tmp_path: Path) -> None:
    p = _write(tmp_path / "dup.csv", "date,BTC\n2024-01-01,1\n2024-01-01,1\n2024-01-02,2\n")
    h = load_history(p)
    np.testing.assert_array_equal(h.column("BTC"), [1.0, 2.0])


def test_price_history_validation() -> None:
    d = np.array(["2024-01-01", "2024-01-02"], dtype="datetime64[s]")
    with pytest.raises(ValueError, match="closes: shape"):
        PriceHistory(d, ("BTC",), np.ones((3, 1)), ("x",))
    with pytest.raises(ValueError, match="strictly increasing"):
        PriceHistory(d[::-1], ("BTC",), np.ones((2, 1)), ("x",))
    with pytest.raises(ValueError, match="closes: values must be > 0"):
        PriceHistory(d, ("BTC",), np.array([[1.0], [-1.0]]), ("x",))
    h = PriceHistory(d, ("BTC",), np.array([[1.0], [np.nan]]), ("x",), "1d")
    with pytest.raises(ValueError):
        h.closes[0, 0] = 5.0  # read-only
    with pytest.raises(ValueError, match="has no close on"):
        h.close_at("BTC", "2024-01-02")
    with pytest.raises(ValueError, match="not in history"):
        h.column("ETH")
    assert h.select(["BTC"]).dates.size == 1


def test_parse_frequency() -> None:
    assert parse_frequency("1d") == parse_frequency("daily") == 86400
    assert parse_frequency("8h") == 28800 and parse_frequency("15m") == 900
    with pytest.raises(ValueError, match="frequency: expected"):
        parse_frequency("weekly")


# ---------------------------------------------------------------------------------------------
# Returns
# ---------------------------------------------------------------------------------------------


def _hist(values: dict[str, list[float]], days: list[int]) -> PriceHistory:
    dates = np.array([np.datetime64("2024-01-01", "s") + np.timedelta64(k, "D") for k in days])
    closes = np.column_stack([values[s] for s in values])
    return PriceHistory(dates, tuple(values), closes, tuple("x" for _ in values), "1d")


def test_returns_against_plain_loop_with_gap() -> None:
    days = [0, 1, 2, 4, 5, 6]  # day 3 missing
    btc = [100.0, 110.0, 99.0, 120.0, 60.0, 66.0]
    eth = [10.0, np.nan, 9.0, 9.5, 9.0, 8.0]
    h = _hist({"BTC": btc, "ETH": eth}, days)
    r = returns(h, 1)
    ref_days = [d for d in days if d - 1 in days]
    assert [int((x - h.dates[0]) // np.timedelta64(1, "D")) for x in r.dates] == ref_days
    for i, d in enumerate(ref_days):
        a, b = days.index(d - 1), days.index(d)
        assert r.values[i, 0] == pytest.approx(math.log(btc[b] / btc[a]), abs=1e-15)
        if math.isnan(eth[a]) or math.isnan(eth[b]):
            assert math.isnan(r.values[i, 1])
        else:
            assert r.values[i, 1] == pytest.approx(math.log(eth[b] / eth[a]), abs=1e-15)
    s = returns(h, 2, kind="simple")
    assert s.values[-1, 0] == pytest.approx(66.0 / 120.0 - 1, abs=1e-15)


def test_returns_non_overlapping_aligned_to_last_date() -> None:
    days = list(range(10))
    h = _hist({"BTC": [float(100 + d) for d in days]}, days)
    r = returns(h, 3, overlapping=False)
    got = [int((x - h.dates[0]) // np.timedelta64(1, "D")) for x in r.dates]
    assert got == [3, 6, 9]
    np.testing.assert_allclose(
        r.values[:, 0],
        [math.log(103 / 100), math.log(106 / 103), math.log(109 / 106)],
        rtol=0,
        atol=1e-15,
    )
    assert returns(h, 3).values.shape == (7, 1)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(1e-2, 1e6), min_size=8, max_size=40), st.integers(1, 6))
def test_returns_log_additivity(prices: list[float], h: int) -> None:
    """h-day log return = sum of the h overlapping 1-day log returns ending at the same day."""
    hist = _hist({"BTC": prices}, list(range(len(prices))))
    one = returns(hist, 1).values[:, 0]
    many = returns(hist, h).values[:, 0]
    sums = np.array([one[k : k + h].sum() for k in range(len(one) - h + 1)])
    np.testing.assert_allclose(many, sums, rtol=0, atol=1e-9)


def test_returns_errors_and_hourly() -> None:
    dates = np.array(["2024-01-01T00", "2024-01-01T01", "2024-01-01T02"], dtype="datetime64[s]")
    h = PriceHistory(dates, ("BTC",), np.array([[1.0], [2.0], [4.0]]), ("x",), "1h")
    r = returns(h, 1 / 24)
    np.testing.assert_allclose(r.values[:, 0], [math.log(2), math.log(2)], rtol=0, atol=1e-15)
    with pytest.raises(ValueError, match="not a whole multiple"):
        returns(h, 1 / 48)
    with pytest.raises(ValueError, match="horizon_days: must be a finite number > 0"):
        returns(h, 0)
    with pytest.raises(ValueError, match="kind"):
        returns(h, 1, kind="pct")  # type: ignore[arg-type]
    irregular = PriceHistory(dates, ("BTC",), np.ones((3, 1)), ("x",), None)
    with pytest.raises(ValueError, match="irregularly sampled"):
        returns(irregular, 1)


# ---------------------------------------------------------------------------------------------
# Real files (SOURCES.md figures)
# ---------------------------------------------------------------------------------------------

# (file, symbols, rows, first date, last date, frequency) as published in data/real/SOURCES.md;
# the 1h CDD files hold 36,062 rows of which 2,649 timestamps are legacy duplicates.
REAL_FILES = [
    ("binance_spot_daily_BTCUSDT_cdd.csv", ("BTC",), 3142, "2017-08-17", "2026-03-30", "1d"),
    ("binance_spot_daily_SOLUSDT_cdd.csv", ("SOL",), 2052, "2020-08-11", "2026-03-30", "1d"),
    (
        "bitstamp_spot_daily_BTCUSD_2014-11-28_2022-08-20_cdd.csv",
        ("BTC",),
        2823,
        "2014-11-28",
        "2022-08-20",
        "1d",
    ),
    (
        "btcusd_daily_close_volume_2015-01-01_2026-02-13_lukmol.csv",
        ("BTC",),
        4062,
        "2015-01-01",
        "2026-02-13",
        "1d",
    ),
    (
        "bitstamp_spot_1h_BTCUSD_2018-05-15_2022-08-20_cdd.csv.gz",
        ("BTC",),
        37387,
        "2018-05-15T06",
        "2022-08-20T00",
        "1h",
    ),
    (
        "binance_spot_1h_ETHUSDT_2017-08-17_2021-06-10_cdd.csv.gz",
        ("ETH",),
        36062 - 2649,
        "2017-08-17T04",
        "2021-06-10T00",
        "1h",
    ),
    (
        "binance_usdm_perp_1h_BTCUSDT_2025-09-13_2026-03-19.csv.gz",
        ("BTC",),
        4500,
        "2025-09-13T08",
        "2026-03-19T19",
        "1h",
    ),
    (
        "binance_usdm_perp_daily_ETHUSDT_2024-01-10_2026-03-19.csv",
        ("ETH",),
        800,
        "2024-01-10",
        "2026-03-19",
        "1d",
    ),
    (
        "deribit_dvol_daily_ETH_2021-03-24_2026-04-06.csv",
        ("ETH_DVOL",),
        1840,
        "2021-03-24",
        "2026-04-06",
        "1d",
    ),
    (
        "deribit_options_chain_intraday_2026-02-01_2026-02-10.csv.gz",
        ("BTC", "ETH"),
        39,
        "2026-02-01T04:54:02",
        "2026-02-10T21:42:24",
        None,
    ),
    (
        "deribit_perpetual_prices_at_option_snapshots_2025-12-30_2026-04-15.csv",
        ("BTC", "ETH"),
        419,
        "2025-12-30T17:31:15",
        "2026-04-15T10:24:47",
        None,
    ),
]


@pytest.mark.realdata
@needs_real
@pytest.mark.parametrize(("name", "symbols", "rows", "first", "last", "freq"), REAL_FILES)
def test_real_files_match_sources_md(
    name: str, symbols: tuple[str, ...], rows: int, first: str, last: str, freq: str | None
) -> None:
    h = load_history(REAL / name)
    assert h.symbols == symbols
    assert h.dates.size == rows
    assert h.dates[0] == np.datetime64(first, "s") and h.dates[-1] == np.datetime64(last, "s")
    assert h.frequency == freq
    assert np.all(np.isfinite(h.closes[:, 0]) | np.isnan(h.closes[:, 0]))


@pytest.mark.realdata
@needs_real
def test_real_binance_daily_gaps_and_merge() -> None:
    """SOURCES.md: every Binance daily file misses the same 6 days of 2026."""
    syms = ("BTC", "ETH", "SOL")
    h = load_history([REAL / f"binance_spot_daily_{s}USDT_cdd.csv" for s in syms])
    assert h.symbols == syms
    full = np.arange(np.datetime64("2017-08-17"), np.datetime64("2026-03-31")).astype(
        "datetime64[s]"
    )
    missing = sorted(str(x)[:10] for x in np.setdiff1d(full, h.dates))
    assert missing == [
        "2026-01-08",
        "2026-01-20",
        "2026-03-20",
        "2026-03-21",
        "2026-03-22",
        "2026-03-25",
    ]
    assert np.isnan(h.column("SOL")[0])  # SOL starts 2020-08-11
    # Bitstamp first, Binance fills after 2022-08-20: merge rule on real files
    m = load_history(
        [
            REAL / "bitstamp_spot_daily_BTCUSD_2014-11-28_2022-08-20_cdd.csv",
            REAL / "binance_spot_daily_BTCUSDT_cdd.csv",
        ]
    )
    assert m.close_at("BTC", "2020-03-12") == 4841.67  # Bitstamp (SOURCES.md: 4,842)
    assert m.close_at("BTC", "2025-10-10") == 112774.5  # Binance (SOURCES.md: 112,774.50)
    assert m.dates[0] == np.datetime64("2014-11-28", "s")


@pytest.mark.realdata
@needs_real
def test_real_hourly_resamples_to_daily_closes() -> None:
    """The 23:00 hourly bar's close is the Binance daily close (00:00-24:00 UTC candles)."""
    daily = load_history(REAL / "binance_spot_daily_BTCUSDT_cdd.csv")
    hourly = load_history(REAL / "binance_spot_1h_BTCUSDT_2017-08-17_2021-06-10_cdd.csv.gz")
    has_23 = hourly.dates[(hourly.dates.astype(np.int64) % 86400) == 23 * 3600]
    days = (has_23.astype(np.int64) // 86400 * 86400).astype("datetime64[s]")
    resampled = load_history(
        REAL / "binance_spot_1h_BTCUSDT_2017-08-17_2021-06-10_cdd.csv.gz", frequency="1d"
    )
    common = np.intersect1d(days, daily.dates)
    a = daily.closes[np.searchsorted(daily.dates, common), 0]
    b = resampled.closes[np.searchsorted(resampled.dates, common), 0]
    assert common.size > 1300
    mismatch = common[a != b]
    assert mismatch.size <= 9 and all(str(x).startswith("2018") for x in mismatch), mismatch
    assert resampled.close_at("BTC", "2020-03-12") == daily.close_at("BTC", "2020-03-12") == 4800.0


@pytest.mark.realdata
@needs_real
def test_real_dvol_funding_and_rejections() -> None:
    v = load_dvol(
        [
            REAL / "deribit_dvol_daily_BTC_2021-03-24_2026-04-06.csv",
            REAL / "deribit_dvol_daily_ETH_2021-03-24_2026-04-06.csv",
        ]
    )
    assert v.symbols == ("BTC", "ETH")
    assert v.close_at("BTC", "2023-01-01") == pytest.approx(0.4696, abs=1e-12)  # SOURCES.md
    f = load_funding(REAL / "binance_BTCUSDT_perp_funding_daily_mean_2019-09-10_2026-02-12.csv")
    assert f.symbols == ("BTC",) and f.dates.size == 2348 and f.frequency == "1d"
    i = int(np.searchsorted(f.dates, np.datetime64("2022-11-10", "s")))
    assert f.rates[i, 0] == pytest.approx(-0.00085, abs=5e-6)  # SOURCES.md: "shows -0.00085"
    for name, what in [
        ("hyperliquid_liquidations_2023-02-28_2023-05-01.csv", "account-level data"),
        ("bitstamp_btcusd_l3_order_events_2026-05-02_0236-0306utc.csv.gz", "order-book events"),
        ("deribit_term_futures_marks_at_option_snapshots.csv.gz", "a futures curve"),
    ]:
        with pytest.raises(ValueError, match=what):
            load_history(REAL / name)
