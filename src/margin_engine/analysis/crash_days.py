"""Measure crash-day moves from price and DVOL histories.

These functions recompute the rows of :data:`margin_engine.maths.stress_library.MEASURED_CLOSES`
and :data:`~margin_engine.maths.stress_library.MEASURED_DVOL` from any history (the real files
in ``../shared/data/real`` or a user's own data), and find the worst move over a horizon inside
a period. They take any object with ``dates`` (datetime64, sorted), ``symbols`` and ``closes``
(``[n_dates × n_symbols]``, NaN = missing), such as ``margin_engine.io.history.PriceHistory``;
this module does no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from margin_engine.maths.stress_library import (
    CRASH_WINDOWS,
    CrashWindow,
    MeasuredClose,
    MeasuredVol,
    StressScenario,
    historical_scenario,
)

__all__ = [
    "HistoryLike",
    "WorstMove",
    "close_on",
    "historical_scenarios",
    "measure_closes",
    "measure_dvol",
    "window_move",
    "worst_move",
]


class HistoryLike(Protocol):
    """What the measuring functions need from a history (``PriceHistory`` fits)."""

    @property
    def dates(self) -> npt.NDArray[np.datetime64]: ...

    @property
    def symbols(self) -> tuple[str, ...]: ...

    @property
    def closes(self) -> npt.NDArray[np.float64]: ...


@dataclass(frozen=True)
class WorstMove:
    """The most negative (or positive) close-to-close move over a horizon inside a period.

    ``move`` is the simple return; ``start``/``end`` the ISO dates of its two closes.
    """

    symbol: str
    move: float
    start: str
    end: str
    horizon_days: int


def _day(d: str | np.datetime64) -> np.datetime64:
    try:
        if isinstance(d, np.datetime64):
            return d.astype("datetime64[D]").astype("datetime64[s]")
        return np.datetime64(str(d), "D").astype("datetime64[s]")
    except ValueError:
        raise ValueError(f"date: cannot read {d!r} as a date") from None


def _col(history: HistoryLike, symbol: str) -> int:
    try:
        return tuple(history.symbols).index(symbol)
    except ValueError:
        raise ValueError(f"symbol: {symbol!r} not in history {tuple(history.symbols)}") from None


def close_on(history: HistoryLike, symbol: str, day: str | np.datetime64) -> float | None:
    """The daily close of ``symbol`` labelled ``day`` (00:00 UTC), or None when absent/NaN."""
    t = _day(day)
    dates = np.asarray(history.dates).astype("datetime64[s]")
    i = int(np.searchsorted(dates, t))
    if i >= dates.size or dates[i] != t:
        return None
    v = float(np.asarray(history.closes)[i, _col(history, symbol)])
    return None if math.isnan(v) else v


def window_move(history: HistoryLike, symbol: str, start: str, end: str) -> float:
    """Simple return ``close(end) / close(start) - 1`` of one underlying (dimensionless).

    Raises ValueError naming the missing date when either close is absent.
    """
    a = close_on(history, symbol, start)
    b = close_on(history, symbol, end)
    for d, v in ((start, a), (end, b)):
        if v is None:
            raise ValueError(f"history: no {symbol} close on {d}")
    assert a is not None and b is not None
    return b / a - 1.0


def measure_closes(
    history: HistoryLike,
    source: str,
    windows: Iterable[CrashWindow] = CRASH_WINDOWS,
    symbols: Sequence[str] | None = None,
) -> tuple[MeasuredClose, ...]:
    """Closes at both ends of each window, for every symbol that has both.

    Parameters
    ----------
    history : HistoryLike
        Daily closes (dates at 00:00 UTC).
    source : str
        Source key stored in each row (e.g. ``'binance-spot'``).
    windows : iterable of CrashWindow
    symbols : sequence of str, optional
        Restrict to these symbols (default: all of the history's).
    """
    syms = tuple(history.symbols) if symbols is None else tuple(symbols)
    rows: list[MeasuredClose] = []
    for w in windows:
        for s in syms:
            a = close_on(history, s, w.start)
            b = close_on(history, s, w.end)
            if a is not None and b is not None:
                rows.append(MeasuredClose(w.name, source, s, a, b))
    return tuple(rows)


def measure_dvol(
    dvol: HistoryLike, windows: Iterable[CrashWindow] = CRASH_WINDOWS
) -> tuple[MeasuredVol, ...]:
    """DVOL closes (percent) at both ends of each window.

    ``dvol`` holds DVOL as annualised decimals (``load_dvol``); rows store percent points,
    rounded to 0.01 as published by Deribit.
    """
    rows: list[MeasuredVol] = []
    for w in windows:
        for s in dvol.symbols:
            a = close_on(dvol, s, w.start)
            b = close_on(dvol, s, w.end)
            if a is not None and b is not None:
                rows.append(MeasuredVol(w.name, s, round(100.0 * a, 2), round(100.0 * b, 2)))
    return tuple(rows)


def historical_scenarios(
    history: HistoryLike,
    *,
    source: str = "user",
    dvol: HistoryLike | None = None,
    windows: Iterable[CrashWindow] = CRASH_WINDOWS,
) -> tuple[StressScenario, ...]:
    """Stress scenarios of the windows measured on ``history`` (and ``dvol`` if given).

    Windows for which the history has no underlying at both ends are skipped.
    """
    ws = tuple(windows)
    closes = measure_closes(history, source, ws)
    vols = measure_dvol(dvol, ws) if dvol is not None else ()
    have = {r.window for r in closes}
    return tuple(
        historical_scenario(w, prefer=(source,), closes=closes, dvol=vols)
        for w in ws
        if w.name in have
    )


def worst_move(
    history: HistoryLike,
    symbol: str,
    start: str,
    end: str,
    horizon_days: int,
    *,
    direction: int = -1,
) -> WorstMove:
    """Worst ``horizon_days`` close-to-close move with both closes inside ``[start, end]``.

    Parameters
    ----------
    history : HistoryLike
        Daily closes; a pair of dates is used only when both closes exist.
    symbol : str
    start, end : str
        ISO dates bounding the period (inclusive).
    horizon_days : int
        Calendar days between the two closes (>= 1).
    direction : {-1, +1}
        -1: most negative move (a crash); +1: most positive (a rebound).
    """
    if int(horizon_days) != horizon_days or horizon_days < 1:
        raise ValueError(f"horizon_days: must be an integer >= 1, got {horizon_days!r}")
    if direction not in (-1, 1):
        raise ValueError(f"direction: must be -1 or +1, got {direction!r}")
    lo, hi = _day(start), _day(end)
    dates = np.asarray(history.dates).astype("datetime64[s]")
    col = np.asarray(history.closes)[:, _col(history, symbol)]
    inside = (dates >= lo) & (dates <= hi) & ~np.isnan(col)
    d, c = dates[inside], col[inside]
    h = np.timedelta64(int(horizon_days) * 86_400, "s")
    j = np.searchsorted(d, d - h)
    ok = (j < d.size) & (d[np.minimum(j, d.size - 1)] == d - h)
    if not ok.any():
        raise ValueError(
            f"history: no {horizon_days}-day pair of {symbol} closes in {start}..{end}"
        )
    ends = np.flatnonzero(ok)
    moves = c[ends] / c[j[ends]] - 1.0
    k = int(np.argmin(moves) if direction < 0 else np.argmax(moves))
    e = ends[k]
    return WorstMove(
        symbol,
        float(moves[k]),
        str(d[j[e]].astype("datetime64[D]")),
        str(d[e].astype("datetime64[D]")),
        int(horizon_days),
    )
