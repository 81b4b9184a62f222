"""Replay the real market files of ``../shared/data/real`` as partial market updates
(DESIGN §8 ``--feed replay:FILE[,FILE...][@SPEED]``).

Two kinds of file are read, told apart by their header:

- Binance USDⓈ-M hourly perpetual bars (``binance_usdm_perp_1h_<SYMBOL>_*.csv.gz``; SOURCES.md
  §2): one observation per bar at its end (``close_time`` + 1 ms), the bar's close as the
  venue's last traded price of ``<SYMBOL>`` and as Binance's price of its underlying;
- Deribit option-chain snapshots (``deribit_options_chain_*.csv.gz``; SOURCES.md §4): one
  observation per snapshot: Deribit's index per currency, every dated future's mark, and every
  option's mark (coin), implied vol and forward.

Several files are merged in time order (:func:`read_quotes`). :class:`ReplayPricer` turns each
observation into an update of the live market:

- **index** per underlying: :func:`~margin_engine.policy.index_price.composite_index` over the
  venues seen so far (Binance's bar close, Deribit's index), stale sources (older than
  :data:`REPLAY_INDEX_RULE`'s ``max_age_s``) and outliers handled as Deribit's capped median;
- **perpetual mark** of a quoted perpetual:
  :func:`~margin_engine.policy.mark_price.perpetual_mark_price` (Binance's median of the index
  with funding carry, the index plus the basis moving average, and the last price); the hourly
  files carry no funding rate, so the funding term is 0 and ``price1`` is the index;
- futures, options: the snapshot's marks, implied vols and forwards as published;
- instruments the observation does not quote, on an underlying whose index moved: perpetual and
  future marks and option forwards move with the index (their last basis kept as a ratio);
  option marks move only when a chain snapshot quotes them.
"""

from __future__ import annotations

import csv
import gzip
import heapq
import math
import re
import statistics
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from margin_engine.domain.instruments import Kind
from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError
from margin_engine.policy.index_price import IndexRule, SourcePrice, composite_index
from margin_engine.policy.mark_price import basis_moving_average, perpetual_mark_price

REPLAY_INDEX_RULE = IndexRule(max_age_s=3600.0, cap_band=0.005)
"""Deribit's capped median (±0.5 %, support.deribit.com "Index Prices", read 2026-12) with the
staleness bound set to the files' sampling: a source is fresh for one hourly bar (3,600 s;
derived from the data, not a venue's figure; Deribit's own bound is 180 s on live books)."""

BASIS_WINDOW = 30
"""Observations in the basis moving average (Binance: 30 one-second points, FAQ "Mark Price",
2025-09-16; here 30 observations of the replayed files, i.e. up to 30 hours)."""

BARS = ("timestamp", "close", "close_time")
CHAIN = ("timestamp", "instrument_name", "underlying", "mark_price", "futures_price",
         "futures_instrument_name", "implied_volatility", "currency", "index_price")
_BAR_FILE = re.compile(r"perp_1h_([A-Z0-9]+?)(USDT|USDC)_")


@dataclass(frozen=True)
class Quote:
    """One venue's observation at one time.

    Attributes
    ----------
    time : datetime
        UTC.
    source : str
        The venue (``binance-usdm``, ``deribit``).
    index : mapping
        Underlying → this venue's price of it (USD).
    last : mapping
        Perpetual symbol → last traded price (quote currency per coin).
    marks : mapping
        Dated future symbol → mark.
    options : mapping
        Option symbol → ``(mark in coin or None, implied vol as a fraction, forward USD)``.
    """

    time: datetime
    source: str
    index: Mapping[str, float] = field(default_factory=dict)
    last: Mapping[str, float] = field(default_factory=dict)
    marks: Mapping[str, float] = field(default_factory=dict)
    options: Mapping[str, tuple[float | None, float, float]] = field(default_factory=dict)


