"""Daily market snapshots for backtests, built from data up to each day only.

A *market builder* turns a day ``t`` (``datetime64[D]``) into the :class:`MarketSnapshot` of that
day, listing the instruments a backtest book names. Two builders are provided:

- :class:`HistoryMarketBuilder` — from daily closes (:class:`PriceSeries`). The snapshot of day
  ``t`` stands at the close of ``t``: timestamp ``t + 1 day`` 00:00 UTC (a daily close labelled
  ``t`` is the price at 24:00 UTC). The risk-based models read returns ending on or before the
  snapshot date − 1 day, i.e. up to and including the close of ``t``: nothing after ``t``.
  Symbols it lists, for every underlying ``U`` of the history:

  ==================  =========================================================================
  ``UUSDT``           linear perpetual settled in USDT, 1 U per contract, mark = close of t
  ``UUSDC``           the same settled in USDC
  ``U-PERPETUAL``     inverse perpetual settled in U, USD face 10 (BTC) or 1 (others), mark =
                      close of t
  ``U-DDMMMYY``       inverse dated future (expiry 08:00 UTC), mark = close of t (no basis)
  ``U-DDMMMYY-K-C``   inverse European option (``-P`` put), priced with Black-76 at the close
                      (forward = close, zero rates) and the implied vol of the ``vol_index``
                      (Deribit DVOL) on day t, flat across strikes; needs a DVOL series for U
  ==================  =========================================================================

  Dated contracts are listed while their expiry is after the snapshot timestamp.

- :class:`ChainMarketBuilder` — from Deribit option-chain snapshots (the files in
  ``data/real``, see SOURCES.md §4; parse them with :func:`read_option_chain`). The snapshot of
  day ``t`` is that day's chain snapshot (its own timestamp, ~09:30 UTC): the index is the
  median ``index_price`` of the snapshot; options carry the chain's ``implied_volatility``
  (mark IV), ``underlying`` (forward of the expiry) and ``mark_price`` (coin); real dated futures
  (``futures_instrument_name`` not ``SYN.*``) their ``futures_price``; ``U-PERPETUAL`` (inverse)
  and ``UUSDT`` (linear) perpetuals are listed at the index (perpetual basis ignored).

Both builders list only the symbols asked for; a symbol with no data on a day (a missing close,
an option absent from that day's chain, an expired contract) is left out of that day's snapshot.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import re
import statistics
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from margin_engine.domain.history import PriceSeries
from margin_engine.domain.instruments import Instrument, Kind, parse_deribit_symbol
from margin_engine.domain.market import MarketSnapshot

__all__ = [
    "ChainMarketBuilder",
    "HistoryMarketBuilder",
    "MarketBuilder",
    "OptionChain",
    "OptionQuote",
    "chain_index_series",
    "day_of",
    "is_option_chain",
    "read_option_chain",
]

#: USD face value per inverse perpetual/future contract (Deribit: BTC 10, ETH and others 1).
INVERSE_FACE_USD: Mapping[str, float] = {"BTC": 10.0}
STABLES = ("USDT", "USDC")
_FX = {"USDT": 1.0, "USDC": 1.0}
_LINEAR = re.compile(r"^(?P<und>[A-Z0-9]+?)(?P<quote>USDT|USDC)$")
_DAY = np.timedelta64(1, "D")


_ISO_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[T ][0-9:.]+(?:Z|[+-][0-9:]+)?)?$", re.ASCII)


def day_of(value: object, what: str = "date") -> np.datetime64:
    """A day (``datetime64[D]``) from an ISO string, ``date``/``datetime`` or ``datetime64``.

    Raises ValueError naming ``what`` when the value is not a date.
    """
    if isinstance(value, str) and not _ISO_DAY.match(value.strip()):
        # numpy reads '20250907' as the year 20250907
        raise ValueError(f"{what}: not a date (YYYY-MM-DD): {value!r}")
    try:
        d = np.datetime64(value, "D")  # type: ignore[call-overload]
    except (ValueError, TypeError, OverflowError):
        raise ValueError(f"{what}: not a date (YYYY-MM-DD): {value!r}") from None
    if np.isnat(d):
        raise ValueError(f"{what}: not a date (YYYY-MM-DD): {value!r}")
    return d


def _dt(day: np.datetime64) -> datetime:
    """00:00 UTC of ``day`` as an aware datetime."""
    return datetime.fromisoformat(str(day)).replace(tzinfo=UTC)


@runtime_checkable
class MarketBuilder(Protocol):
    """Builds a backtest day's market from data up to that day only.

    ``days()`` are the days a snapshot exists for (sorted ``datetime64[D]``); ``unknown(symbols)``
    says, for each symbol the builder can never list, why (an empty dict when all are known);
    ``snapshot(day, symbols)`` lists those of ``symbols`` that have data on ``day`` (``None``
    when there is no snapshot that day at all).
    """

    def days(self) -> NDArray[np.datetime64]: ...

    def unknown(self, symbols: Sequence[str]) -> dict[str, str]: ...

    def snapshot(self, day: np.datetime64, symbols: Sequence[str]) -> MarketSnapshot | None: ...


def _spec(symbol: str, underlyings: Sequence[str]) -> tuple[Instrument | None, str | None]:
    """A template instrument for a builder symbol (mark filled in per day), or why not."""
    known = ", ".join(underlyings)
    m = _LINEAR.match(symbol)
    if m:
        und, quote = m["und"], m["quote"]
        if und not in underlyings:
            return None, f"no price history for {und} (history has {known})"
        return Instrument(symbol=symbol, kind=Kind.PERPETUAL, underlying=und, settle=quote,
                          inverse=False, contract_size=1.0, mark_price=1.0), None
    parsed = parse_deribit_symbol(symbol)
    if parsed is None or "_" in symbol:
        return None, ("not a backtest symbol (linear perpetuals 'BTCUSDT'/'BTCUSDC', inverse "
                      "'BTC-PERPETUAL', futures 'BTC-27MAR26', options 'BTC-27MAR26-80000-C')")
    und = parsed["underlying"]
    if und not in underlyings:
        return None, f"no price history for {und} (history has {known})"
    face = INVERSE_FACE_USD.get(und, 1.0)
    if parsed["kind"] is Kind.PERPETUAL:
        return Instrument(symbol=symbol, kind=Kind.PERPETUAL, underlying=und, settle=und,
                          inverse=True, contract_size=face, mark_price=1.0), None
    if parsed["kind"] is Kind.FUTURE:
        return Instrument(symbol=symbol, kind=Kind.FUTURE, underlying=und, settle=und,
                          inverse=True, contract_size=face, mark_price=1.0), None
    return Instrument(symbol=symbol, kind=Kind.OPTION, underlying=und, settle=und, inverse=True,
                      contract_size=1.0, mark_iv=1.0, underlying_price=1.0), None


@dataclass(frozen=True, eq=False)
class HistoryMarketBuilder:
    """Snapshots from daily closes (see the module docstring for the symbols and timing).

    Parameters
    ----------
    history : PriceSeries
        Daily closes per underlying (quote currency per unit).
    vol_index : PriceSeries, optional
        Implied-vol index per underlying as annualised decimals (Deribit DVOL / 100), used to
        price options; without it a book with options is rejected.
    """

    history: PriceSeries
    vol_index: PriceSeries | None = None
    _templates: dict[str, Instrument] = field(default_factory=dict, init=False, repr=False)

    def days(self) -> NDArray[np.datetime64]:
        return self.history.dates

    def unknown(self, symbols: Sequence[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for s in symbols:
            ins, why = _spec(s, self.history.symbols)
            if ins is None:
                out[s] = why or "unknown"
                continue
            if ins.is_option and (self.vol_index is None
                                  or ins.underlying not in self.vol_index.symbols):
                out[s] = (f"an option needs an implied-vol index (DVOL) for {ins.underlying}: "
                          "pass the Deribit DVOL file or an option chain file with --history")
                continue
            self._templates[s] = ins
        return out

    def _close(self, series: PriceSeries, und: str, day: np.datetime64) -> float:
        i = int(np.searchsorted(series.dates, day))
        if i >= series.dates.size or series.dates[i] != day or und not in series.symbols:
            return math.nan
        return float(series.closes[i, series.symbols.index(und)])

    def snapshot(self, day: np.datetime64, symbols: Sequence[str]) -> MarketSnapshot | None:
        d = day_of(day)
        i = int(np.searchsorted(self.history.dates, d))
        if i >= self.history.dates.size or self.history.dates[i] != d:
            return None
        row = self.history.closes[i]
        index = {u: float(v) for u, v in zip(self.history.symbols, row, strict=True)
                 if math.isfinite(v)}
        if not index:
            return None
        ts = _dt(d + _DAY)
        missing = [s for s in symbols if s not in self._templates]
        bad = self.unknown(missing) if missing else {}
        if bad:
            s = next(iter(bad))
            raise ValueError(f"symbol: {s!r}: {bad[s]}")
        listed: list[Instrument] = []
        for s in symbols:
            tpl = self._templates[s]
            px = index.get(tpl.underlying)
            if px is None or (tpl.expiry is not None and tpl.expiry <= ts):
                continue
            if tpl.is_option:
                assert self.vol_index is not None
                vol = self._close(self.vol_index, tpl.underlying, d)
                if not vol > 0.0:
                    continue
                listed.append(tpl.model_copy(update={"mark_iv": vol, "underlying_price": px}))
            else:
                listed.append(tpl.model_copy(update={"mark_price": px}))
        return MarketSnapshot(timestamp=ts, index=index, fx=dict(_FX), instruments=tuple(listed))


# ---------------------------------------------------------------------------------------------
# Deribit option chains
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OptionQuote:
    """One option in one chain snapshot: mark IV (decimal), forward (USD), mark (coin)."""

    mark_iv: float
    forward: float
    mark_price: float | None


@dataclass(frozen=True, eq=False)
class OptionChain:
    """Deribit chain snapshots, one per day (the snapshot closest to ``target_time``).

    Attributes
    ----------
    days : datetime64[D] [n], sorted
    timestamps : tuple of datetime, the snapshot instant of each day (UTC)
    index : per day, underlying → median ``index_price`` (USD)
    futures : per day, future symbol → ``futures_price`` (USD)
    options : per day, option symbol → :class:`OptionQuote`
    source : file names read
    """

    days: NDArray[np.datetime64]
    timestamps: tuple[datetime, ...]
    index: tuple[Mapping[str, float], ...]
    futures: tuple[Mapping[str, float], ...]
    options: tuple[Mapping[str, OptionQuote], ...]
    source: str

    def known_options(self) -> frozenset[str]:
        return frozenset(s for day in self.options for s in day)


_CHAIN_COLUMNS = ("timestamp", "instrument_name", "underlying", "mark_price", "futures_price",
                  "futures_instrument_name", "implied_volatility", "currency", "index_price")


@contextmanager
def _open_text(path: Path) -> Iterator[IO[str]]:
    with path.open("rb") as raw:
        gz = raw.read(2) == b"\x1f\x8b"
    if gz:
        with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
            yield f
    else:
        with path.open("r", encoding="utf-8", newline="") as f:
            yield f


def is_option_chain(path: str | Path) -> bool:
    """True when the file's header is a Deribit option-chain header (SOURCES.md §4)."""
    try:
        with _open_text(Path(path)) as f:
            header = next(csv.reader(io.StringIO(f.readline())), [])
    except (OSError, UnicodeDecodeError, EOFError, gzip.BadGzipFile):
        return False
    return {"instrument_name", "implied_volatility", "index_price"} <= set(header)


