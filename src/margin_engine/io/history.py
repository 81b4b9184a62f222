"""Price, implied-volatility and funding history loaders.

Every public loader takes one or more files, recognises each file's format from its header
(not from its name, except where noted) and merges the files on the timestamp.

Recognised formats (``.gz`` and single-member ``.zip`` files are opened transparently):

==========================  ==================================================================
format                      how it is recognised / what is read
==========================  ==================================================================
generic wide CSV            a ``date`` or ``timestamp`` (or ``datetime``/``time``) column and one
                            close column per underlying (``BTC``, ``ETH``, ...). An empty cell
                            means "no data"; ``BTCUSDT``/``BTC-USD``/``btc`` name ``BTC``.
CryptoDataDownload (CDD)    optional URL first line, then ``unix``, ``date``, ``symbol``, ...,
                            ``close``. Time from ``unix`` (s or ms); underlying from ``symbol``
                            (``BTC/USDT``, ``BTCUSDT`` -> ``BTC``).
long CSV                    a time column, a ``symbol``/``coin``/``currency`` column and a
                            ``close`` or ``price`` column (one row per underlying and time).
single-series CSV           a time column and a ``close`` or ``price`` column, no symbol column
                            (Binance USD-M perp files, the lukmol BTC file, Binance Vision klines
                            with a header). Underlying from the file name (``BTCUSDT`` -> BTC).
Binance Vision klines       no header: ``open_time`` (ms or us), open, high, low, close, ...
                            Underlying from the file name (``BTCUSDT-1d-2024-01.csv``).
Deribit DVOL                ``date``, ``symbol``, ``open``, ``high``, ``low``, ``close`` with
                            ``dvol`` in the file name: loaded as ``BTC_DVOL`` (annualised decimal,
                            i.e. the DVOL percent / 100) by :func:`load_history`, as ``BTC`` by
                            :func:`load_dvol`.
Deribit option chain        ``timestamp``, ``instrument_name``, ``currency``, ``index_price``: the
                            index price, median over the rows of each snapshot.
Deribit perp snapshots      ``snapshot_timestamp_ms``, ``coin``, ``perp_futures_mark_price``.
funding                     ``date``, ``funding_mean`` (daily mean of the 8h rates) or Binance API
                            ``fundingTime``, ``fundingRate``, ``symbol``: :func:`load_funding` only.
==========================  ==================================================================

Time convention: a timestamp labels the *start* of its period (Binance kline open time; a daily
date is 00:00 UTC of that day) and the value is the close at the *end* of the period, or the
instant of an observation for snapshot files. Naive times are UTC. Resampling to a coarser
``frequency`` keeps, in each epoch-aligned bucket, the last observation, so the hourly bar opened
at 23:00 gives the daily close.

Merge rule: several files are outer-joined on the timestamp. When two files give the same
underlying, the file given first wins at every timestamp it has; later files only fill the
timestamps it lacks. ``PriceHistory.source`` records, per underlying, the files that contributed.
Without ``frequency`` all files must share one sampling step (coarser steps being multiples of
the finest on the same grid; irregular files only with irregular ones; never daily with
intraday), else ValueError asks for ``frequency='1d'``. Daily closes are never resampled to an
intraday step.

Duplicate timestamps inside one file: identical values are kept once; different values are an
error naming both lines. Exception (documented CDD quirk): in a CDD file where a timestamp appears
both as a legacy row (``unix`` in seconds) and as a new row (``unix`` in ms), the ms row is kept.

Bad input raises ``ValueError`` naming the file, the line and the column: a missing column, a
non-numeric value (numbers are plain ASCII decimals: ``1_000``, full-width digits and ``1,000``
are refused), a value that is ``NaN``/``inf``/``NULL`` text (leave the cell empty instead, in the
wide format), a price outside (1e-8, 1e12], a timestamp outside 2009-01-01..2100-01-01 (so a
compact date ``20250907`` is not read as unix seconds), a column without any value, a duplicate
timestamp with different values, text that is not UTF-8, a corrupt archive, a file over
``MAX_HISTORY_BYTES`` (512 MiB), an unknown format.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import re
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from _csv import Reader as CsvReader

__all__ = [
    "FundingHistory",
    "PriceHistory",
    "Returns",
    "load_dvol",
    "load_funding",
    "load_history",
    "parse_frequency",
    "returns",
]

PathLike = str | Path
_DAY = 86_400

_TIME_COLUMNS = ("timestamp", "date", "datetime", "time", "open_time", "unix")
_WIDE_TIME_COLUMNS = ("date", "timestamp", "datetime", "time")
_SYMBOL_COLUMNS = ("symbol", "coin", "currency", "underlying", "ticker")
_VALUE_COLUMNS = ("close", "price")
_QUOTE_SUFFIXES = ("FDUSD", "USDT", "USDC", "BUSD", "TUSD", "PERP", "USD", "EUR")
_KNOWN_BASES = frozenset(
    ("BTC", "ETH", "SOL", "BNB", "XRP", "DOGE", "ADA", "TRX", "BCH", "LTC", "AVAX", "DOT", "LINK")
)
_FREQ_ALIASES = {"d": "1d", "daily": "1d", "day": "1d", "h": "1h", "hourly": "1h", "hour": "1h"}
_LEGACY_CDD_HOUR = re.compile(r"^(\d{4}-\d{2}-\d{2}) (\d{1,2})-(AM|PM)$")
_NUMBER = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$", re.ASCII)
_NOT_FINITE = frozenset(("nan", "inf", "infinity"))
#: Timestamps are accepted in [_TIME_MIN, _TIME_MAX) (2009-01-01 to 2100-01-01 UTC).
_TIME_MIN = 1_230_768_000
_TIME_MAX = 4_102_444_800
#: Prices (and DVOL percent values) are accepted in (_PRICE_MIN, _PRICE_MAX].
_PRICE_MIN = 1e-8
_PRICE_MAX = 1e12
#: The largest history file read, in bytes (uncompressed size for ``.gz``/``.zip``).
MAX_HISTORY_BYTES = 512 * 1024 * 1024


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------


def _readonly(a: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
    b = np.array(a, copy=True)
    b.setflags(write=False)
    return b


@dataclass(frozen=True)
class PriceHistory:
    """Close prices of several underlyings on one shared, sorted time axis.

    Attributes
    ----------
    dates : ndarray of datetime64[s], shape (n,)
        Sorted, unique UTC timestamps (period start; a daily date is 00:00 UTC).
    symbols : tuple of str
        Underlyings (``'BTC'``, ``'ETH'``, ...), or ``'BTC_DVOL'`` for a DVOL series.
    closes : ndarray of float64, shape (n, len(symbols))
        Close in quote currency (USD/USDT) per unit of underlying; DVOL series are annualised
        decimals. NaN where a series has no data at that timestamp.
    source : tuple of str
        Per symbol, the file names that contributed, in priority order, joined by ``' + '``.
    frequency : str or None
        Sampling step (``'1d'``, ``'1h'``, ...) or None for an irregular series.
    """

    dates: npt.NDArray[np.datetime64]
    symbols: tuple[str, ...]
    closes: npt.NDArray[np.float64]
    source: tuple[str, ...]
    frequency: str | None = None

    def __post_init__(self) -> None:
        dates = np.asarray(self.dates).astype("datetime64[s]")
        closes = np.asarray(self.closes, dtype=np.float64)
        if dates.ndim != 1:
            raise ValueError("dates: must be one-dimensional")
        if closes.shape != (dates.size, len(self.symbols)):
            raise ValueError(
                f"closes: shape {closes.shape} does not match (len(dates), len(symbols)) = "
                f"({dates.size}, {len(self.symbols)})"
            )
        if len(self.source) != len(self.symbols):
            raise ValueError("source: needs one entry per symbol")
        if len(set(self.symbols)) != len(self.symbols):
            raise ValueError(f"symbols: duplicates in {self.symbols}")
        if dates.size > 1 and not bool(np.all(dates[1:] > dates[:-1])):
            raise ValueError("dates: must be strictly increasing")
        finite = closes[~np.isnan(closes)]
        if finite.size and not (np.all(np.isfinite(finite)) and np.all(finite > 0)):
            raise ValueError("closes: values must be > 0 and finite, or NaN for missing")
        object.__setattr__(self, "dates", _readonly(dates))
        object.__setattr__(self, "closes", _readonly(closes))
        object.__setattr__(self, "symbols", tuple(self.symbols))
        object.__setattr__(self, "source", tuple(self.source))

    def column(self, symbol: str) -> npt.NDArray[np.float64]:
        """Closes of one symbol, shape (n,), NaN where missing."""
        return self.closes[:, self._index(symbol)]

    def source_of(self, symbol: str) -> str:
        """The file names that gave ``symbol``'s values."""
        return self.source[self._index(symbol)]

    def close_at(self, symbol: str, date: str | np.datetime64) -> float:
        """Close of ``symbol`` at exactly ``date`` (ISO string or datetime64).

        Raises ValueError when the timestamp is absent or the value is missing there.
        """
        t = np.datetime64(date).astype("datetime64[s]")
        i = int(np.searchsorted(self.dates, t))
        if i >= self.dates.size or self.dates[i] != t:
            raise ValueError(f"date: {date} is not in the history")
        v = float(self.closes[i, self._index(symbol)])
        if math.isnan(v):
            raise ValueError(f"date: {symbol} has no close on {date}")
        return v

    def select(self, symbols: Sequence[str]) -> PriceHistory:
        """A history restricted to ``symbols`` (in that order), dropping all-NaN rows."""
        idx = [self._index(s) for s in symbols]
        closes = self.closes[:, idx]
        keep = ~np.all(np.isnan(closes), axis=1)
        return PriceHistory(
            self.dates[keep],
            tuple(symbols),
            closes[keep],
            tuple(self.source[i] for i in idx),
            self.frequency,
        )

    def _index(self, symbol: str) -> int:
        try:
            return self.symbols.index(symbol)
        except ValueError:
            raise ValueError(f"symbol: {symbol!r} not in history {self.symbols}") from None


