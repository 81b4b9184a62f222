"""Read a recorded price path (``--path``): hourly perpetual closes from a CSV file.

Accepted layout: a header with ``timestamp`` (Unix milliseconds, or ISO-8601) and ``close``
columns, one row per step in time order, optionally gzip-compressed (``.gz``), as the Binance
USDⓈ-M hourly files in ``../shared/data/real``. The coin is named by the caller
(``COIN=FILE``) or read from the file name (``..._BTCUSDT_...`` → ``BTC``).
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from margin_engine.analysis.cascade.shock import PricePath, path_from_prices
from margin_engine.errors import InputError

_COIN = re.compile(r"(?:^|_)([A-Z0-9]{2,10})(?:USDT|USDC|USD)(?:_|\.|$)")


def _when(raw: str, at: str) -> datetime:
    try:
        if raw.strip().lstrip("-").isdigit():
            return datetime.fromtimestamp(int(raw) / 1000.0, tz=UTC)
        d = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        raise InputError(at, f"not a timestamp: {raw!r}") from None
    return d if d.tzinfo else d.replace(tzinfo=UTC)


def parse_start(raw: str) -> datetime:
    """``--start``: an ISO-8601 date or time (UTC unless it says)."""
    return _when(raw, "--start")


def read_closes(spec: str) -> tuple[str, list[datetime], list[float]]:
    """``[COIN=]FILE`` → (coin, times, closes).

    Raises
    ------
    InputError
        ``--path``: unreadable file, missing columns, a bad row or no coin in the name.
    """
    coin, sep, name = spec.partition("=")
    if not sep:
        coin, name = "", spec
    p = Path(name)
    if not coin:
        m = _COIN.search(p.name)
        if m is None:
            raise InputError("--path", f"cannot tell the coin from {p.name!r}: write COIN=FILE")
        coin = m.group(1)
    try:
        raw = p.read_bytes()
        text = gzip.decompress(raw).decode() if p.suffix == ".gz" else raw.decode()
    except (OSError, EOFError, UnicodeDecodeError, gzip.BadGzipFile) as exc:
        raise InputError("--path", f"cannot read {name}: {exc}") from None
    reader = csv.DictReader(io.StringIO(text))
    cols = set(reader.fieldnames or ())
    if not {"timestamp", "close"} <= cols:
        raise InputError("--path", f"{p.name}: needs timestamp and close columns")
    times, closes = [], []
    for n, row in enumerate(reader):
        at = f"--path[{n + 1}]"
        times.append(_when(row["timestamp"], f"{at}.timestamp"))
        try:
            closes.append(float(row["close"]))
        except ValueError:
            raise InputError(f"{at}.close", f"not a number: {row['close']!r}") from None
    return coin.upper(), times, closes


def load_path(specs: list[str], start: datetime | None = None, hours: int | None = None
              ) -> PricePath:
    """Hourly paths of one or more coins on common times: from ``start`` (inclusive; the
    first row otherwise) for ``hours`` steps (to the end otherwise).

    Raises
    ------
    InputError
        When the window is empty, the steps are not hourly, or the coins' times differ.
    """
    if hours is not None and hours < 1:
        raise InputError("--hours", f"must be >= 1, got {hours}")
    coins, columns, times0 = [], [], None
    for spec in specs:
        coin, times, closes = read_closes(spec)
        t = np.array([x.timestamp() for x in times])
        c = np.array(closes)
        lo = 0 if start is None else int(np.searchsorted(t, start.timestamp()))
        hi = len(t) if hours is None else lo + hours + 1
        if hi > len(t) or lo >= len(t) or hi - lo < 2:
            raise InputError("--start", f"{coin}: the file does not cover the window")
        t, c = t[lo:hi], c[lo:hi]
        if times0 is not None and (len(t) != len(times0) or np.any(t != times0)):
            raise InputError("--path", f"{coin}: times differ from the first path's")
        steps = np.diff(t)
        if np.any(steps != steps[0]) or steps[0] <= 0:
            raise InputError("--path", f"{coin}: steps are not evenly spaced in the window")
        times0 = t
        coins.append(coin)
        columns.append(c)
    if len(set(coins)) != len(coins):
        raise InputError("--path", "a coin given twice")
    assert times0 is not None
    first = datetime.fromtimestamp(float(times0[0]), tz=UTC)
    label = (f"path {', '.join(coins)} {first:%Y-%m-%d %H:%M} UTC, "
             f"{len(times0) - 1} steps of {int(times0[1] - times0[0])} s")
    return path_from_prices(coins, np.column_stack(columns),
                            step_seconds=float(times0[1] - times0[0]), label=label)