def _num(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        return math.nan
    return v if math.isfinite(v) else math.nan


def read_option_chain(paths: Sequence[str | Path], *, symbols: Sequence[str] | None = None,
                      target_time: str = "09:30") -> OptionChain:
    """Parse Deribit option-chain CSV files (``.gz`` allowed) into daily snapshots.

    Parameters
    ----------
    paths : the chain files (SOURCES.md §4 columns); several are merged, one snapshot per day.
    symbols : keep only these options (all when None). Index and futures are always kept.
    target_time : of several snapshots on one day, the one closest to this UTC time is used.

    Raises ValueError naming the file of a missing column, or a bad timestamp. Rows with no
    positive IV, forward or index are skipped (the option is then absent that day).
    """
    keep = None if symbols is None else frozenset(symbols)
    hh, mm = (int(x) for x in target_time.split(":"))
    snaps: dict[str, tuple[dict[str, list[float]], dict[str, list[float]],
                           dict[str, OptionQuote]]] = {}
    for p in map(Path, paths):
        with _open_text(p) as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise ValueError(f"{p.name}: empty file")
            col = {c: k for k, c in enumerate(header)}
            lacking = [c for c in _CHAIN_COLUMNS if c not in col]
            if lacking:
                raise ValueError(f"{p.name}: not a Deribit option chain (missing column "
                                 f"{', '.join(lacking)})")
            c_ts, c_name, c_fwd, c_mark, c_fut, c_futn, c_iv, c_ccy, c_idx = (
                col[c] for c in _CHAIN_COLUMNS)
            for row in reader:
                if len(row) < len(header):
                    continue
                ts = row[c_ts]
                if ts not in snaps:
                    snaps[ts] = ({}, {}, {})
                idx, fut, opt = snaps[ts]
                ccy = row[c_ccy]
                ix = _num(row[c_idx])
                if ix > 0:
                    idx.setdefault(ccy, []).append(ix)
                fname = row[c_futn]
                fpx = _num(row[c_fut])
                if fname and not fname.startswith("SYN.") and fpx > 0:
                    fut.setdefault(fname, []).append(fpx)
                name = row[c_name]
                if keep is not None and name not in keep:
                    continue
                iv, fwd, mark = _num(row[c_iv]), _num(row[c_fwd]), _num(row[c_mark])
                if iv > 0 and fwd > 0:
                    opt[name] = OptionQuote(iv, fwd, mark if mark > 0 else None)
    by_day: dict[np.datetime64, tuple[float, datetime, str]] = {}
    for ts in snaps:
        try:
            t = datetime.fromisoformat(ts.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"timestamp: not an ISO time: {ts!r}") from None
        t = t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
        d = np.datetime64(t.date(), "D")
        target = datetime(t.year, t.month, t.day, hh, mm, tzinfo=UTC)
        gap = abs((t - target).total_seconds())
        if d not in by_day or gap < by_day[d][0]:
            by_day[d] = (gap, t, ts)
    days = sorted(by_day)
    chosen = [by_day[d] for d in days]
    return OptionChain(
        days=np.array(days, dtype="datetime64[D]"),
        timestamps=tuple(c[1] for c in chosen),
        index=tuple({u: statistics.median(v) for u, v in snaps[c[2]][0].items()}
                    for c in chosen),
        futures=tuple({s: statistics.median(v) for s, v in snaps[c[2]][1].items()}
                      for c in chosen),
        options=tuple(snaps[c[2]][2] for c in chosen),
        source=" + ".join(Path(p).name for p in paths))


@dataclass(frozen=True, eq=False)
class ChainMarketBuilder:
    """Snapshots from Deribit option-chain snapshots (see the module docstring)."""

    chain: OptionChain
    _known: frozenset[str] = field(default=frozenset(), init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_known", self.chain.known_options())

    def days(self) -> NDArray[np.datetime64]:
        return self.chain.days

    def _underlyings(self) -> list[str]:
        return sorted({u for day in self.chain.index for u in day})

    def unknown(self, symbols: Sequence[str]) -> dict[str, str]:
        unds = self._underlyings()
        futures = {s for day in self.chain.futures for s in day}
        out: dict[str, str] = {}
        for s in symbols:
            m = _LINEAR.match(s)
            parsed = parse_deribit_symbol(s)
            und = m["und"] if m else (parsed or {}).get("underlying")
            if und is None or "_" in s:
                out[s] = ("not a chain-backtest symbol (options 'BTC-27MAR26-80000-C', futures "
                          "'BTC-27MAR26', 'BTC-PERPETUAL', 'BTCUSDT')")
            elif und not in unds:
                out[s] = f"the option chain has no {und} (has {', '.join(unds)})"
            elif parsed and parsed["kind"] is Kind.OPTION and s not in self._known:
                out[s] = "not in the option chain files"
            elif parsed and parsed["kind"] is Kind.FUTURE and s not in futures:
                out[s] = "no such future in the option chain files"
        return out

    def snapshot(self, day: np.datetime64, symbols: Sequence[str]) -> MarketSnapshot | None:
        d = day_of(day)
        k = int(np.searchsorted(self.chain.days, d))
        if k >= self.chain.days.size or self.chain.days[k] != d:
            return None
        ts = self.chain.timestamps[k]
        index = dict(self.chain.index[k])
        if not index:
            return None
        futs, opts = self.chain.futures[k], self.chain.options[k]
        listed: list[Instrument] = []
        for s in symbols:
            m = _LINEAR.match(s)
            if m:
                if m["und"] in index:
                    listed.append(Instrument(symbol=s, kind=Kind.PERPETUAL, underlying=m["und"],
                                             settle=m["quote"], mark_price=index[m["und"]]))
                continue
            parsed = parse_deribit_symbol(s)
            if parsed is None or parsed["underlying"] not in index:
                continue
            und = parsed["underlying"]
            face = INVERSE_FACE_USD.get(und, 1.0)
            if parsed.get("expiry") is not None and parsed["expiry"] <= ts:
                continue
            if parsed["kind"] is Kind.PERPETUAL:
                listed.append(Instrument(symbol=s, kind=Kind.PERPETUAL, underlying=und,
                                         settle=und, inverse=True, contract_size=face,
                                         mark_price=index[und]))
            elif parsed["kind"] is Kind.FUTURE:
                if s in futs:
                    listed.append(Instrument(symbol=s, kind=Kind.FUTURE, underlying=und,
                                             settle=und, inverse=True, contract_size=face,
                                             mark_price=futs[s]))
            elif s in opts:
                q = opts[s]
                listed.append(Instrument(symbol=s, kind=Kind.OPTION, underlying=und, settle=und,
                                         inverse=True, contract_size=1.0, mark_iv=q.mark_iv,
                                         underlying_price=q.forward, mark_price=q.mark_price))
        return MarketSnapshot(timestamp=ts, index=index, fx=dict(_FX), instruments=tuple(listed))


def chain_index_series(chain: OptionChain) -> PriceSeries:
    """The chain's index per day as a :class:`PriceSeries` (NaN where an underlying is absent),
    for models that need a history when only chain files are given."""
    unds = tuple(sorted({u for day in chain.index for u in day}))
    closes = np.array([[day.get(u, math.nan) for u in unds] for day in chain.index],
                      dtype=np.float64).reshape(len(chain.index), len(unds))
    return PriceSeries(chain.days, unds, closes, chain.source)
