"""Named stress scenarios: historical crypto crash days and hypothetical shocks.

Pure data and pure functions (no I/O). The historical scenarios are built from
:data:`MEASURED_CLOSES` and :data:`MEASURED_DVOL`: close prices and Deribit DVOL closes read from
the public files in ``../shared/data/real`` (see :data:`SOURCES`). The tests recompute every row
from those files (``margin_engine.analysis.crash_days``) and compare the derived moves with the
published figures of ``research/ccp-standards.md`` §7.1 and ``data/real/SOURCES.md``.

Conventions
-----------
- A *price move* is the simple close-to-close return ``close(end) / close(start) - 1`` of the
  UTC daily closes (``-0.3717`` is -37.17 %); ``start`` is the close *before* the stressed day, so
  a one-day stress on 2020-03-12 has ``window = ('2020-03-11', '2020-03-12')``.
- A *vol move* is the absolute change of annualised implied vol as a decimal: the Deribit DVOL
  (30-day ATM-like index, in percent) close at ``end`` minus the close at ``start``, divided by
  100 (``+0.3806`` = +38.06 vol points). Windows before DVOL's start (2021-03-24) have none.
- The key ``'*'`` in ``price_moves``/``vol_moves`` applies to every underlying not named.

Source choice (``DEFAULT_PREFERENCE``): BTC from the lukmol/Yahoo-style aggregate file (it
reproduces every BTC figure of ccp-standards §7.1 to the published 0.01 %), all other underlyings
from Binance spot daily closes (the only daily source for ETH and the alts; §7.1's ETH figures
come from a CoinMarketCap aggregate that is not among the files and differ by up to a few percent,
see ``docs/history-and-stresses.md``). :func:`historical_scenario` takes another preference, e.g.
``('binance-spot',)`` for venue-consistent Binance moves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from types import MappingProxyType
from typing import Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "CORE_STRESSES",
    "CRASH_WINDOWS",
    "DEFAULT_PREFERENCE",
    "HYPOTHETICAL_STRESSES",
    "MEASURED_CLOSES",
    "MEASURED_DVOL",
    "SOURCES",
    "STRESS_LIBRARY",
    "CrashWindow",
    "MeasuredClose",
    "MeasuredVol",
    "StressMatrix",
    "StressScenario",
    "get_stress",
    "historical_scenario",
    "shocked_prices",
    "stress_matrix",
    "stress_names",
]

Kind = Literal["historical", "hypothetical"]


# ---------------------------------------------------------------------------------------------
# Types
# ---------------------------------------------------------------------------------------------


def _frozen_map(m: Mapping[str, float], what: str) -> Mapping[str, float]:
    out: dict[str, float] = {}
    for k, v in m.items():
        if not isinstance(k, str) or not k:
            raise ValueError(f"{what}: keys must be non-empty underlying names, got {k!r}")
        fv = float(v)
        if not np.isfinite(fv):
            raise ValueError(f"{what}[{k!r}]: not a finite number")
        out[k] = fv
    return MappingProxyType(out)


@dataclass(frozen=True)
class StressScenario:
    """One named stress: relative price moves and absolute implied-vol moves per underlying.

    Attributes
    ----------
    name : str
        Registry key, e.g. ``'ftx-2022-11-09'``.
    label : str
        Human description (event and window).
    window : tuple of (str, str) or None
        ISO dates ``(start, end)`` of the close-to-close window for a historical scenario;
        None for a hypothetical one.
    price_moves : mapping str -> float
        Simple return per underlying (``-0.40`` = -40 %), must be > -1. Key ``'*'``: default.
    vol_moves : mapping str -> float
        Absolute change of annualised implied vol (decimal; ``+0.38`` = +38 vol points).
        Key ``'*'``: default. Missing means "not measured" (see :meth:`vol_move`).
    source : str
        Where the numbers come from.
    kind : {'historical', 'hypothetical'}
    horizon_days : int
        Calendar days the move takes (``end - start`` for historical scenarios).
    """

    name: str
    label: str
    window: tuple[str, str] | None
    price_moves: Mapping[str, float]
    vol_moves: Mapping[str, float]
    source: str
    kind: Kind = "historical"
    horizon_days: int = 1

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("name: must be non-empty")
        pm = _frozen_map(self.price_moves, f"{self.name}.price_moves")
        if not pm:
            raise ValueError(f"{self.name}.price_moves: at least one underlying is needed")
        for k, v in pm.items():
            if v <= -1.0:
                raise ValueError(f"{self.name}.price_moves[{k!r}]: {v} would make the price <= 0")
        object.__setattr__(self, "price_moves", pm)
        object.__setattr__(self, "vol_moves", _frozen_map(self.vol_moves, f"{self.name}.vol_moves"))
        if self.kind not in ("historical", "hypothetical"):
            raise ValueError(f"{self.name}.kind: expected 'historical' or 'hypothetical'")
        if self.window is not None:
            start, end = (date.fromisoformat(d) for d in self.window)
            if end <= start:
                raise ValueError(f"{self.name}.window: end must be after start")
            object.__setattr__(self, "horizon_days", (end - start).days)
        elif self.kind == "historical":
            raise ValueError(f"{self.name}.window: a historical scenario needs one")
        if int(self.horizon_days) < 1:
            raise ValueError(f"{self.name}.horizon_days: must be >= 1")

    def price_move(self, underlying: str) -> float:
        """Relative move of ``underlying`` (falls back to ``'*'``); ValueError when absent."""
        if underlying in self.price_moves:
            return self.price_moves[underlying]
        if "*" in self.price_moves:
            return self.price_moves["*"]
        raise ValueError(
            f"underlying: {self.name} has no price move for {underlying!r} "
            f"(has {sorted(self.price_moves)})"
        )

    def vol_move(self, underlying: str, default: float = 0.0) -> float:
        """Absolute vol change of ``underlying`` (falls back to ``'*'``, then ``default``)."""
        if underlying in self.vol_moves:
            return self.vol_moves[underlying]
        return self.vol_moves.get("*", default)


@dataclass(frozen=True)
class CrashWindow:
    """A historical stress window: close of ``start`` to close of ``end`` (UTC days).

    ``reference`` names where a published figure for the window is found.
    """

    name: str
    event: str
    start: str
    end: str
    reference: str

    @property
    def horizon_days(self) -> int:
        """Calendar days from ``start`` to ``end``."""
        return (date.fromisoformat(self.end) - date.fromisoformat(self.start)).days

    @property
    def label(self) -> str:
        """Event and window in words."""
        n = self.horizon_days
        return f"{self.event} ({n}d close-to-close {self.start} -> {self.end})"


@dataclass(frozen=True)
class MeasuredClose:
    """Closes of one underlying at both ends of a window, read from one source file.

    ``start_close`` and ``end_close`` are in USD/USDT per unit, exactly as in the file.
    """

    window: str
    source: str
    symbol: str
    start_close: float
    end_close: float

    @property
    def move(self) -> float:
        """Simple close-to-close return (dimensionless)."""
        return self.end_close / self.start_close - 1.0


@dataclass(frozen=True)
class MeasuredVol:
    """Deribit DVOL closes (percent, annualised) at both ends of a window."""

    window: str
    symbol: str
    start_dvol: float
    end_dvol: float

    @property
    def change(self) -> float:
        """Absolute change of implied vol as an annualised decimal (points / 100)."""
        return (self.end_dvol - self.start_dvol) / 100.0


@dataclass(frozen=True)
class StressMatrix:
    """Scenario × underlying arrays for revaluation.

    ``price_moves[i, j]`` is the simple return of ``underlyings[j]`` in ``names[i]``;
    ``vol_moves[i, j]`` the absolute annualised vol change (decimal).
    """

    names: tuple[str, ...]
    underlyings: tuple[str, ...]
    price_moves: npt.NDArray[np.float64]
    vol_moves: npt.NDArray[np.float64]
    horizon_days: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))


# ---------------------------------------------------------------------------------------------
# Data: sources, windows, measured closes
# ---------------------------------------------------------------------------------------------

SOURCES: Mapping[str, str] = MappingProxyType(
    {
        "lukmol": "btcusd_daily_close_volume_2015-01-01_2026-02-13_lukmol.csv (BTC-USD daily "
        "close, Yahoo/CoinMarketCap-style aggregate, UTC days; github lukmol/gamlss-btc-VaR)",
        "binance-spot": "binance_spot_daily_<SYM>USDT_cdd.csv (Binance spot daily klines, "
        "CryptoDataDownload export, 00:00-24:00 UTC)",
        "bitstamp": "bitstamp_spot_daily_BTCUSD_2014-11-28_2022-08-20_cdd.csv (Bitstamp BTC/USD "
        "daily, CryptoDataDownload export)",
        "binance-perp": "binance_usdm_perp_daily_<SYM>USDT_2024-01-10_2026-03-19.csv (Binance "
        "USD-M perpetual daily klines)",
        "deribit-dvol": "deribit_dvol_daily_<SYM>_2021-03-24_2026-04-06.csv (Deribit DVOL index, "
        "daily close, percent)",
    }
)
"""Source key -> file(s) in ``../shared/data/real`` and what they hold."""

DEFAULT_PREFERENCE: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"BTC": ("lukmol", "binance-spot"), "*": ("binance-spot",)}
)
"""Per underlying, the price sources tried in order ('*' for any other underlying)."""

_S71 = "ccp-standards §7.1 single-day table"
_S71M = "ccp-standards §7.1 multi-day table"
_SRC = "data/real SOURCES.md crash-day table"

CRASH_WINDOWS: tuple[CrashWindow, ...] = (
    CrashWindow("covid-2020-03-12", "COVID 'Black Thursday'", "2020-03-11", "2020-03-12", _S71),
    CrashWindow(
        "covid-rebound-2020-03-13",
        "COVID follow-through rebound",
        "2020-03-12",
        "2020-03-13",
        _S71,
    ),
    CrashWindow(
        "china-2021-05-19", "China mining ban / leverage flush", "2021-05-18", "2021-05-19", _S71
    ),
    CrashWindow("luna-depeg-2022-05-09", "LUNA/UST de-peg", "2022-05-08", "2022-05-09", _S71),
    CrashWindow("luna-collapse-2022-05-12", "LUNA collapse", "2022-05-11", "2022-05-12", _S71),
    CrashWindow("celsius-2022-06-13", "Celsius freeze / 3AC", "2022-06-12", "2022-06-13", _S71),
    CrashWindow("3ac-2022-06-18", "3AC liquidation low", "2022-06-17", "2022-06-18", _S71),
    CrashWindow("ftx-run-2022-11-08", "FTX/Alameda run", "2022-11-07", "2022-11-08", _S71),
    CrashWindow("ftx-2022-11-09", "FTX insolvency", "2022-11-08", "2022-11-09", _S71),
    CrashWindow("ftx-rebound-2022-11-10", "FTX rebound", "2022-11-09", "2022-11-10", _S71M),
    CrashWindow("yen-carry-2024-08-05", "yen carry-trade unwind", "2024-08-04", "2024-08-05", _S71),
    CrashWindow("cascade-2025-10-10", "liquidation cascade", "2025-10-09", "2025-10-10", _SRC),
    CrashWindow("crash-2026-02-05", "2026-02-05 sell-off", "2026-02-04", "2026-02-05", _SRC),
    CrashWindow("covid-2020-03-12-2d", "COVID crash", "2020-03-10", "2020-03-12", _S71M),
    CrashWindow("covid-2020-03-13-2d", "COVID crash", "2020-03-11", "2020-03-13", _S71M),
    CrashWindow("covid-2020-03-12-5d", "COVID crash", "2020-03-07", "2020-03-12", _S71M),
    CrashWindow("covid-2020-03-12-6d", "COVID crash", "2020-03-06", "2020-03-12", _S71M),
    CrashWindow("covid-2020-03-12-7d", "COVID crash", "2020-03-05", "2020-03-12", _S71M),
    CrashWindow("china-2021-05-19-5d", "May 2021 sell-off", "2021-05-14", "2021-05-19", _S71M),
    CrashWindow("china-2021-05-19-7d", "May 2021 sell-off", "2021-05-12", "2021-05-19", _S71M),
    CrashWindow("china-2021-05-23-11d", "May 2021 sell-off", "2021-05-12", "2021-05-23", _S71M),
    CrashWindow("luna-2022-05", "LUNA/UST collapse", "2022-05-05", "2022-05-12", _S71M),
    CrashWindow("celsius-2022-06-18-8d", "Celsius / 3AC", "2022-06-10", "2022-06-18", _S71M),
    CrashWindow("ftx-2022-11-09-2d", "FTX collapse", "2022-11-07", "2022-11-09", _S71M),
    CrashWindow("ftx-2022-11-09-3d", "FTX collapse", "2022-11-06", "2022-11-09", _S71M),
    CrashWindow(
        "yen-carry-2024-08-05-3d", "yen carry-trade unwind", "2024-08-02", "2024-08-05", _S71M
    ),
    CrashWindow(
        "yen-carry-2024-08-05-7d", "yen carry-trade unwind", "2024-07-29", "2024-08-05", _S71M
    ),
)
"""Every historical window; names are the stress names."""

CORE_STRESSES: tuple[str, ...] = (
    "covid-2020-03-12",
    "china-2021-05-19",
    "luna-2022-05",
    "celsius-2022-06-13",
    "ftx-2022-11-09",
    "yen-carry-2024-08-05",
    "cascade-2025-10-10",
    "crash-2026-02-05",
)
"""The headline historical stresses (one per crash episode)."""

# BEGIN MEASURED (generated from ../shared/data/real; verified by tests/analysis/test_crash_days.py)
_C = MeasuredClose
_V = MeasuredVol

MEASURED_CLOSES: tuple[MeasuredClose, ...] = (
    _C("covid-2020-03-12", "lukmol", "BTC", 7911.43017578125, 4970.7880859375),
    _C("covid-2020-03-12", "binance-spot", "BTC", 7934.52, 4800.0),
    _C("covid-2020-03-12", "binance-spot", "ETH", 194.61, 107.82),
    _C("covid-2020-03-12", "binance-spot", "BNB", 16.5705, 9.2566),
    _C("covid-2020-03-12", "binance-spot", "XRP", 0.20813, 0.13549),
    _C("covid-2020-03-12", "binance-spot", "DOGE", 0.0021716, 0.0015996),
    _C("covid-2020-03-12", "binance-spot", "ADA", 0.03969, 0.02329),
    _C("covid-2020-03-12", "binance-spot", "TRX", 0.01489, 0.00841),
    _C("covid-2020-03-12", "binance-spot", "BCH", 266.98, 144.13),
    _C("covid-2020-03-12", "bitstamp", "BTC", 7934.57, 4841.67),
    _C("covid-rebound-2020-03-13", "lukmol", "BTC", 4970.7880859375, 5563.70703125),
    _C("covid-rebound-2020-03-13", "binance-spot", "BTC", 4800.0, 5578.6),
    _C("covid-rebound-2020-03-13", "binance-spot", "ETH", 107.82, 134.06),
    _C("covid-rebound-2020-03-13", "binance-spot", "BNB", 9.2566, 10.9204),
    _C("covid-rebound-2020-03-13", "binance-spot", "XRP", 0.13549, 0.15872),
    _C("covid-rebound-2020-03-13", "binance-spot", "DOGE", 0.0015996, 0.001746),
    _C("covid-rebound-2020-03-13", "binance-spot", "ADA", 0.02329, 0.02843),
    _C("covid-rebound-2020-03-13", "binance-spot", "TRX", 0.00841, 0.01029),
    _C("covid-rebound-2020-03-13", "binance-spot", "BCH", 144.13, 177.46),
    _C("covid-rebound-2020-03-13", "bitstamp", "BTC", 4841.67, 5622.74),
    _C("china-2021-05-19", "lukmol", "BTC", 42909.40234375, 37002.44140625),
    _C("china-2021-05-19", "binance-spot", "BTC", 42849.78, 36690.09),
    _C("china-2021-05-19", "binance-spot", "ETH", 3375.07, 2438.92),
    _C("china-2021-05-19", "binance-spot", "BNB", 507.88, 334.8),
    _C("china-2021-05-19", "binance-spot", "SOL", 55.977, 34.988),
    _C("china-2021-05-19", "binance-spot", "XRP", 1.5889, 1.0568),
    _C("china-2021-05-19", "binance-spot", "DOGE", 0.47574, 0.32945),
    _C("china-2021-05-19", "binance-spot", "ADA", 2.0036, 1.4663),
    _C("china-2021-05-19", "binance-spot", "TRX", 0.11627, 0.07881),
    _C("china-2021-05-19", "binance-spot", "BCH", 1089.32, 694.51),
    _C("china-2021-05-19", "bitstamp", "BTC", 42877.75, 36780.43),
    _C("luna-depeg-2022-05-09", "lukmol", "BTC", 34059.265625, 30296.953125),
    _C("luna-depeg-2022-05-09", "binance-spot", "BTC", 34038.4, 30076.31),
    _C("luna-depeg-2022-05-09", "binance-spot", "ETH", 2519.71, 2228.55),
    _C("luna-depeg-2022-05-09", "binance-spot", "BNB", 355.9, 296.1),
    _C("luna-depeg-2022-05-09", "binance-spot", "SOL", 75.38, 62.16),
    _C("luna-depeg-2022-05-09", "binance-spot", "XRP", 0.5662, 0.4873),
    _C("luna-depeg-2022-05-09", "binance-spot", "DOGE", 0.1241, 0.1019),
    _C("luna-depeg-2022-05-09", "binance-spot", "ADA", 0.7403, 0.6019),
    _C("luna-depeg-2022-05-09", "binance-spot", "TRX", 0.08794, 0.07272),
    _C("luna-depeg-2022-05-09", "binance-spot", "BCH", 261.7, 217.9),
    _C("luna-depeg-2022-05-09", "bitstamp", "BTC", 34025.5, 30082.0),
    _C("luna-collapse-2022-05-12", "lukmol", "BTC", 28936.35546875, 29047.751953125),
    _C("luna-collapse-2022-05-12", "binance-spot", "BTC", 29103.94, 29029.75),
    _C("luna-collapse-2022-05-12", "binance-spot", "ETH", 2084.99, 1960.22),
    _C("luna-collapse-2022-05-12", "binance-spot", "BNB", 271.5, 269.0),
    _C("luna-collapse-2022-05-12", "binance-spot", "SOL", 50.9, 44.64),
    _C("luna-collapse-2022-05-12", "binance-spot", "XRP", 0.4172, 0.3856),
    _C("luna-collapse-2022-05-12", "binance-spot", "DOGE", 0.0853, 0.0826),
    _C("luna-collapse-2022-05-12", "binance-spot", "ADA", 0.5187, 0.4733),
    _C("luna-collapse-2022-05-12", "binance-spot", "TRX", 0.07496, 0.06729),
    _C("luna-collapse-2022-05-12", "binance-spot", "BCH", 194.9, 194.2),
    _C("luna-collapse-2022-05-12", "bitstamp", "BTC", 29000.0, 28896.19),
    _C("celsius-2022-06-13", "lukmol", "BTC", 26762.6484375, 22487.388671875),
    _C("celsius-2022-06-13", "binance-spot", "BTC", 26574.53, 22487.41),
    _C("celsius-2022-06-13", "binance-spot", "ETH", 1434.84, 1209.82),
    _C("celsius-2022-06-13", "binance-spot", "BNB", 254.8, 223.0),
    _C("celsius-2022-06-13", "binance-spot", "SOL", 30.61, 28.6),
    _C("celsius-2022-06-13", "binance-spot", "XRP", 0.3433, 0.3118),
    _C("celsius-2022-06-13", "binance-spot", "DOGE", 0.06353, 0.0542),
    _C("celsius-2022-06-13", "binance-spot", "ADA", 0.4904, 0.4644),
    _C("celsius-2022-06-13", "binance-spot", "TRX", 0.07618, 0.06387),
    _C("celsius-2022-06-13", "binance-spot", "BCH", 146.0, 127.1),
    _C("celsius-2022-06-13", "bitstamp", "BTC", 26585.1, 22450.43),
    _C("3ac-2022-06-18", "lukmol", "BTC", 20471.482421875, 19017.642578125),
    _C("3ac-2022-06-18", "binance-spot", "BTC", 20468.81, 18970.79),
    _C("3ac-2022-06-18", "binance-spot", "ETH", 1086.94, 995.13),
    _C("3ac-2022-06-18", "binance-spot", "BNB", 215.8, 197.0),
    _C("3ac-2022-06-18", "binance-spot", "SOL", 30.71, 32.02),
    _C("3ac-2022-06-18", "binance-spot", "XRP", 0.321, 0.3075),
    _C("3ac-2022-06-18", "binance-spot", "DOGE", 0.05689, 0.0529),
    _C("3ac-2022-06-18", "binance-spot", "ADA", 0.4872, 0.4549),
    _C("3ac-2022-06-18", "binance-spot", "TRX", 0.05989, 0.06089),
    _C("3ac-2022-06-18", "binance-spot", "BCH", 121.5, 115.5),
    _C("3ac-2022-06-18", "bitstamp", "BTC", 20440.7, 18956.8),
    _C("ftx-run-2022-11-08", "lukmol", "BTC", 20602.81640625, 18541.271484375),
    _C("ftx-run-2022-11-08", "binance-spot", "BTC", 20591.13, 18547.23),
    _C("ftx-run-2022-11-08", "binance-spot", "ETH", 1568.1, 1334.77),
    _C("ftx-run-2022-11-08", "binance-spot", "BNB", 337.0, 327.4),
    _C("ftx-run-2022-11-08", "binance-spot", "SOL", 29.62, 24.38),
    _C("ftx-run-2022-11-08", "binance-spot", "XRP", 0.4648, 0.4059),
    _C("ftx-run-2022-11-08", "binance-spot", "DOGE", 0.11123, 0.08827),
    _C("ftx-run-2022-11-08", "binance-spot", "ADA", 0.4041, 0.3722),
    _C("ftx-run-2022-11-08", "binance-spot", "TRX", 0.06227, 0.05872),
    _C("ftx-run-2022-11-08", "binance-spot", "BCH", 117.9, 103.2),
    _C("ftx-2022-11-09", "lukmol", "BTC", 18541.271484375, 15880.7802734375),
    _C("ftx-2022-11-09", "binance-spot", "BTC", 18547.23, 15922.81),
    _C("ftx-2022-11-09", "binance-spot", "ETH", 1334.77, 1102.73),
    _C("ftx-2022-11-09", "binance-spot", "BNB", 327.4, 267.3),
    _C("ftx-2022-11-09", "binance-spot", "SOL", 24.38, 14.08),
    _C("ftx-2022-11-09", "binance-spot", "XRP", 0.4059, 0.3331),
    _C("ftx-2022-11-09", "binance-spot", "DOGE", 0.08827, 0.0745),
    _C("ftx-2022-11-09", "binance-spot", "ADA", 0.3722, 0.3175),
    _C("ftx-2022-11-09", "binance-spot", "TRX", 0.05872, 0.05338),
    _C("ftx-2022-11-09", "binance-spot", "BCH", 103.2, 89.0),
    _C("ftx-rebound-2022-11-10", "lukmol", "BTC", 15880.7802734375, 17586.771484375),
    _C("ftx-rebound-2022-11-10", "binance-spot", "BTC", 15922.81, 17601.15),
    _C("ftx-rebound-2022-11-10", "binance-spot", "ETH", 1102.73, 1299.28),
    _C("ftx-rebound-2022-11-10", "binance-spot", "BNB", 267.3, 304.0),
    _C("ftx-rebound-2022-11-10", "binance-spot", "SOL", 14.08, 17.66),
    _C("ftx-rebound-2022-11-10", "binance-spot", "XRP", 0.3331, 0.3942),
    _C("ftx-rebound-2022-11-10", "binance-spot", "DOGE", 0.0745, 0.08978),
    _C("ftx-rebound-2022-11-10", "binance-spot", "ADA", 0.3175, 0.3687),
    _C("ftx-rebound-2022-11-10", "binance-spot", "TRX", 0.05338, 0.05782),
    _C("ftx-rebound-2022-11-10", "binance-spot", "BCH", 89.0, 102.7),
    _C("yen-carry-2024-08-05", "lukmol", "BTC", 58116.9765625, 53991.45703125),
    _C("yen-carry-2024-08-05", "binance-spot", "BTC", 58161.0, 54018.81),
    _C("yen-carry-2024-08-05", "binance-spot", "ETH", 2688.92, 2419.59),
    _C("yen-carry-2024-08-05", "binance-spot", "BNB", 496.9, 464.2),
    _C("yen-carry-2024-08-05", "binance-spot", "SOL", 138.33, 129.78),
    _C("yen-carry-2024-08-05", "binance-spot", "XRP", 0.5228, 0.4889),
    _C("yen-carry-2024-08-05", "binance-spot", "DOGE", 0.10375, 0.09436),
    _C("yen-carry-2024-08-05", "binance-spot", "ADA", 0.3442, 0.3119),
    _C("yen-carry-2024-08-05", "binance-spot", "TRX", 0.1264, 0.1215),
    _C("yen-carry-2024-08-05", "binance-spot", "BCH", 332.5, 309.9),
    _C("yen-carry-2024-08-05", "binance-perp", "BTC", 58144.5, 54003.1),
    _C("yen-carry-2024-08-05", "binance-perp", "ETH", 2687.6, 2418.6),
    _C("yen-carry-2024-08-05", "binance-perp", "BNB", 496.92, 464.2),
    _C("yen-carry-2024-08-05", "binance-perp", "SOL", 138.291, 129.768),
    _C("yen-carry-2024-08-05", "binance-perp", "XRP", 0.5227, 0.4887),
    _C("yen-carry-2024-08-05", "binance-perp", "DOGE", 0.10371, 0.0943),
    _C("cascade-2025-10-10", "lukmol", "BTC", 121705.5859375, 113214.3671875),
    _C("cascade-2025-10-10", "binance-spot", "BTC", 121662.4, 112774.5),
    _C("cascade-2025-10-10", "binance-spot", "ETH", 4368.09, 3829.72),
    _C("cascade-2025-10-10", "binance-spot", "BNB", 1255.35, 1102.47),
    _C("cascade-2025-10-10", "binance-spot", "SOL", 220.93, 188.43),
    _C("cascade-2025-10-10", "binance-spot", "XRP", 2.8021, 2.3704),
    _C("cascade-2025-10-10", "binance-spot", "DOGE", 0.24849, 0.19349),
    _C("cascade-2025-10-10", "binance-spot", "ADA", 0.8152, 0.6353),
    _C("cascade-2025-10-10", "binance-spot", "TRX", 0.3369, 0.3205),
    _C("cascade-2025-10-10", "binance-spot", "BCH", 580.0, 513.5),
    _C("cascade-2025-10-10", "binance-perp", "BTC", 121579.3, 112714.9),
    _C("cascade-2025-10-10", "binance-perp", "ETH", 4365.83, 3819.99),
    _C("cascade-2025-10-10", "binance-perp", "BNB", 1256.16, 1102.85),
    _C("cascade-2025-10-10", "binance-perp", "SOL", 220.8, 187.65),
    _C("cascade-2025-10-10", "binance-perp", "XRP", 2.8011, 2.3666),
    _C("cascade-2025-10-10", "binance-perp", "DOGE", 0.24843, 0.19312),
    _C("crash-2026-02-05", "lukmol", "BTC", 73019.703125, 62702.09765625),
    _C("crash-2026-02-05", "binance-spot", "BTC", 73165.83, 62909.86),
    _C("crash-2026-02-05", "binance-spot", "ETH", 2148.26, 1826.83),
    _C("crash-2026-02-05", "binance-spot", "BNB", 697.27, 608.3),
    _C("crash-2026-02-05", "binance-spot", "SOL", 92.12, 78.35),
    _C("crash-2026-02-05", "binance-spot", "XRP", 1.512, 1.2146),
    _C("crash-2026-02-05", "binance-spot", "DOGE", 0.10383, 0.08849),
    _C("crash-2026-02-05", "binance-spot", "ADA", 0.2864, 0.2455),
    _C("crash-2026-02-05", "binance-spot", "TRX", 0.2833, 0.2696),
    _C("crash-2026-02-05", "binance-spot", "BCH", 532.5, 453.9),
    _C("crash-2026-02-05", "binance-perp", "BTC", 73137.4, 62868.1),
    _C("crash-2026-02-05", "binance-perp", "ETH", 2147.01, 1824.95),
    _C("crash-2026-02-05", "binance-perp", "BNB", 697.49, 608.55),
    _C("crash-2026-02-05", "binance-perp", "SOL", 92.07, 78.29),
    _C("crash-2026-02-05", "binance-perp", "XRP", 1.5111, 1.2136),
    _C("crash-2026-02-05", "binance-perp", "DOGE", 0.10377, 0.08841),
    _C("covid-2020-03-12-2d", "lukmol", "BTC", 7909.7294921875, 4970.7880859375),
    _C("covid-2020-03-12-2d", "binance-spot", "BTC", 7894.56, 4800.0),
    _C("covid-2020-03-12-2d", "binance-spot", "ETH", 200.7, 107.82),
    _C("covid-2020-03-12-2d", "binance-spot", "BNB", 16.8671, 9.2566),
    _C("covid-2020-03-12-2d", "binance-spot", "XRP", 0.21185, 0.13549),
    _C("covid-2020-03-12-2d", "binance-spot", "DOGE", 0.0022053, 0.0015996),
    _C("covid-2020-03-12-2d", "binance-spot", "ADA", 0.04146, 0.02329),
    _C("covid-2020-03-12-2d", "binance-spot", "TRX", 0.01508, 0.00841),
    _C("covid-2020-03-12-2d", "binance-spot", "BCH", 271.79, 144.13),
    _C("covid-2020-03-12-2d", "bitstamp", "BTC", 7885.92, 4841.67),
    _C("covid-2020-03-13-2d", "lukmol", "BTC", 7911.43017578125, 5563.70703125),
    _C("covid-2020-03-13-2d", "binance-spot", "BTC", 7934.52, 5578.6),
    _C("covid-2020-03-13-2d", "binance-spot", "ETH", 194.61, 134.06),
    _C("covid-2020-03-13-2d", "binance-spot", "BNB", 16.5705, 10.9204),
    _C("covid-2020-03-13-2d", "binance-spot", "XRP", 0.20813, 0.15872),
    _C("covid-2020-03-13-2d", "binance-spot", "DOGE", 0.0021716, 0.001746),
    _C("covid-2020-03-13-2d", "binance-spot", "ADA", 0.03969, 0.02843),
    _C("covid-2020-03-13-2d", "binance-spot", "TRX", 0.01489, 0.01029),
    _C("covid-2020-03-13-2d", "binance-spot", "BCH", 266.98, 177.46),
    _C("covid-2020-03-13-2d", "bitstamp", "BTC", 7934.57, 5622.74),
    _C("covid-2020-03-12-5d", "lukmol", "BTC", 8909.9541015625, 4970.7880859375),
    _C("covid-2020-03-12-5d", "binance-spot", "BTC", 8886.66, 4800.0),
    _C("covid-2020-03-12-5d", "binance-spot", "ETH", 237.23, 107.82),
    _C("covid-2020-03-12-5d", "binance-spot", "BNB", 20.25, 9.2566),
    _C("covid-2020-03-12-5d", "binance-spot", "XRP", 0.23622, 0.13549),
    _C("covid-2020-03-12-5d", "binance-spot", "DOGE", 0.0024066, 0.0015996),
    _C("covid-2020-03-12-5d", "binance-spot", "ADA", 0.04879, 0.02329),
    _C("covid-2020-03-12-5d", "binance-spot", "TRX", 0.01699, 0.00841),
    _C("covid-2020-03-12-5d", "binance-spot", "BCH", 330.92, 144.13),
    _C("covid-2020-03-12-5d", "bitstamp", "BTC", 8893.93, 4841.67),
    _C("covid-2020-03-12-6d", "lukmol", "BTC", 9122.5458984375, 4970.7880859375),
    _C("covid-2020-03-12-6d", "binance-spot", "BTC", 9131.88, 4800.0),
    _C("covid-2020-03-12-6d", "binance-spot", "ETH", 244.88, 107.82),
    _C("covid-2020-03-12-6d", "binance-spot", "BNB", 21.3389, 9.2566),
    _C("covid-2020-03-12-6d", "binance-spot", "XRP", 0.24477, 0.13549),
    _C("covid-2020-03-12-6d", "binance-spot", "DOGE", 0.0024862, 0.0015996),
    _C("covid-2020-03-12-6d", "binance-spot", "ADA", 0.05174, 0.02329),
    _C("covid-2020-03-12-6d", "binance-spot", "TRX", 0.01833, 0.00841),
    _C("covid-2020-03-12-6d", "binance-spot", "BCH", 350.73, 144.13),
    _C("covid-2020-03-12-6d", "bitstamp", "BTC", 9153.79, 4841.67),
    _C("covid-2020-03-12-7d", "lukmol", "BTC", 9078.7626953125, 4970.7880859375),
    _C("covid-2020-03-12-7d", "binance-spot", "BTC", 9054.68, 4800.0),
    _C("covid-2020-03-12-7d", "binance-spot", "ETH", 228.38, 107.82),
    _C("covid-2020-03-12-7d", "binance-spot", "BNB", 20.7462, 9.2566),
    _C("covid-2020-03-12-7d", "binance-spot", "XRP", 0.23909, 0.13549),
    _C("covid-2020-03-12-7d", "binance-spot", "DOGE", 0.0024771, 0.0015996),
    _C("covid-2020-03-12-7d", "binance-spot", "ADA", 0.05096, 0.02329),
    _C("covid-2020-03-12-7d", "binance-spot", "TRX", 0.01789, 0.00841),
    _C("covid-2020-03-12-7d", "binance-spot", "BCH", 337.1, 144.13),
    _C("covid-2020-03-12-7d", "bitstamp", "BTC", 9066.65, 4841.67),
    _C("china-2021-05-19-5d", "lukmol", "BTC", 49880.53515625, 37002.44140625),
    _C("china-2021-05-19-5d", "binance-spot", "BTC", 49841.45, 36690.09),
    _C("china-2021-05-19-5d", "binance-spot", "ETH", 4075.01, 2438.92),
    _C("china-2021-05-19-5d", "binance-spot", "BNB", 602.61, 334.8),
    _C("china-2021-05-19-5d", "binance-spot", "SOL", 42.7, 34.988),
    _C("china-2021-05-19-5d", "binance-spot", "XRP", 1.4, 1.0568),
    _C("china-2021-05-19-5d", "binance-spot", "DOGE", 0.55971, 0.32945),
    _C("china-2021-05-19-5d", "binance-spot", "ADA", 2.0069, 1.4663),
    _C("china-2021-05-19-5d", "binance-spot", "TRX", 0.12473, 0.07881),
    _C("china-2021-05-19-5d", "binance-spot", "BCH", 1296.38, 694.51),
    _C("china-2021-05-19-5d", "bitstamp", "BTC", 49880.43, 36780.43),
    _C("china-2021-05-19-7d", "lukmol", "BTC", 49150.53515625, 37002.44140625),
    _C("china-2021-05-19-7d", "binance-spot", "BTC", 49631.32, 36690.09),
    _C("china-2021-05-19-7d", "binance-spot", "ETH", 3823.21, 2438.92),
    _C("china-2021-05-19-7d", "binance-spot", "BNB", 594.65, 334.8),
    _C("china-2021-05-19-7d", "binance-spot", "SOL", 43.709, 34.988),
    _C("china-2021-05-19-7d", "binance-spot", "XRP", 1.2691, 1.0568),
    _C("china-2021-05-19-7d", "binance-spot", "DOGE", 0.3916, 0.32945),
    _C("china-2021-05-19-7d", "binance-spot", "ADA", 1.5694, 1.4663),
    _C("china-2021-05-19-7d", "binance-spot", "TRX", 0.11918, 0.07881),
    _C("china-2021-05-19-7d", "binance-spot", "BCH", 1236.46, 694.51),
    _C("china-2021-05-19-7d", "bitstamp", "BTC", 49386.56, 36780.43),
    _C("china-2021-05-23-11d", "lukmol", "BTC", 49150.53515625, 34770.58203125),
    _C("china-2021-05-23-11d", "binance-spot", "BTC", 49631.32, 34655.25),
    _C("china-2021-05-23-11d", "binance-spot", "ETH", 3823.21, 2096.39),
    _C("china-2021-05-23-11d", "binance-spot", "BNB", 594.65, 260.72),
    _C("china-2021-05-23-11d", "binance-spot", "SOL", 43.709, 24.536),
    _C("china-2021-05-23-11d", "binance-spot", "XRP", 1.2691, 0.7898),
    _C("china-2021-05-23-11d", "binance-spot", "DOGE", 0.3916, 0.30633),
    _C("china-2021-05-23-11d", "binance-spot", "ADA", 1.5694, 1.3139),
    _C("china-2021-05-23-11d", "binance-spot", "TRX", 0.11918, 0.06285),
    _C("china-2021-05-23-11d", "binance-spot", "BCH", 1236.46, 552.37),
    _C("china-2021-05-23-11d", "bitstamp", "BTC", 49386.56, 34706.79),
    _C("luna-2022-05", "lukmol", "BTC", 36575.140625, 29047.751953125),
    _C("luna-2022-05", "binance-spot", "BTC", 36552.97, 29029.75),
    _C("luna-2022-05", "binance-spot", "ETH", 2747.97, 1960.22),
    _C("luna-2022-05", "binance-spot", "BNB", 378.4, 269.0),
    _C("luna-2022-05", "binance-spot", "SOL", 84.52, 44.64),
    _C("luna-2022-05", "binance-spot", "XRP", 0.5981, 0.3856),
    _C("luna-2022-05", "binance-spot", "DOGE", 0.1282, 0.0826),
    _C("luna-2022-05", "binance-spot", "ADA", 0.7884, 0.4733),
    _C("luna-2022-05", "binance-spot", "TRX", 0.07451, 0.06729),
    _C("luna-2022-05", "binance-spot", "BCH", 277.3, 194.2),
    _C("luna-2022-05", "bitstamp", "BTC", 36533.93, 28896.19),
    _C("celsius-2022-06-18-8d", "lukmol", "BTC", 29083.8046875, 19017.642578125),
    _C("celsius-2022-06-18-8d", "binance-spot", "BTC", 29091.88, 18970.79),
    _C("celsius-2022-06-18-8d", "binance-spot", "ETH", 1662.91, 995.13),
    _C("celsius-2022-06-18-8d", "binance-spot", "BNB", 286.4, 197.0),
    _C("celsius-2022-06-18-8d", "binance-spot", "SOL", 37.17, 32.02),
    _C("celsius-2022-06-18-8d", "binance-spot", "XRP", 0.3815, 0.3075),
    _C("celsius-2022-06-18-8d", "binance-spot", "DOGE", 0.07539, 0.0529),
    _C("celsius-2022-06-18-8d", "binance-spot", "ADA", 0.5744, 0.4549),
    _C("celsius-2022-06-18-8d", "binance-spot", "TRX", 0.07893, 0.06089),
    _C("celsius-2022-06-18-8d", "binance-spot", "BCH", 167.4, 115.5),
    _C("celsius-2022-06-18-8d", "bitstamp", "BTC", 29065.66, 18956.8),
    _C("ftx-2022-11-09-2d", "lukmol", "BTC", 20602.81640625, 15880.7802734375),
    _C("ftx-2022-11-09-2d", "binance-spot", "BTC", 20591.13, 15922.81),
    _C("ftx-2022-11-09-2d", "binance-spot", "ETH", 1568.1, 1102.73),
    _C("ftx-2022-11-09-2d", "binance-spot", "BNB", 337.0, 267.3),
    _C("ftx-2022-11-09-2d", "binance-spot", "SOL", 29.62, 14.08),
    _C("ftx-2022-11-09-2d", "binance-spot", "XRP", 0.4648, 0.3331),
    _C("ftx-2022-11-09-2d", "binance-spot", "DOGE", 0.11123, 0.0745),
    _C("ftx-2022-11-09-2d", "binance-spot", "ADA", 0.4041, 0.3175),
    _C("ftx-2022-11-09-2d", "binance-spot", "TRX", 0.06227, 0.05338),
    _C("ftx-2022-11-09-2d", "binance-spot", "BCH", 117.9, 89.0),
    _C("ftx-2022-11-09-3d", "lukmol", "BTC", 20926.486328125, 15880.7802734375),
    _C("ftx-2022-11-09-3d", "binance-spot", "BTC", 20905.58, 15922.81),
    _C("ftx-2022-11-09-3d", "binance-spot", "ETH", 1568.29, 1102.73),
    _C("ftx-2022-11-09-3d", "binance-spot", "BNB", 337.9, 267.3),
    _C("ftx-2022-11-09-3d", "binance-spot", "SOL", 32.62, 14.08),
    _C("ftx-2022-11-09-3d", "binance-spot", "XRP", 0.4709, 0.3331),
    _C("ftx-2022-11-09-3d", "binance-spot", "DOGE", 0.11477, 0.0745),
    _C("ftx-2022-11-09-3d", "binance-spot", "ADA", 0.4021, 0.3175),
    _C("ftx-2022-11-09-3d", "binance-spot", "TRX", 0.06268, 0.05338),
    _C("ftx-2022-11-09-3d", "binance-spot", "BCH", 116.7, 89.0),
    _C("yen-carry-2024-08-05-3d", "lukmol", "BTC", 61415.06640625, 53991.45703125),
    _C("yen-carry-2024-08-05-3d", "binance-spot", "BTC", 61498.33, 54018.81),
    _C("yen-carry-2024-08-05-3d", "binance-spot", "ETH", 2989.61, 2419.59),
    _C("yen-carry-2024-08-05-3d", "binance-spot", "BNB", 542.9, 464.2),
    _C("yen-carry-2024-08-05-3d", "binance-spot", "SOL", 152.77, 129.78),
    _C("yen-carry-2024-08-05-3d", "binance-spot", "XRP", 0.5607, 0.4889),
    _C("yen-carry-2024-08-05-3d", "binance-spot", "DOGE", 0.11154, 0.09436),
    _C("yen-carry-2024-08-05-3d", "binance-spot", "ADA", 0.3636, 0.3119),
    _C("yen-carry-2024-08-05-3d", "binance-spot", "TRX", 0.1236, 0.1215),
    _C("yen-carry-2024-08-05-3d", "binance-spot", "BCH", 381.6, 309.9),
    _C("yen-carry-2024-08-05-3d", "binance-perp", "BTC", 61483.7, 54003.1),
    _C("yen-carry-2024-08-05-3d", "binance-perp", "ETH", 2988.11, 2418.6),
    _C("yen-carry-2024-08-05-3d", "binance-perp", "BNB", 543.15, 464.2),
    _C("yen-carry-2024-08-05-3d", "binance-perp", "SOL", 152.711, 129.768),
    _C("yen-carry-2024-08-05-3d", "binance-perp", "XRP", 0.5605, 0.4887),
    _C("yen-carry-2024-08-05-3d", "binance-perp", "DOGE", 0.11149, 0.0943),
    _C("yen-carry-2024-08-05-7d", "lukmol", "BTC", 66819.9140625, 53991.45703125),
    _C("yen-carry-2024-08-05-7d", "binance-spot", "BTC", 66784.69, 54018.81),
    _C("yen-carry-2024-08-05-7d", "binance-spot", "ETH", 3317.66, 2419.59),
    _C("yen-carry-2024-08-05-7d", "binance-spot", "BNB", 574.3, 464.2),
    _C("yen-carry-2024-08-05-7d", "binance-spot", "SOL", 182.57, 129.78),
    _C("yen-carry-2024-08-05-7d", "binance-spot", "XRP", 0.6019, 0.4889),
    _C("yen-carry-2024-08-05-7d", "binance-spot", "DOGE", 0.12843, 0.09436),
    _C("yen-carry-2024-08-05-7d", "binance-spot", "ADA", 0.4031, 0.3119),
    _C("yen-carry-2024-08-05-7d", "binance-spot", "TRX", 0.1375, 0.1215),
    _C("yen-carry-2024-08-05-7d", "binance-spot", "BCH", 439.0, 309.9),
    _C("yen-carry-2024-08-05-7d", "binance-perp", "BTC", 66750.0, 54003.1),
    _C("yen-carry-2024-08-05-7d", "binance-perp", "ETH", 3316.87, 2418.6),
    _C("yen-carry-2024-08-05-7d", "binance-perp", "BNB", 574.46, 464.2),
    _C("yen-carry-2024-08-05-7d", "binance-perp", "SOL", 182.509, 129.768),
    _C("yen-carry-2024-08-05-7d", "binance-perp", "XRP", 0.6016, 0.4887),
    _C("yen-carry-2024-08-05-7d", "binance-perp", "DOGE", 0.12837, 0.0943),
)
"""Closes at both ends of each window: (window, source, symbol, start close, end close)."""

MEASURED_DVOL: tuple[MeasuredVol, ...] = (
    _V("china-2021-05-19", "BTC", 117.01, 124.83),
    _V("china-2021-05-19", "ETH", 129.27, 158.27),
    _V("luna-depeg-2022-05-09", "BTC", 68.59, 84.91),
    _V("luna-depeg-2022-05-09", "ETH", 72.52, 89.08),
    _V("luna-collapse-2022-05-12", "BTC", 101.25, 114.58),
    _V("luna-collapse-2022-05-12", "ETH", 110.36, 132.18),
    _V("celsius-2022-06-13", "BTC", 93.99, 106.0),
    _V("celsius-2022-06-13", "ETH", 105.81, 134.62),
    _V("3ac-2022-06-18", "BTC", 108.67, 115.03),
    _V("3ac-2022-06-18", "ETH", 123.1, 137.59),
    _V("ftx-run-2022-11-08", "BTC", 59.48, 76.66),
    _V("ftx-run-2022-11-08", "ETH", 89.29, 104.85),
    _V("ftx-2022-11-09", "BTC", 76.66, 114.72),
    _V("ftx-2022-11-09", "ETH", 104.85, 153.93),
    _V("ftx-rebound-2022-11-10", "BTC", 114.72, 93.12),
    _V("ftx-rebound-2022-11-10", "ETH", 153.93, 124.99),
    _V("yen-carry-2024-08-05", "BTC", 56.13, 63.08),
    _V("yen-carry-2024-08-05", "ETH", 68.27, 76.22),
    _V("cascade-2025-10-10", "BTC", 39.73, 44.11),
    _V("cascade-2025-10-10", "ETH", 64.69, 67.63),
    _V("crash-2026-02-05", "BTC", 53.47, 82.62),
    _V("crash-2026-02-05", "ETH", 78.02, 95.78),
    _V("china-2021-05-19-5d", "BTC", 98.46, 124.83),
    _V("china-2021-05-19-5d", "ETH", 125.3, 158.27),
    _V("china-2021-05-19-7d", "BTC", 93.86, 124.83),
    _V("china-2021-05-19-7d", "ETH", 132.93, 158.27),
    _V("china-2021-05-23-11d", "BTC", 93.86, 156.2),
    _V("china-2021-05-23-11d", "ETH", 132.93, 193.34),
    _V("luna-2022-05", "BTC", 63.13, 114.58),
    _V("luna-2022-05", "ETH", 70.94, 132.18),
    _V("celsius-2022-06-18-8d", "BTC", 72.55, 115.03),
    _V("celsius-2022-06-18-8d", "ETH", 92.46, 137.59),
    _V("ftx-2022-11-09-2d", "BTC", 59.48, 114.72),
    _V("ftx-2022-11-09-2d", "ETH", 89.29, 153.93),
    _V("ftx-2022-11-09-3d", "BTC", 56.76, 114.72),
    _V("ftx-2022-11-09-3d", "ETH", 80.67, 153.93),
    _V("yen-carry-2024-08-05-3d", "BTC", 51.4, 63.08),
    _V("yen-carry-2024-08-05-3d", "ETH", 56.76, 76.22),
    _V("yen-carry-2024-08-05-7d", "BTC", 51.73, 63.08),
    _V("yen-carry-2024-08-05-7d", "ETH", 57.89, 76.22),
)
"""Deribit DVOL closes (percent) at both ends of each window (DVOL starts 2021-03-24)."""
# END MEASURED


# ---------------------------------------------------------------------------------------------
# Building scenarios
# ---------------------------------------------------------------------------------------------

_WINDOWS_BY_NAME: Mapping[str, CrashWindow] = MappingProxyType({w.name: w for w in CRASH_WINDOWS})


def historical_scenario(
    window: str | CrashWindow,
    *,
    prefer: Mapping[str, Sequence[str]] | Sequence[str] = DEFAULT_PREFERENCE,
    closes: Iterable[MeasuredClose] | None = None,
    dvol: Iterable[MeasuredVol] | None = None,
) -> StressScenario:
    """Build the historical :class:`StressScenario` of one window from measured closes.

    Parameters
    ----------
    window : str or CrashWindow
        A name from :data:`CRASH_WINDOWS`, or a window.
    prefer : mapping or sequence of source keys
        Per underlying (``'*'`` for the rest) the sources tried in order; a plain sequence
        applies to every underlying. An underlying with no row from a preferred source is left
        out.
    closes, dvol : iterables of MeasuredClose / MeasuredVol, optional
        Defaults to :data:`MEASURED_CLOSES` / :data:`MEASURED_DVOL`; pass rows measured from
        other data (``analysis.crash_days.measure_closes``) to build a custom scenario.
    """
    w = _WINDOWS_BY_NAME.get(window) if isinstance(window, str) else window
    if w is None:
        raise ValueError(f"window: unknown crash window {window!r}")
    rows = [r for r in (MEASURED_CLOSES if closes is None else closes) if r.window == w.name]
    vols = [r for r in (MEASURED_DVOL if dvol is None else dvol) if r.window == w.name]
    if isinstance(prefer, str):
        prefer = (prefer,)
    pref: Mapping[str, Sequence[str]] = (
        {"*": tuple(prefer)} if not isinstance(prefer, Mapping) else prefer
    )
    by_symbol: dict[str, dict[str, MeasuredClose]] = {}
    for r in rows:
        by_symbol.setdefault(r.symbol, {})[r.source] = r
    moves: dict[str, float] = {}
    used: dict[str, list[str]] = {}
    for sym, per_source in by_symbol.items():
        order = pref.get(sym, pref.get("*", ()))
        for src in order:
            if src in per_source:
                moves[sym] = per_source[src].move
                used.setdefault(src, []).append(sym)
                break
    if not moves:
        raise ValueError(f"window: no measured closes for {w.name} from sources {dict(pref)}")
    vol_moves = {r.symbol: r.change for r in vols}
    src_text = "; ".join(f"{', '.join(syms)}: {k}" for k, syms in used.items())
    if vol_moves:
        src_text += f"; vol: deribit-dvol ({', '.join(vol_moves)})"
    return StressScenario(
        name=w.name,
        label=w.label,
        window=(w.start, w.end),
        price_moves=moves,
        vol_moves=vol_moves,
        source=f"{src_text} [published: {w.reference}]",
        kind="historical",
    )


_HYPO_RULE = (
    "hypothetical: ccp-standards §7.1 proposal where it has one, widened so that it is no "
    "milder than any measured close-to-close move in this library over a horizon <= it, and "
    "vol shifts >= the largest Deribit DVOL rise over that horizon (2021-2026), rounded to 5 %"
)

HYPOTHETICAL_STRESSES: tuple[StressScenario, ...] = (
    StressScenario(
        "btc-minus-30",
        "BTC -30 % in one day, everything else unchanged",
        None,
        {"BTC": -0.30, "*": 0.0},
        {},
        "hypothetical single-underlying shock",
        "hypothetical",
        1,
    ),
    StressScenario(
        "eth-minus-40-vol-up",
        "ETH -40 % in one day with ETH implied vol +50 points, everything else unchanged",
        None,
        {"ETH": -0.40, "*": 0.0},
        {"ETH": 0.50},
        "hypothetical single-underlying shock; +50 vol points ~ the largest 1-day ETH DVOL rise "
        "(+49.08 on 2022-11-09)",
        "hypothetical",
        1,
    ),
    StressScenario(
        "crypto-crash-1d",
        "1-day crypto crash: BTC -40 %, ETH -45 %, others -50 %; vol +40/+50/+50 points",
        None,
        {"BTC": -0.40, "ETH": -0.45, "*": -0.50},
        {"BTC": 0.40, "ETH": 0.50, "*": 0.50},
        _HYPO_RULE,
        "hypothetical",
        1,
    ),
    StressScenario(
        "crypto-crash-3d",
        "2-3-day crypto crash: BTC -40 %, ETH -50 %, others -60 %; vol +60/+75/+75 points",
        None,
        {"BTC": -0.40, "ETH": -0.50, "*": -0.60},
        {"BTC": 0.60, "ETH": 0.75, "*": 0.75},
        _HYPO_RULE,
        "hypothetical",
        3,
    ),
    StressScenario(
        "crypto-crash-7d",
        "5-7-day crypto crash: BTC -50 %, ETH -60 %, others -60 %; vol +65/+80/+80 points",
        None,
        {"BTC": -0.50, "ETH": -0.60, "*": -0.60},
        {"BTC": 0.65, "ETH": 0.80, "*": 0.80},
        _HYPO_RULE,
        "hypothetical",
        7,
    ),
    StressScenario(
        "crypto-rebound-1d",
        "1-day rebound for short books: BTC +25 %, ETH +25 %, others +30 %; vol unchanged",
        None,
        {"BTC": 0.25, "ETH": 0.25, "*": 0.30},
        {},
        _HYPO_RULE,
        "hypothetical",
        1,
    ),
)
"""Hypothetical shocks (see ``docs/history-and-stresses.md`` for the calibration rule)."""


def _build_library() -> Mapping[str, StressScenario]:
    lib: dict[str, StressScenario] = {}
    measured = {r.window for r in MEASURED_CLOSES}
    for w in CRASH_WINDOWS:
        if w.name in measured:
            lib[w.name] = historical_scenario(w)
    for s in HYPOTHETICAL_STRESSES:
        lib[s.name] = s
    return MappingProxyType(lib)


STRESS_LIBRARY: Mapping[str, StressScenario] = _build_library()
"""Every named stress: historical (from the measured table) then hypothetical."""


def stress_names(kind: Kind | None = None) -> tuple[str, ...]:
    """Names in :data:`STRESS_LIBRARY`, optionally only ``'historical'`` or ``'hypothetical'``."""
    if kind not in (None, "historical", "hypothetical"):
        raise ValueError(f"kind: expected 'historical', 'hypothetical' or None, got {kind!r}")
    return tuple(n for n, s in STRESS_LIBRARY.items() if kind is None or s.kind == kind)


def get_stress(name: str) -> StressScenario:
    """The named stress; ValueError listing the known names when absent."""
    try:
        return STRESS_LIBRARY[name]
    except KeyError:
        raise ValueError(
            f"name: unknown stress {name!r}; known: {', '.join(STRESS_LIBRARY)}"
        ) from None


def _has(moves: Mapping[str, float], underlying: str) -> bool:
    return underlying in moves or "*" in moves


def stress_matrix(
    scenarios: Sequence[StressScenario | str],
    underlyings: Sequence[str],
    *,
    proxy: Mapping[str, str] | None = None,
    missing: Literal["error", "zero"] = "error",
    missing_vol: float = 0.0,
) -> StressMatrix:
    """Price and vol moves of ``scenarios`` (rows) for ``underlyings`` (columns).

    Parameters
    ----------
    scenarios : sequence of StressScenario or names
    underlyings : sequence of str
    proxy : mapping, optional
        Underlying -> stand-in underlying used when a scenario lacks it (e.g. ``{'SOL': 'ETH'}``
        for windows before SOL listed, or for its vol move where only BTC/ETH DVOL exist). The
        price and the vol move are looked up separately: own value (or ``'*'``), then the proxy's.
    missing : {'error', 'zero'}
        What to do when an underlying (and its proxy) has no price move: raise ValueError, or
        use 0.
    missing_vol : float
        Vol move used where a scenario has none for an underlying (default 0: no shift).
    """
    if missing not in ("error", "zero"):
        raise ValueError(f"missing: expected 'error' or 'zero', got {missing!r}")
    if not np.isfinite(missing_vol):
        raise ValueError("missing_vol: must be finite")
    if len(set(underlyings)) != len(underlyings):
        raise ValueError(f"underlyings: duplicates in {list(underlyings)}")
    scen = [get_stress(s) if isinstance(s, str) else s for s in scenarios]
    proxy = proxy or {}
    pm = np.empty((len(scen), len(underlyings)))
    vm = np.empty_like(pm)
    for i, s in enumerate(scen):
        for j, u in enumerate(underlyings):
            stand_in = proxy.get(u)
            price_from = next(
                (c for c in (u, stand_in) if c is not None and _has(s.price_moves, c)), None
            )
            if price_from is None:
                if missing == "error":
                    raise ValueError(
                        f"underlyings: stress {s.name} has no price move for {u!r}"
                        + (f" or its proxy {stand_in!r}" if stand_in else "")
                        + "; pass proxy= or missing='zero'"
                    )
                pm[i, j] = 0.0
            else:
                pm[i, j] = s.price_move(price_from)
            vol_from = next(
                (c for c in (u, stand_in) if c is not None and _has(s.vol_moves, c)), None
            )
            vm[i, j] = missing_vol if vol_from is None else s.vol_move(vol_from)
    return StressMatrix(
        tuple(s.name for s in scen),
        tuple(underlyings),
        pm,
        vm,
        np.array([s.horizon_days for s in scen], dtype=np.int64),
    )


def shocked_prices(prices: Mapping[str, float], scenario: StressScenario | str) -> dict[str, float]:
    """Prices after the scenario's moves: ``p * (1 + move)`` per underlying (same units)."""
    s = get_stress(scenario) if isinstance(scenario, str) else scenario
    out: dict[str, float] = {}
    for u, p in prices.items():
        fp = float(p)
        if not (np.isfinite(fp) and fp > 0):
            raise ValueError(f"prices[{u!r}]: must be finite and > 0, got {p!r}")
        out[u] = fp * (1.0 + s.price_move(u))
    return out