def _open(path: Path) -> IO[str]:
    with path.open("rb") as raw:
        gz = raw.read(2) == b"\x1f\x8b"
    if gz:
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return path.open("r", encoding="utf-8", newline="")


def _header(path: Path) -> list[str]:
    try:
        with _open(path) as f:
            return next(csv.reader(f), [])
    except (OSError, UnicodeDecodeError, EOFError, gzip.BadGzipFile) as exc:
        raise InputError(f"replay:{path.name}", f"cannot read: {exc}") from None


def file_kind(path: Path) -> str:
    """``bars`` or ``chain`` from the file's header.

    Raises
    ------
    InputError
        ``replay:<file>``: neither header, or a bar file whose name gives no symbol.
    """
    cols = set(_header(path))
    if set(CHAIN) <= cols:
        return "chain"
    if set(BARS) <= cols:
        if not _BAR_FILE.search(path.name):
            raise InputError(f"replay:{path.name}", "an hourly bar file must be named "
                             "..._perp_1h_<SYMBOL>_... (e.g. BTCUSDT)")
        return "bars"
    raise InputError(f"replay:{path.name}", "neither Binance hourly perpetual bars (timestamp, "
                     "close, close_time) nor a Deribit option chain (instrument_name, "
                     "implied_volatility, index_price, ...)")


