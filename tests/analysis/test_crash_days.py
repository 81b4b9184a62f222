"""Tests for maths.stress_library (named stresses) and analysis.crash_days (measuring them).

Published vectors:
- ccp-standards §7.1 single-day and multi-day tables (BTC and ETH close-to-close moves and BTC
  closes, source [S41], a Yahoo/CoinMarketCap aggregate), and its proposed hypothetical set;
- data/real SOURCES.md "Sanity check on the crash days" table (Binance, Bitstamp, lukmol, perp
  closes and DVOL on the crash days).
The measured table in the library is recomputed from the real files (skipped when absent);
worst_move is checked against a brute-force loop.
"""

from __future__ import annotations

import math
import re
from dataclasses import FrozenInstanceError
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from margin_engine.analysis.crash_days import (
    close_on,
    historical_scenarios,
    measure_closes,
    measure_dvol,
    window_move,
    worst_move,
)
from margin_engine.io.history import PriceHistory, load_dvol, load_history
from margin_engine.maths import stress_library as sl

SHARED = Path(__file__).resolve().parents[3] / "shared"
REAL = SHARED / "data" / "real"
CCP = SHARED / "research" / "ccp-standards.md"
needs_real = pytest.mark.skipif(not REAL.is_dir(), reason=f"real data absent: {REAL}")

# ccp-standards §7.1, single-day table: window -> (BTC prev close, BTC close, BTC cc %,
# ETH prev close, ETH close, ETH cc %)
S71_SINGLE = {
    "covid-2020-03-12": (7911.43, 4970.79, -37.17, 194.87, 112.35, -42.35),
    "covid-rebound-2020-03-13": (4970.79, 5563.71, 11.93, 112.35, 133.20, 18.56),
    "china-2021-05-19": (42909.40, 37002.44, -13.77, 3380.07, 2460.68, -27.20),
    "luna-depeg-2022-05-09": (34059.27, 30296.95, -11.05, 2517.46, 2245.43, -10.81),
    "luna-collapse-2022-05-12": (28936.36, 29047.75, 0.38, 2072.11, 1961.70, -5.33),
    "celsius-2022-06-13": (26762.65, 22487.39, -15.97, 1445.22, 1204.58, -16.65),
    "3ac-2022-06-18": (20471.48, 19017.64, -7.10, 1086.52, 993.64, -8.55),
    "ftx-run-2022-11-08": (20602.82, 18541.27, -10.01, 1568.59, 1332.84, -15.03),
    "ftx-2022-11-09": (18541.27, 15880.78, -14.35, 1332.84, 1100.17, -17.46),
    "yen-carry-2024-08-05": (58116.98, 53991.46, -7.10, 2686.40, 2417.21, -10.02),
}
# ccp-standards §7.1, multi-day table: window -> (BTC %, ETH %)
S71_MULTI = {
    "covid-2020-03-12-2d": (-37.16, -44.04),
    "covid-2020-03-13-2d": (-29.68, -31.65),
    "covid-2020-03-12-5d": (-44.21, -52.76),
    "covid-2020-03-12-7d": (-45.25, -51.00),
    "covid-2020-03-12-6d": (-45.51, -53.87),
    "china-2021-05-19-7d": (-24.72, -35.00),
    "china-2021-05-23-11d": (-29.26, -44.28),
    "china-2021-05-19-5d": (-25.82, -39.68),
    "luna-2022-05": (-20.58, -28.64),
    "celsius-2022-06-18-8d": (-34.61, -40.32),
    "ftx-2022-11-09-2d": (-22.92, -29.86),
    "ftx-2022-11-09-3d": (-24.11, -30.02),
    "ftx-rebound-2022-11-10": (10.74, 18.11),
    "yen-carry-2024-08-05-3d": (-12.09, -19.05),
    "yen-carry-2024-08-05-7d": (-19.20, -27.20),
}
# ccp-standards §7.1 "suggested minimum hypothetical crypto stress set": horizon -> (BTC, ETH)
S71_PROPOSAL = {1: (-0.40, -0.45), 3: (-0.40, -0.45), 7: (-0.50, -0.60)}
# SOURCES.md crash-day table: date -> (Binance BTC close, ret %, Bitstamp, lukmol, perp,
# Binance ETH close, ret %, BTC DVOL); None = "-"
SOURCES_TABLE = {
    "2020-03-12": (4800.00, -39.5, 4842, 4971, None, 107.82, -44.6, None),
    "2021-05-19": (36690.09, -14.4, 36780, 37002, None, 2438.92, -27.7, 124.83),
    "2022-05-09": (30076.31, -11.6, 30082, 30297, None, 2228.55, -11.6, 84.91),
    "2022-05-10": (31017.10, 3.1, 31000, 31023, None, 2342.05, 5.1, 81.61),
    "2022-05-11": (29103.94, -6.2, 29000, 28936, None, 2084.99, -11.0, 101.25),
    "2022-05-12": (29029.75, -0.3, 28896, 29048, None, 1960.22, -6.0, 114.58),
    "2022-11-08": (18547.23, -9.9, None, 18541, None, 1334.77, -14.9, 76.66),
    "2022-11-09": (15922.81, -14.1, None, 15881, None, 1102.73, -17.4, 114.72),
    "2025-10-10": (112774.50, -7.3, None, 113214, 112715, 3829.72, -12.3, 44.11),
    "2026-02-05": (62909.86, -14.0, None, 62702, 62868, 1826.83, -15.0, 82.62),
}