@dataclass(frozen=True)
class FundingHistory:
    """Perpetual funding rates on one time axis.

    Attributes
    ----------
    dates : ndarray of datetime64[s], shape (n,)
        Sorted unique UTC timestamps (funding time, or the day for daily aggregates).
    symbols : tuple of str
        Underlyings (``'BTC'``, ...).
    rates : ndarray of float64, shape (n, len(symbols))
        Funding rate as a decimal per funding interval (8h on Binance); for the daily-mean file,
        the mean of that day's 8h rates. NaN where missing.
    source : tuple of str
        Per symbol, the contributing file names joined by ``' + '``.
    frequency : str or None
        Sampling step or None when irregular.
    """

    dates: npt.NDArray[np.datetime64]
    symbols: tuple[str, ...]
    rates: npt.NDArray[np.float64]
    source: tuple[str, ...]
    frequency: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "dates", _readonly(np.asarray(self.dates, "datetime64[s]")))
        object.__setattr__(self, "rates", _readonly(np.asarray(self.rates, np.float64)))


@dataclass(frozen=True)
class Returns:
    """Returns over a fixed horizon, per end timestamp and symbol.

    Attributes
    ----------
    dates : ndarray of datetime64[s], shape (m,)
        End timestamp of each return.
    symbols : tuple of str
    values : ndarray of float64, shape (m, len(symbols))
        Log returns ``ln(P_t / P_{t-h})`` (or simple ``P_t / P_{t-h} - 1``), dimensionless;
        NaN where either price is missing.
    horizon_days : float
        The horizon ``h`` in days.
    overlapping : bool
        Whether consecutive returns overlap (one per timestamp) or are spaced ``h`` apart.
    kind : str
        ``'log'`` or ``'simple'``.
    """

    dates: npt.NDArray[np.datetime64]
    symbols: tuple[str, ...]
    values: npt.NDArray[np.float64]
    horizon_days: float
    overlapping: bool
    kind: str