def _num(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        return math.nan
    return v if math.isfinite(v) else math.nan


def _bars(path: Path) -> Iterator[Quote]:
    m = _BAR_FILE.search(path.name)
    assert m is not None
    symbol, und = m[1] + m[2], m[1]
    with _open(path) as f:
        reader = csv.DictReader(f)
        for row in reader:
            close, end = _num(row["close"]), _num(row["close_time"])
            if not (close > 0 and end > 0):
                continue
            t = datetime.fromtimestamp((end + 1) / 1000.0, UTC)
            yield Quote(t, "binance-usdm", {und: close}, {symbol: close})


def _chain(path: Path) -> Iterator[Quote]:
    with _open(path) as f:
        reader = csv.reader(f)
        col = {c: k for k, c in enumerate(next(reader))}
        c_ts, c_name, c_fwd, c_mark, c_fut, c_futn, c_iv, c_ccy, c_idx = (col[c] for c in CHAIN)
        stamp: str | None = None
        idx: dict[str, list[float]] = {}
        fut: dict[str, list[float]] = {}
        opt: dict[str, tuple[float | None, float, float]] = {}

        def flush() -> Quote | None:
            if stamp is None:
                return None
            t = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
            t = t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
            return Quote(t, "deribit", {u: statistics.median(v) for u, v in idx.items()}, {},
                         {s: statistics.median(v) for s, v in fut.items()}, dict(opt))

        for row in reader:
            if len(row) < len(col):
                continue
            if row[c_ts] != stamp:
                q = flush()
                if q is not None:
                    yield q
                stamp, idx, fut, opt = row[c_ts], {}, {}, {}
            ix = _num(row[c_idx])
            if ix > 0:
                idx.setdefault(row[c_ccy], []).append(ix)
            fname, fpx = row[c_futn], _num(row[c_fut])
            if fname and not fname.startswith("SYN.") and fpx > 0:
                fut.setdefault(fname, []).append(fpx)
            iv, fwd, mark = _num(row[c_iv]), _num(row[c_fwd]), _num(row[c_mark])
            if iv > 0 and fwd > 0:
                opt[row[c_name]] = (mark if mark > 0 else None, iv, fwd)
        q = flush()
        if q is not None:
            yield q


def read_quotes(paths: Sequence[Path]) -> Iterator[Quote]:
    """Every file's observations merged in time order (ties: in the order of ``paths``).

    Raises
    ------
    InputError
        ``replay:<file>``: a file that is neither kind (checked before anything is read).
    """
    kinds = [file_kind(p) for p in paths]
    streams = [(_bars(p) if k == "bars" else _chain(p)) for p, k in zip(paths, kinds,
                                                                       strict=True)]
    keyed = [((q.time, n, q) for q in s) for n, s in enumerate(streams)]
    for _t, _n, q in heapq.merge(*keyed, key=lambda x: (x[0], x[1])):
        yield q


class ReplayPricer:
    """Turns :class:`Quote` observations into partial market updates (module docstring).

    Parameters
    ----------
    rule : IndexRule
        How the index treats stale and outlying venues (:data:`REPLAY_INDEX_RULE`).
    """

    def __init__(self, rule: IndexRule = REPLAY_INDEX_RULE) -> None:
        self.rule = rule
        self.sources: dict[str, dict[str, SourcePrice]] = {}
        self._basis: dict[str, deque[tuple[float, float]]] = {}

    def observe(self, q: Quote) -> None:
        """Record the venue's prices (also for observations before the live market's time,
        so the index has its sources when the replay catches up)."""
        for und, px in q.index.items():
            self.sources.setdefault(und, {})[q.source] = SourcePrice(q.source, px,
                                                                     q.time.timestamp())

    def index(self, underlying: str, now: float) -> float | None:
        """The composite index of ``underlying`` at ``now`` (None: no fresh source)."""
        srcs = list(self.sources.get(underlying, {}).values())
        try:
            return composite_index(srcs, now, self.rule).price
        except InputError:
            return None

    def update(self, q: Quote, market: MarketSnapshot) -> dict[str, Any]:
        """The partial update (``POST /v1/market`` body) this observation makes of ``market``:
        only the underlyings and instruments the market has."""
        self.observe(q)
        now = q.time.timestamp()
        index: dict[str, float] = {}
        for und in q.index:
            if und in market.index:
                px = self.index(und, now)
                if px is not None:
                    index[und] = px
        items: dict[str, dict[str, float]] = {}
        for sym, last in q.last.items():
            if not market.has(sym):
                continue
            ins = market.instrument(sym)
            if ins.kind is not Kind.PERPETUAL or ins.underlying not in index:
                continue
            ix = index[ins.underlying]
            window = self._basis.setdefault(sym, deque(maxlen=BASIS_WINDOW))
            window.append((last, ix))
            ma = basis_moving_average([m for m, _ in window], [i for _, i in window])
            items[sym] = {"mark_price": perpetual_mark_price(ix, last, ma, 0.0, 0.0).price}
        for sym, mark in q.marks.items():
            if market.has(sym) and market.instrument(sym).kind is Kind.FUTURE:
                items[sym] = {"mark_price": mark}
        for sym, (omark, iv, fwd) in q.options.items():
            if market.has(sym) and market.instrument(sym).is_option:
                doc = {"mark_iv": iv, "underlying_price": fwd}
                if omark is not None:
                    doc["mark_price"] = omark
                items[sym] = doc
        for ins in market.instruments:  # the rest follows its underlying's index
            und = ins.underlying
            if ins.symbol in items or und not in index or und not in market.index:
                continue
            ratio = index[und] / market.index[und]
            if ins.kind in (Kind.PERPETUAL, Kind.FUTURE) and ins.mark_price is not None:
                items[ins.symbol] = {"mark_price": ins.mark_price * ratio}
            elif ins.is_option and ins.underlying_price is not None:
                items[ins.symbol] = {"underlying_price": ins.underlying_price * ratio}
        out: dict[str, Any] = {"timestamp": q.time.isoformat().replace("+00:00", "Z")}
        if index:
            out["index"] = index
        if items:
            out["instruments"] = [{"symbol": s, **v} for s, v in items.items()]
        return out


def first_expiry(market: MarketSnapshot) -> datetime | None:
    """The earliest expiry among the market's instruments (the replay stops before it: the
    live book does not settle expiries)."""
    exp = [i.expiry for i in market.instruments if i.expiry is not None]
    return min(exp) if exp else None