def _pct_matches(move: float, published_pct: float, decimals: int) -> bool:
    """True when ``move`` (a decimal) rounds to ``published_pct`` at the published precision."""
    return abs(100.0 * move - published_pct) <= 0.5 * 10.0**-decimals + 1e-9


def _row(window: str, source: str, symbol: str) -> sl.MeasuredClose:
    rows = [
        r for r in sl.MEASURED_CLOSES if (r.window, r.source, r.symbol) == (window, source, symbol)
    ]
    assert len(rows) == 1, (window, source, symbol)
    return rows[0]


# ---------------------------------------------------------------------------------------------
# Library against ccp-standards §7.1 (no files needed: the library holds the measured closes)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("window", sorted(S71_SINGLE))
def test_btc_single_day_matches_ccp_standards_7_1(window: str) -> None:
    """ccp-standards §7.1 single-day table: BTC closes and cc move to the published 0.01."""
    prev, close, pct = S71_SINGLE[window][:3]
    s = sl.get_stress(window)
    assert _pct_matches(s.price_move("BTC"), pct, 2)
    r = _row(window, "lukmol", "BTC")
    assert round(r.start_close, 2) == prev and round(r.end_close, 2) == close
    assert s.price_move("BTC") == r.move  # the default preference picks lukmol for BTC


@pytest.mark.parametrize("window", sorted(S71_MULTI))
def test_btc_multi_day_matches_ccp_standards_7_1(window: str) -> None:
    """ccp-standards §7.1 multi-day table: BTC close-to-close windows to the published 0.01."""
    assert _pct_matches(sl.get_stress(window).price_move("BTC"), S71_MULTI[window][0], 2)


def _eth_published() -> dict[str, float]:
    out = {w: v[5] for w, v in S71_SINGLE.items()}
    out.update({w: v[1] for w, v in S71_MULTI.items()})
    return out