# ---------------------------------------------------------------------------------------------
# Low-level parsing
# ---------------------------------------------------------------------------------------------


@dataclass
class _Series:
    symbol: str
    times: npt.NDArray[np.int64]  # unix seconds, sorted, unique
    values: npt.NDArray[np.float64]  # finite (no NaN)
    source: str


@contextmanager
def _open_text(path: Path) -> Iterator[IO[str]]:
    """Open a CSV as text, decompressing ``.gz`` and single-member ``.zip`` files."""
    if not path.is_file():
        raise ValueError(f"{path}: file not found")
    size = path.stat().st_size
    if size > MAX_HISTORY_BYTES:
        raise ValueError(f"{path}: file is {size / 2**20:.0f} MiB, over the "
                         f"{MAX_HISTORY_BYTES // 2**20} MiB limit for a history file")
    name = path.name.lower()
    if name.endswith(".gz"):
        with gzip.open(path, "rt", encoding="utf-8-sig", newline="") as fh:
            yield fh
    elif name.endswith(".zip"):
        with zipfile.ZipFile(path) as zf:
            members = [m for m in zf.namelist() if not m.endswith("/")]
            if len(members) != 1:
                raise ValueError(f"{path}: a .zip must hold exactly one CSV, found {members}")
            with zf.open(members[0]) as raw:
                yield io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
    else:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            yield fh


def _iso(t: int) -> str:
    """Unix seconds as an ISO date, or a plain description when out of datetime's range."""
    try:
        return datetime.fromtimestamp(t, UTC).date().isoformat()
    except (OverflowError, OSError, ValueError):
        return f"{t} s after 1970"


def _where(path: Path, line: int, column: str | None = None) -> str:
    return f"{path}: line {line}" + (f", column '{column}'" if column is not None else "")


_TIME_CACHE: dict[str, int] = {}


def _parse_time(text: str, where: str) -> tuple[int, bool]:
    """Parse a timestamp into (unix seconds UTC, was-unix-seconds).

    Numbers are unix time in seconds, milliseconds or microseconds (by magnitude: < 1e11 s,
    < 1e14 ms, else us). Strings are ISO 8601 dates or datetimes ('T' or space; 'Z' or an
    offset; naive means UTC) or the legacy CryptoDataDownload '2017-08-17 04-AM' form.
    """
    s = text.strip()
    if not s:
        raise ValueError(f"{where}: empty date/timestamp")
    if _NUMBER.match(s):
        v = float(s)
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"{where}: bad unix timestamp '{text}'")
        iv = int(s) if s.isdigit() else int(v)
        if v < 1e11:
            out, was_s = iv, True
        elif v < 1e14:
            out, was_s = iv // 1000, False
        else:
            out, was_s = iv // 1_000_000, False
        if not _TIME_MIN <= out < _TIME_MAX:
            hint = (" (a compact date? write it as YYYY-MM-DD)" if len(s) == 8 and s.isdigit()
                    else "")
            raise ValueError(f"{where}: unix time '{s}' is {_iso(out)}, outside "
                             f"2009-01-01..2100-01-01{hint}")
        return out, was_s
    cached = _TIME_CACHE.get(s)
    if cached is not None:
        return cached, False
    if not s.isascii():
        raise ValueError(f"{where}: cannot read '{text}' as a date or timestamp")
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        m = _LEGACY_CDD_HOUR.match(s)
        if m is None:
            raise ValueError(f"{where}: cannot read '{text}' as a date or timestamp") from None
        hour = int(m.group(2)) % 12 + (12 if m.group(3) == "PM" else 0)
        dt = datetime.fromisoformat(f"{m.group(1)}T{hour:02d}:00:00")
    if not 2009 <= dt.year <= 2100:
        raise ValueError(f"{where}: date '{s}' is outside 2009-01-01..2100-01-01")
    dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    out = math.floor(dt.timestamp())
    if not _TIME_MIN <= out < _TIME_MAX:
        raise ValueError(f"{where}: date '{s}' is outside 2009-01-01..2100-01-01")
    if len(_TIME_CACHE) < 200_000:
        _TIME_CACHE[s] = out
    return out, False