def test_eth_binance_versus_ccp_standards_7_1() -> None:
    """§7.1's ETH comes from a CoinMarketCap aggregate [S41] that is not among the files; the
    library's Binance ETH moves agree within 1.25 points after 2020; in March 2020 they differ by
    up to 6 points, and the windows ending on the 2020-03-12 close fell further on Binance."""
    for window, pct in _eth_published().items():
        m = 100.0 * sl.get_stress(window).price_move("ETH")
        if window.startswith("covid"):
            assert abs(m - pct) < 6.0, (window, m, pct)
            if sl.get_stress(window).window[1] == "2020-03-12":  # type: ignore[index]
                assert m < pct, (window, m, pct)
        else:
            assert abs(m - pct) < 1.25, (window, m, pct)
    # no window's Binance ETH move reproduces the aggregate at 0.01 except where equal by chance
    exact = [
        w
        for w, p in _eth_published().items()
        if _pct_matches(sl.get_stress(w).price_move("ETH"), p, 2)
    ]
    assert exact == ["yen-carry-2024-08-05"]


def test_published_numbers_transcribed_from_ccp_standards() -> None:
    """Every §7.1 number used above appears verbatim in research/ccp-standards.md §7."""
    if not CCP.is_file():
        pytest.skip(f"research note absent: {CCP}")
    text = CCP.read_text(encoding="utf-8")
    sec = text[text.index("## 7. Crypto stress scenarios") : text.index("## 8.")]

    def pct(v: float) -> str:
        return ("−" if v < 0 else "+") + f"{abs(v):.2f}%"

    for bp, bc, bpct, ep, ec, epct in S71_SINGLE.values():
        assert f"{bp:,.2f} → {bc:,.2f}" in sec
        assert f"{ep:,.2f} → {ec:,.2f}" in sec
        assert pct(bpct) in sec and pct(epct) in sec
    for b, e in S71_MULTI.values():
        assert pct(b) in sec and pct(e) in sec
    assert re.search(r"1-day \| −40% \| −45%", sec) and re.search(r"5–7-day \| −50% \| −60%", sec)


# ---------------------------------------------------------------------------------------------
# Library structure and hypothetical calibration rule
# ---------------------------------------------------------------------------------------------


def test_library_structure() -> None:
    names = sl.stress_names()
    assert len(names) == len(set(names))
    assert set(sl.CORE_STRESSES) <= set(sl.stress_names("historical"))
    assert {w.name for w in sl.CRASH_WINDOWS} == set(sl.stress_names("historical"))
    assert {s.name for s in sl.HYPOTHETICAL_STRESSES} == set(sl.stress_names("hypothetical"))
    for w in sl.CRASH_WINDOWS:
        s = sl.get_stress(w.name)
        assert s.window == (w.start, w.end) and s.horizon_days == w.horizon_days
        assert {"BTC", "ETH"} <= set(s.price_moves)
        assert w.reference in s.source
        if w.start >= "2021-03-24":  # DVOL exists
            assert set(s.vol_moves) == {"BTC", "ETH"}
        else:
            assert not s.vol_moves
    luna = sl.get_stress("luna-2022-05")
    assert luna.window == ("2022-05-05", "2022-05-12") and luna.horizon_days == 7
    with pytest.raises(ValueError, match="unknown stress 'nope'"):
        sl.get_stress("nope")
    with pytest.raises(ValueError, match="kind"):
        sl.stress_names("other")  # type: ignore[arg-type]


def test_vol_moves_are_dvol_differences() -> None:
    """vol move = (DVOL close at end - at start) / 100; SOURCES.md DVOL levels on crash days."""
    ftx = [r for r in sl.MEASURED_DVOL if r.window == "ftx-2022-11-09"]
    by = {r.symbol: r for r in ftx}
    assert by["BTC"].end_dvol == 114.72 and by["BTC"].start_dvol == 76.66  # SOURCES.md
    assert sl.get_stress("ftx-2022-11-09").vol_move("BTC") == pytest.approx(
        (114.72 - 76.66) / 100, abs=1e-12
    )


def _historical_with_horizon_at_most(h: int) -> list[sl.StressScenario]:
    return [
        sl.get_stress(n)
        for n in sl.stress_names("historical")
        if sl.get_stress(n).horizon_days <= h
    ]


@pytest.mark.parametrize("name", ["crypto-crash-1d", "crypto-crash-3d", "crypto-crash-7d"])
def test_hypothetical_crash_rule(name: str) -> None:
    """No milder than §7.1's proposal nor any measured move over a horizon <= its own; vol
    shifts >= every measured DVOL rise over such horizons; levels are multiples of 5 %."""
    s = sl.get_stress(name)
    h = s.horizon_days
    btc, eth = S71_PROPOSAL[h]
    assert s.price_move("BTC") <= btc and s.price_move("ETH") <= eth
    for hist in _historical_with_horizon_at_most(h):
        for u, m in hist.price_moves.items():
            assert s.price_move(u) <= m, (name, hist.name, u)
        for u, v in hist.vol_moves.items():
            assert s.vol_move(u) >= v, (name, hist.name, u)
    for v in (*s.price_moves.values(), *s.vol_moves.values()):
        assert abs(v * 20 - round(v * 20)) < 1e-12


def test_hypothetical_rebound_rule() -> None:
    s = sl.get_stress("crypto-rebound-1d")
    for hist in _historical_with_horizon_at_most(1):
        for u, m in hist.price_moves.items():
            assert s.price_move(u) >= m, (hist.name, u)
    assert 0.20 <= s.price_move("BTC") <= 0.25  # §7.1: "+20% to +25% one-day rebound"


def test_single_underlying_hypotheticals() -> None:
    b = sl.get_stress("btc-minus-30")
    assert b.price_move("BTC") == -0.30 and b.price_move("SOL") == 0.0 and b.vol_move("BTC") == 0
    e = sl.get_stress("eth-minus-40-vol-up")
    assert e.price_move("ETH") == -0.40 and e.vol_move("ETH") == 0.50 and e.vol_move("BTC") == 0


# ---------------------------------------------------------------------------------------------
# StressScenario, stress_matrix, shocked_prices
# ---------------------------------------------------------------------------------------------


def test_stress_scenario_validation_and_immutability() -> None:
    ok = sl.StressScenario("x", "x", ("2024-01-01", "2024-01-04"), {"BTC": -0.1}, {}, "s")
    assert ok.horizon_days == 3
    with pytest.raises(TypeError):
        ok.price_moves["BTC"] = 0.0  # type: ignore[index]
    with pytest.raises(FrozenInstanceError):
        ok.name = "y"  # type: ignore[misc]
    bad = [
        ({"BTC": -1.0}, {}, ("2024-01-01", "2024-01-02"), "historical", "price <= 0"),
        ({"BTC": float("nan")}, {}, ("2024-01-01", "2024-01-02"), "historical", "not a finite"),
        ({}, {}, ("2024-01-01", "2024-01-02"), "historical", "at least one underlying"),
        ({"BTC": 0.1}, {}, ("2024-01-02", "2024-01-01"), "historical", "end must be after"),
        ({"BTC": 0.1}, {}, None, "historical", "needs one"),
        ({"BTC": 0.1}, {"BTC": float("inf")}, None, "hypothetical", "vol_moves.*finite"),
    ]
    for pm, vm, win, kind, msg in bad:
        with pytest.raises(ValueError, match=msg):
            sl.StressScenario("x", "x", win, pm, vm, "s", kind)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="has no price move for 'SOL'"):
        ok.price_move("SOL")