def _parse_value(text: str, where: str, *, allow_empty: bool, positive: bool = True) -> float:
    s = text.strip()
    if not s:
        if allow_empty:
            return math.nan
        raise ValueError(f"{where}: empty value")
    if not _NUMBER.match(s):  # float() would also take '1_000' and full-width digits
        if s.lower().lstrip("+-") in _NOT_FINITE:
            hint = " (leave the cell empty for missing data)" if allow_empty else ""
            raise ValueError(f"{where}: not a finite number: '{text}'{hint}")
        raise ValueError(f"{where}: not a number: '{text}'")
    v = float(s)
    if not math.isfinite(v):
        raise ValueError(f"{where}: not a finite number: '{text}'")
    if positive and not _PRICE_MIN < v <= _PRICE_MAX:
        raise ValueError(f"{where}: price must be in ({_PRICE_MIN:g}, {_PRICE_MAX:g}], got {s}")
    return v


def _base_of(pair: str) -> str:
    """Underlying of a pair or column name: 'BTC/USDT', 'BTCUSDT', 'btc-usd', 'BTC' -> 'BTC'."""
    s = pair.strip().upper()
    if s.endswith("_DVOL") and len(s) > 5:
        return s
    for sep in ("/", "-", "_", ":", " "):
        if sep in s:
            head = s.split(sep)[0]
            return head if head else s
    for q in _QUOTE_SUFFIXES:
        if s.endswith(q) and len(s) > len(q) + 1:
            return s[: -len(q)]
    return s


def _symbol_from_filename(path: Path) -> str | None:
    """Underlying named in a file name ('..._BTCUSDT_...', 'BTCUSDT-1d-...', '..._ETH_...')."""
    stem = path.name.upper()
    tokens = [t for t in re.split(r"[_\-.\s]+", stem) if t]
    for tok in tokens:
        for q in _QUOTE_SUFFIXES:
            if tok.endswith(q) and len(tok) > len(q) + 1 and tok[: -len(q)].isalnum():
                return tok[: -len(q)]
    for tok in tokens:
        if tok in _KNOWN_BASES:
            return tok
    return None


def _need_symbol(path: Path) -> str:
    sym = _symbol_from_filename(path)
    if sym is None:
        raise ValueError(
            f"{path}: cannot tell the underlying from the file name; include it (e.g. "
            "'BTCUSDT' or '_BTC_') in the name, or use the wide CSV with a 'BTC' column"
        )
    return sym