def test_stress_matrix_proxy_missing_and_shocked_prices() -> None:
    m = sl.stress_matrix(
        ["covid-2020-03-12", "crypto-crash-1d"], ["BTC", "ETH", "SOL"], proxy={"SOL": "ETH"}
    )
    covid = sl.get_stress("covid-2020-03-12")
    np.testing.assert_array_equal(
        m.price_moves,
        [
            [covid.price_move("BTC"), covid.price_move("ETH"), covid.price_move("ETH")],
            [-0.40, -0.45, -0.50],  # the hypothetical has '*' for SOL: no proxy needed
        ],
    )
    np.testing.assert_array_equal(m.vol_moves, [[0.0, 0.0, 0.0], [0.40, 0.50, 0.50]])
    assert m.horizon_days.tolist() == [1, 1]
    luna = sl.get_stress("luna-2022-05")
    v = sl.stress_matrix([luna], ["SOL"], proxy={"SOL": "ETH"})  # SOL price own, vol from ETH
    assert v.price_moves[0, 0] == luna.price_move("SOL") and v.price_moves[0, 0] < -0.47
    assert v.vol_moves[0, 0] == luna.vol_move("ETH")
    assert sl.stress_matrix([luna], ["SOL"]).vol_moves[0, 0] == 0.0
    with pytest.raises(ValueError, match="no price move for 'SOL'; pass proxy="):
        sl.stress_matrix(["covid-2020-03-12"], ["SOL"])
    z = sl.stress_matrix(["covid-2020-03-12"], ["SOL"], missing="zero", missing_vol=0.1)
    assert z.price_moves[0, 0] == 0.0 and z.vol_moves[0, 0] == 0.1
    with pytest.raises(ValueError, match="duplicates"):
        sl.stress_matrix(["btc-minus-30"], ["BTC", "BTC"])
    p = sl.shocked_prices({"BTC": 100000.0, "ETH": 3000.0}, "btc-minus-30")
    assert p == {"BTC": pytest.approx(70000.0, abs=1e-9), "ETH": 3000.0}
    with pytest.raises(ValueError, match=r"prices\['BTC'\]"):
        sl.shocked_prices({"BTC": -1.0}, "btc-minus-30")


def test_historical_scenario_preference() -> None:
    binance = sl.historical_scenario("covid-2020-03-12", prefer=("binance-spot",))
    assert _pct_matches(binance.price_move("BTC"), -39.5, 1)  # SOURCES.md Binance -39.5%
    assert "BTC, ETH" in binance.source and "lukmol" not in binance.source
    with pytest.raises(ValueError, match="no measured closes"):
        sl.historical_scenario("covid-2020-03-12", prefer=("binance-perp",))
    with pytest.raises(ValueError, match="unknown crash window"):
        sl.historical_scenario("nope")


# ---------------------------------------------------------------------------------------------
# crash_days on synthetic histories
# ---------------------------------------------------------------------------------------------


def _hist(closes: dict[str, list[float]], start: str = "2022-11-05") -> PriceHistory:
    n = len(next(iter(closes.values())))
    dates = np.datetime64(start, "s") + np.arange(n) * np.timedelta64(86400, "s")
    return PriceHistory(
        dates, tuple(closes), np.column_stack(list(closes.values())), ("t",) * len(closes), "1d"
    )


def test_measure_on_synthetic_history() -> None:
    # 2022-11-05 .. 11-10; ETH has no close on 11-06
    h = _hist({"BTC": [21.0, 20.0, 20.0, 18.0, 15.0, 16.0], "ETH": [2, np.nan, 2, 1.5, 1.2, 1.3]})
    assert close_on(h, "BTC", "2022-11-09") == 15.0
    assert close_on(h, "ETH", "2022-11-06") is None and close_on(h, "BTC", "2023-01-01") is None
    assert window_move(h, "BTC", "2022-11-08", "2022-11-09") == 15.0 / 18.0 - 1
    with pytest.raises(ValueError, match="no ETH close on 2022-11-06"):
        window_move(h, "ETH", "2022-11-06", "2022-11-09")
    rows = measure_closes(h, "user")
    names = {(r.window, r.symbol) for r in rows}
    assert ("ftx-2022-11-09", "ETH") in names and ("ftx-2022-11-09-3d", "ETH") not in names
    assert ("ftx-2022-11-09-3d", "BTC") in names  # 11-06 -> 11-09
    assert len(rows) == 9  # ftx-run, ftx, ftx-rebound, ftx-2d: BTC and ETH; ftx-3d: BTC only
    scen = {s.name: s for s in historical_scenarios(h, source="user")}
    assert scen["ftx-2022-11-09"].price_moves == {"BTC": 15 / 18 - 1, "ETH": 1.2 / 1.5 - 1}
    assert "covid-2020-03-12" not in scen
    dvol = _hist({"BTC": [0.5, 0.6, 0.59, 0.7666, 1.1472, 0.9]})
    vols = measure_dvol(dvol)
    ftx = [v for v in vols if v.window == "ftx-2022-11-09"]
    assert ftx == [sl.MeasuredVol("ftx-2022-11-09", "BTC", 76.66, 114.72)]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.one_of(st.floats(1.0, 1e4), st.just(float("nan"))), min_size=2, max_size=30),
    st.integers(1, 5),
    st.sampled_from([-1, 1]),
)
def test_worst_move_against_brute_force(prices: list[float], h: int, direction: int) -> None:
    hist = _hist({"BTC": prices}, start="2020-03-01")
    pairs = [
        (prices[i + h] / prices[i] - 1.0, i)
        for i in range(len(prices) - h)
        if not (math.isnan(prices[i]) or math.isnan(prices[i + h]))
    ]
    end = str(np.datetime64("2020-03-01") + len(prices) - 1)
    if not pairs:
        with pytest.raises(ValueError, match=r"no .*-day pair"):
            worst_move(hist, "BTC", "2020-03-01", end, h, direction=direction)
        return
    ref = min(pairs) if direction < 0 else max(pairs)
    got = worst_move(hist, "BTC", "2020-03-01", end, h, direction=direction)
    assert got.move == ref[0]
    assert got.horizon_days == h
    i = (np.datetime64(got.start) - np.datetime64("2020-03-01")).astype(int)
    assert prices[i + h] / prices[i] - 1.0 == ref[0]


def test_worst_move_argument_errors() -> None:
    h = _hist({"BTC": [1.0, 2.0, 3.0]})
    with pytest.raises(ValueError, match="horizon_days"):
        worst_move(h, "BTC", "2022-11-05", "2022-11-07", 0)
    with pytest.raises(ValueError, match="direction"):
        worst_move(h, "BTC", "2022-11-05", "2022-11-07", 1, direction=0)
    with pytest.raises(ValueError, match="not in history"):
        worst_move(h, "ETH", "2022-11-05", "2022-11-07", 1)
    with pytest.raises(ValueError, match="cannot read"):
        close_on(h, "BTC", "yesterday")


# ---------------------------------------------------------------------------------------------
# Real files: recompute the measured table; SOURCES.md crash-day table; §7.1 "worst" windows
# ---------------------------------------------------------------------------------------------

SPOT = ("BTC", "ETH", "BNB", "SOL", "XRP", "DOGE", "ADA", "TRX", "BCH")
PERP = ("BTC", "ETH", "BNB", "SOL", "XRP", "DOGE")


@pytest.fixture(scope="module")
def real() -> dict[str, PriceHistory]:
    if not REAL.is_dir():
        pytest.skip(f"real data absent: {REAL}")
    return {
        "lukmol": load_history(REAL / "btcusd_daily_close_volume_2015-01-01_2026-02-13_lukmol.csv"),
        "binance-spot": load_history([REAL / f"binance_spot_daily_{s}USDT_cdd.csv" for s in SPOT]),
        "bitstamp": load_history(REAL / "bitstamp_spot_daily_BTCUSD_2014-11-28_2022-08-20_cdd.csv"),
        "binance-perp": load_history(
            [REAL / f"binance_usdm_perp_daily_{s}USDT_2024-01-10_2026-03-19.csv" for s in PERP]
        ),
        "deribit-dvol": load_dvol(
            [REAL / f"deribit_dvol_daily_{s}_2021-03-24_2026-04-06.csv" for s in ("BTC", "ETH")]
        ),
    }