def _dedupe(
    path: Path,
    column: str,
    times: npt.NDArray[np.int64],
    values: npt.NDArray[np.float64],
    lines: npt.NDArray[np.int64],
    priority: npt.NDArray[np.int64] | None = None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Sort by time and resolve duplicate timestamps (see the module docstring)."""
    prio = np.zeros_like(times) if priority is None else priority
    order = np.lexsort((lines, -prio, times))
    t, v, ln, p = times[order], values[order], lines[order], prio[order]
    if t.size < 2:
        return t, v
    dup = t[1:] == t[:-1]
    if not dup.any():
        return t, v
    starts = np.flatnonzero(np.r_[True, ~dup])
    ends = np.r_[starts[1:], t.size]
    multi = ends - starts > 1
    for a, b in zip(starts[multi], ends[multi], strict=True):
        top = [i for i in range(a, b) if p[i] == p[a]]
        distinct = {float(v[i]) for i in top}
        if len(distinct) > 1:
            when = datetime.fromtimestamp(int(t[a]), UTC).isoformat()
            shown = ", ".join(f"line {int(ln[i])}: {float(v[i])!r}" for i in top)
            raise ValueError(
                f"{path}: column '{column}': duplicate timestamp {when} with different values "
                f"({shown})"
            )
    return t[starts], v[starts]


def _series_from_rows(
    path: Path,
    column: str,
    symbol: str,
    times: list[int],
    values: list[float],
    lines: list[int],
    priority: list[int] | None = None,
) -> _Series:
    t = np.asarray(times, dtype=np.int64)
    v = np.asarray(values, dtype=np.float64)
    ln = np.asarray(lines, dtype=np.int64)
    pr = None if priority is None else np.asarray(priority, dtype=np.int64)
    keep = ~np.isnan(v)
    if not keep.any():
        raise ValueError(f"{path}: column '{column}' has no values")
    if pr is not None:
        pr = pr[keep]
    t2, v2 = _dedupe(path, column, t[keep], v[keep], ln[keep], pr)
    return _Series(symbol, t2, v2, path.name)


# ---------------------------------------------------------------------------------------------
# One file -> series
# ---------------------------------------------------------------------------------------------

Purpose = Literal["price", "dvol", "funding"]


def _read_file(path: Path, purpose: Purpose) -> list[_Series]:
    """One file's series; undecodable or corrupt files are a ValueError naming the file."""
    try:
        return _read_file_text(path, purpose)
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not valid UTF-8 text ({exc.reason} at byte {exc.start} of "
                         f"a chunk)") from None
    except csv.Error as exc:
        raise ValueError(f"{path}: not a readable CSV ({exc})") from None
    except (EOFError, zipfile.BadZipFile, zlib.error, gzip.BadGzipFile) as exc:
        raise ValueError(f"{path}: corrupt compressed file ({exc})") from None


def _read_file_text(path: Path, purpose: Purpose) -> list[_Series]:
    with _open_text(path) as fh:
        reader = csv.reader(fh)
        first = next(reader, None)
        while first is not None and not any(c.strip() for c in first):
            first = next(reader, None)
        if first is None:
            raise ValueError(f"{path}: empty file")
        if len(first) == 1 and first[0].strip().lower().startswith("http"):
            first = next(reader, None)  # CryptoDataDownload URL line
            if first is None:
                raise ValueError(f"{path}: no header after the URL line")
        header = [c.strip().lower() for c in first]
        if header and _NUMBER.match(header[0]):
            if purpose != "price":
                raise ValueError(f"{path}: headerless klines are price files, not {purpose}")
            return [_read_klines(path, reader, first)]
        return _dispatch(path, reader, header, first, purpose)


def _dispatch(
    path: Path, reader: CsvReader, header: list[str], raw: list[str], purpose: Purpose
) -> list[_Series]:
    cols = set(header)
    hl = reader.line_num
    if len(cols) != len(header):
        dups = sorted({h for h in header if header.count(h) > 1})
        raise ValueError(f"{_where(path, hl)}: duplicate column names {dups}")
    if purpose == "funding":
        return _read_funding(path, reader, header)
    if {"funding_mean"} & cols or {"fundingrate", "fundingtime"} <= cols or "interval_h" in cols:
        raise ValueError(f"{path}: this is a funding-rate file; read it with load_funding")
    if purpose == "dvol":
        return _as_vol(_read_plain(path, reader, header, raw, dvol=True), suffix="")
    if {"timestamp", "instrument_name", "currency", "index_price"} <= cols:
        return _read_chain_index(path, reader, header)
    if {"snapshot_timestamp_ms", "coin", "perp_futures_mark_price"} <= cols:
        return _read_long(
            path, reader, header, "snapshot_timestamp_ms", "coin", "perp_futures_mark_price"
        )
    rejects = (
        ({"trade_id"}, "trade prints"),
        ({"action", "direction"}, "order-book events"),
        ({"direction", "n_orders"}, "an order-book snapshot"),
        ({"user"}, "account-level data"),
        ({"futures_instrument_name"}, "a futures curve"),
        ({"strike"}, "an option chain without index prices"),
    )
    for need, what in rejects:
        if need <= cols:
            raise ValueError(f"{path}: looks like {what}, not a price history")
    if {"unix", "symbol", "close"} <= cols:
        return _read_long(path, reader, header, "unix", "symbol", "close", cdd=True)
    if "dvol" in path.name.lower():
        return _as_vol(_read_plain(path, reader, header, raw, dvol=True), suffix="_DVOL")
    return _read_plain(path, reader, header, raw, dvol=False)


def _as_vol(series: list[_Series], suffix: str) -> list[_Series]:
    """DVOL percent -> annualised decimal, symbols suffixed (``'BTC_DVOL'``) when asked."""
    for s in series:
        s.values = s.values / 100.0
        if suffix and not s.symbol.endswith(suffix):
            s.symbol = f"{s.symbol}{suffix}"
    return series


def _read_plain(
    path: Path, reader: CsvReader, header: list[str], raw: list[str], *, dvol: bool
) -> list[_Series]:
    """Long (time, symbol, close/price), single-series (time, close/price) or wide CSV."""
    cols = set(header)
    tcol = next((c for c in _TIME_COLUMNS if c in cols), None)
    scol = next((c for c in _SYMBOL_COLUMNS if c in cols), None)
    vcol = next((c for c in _VALUE_COLUMNS if c in cols), None)
    if tcol is not None and scol is not None and vcol is not None:
        return _read_long(path, reader, header, tcol, scol, vcol)
    if tcol is not None and vcol is not None:
        return [_read_single(path, reader, header, tcol, vcol, _need_symbol(path))]
    wcol = next((c for c in _WIDE_TIME_COLUMNS if c in cols), None)
    if wcol is None:
        need = "'date', 'symbol' and 'close'" if dvol else "'date' or 'timestamp'"
        raise ValueError(
            f"{_where(path, reader.line_num)}: unrecognised format: no {need} column "
            f"(header: {raw})"
        )
    return _read_wide(path, reader, header, raw, wcol)


def _read_single(
    path: Path, reader: CsvReader, header: list[str], tcol: str, vcol: str, symbol: str
) -> _Series:
    ti, vi = header.index(tcol), header.index(vcol)
    width = max(ti, vi) + 1
    times: list[int] = []
    values: list[float] = []
    lines: list[int] = []
    for row in reader:
        n = reader.line_num
        if not any(c.strip() for c in row):
            continue
        if len(row) < width:
            raise ValueError(f"{_where(path, n)}: {len(row)} fields, expected at least {width}")
        times.append(_parse_time(row[ti], _where(path, n, tcol))[0])
        values.append(_parse_value(row[vi], _where(path, n, vcol), allow_empty=False))
        lines.append(n)
    if not times:
        raise ValueError(f"{path}: no data rows")
    return _series_from_rows(path, vcol, symbol, times, values, lines)


def _read_klines(path: Path, reader: CsvReader, first: list[str]) -> _Series:
    """Binance Vision klines without header: open_time, open, high, low, close, ..."""
    symbol = _need_symbol(path)
    times: list[int] = []
    values: list[float] = []
    lines: list[int] = []

    def take(row: list[str], n: int) -> None:
        if len(row) < 5:
            raise ValueError(f"{_where(path, n)}: {len(row)} fields, a kline needs at least 5")
        times.append(_parse_time(row[0], _where(path, n, "open_time (field 1)"))[0])
        values.append(_parse_value(row[4], _where(path, n, "close (field 5)"), allow_empty=False))
        lines.append(n)

    take(first, reader.line_num)
    for row in reader:
        if any(c.strip() for c in row):
            take(row, reader.line_num)
    return _series_from_rows(path, "close", symbol, times, values, lines)


def _read_long(
    path: Path,
    reader: CsvReader,
    header: list[str],
    tcol: str,
    scol: str,
    vcol: str,
    *,
    cdd: bool = False,
) -> list[_Series]:
    ti, si, vi = header.index(tcol), header.index(scol), header.index(vcol)
    width = max(ti, si, vi) + 1
    acc: dict[str, tuple[list[int], list[float], list[int], list[int]]] = {}
    for row in reader:
        n = reader.line_num
        if not any(c.strip() for c in row):
            continue
        if len(row) < width:
            raise ValueError(f"{_where(path, n)}: {len(row)} fields, expected at least {width}")
        sym_text = row[si].strip()
        if not sym_text:
            raise ValueError(f"{_where(path, n, scol)}: empty symbol")
        sym = _base_of(sym_text)
        t, legacy = _parse_time(row[ti], _where(path, n, tcol))
        v = _parse_value(row[vi], _where(path, n, vcol), allow_empty=False)
        bucket = acc.setdefault(sym, ([], [], [], []))
        bucket[0].append(t)
        bucket[1].append(v)
        bucket[2].append(n)
        bucket[3].append(0 if (cdd and legacy) else 1)
    if not acc:
        raise ValueError(f"{path}: no data rows")
    return [
        _series_from_rows(path, vcol, sym, t, v, ln, pr if cdd else None)
        for sym, (t, v, ln, pr) in acc.items()
    ]


def _read_chain_index(path: Path, reader: CsvReader, header: list[str]) -> list[_Series]:
    """Index price per option-chain snapshot and currency (median over the snapshot's rows)."""
    ti, ci, vi = header.index("timestamp"), header.index("currency"), header.index("index_price")
    width = max(ti, ci, vi) + 1
    acc: dict[str, dict[int, list[float]]] = {}
    for row in reader:
        n = reader.line_num
        if not any(c.strip() for c in row):
            continue
        if len(row) < width:
            raise ValueError(f"{_where(path, n)}: {len(row)} fields, expected at least {width}")
        t = _parse_time(row[ti], _where(path, n, "timestamp"))[0]
        v = _parse_value(row[vi], _where(path, n, "index_price"), allow_empty=False)
        acc.setdefault(_base_of(row[ci]), {}).setdefault(t, []).append(v)
    out = []
    for sym, by_t in acc.items():
        ts = np.array(sorted(by_t), dtype=np.int64)
        vs = np.array([float(np.median(by_t[int(t)])) for t in ts], dtype=np.float64)
        out.append(_Series(sym, ts, vs, path.name))
    if not out:
        raise ValueError(f"{path}: no data rows")
    return out


def _read_wide(
    path: Path, reader: CsvReader, header: list[str], raw: list[str], tcol: str
) -> list[_Series]:
    ti = header.index(tcol)
    names = [(j, raw[j].strip()) for j in range(len(header)) if j != ti]
    if not names:
        raise ValueError(f"{path}: no price columns besides '{raw[ti].strip()}'")
    syms: dict[str, str] = {}
    for _, name in names:
        if not name:
            raise ValueError(f"{path}: line 1: empty column name")
        sym = _base_of(name)
        if sym in syms:
            raise ValueError(
                f"{path}: columns '{syms[sym]}' and '{name}' both name underlying {sym}"
            )
        syms[sym] = name
    times: list[int] = []
    lines: list[int] = []
    cols: list[list[float]] = [[] for _ in names]
    width = len(header)
    for row in reader:
        n = reader.line_num
        if not any(c.strip() for c in row):
            continue
        if len(row) != width:
            raise ValueError(f"{_where(path, n)}: {len(row)} fields, header has {width}")
        times.append(_parse_time(row[ti], _where(path, n, raw[ti].strip()))[0])
        lines.append(n)
        for k, (j, name) in enumerate(names):
            cols[k].append(_parse_value(row[j], _where(path, n, name), allow_empty=True))
    if not times:
        raise ValueError(f"{path}: no data rows")
    return [
        _series_from_rows(path, name, _base_of(name), times, cols[k], lines)
        for k, (_, name) in enumerate(names)
    ]


def _read_funding(path: Path, reader: CsvReader, header: list[str]) -> list[_Series]:
    cols = set(header)

    def collect(tcol: str, vcol: str, scol: str | None, symbol: str | None) -> list[_Series]:
        ti, vi = header.index(tcol), header.index(vcol)
        si = header.index(scol) if scol else None
        width = max(ti, vi, -1 if si is None else si) + 1
        acc: dict[str, tuple[list[int], list[float], list[int]]] = {}
        for row in reader:
            n = reader.line_num
            if not any(c.strip() for c in row):
                continue
            if len(row) < width:
                raise ValueError(f"{_where(path, n)}: {len(row)} fields, expected {width}")
            sym = _base_of(row[si]) if si is not None else symbol
            assert sym is not None
            t = _parse_time(row[ti], _where(path, n, tcol))[0]
            v = _parse_value(row[vi], _where(path, n, vcol), allow_empty=False, positive=False)
            if abs(v) >= 1.0:
                raise ValueError(
                    f"{_where(path, n, vcol)}: funding rate {v} is not a decimal per interval "
                    "(|rate| must be < 1)"
                )
            b = acc.setdefault(sym, ([], [], []))
            b[0].append(t)
            b[1].append(v)
            b[2].append(n)
        if not acc:
            raise ValueError(f"{path}: no data rows")
        return [_series_from_rows(path, vcol, s, *b) for s, b in acc.items()]

    if {"date", "funding_mean"} <= cols:
        return collect("date", "funding_mean", None, _need_symbol(path))
    if {"fundingtime", "fundingrate"} <= cols:
        scol = "symbol" if "symbol" in cols else None
        return collect("fundingtime", "fundingrate", scol, None if scol else _need_symbol(path))
    if {"t", "rate"} <= cols:
        return collect("t", "rate", None, _need_symbol(path))
    raise ValueError(
        f"{path}: not a funding file: need 'date' and 'funding_mean', or 'fundingTime' and "
        "'fundingRate', or 't' and 'rate' columns"
    )


# ---------------------------------------------------------------------------------------------
# Merge
# ---------------------------------------------------------------------------------------------


def parse_frequency(frequency: str) -> int:
    """Sampling step in seconds from ``'1d'``, ``'d'``, ``'daily'``, ``'1h'``, ``'8h'``, ``'15m'``.

    Raises ValueError for anything else.
    """
    f = _FREQ_ALIASES.get(frequency.strip().lower(), frequency.strip().lower())
    m = re.fullmatch(r"(\d+)\s*([dhms])", f)
    if m is None or int(m.group(1)) <= 0:
        raise ValueError(f"frequency: expected e.g. '1d', '1h', '15m', got {frequency!r}")
    return int(m.group(1)) * {"d": _DAY, "h": 3600, "m": 60, "s": 1}[m.group(2)]


def _label(step: int | None) -> str | None:
    if step is None:
        return None
    for unit, size in (("d", _DAY), ("h", 3600), ("m", 60)):
        if step % size == 0:
            return f"{step // size}{unit}"
    return f"{step}s"


def _step_of(times: npt.NDArray[np.int64]) -> int | None:
    """The regular sampling step (smallest gap, all gaps multiples of it), else None."""
    if times.size < 2:
        return None
    d = np.diff(times)
    step = int(d.min())
    if step <= 0 or np.any(d % step):
        return None
    if _DAY % step and step % _DAY:  # only steps that divide a day or are whole days
        return None
    return step


def _resample(s: _Series, step: int) -> _Series:
    if s.times.size == 0:
        return s
    bucket = s.times - s.times % step
    last = np.r_[bucket[1:] != bucket[:-1], True]
    return _Series(s.symbol, bucket[last], s.values[last], s.source)


def _common_step(steps: list[tuple[str, int | None, int]], what: str) -> int | None:
    """The step shared by all files: the smallest, when every other is a multiple of it on the
    same grid and daily files are not mixed with intraday ones; None when all are irregular."""
    regular = [(st, off) for _, st, off in steps if st is not None]
    ok = True
    g: int | None = None
    if regular and len(regular) < len(steps):
        ok = False
    elif regular:
        g = min(st for st, _ in regular)
        ok = all(st % g == 0 and off % g == regular[0][1] % g for st, off in regular)
        ok = ok and not (g < _DAY and any(st % _DAY == 0 for st, _ in regular))
    if not ok:
        shown = ", ".join(f"{name}: {_label(st) or 'irregular'}" for name, st, _ in steps)
        raise ValueError(
            f"frequency: the {what} files are sampled differently ({shown}); pass "
            "frequency='1d' (or another common step) to resample them"
        )
    return g


def _merge(
    files: list[tuple[str, list[_Series]]], frequency: str | None, what: str
) -> tuple[
    npt.NDArray[np.datetime64],
    tuple[str, ...],
    npt.NDArray[np.float64],
    tuple[str, ...],
    str | None,
]:
    # The sampling step of a file is that of all its rows together, so that one column's gaps
    # (a coin listed later, an empty cell) do not change it.
    steps: list[tuple[str, int | None, int]] = []
    for name, ss in files:
        times = np.unique(np.concatenate([x.times for x in ss]))
        st = _step_of(times)
        if times.size >= 2:  # a single row says nothing about sampling
            steps.append((name, st, -1 if st is None else int(times[0] % st)))
    series = [x for _, ss in files for x in ss]
    if frequency is None:
        step = _common_step(steps, what)
    else:
        step = parse_frequency(frequency)
        for name, st, _ in steps:
            if step < _DAY and st is not None and st % _DAY == 0:
                raise ValueError(
                    f"frequency: {name} holds daily closes (sampled every {_label(st)}); it "
                    f"cannot be resampled to the finer {_label(step)}"
                )
        series = [_resample(x, step) for x in series]
    union = np.unique(np.concatenate([s.times for s in series]))
    symbols: list[str] = []
    for s in series:
        if s.symbol not in symbols:
            symbols.append(s.symbol)
    closes = np.full((union.size, len(symbols)), np.nan)
    sources: list[list[str]] = [[] for _ in symbols]
    for s in series:
        k = symbols.index(s.symbol)
        idx = np.searchsorted(union, s.times)
        empty = np.isnan(closes[idx, k])
        if empty.any():
            closes[idx[empty], k] = s.values[empty]
            if s.source not in sources[k]:
                sources[k].append(s.source)
    return (
        union.astype("datetime64[s]"),
        tuple(symbols),
        closes,
        tuple(" + ".join(x) for x in sources),
        _label(step),
    )


def _as_paths(paths: Sequence[PathLike] | PathLike) -> list[Path]:
    if isinstance(paths, str | Path):
        paths = [paths]
    out = [Path(p) for p in paths]
    if not out:
        raise ValueError("paths: at least one file is needed")
    return out


# ---------------------------------------------------------------------------------------------
# Public loaders
# ---------------------------------------------------------------------------------------------


def load_history(
    paths: Sequence[PathLike] | PathLike, *, frequency: str | None = None
) -> PriceHistory:
    """Load and merge close-price files into one :class:`PriceHistory`.

    Parameters
    ----------
    paths : path or sequence of paths
        CSV files in any recognised format (see the module docstring); ``.gz``/``.zip`` allowed.
        Earlier files take priority for an underlying given by several files.
    frequency : str, optional
        Resample every series to this step (``'1d'``, ``'1h'``, ...), keeping the last
        observation in each UTC-aligned bucket. Without it, all files must share one sampling
        step (or all be irregular).

    Returns
    -------
    PriceHistory
        Closes in quote currency per unit; DVOL files give ``<SYM>_DVOL`` columns as decimals.

    Raises
    ------
    ValueError
        Naming the file, line and column of any malformed input.
    """
    files = [(p.name, _read_file(p, "price")) for p in _as_paths(paths)]
    dates, symbols, closes, source, freq = _merge(files, frequency, "price")
    return PriceHistory(dates, symbols, closes, source, freq)


def load_dvol(
    paths: Sequence[PathLike] | PathLike, *, frequency: str | None = None
) -> PriceHistory:
    """Load Deribit DVOL files as implied-volatility histories (annualised decimals).

    Accepts the Deribit DVOL format (``date, symbol, open, high, low, close``; the close is
    used) whatever the file name, and the wide CSV of DVOL percent values. DVOL 124.83 is
    returned as 1.2483. Symbols are the plain underlyings (``'BTC'``, ``'ETH'``).
    """
    files = [(p.name, _read_file(p, "dvol")) for p in _as_paths(paths)]
    for _, ss in files:
        for s in ss:
            if s.symbol.endswith("_DVOL"):
                s.symbol = s.symbol[: -len("_DVOL")]
    dates, symbols, closes, source, freq = _merge(files, frequency, "DVOL")
    return PriceHistory(dates, symbols, closes, source, freq)


def load_funding(
    paths: Sequence[PathLike] | PathLike, *, frequency: str | None = None
) -> FundingHistory:
    """Load perpetual funding-rate files into one :class:`FundingHistory`.

    Formats: the daily-mean file (``date, funding_mean[, funding_abs]``; underlying from the
    file name), Binance API exports (``fundingTime`` in ms, ``fundingRate``, optional
    ``symbol``) and ``t, interval_h, rate`` files. Rates are decimals per funding interval and
    may be negative; ``|rate| >= 1`` is rejected (percent input).
    """
    files = [(p.name, _read_file(p, "funding")) for p in _as_paths(paths)]
    dates, symbols, rates, source, freq = _merge(files, frequency, "funding")
    return FundingHistory(dates, symbols, rates, source, freq)


def returns(
    history: PriceHistory,
    horizon_days: float = 1,
    overlapping: bool = True,
    *,
    kind: Literal["log", "simple"] = "log",
) -> Returns:
    """Returns over ``horizon_days`` ending at each timestamp of a regular history.

    A return ending at ``t`` uses the close at exactly ``t - h``; where that timestamp is
    absent (a gap) or either close is NaN, the return is NaN, so a gap never silently
    stretches the horizon.

    Parameters
    ----------
    history : PriceHistory
        Must be regularly sampled (``history.frequency`` not None).
    horizon_days : float
        Horizon in days (``1/24`` for one hour on hourly data); a multiple of the sampling step.
    overlapping : bool
        True: one return per timestamp. False: returns spaced ``h`` apart, aligned so that the
        last one ends at the last timestamp.
    kind : {'log', 'simple'}
        ``ln(P_t/P_{t-h})`` or ``P_t/P_{t-h} - 1``.
    """
    if kind not in ("log", "simple"):
        raise ValueError(f"kind: expected 'log' or 'simple', got {kind!r}")
    if not (isinstance(horizon_days, int | float) and math.isfinite(horizon_days)) or (
        horizon_days <= 0
    ):
        raise ValueError(f"horizon_days: must be a finite number > 0, got {horizon_days!r}")
    if history.frequency is None:
        raise ValueError(
            "history: irregularly sampled; load it with frequency='1d' (or another step) first"
        )
    step = parse_frequency(history.frequency)
    h = round(horizon_days * _DAY)
    if abs(h - horizon_days * _DAY) > 1e-6 or h % step:
        raise ValueError(
            f"horizon_days: {horizon_days} is not a whole multiple of the sampling step "
            f"{history.frequency}"
        )
    t = history.dates.astype(np.int64)
    idx = np.searchsorted(t, t - h)
    ok = (idx < t.size) & (t[np.minimum(idx, t.size - 1)] == t - h)
    rows = np.flatnonzero(ok)
    if not overlapping and rows.size:
        last = t[rows[-1]]
        rows = rows[(last - t[rows]) % h == 0]
    end = history.closes[rows]
    start = history.closes[idx[rows]]
    with np.errstate(invalid="ignore"):
        vals = np.log(end / start) if kind == "log" else end / start - 1.0
    return Returns(
        history.dates[rows], history.symbols, vals, float(horizon_days), overlapping, kind
    )