@pytest.mark.realdata
@needs_real
@pytest.mark.parametrize("source", ["lukmol", "binance-spot", "bitstamp", "binance-perp"])
def test_measured_closes_recomputed_from_files(real: dict[str, PriceHistory], source: str) -> None:
    """Every MEASURED_CLOSES row, and no other, comes out of the source's files exactly."""
    got = set(measure_closes(real[source], source))
    want = {r for r in sl.MEASURED_CLOSES if r.source == source}
    assert got == want


@pytest.mark.realdata
@needs_real
def test_measured_dvol_recomputed_from_files(real: dict[str, PriceHistory]) -> None:
    assert set(measure_dvol(real["deribit-dvol"])) == set(sl.MEASURED_DVOL)


@pytest.mark.realdata
@needs_real
@pytest.mark.parametrize("day", sorted(SOURCES_TABLE))
def test_sources_md_crash_day_table(real: dict[str, PriceHistory], day: str) -> None:
    """SOURCES.md crash-day table, each figure at its published precision."""
    bn, bn_ret, bs, lk, perp, eth, eth_ret, dvol = SOURCES_TABLE[day]
    prev = str(np.datetime64(day) - 1)
    spot = real["binance-spot"]
    assert close_on(spot, "BTC", day) == bn and close_on(spot, "ETH", day) == eth
    assert _pct_matches(window_move(spot, "BTC", prev, day), bn_ret, 1)
    assert _pct_matches(window_move(spot, "ETH", prev, day), eth_ret, 1)
    assert round(close_on(real["lukmol"], "BTC", day) or 0) == lk
    if bs is not None:
        assert round(close_on(real["bitstamp"], "BTC", day) or 0) == bs
    if perp is not None:
        assert round(close_on(real["binance-perp"], "BTC", day) or 0) == perp
    if dvol is not None:
        assert round(100 * (close_on(real["deribit-dvol"], "BTC", day) or 0), 2) == dvol


@pytest.mark.realdata
@needs_real
@pytest.mark.parametrize(
    ("start", "end", "h", "w_start", "w_end", "pct"),
    [
        ("2020-03-01", "2020-03-31", 2, "2020-03-10", "2020-03-12", -37.16),
        ("2020-03-01", "2020-03-31", 5, "2020-03-07", "2020-03-12", -44.21),
        ("2020-03-01", "2020-03-31", 7, "2020-03-05", "2020-03-12", -45.25),
        ("2021-05-01", "2021-05-31", 5, "2021-05-14", "2021-05-19", -25.82),
    ],
)
def test_worst_windows_match_ccp_standards_7_1(
    real: dict[str, PriceHistory],
    start: str,
    end: str,
    h: int,
    w_start: str,
    w_end: str,
    pct: float,
) -> None:
    """§7.1 multi-day table: 'worst 2d/5d/7d in window' and 'worst 5d in May 2021' on BTC."""
    w = worst_move(real["lukmol"], "BTC", start, end, h)
    assert (w.start, w.end) == (w_start, w_end)
    assert _pct_matches(w.move, pct, 2)


@pytest.mark.realdata
@needs_real
@pytest.mark.parametrize("name", ["crypto-crash-1d", "crypto-crash-3d", "crypto-crash-7d"])
def test_hypothetical_vol_covers_largest_dvol_rise(
    real: dict[str, PriceHistory], name: str
) -> None:
    """Vol shifts >= the largest DVOL rise over the horizon anywhere in 2021-2026."""
    s = sl.get_stress(name)
    d = real["deribit-dvol"]
    for k, sym in enumerate(d.symbols):
        col = d.closes[:, k]
        worst = max(float(np.nanmax(col[h:] - col[:-h])) for h in range(1, s.horizon_days + 1))
        assert s.vol_move(sym) >= worst, (name, sym, worst)
