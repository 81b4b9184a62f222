"""Daily close prices of several underlyings, as the risk-based models consume them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True, eq=False)
class PriceSeries:
    """Closes on a shared daily axis.

    Attributes
    ----------
    dates : datetime64[D] [n], strictly increasing
    symbols : tuple of str, one per column (``BTC``, ``ETH``, ...)
    closes : float64 [n, n_symbols], quote currency per unit; NaN where a series has no close
    source : str, where the data came from (file names, or ``synthetic seed 7``)
    """

    dates: NDArray[np.datetime64]
    symbols: tuple[str, ...]
    closes: NDArray[np.float64]
    source: str

    def __post_init__(self) -> None:
        d = np.asarray(self.dates, dtype="datetime64[D]")
        c = np.asarray(self.closes, dtype=np.float64)
        if c.ndim != 2 or c.shape != (d.size, len(self.symbols)):
            raise ValueError(f"closes: shape {c.shape}, expected ({d.size}, {len(self.symbols)})")
        if d.size > 1 and not (np.diff(d.astype(np.int64)) > 0).all():
            raise ValueError("dates: must be strictly increasing")
        ok = np.isnan(c) | (c > 0)
        if not ok.all() or np.isinf(c).any():
            raise ValueError("closes: prices must be positive and finite (NaN = missing)")
        d.setflags(write=False)
        c.setflags(write=False)
        object.__setattr__(self, "dates", d)
        object.__setattr__(self, "closes", c)

    def content_hash(self) -> str:
        """SHA-256 (16 hex digits) of dates, symbols and closes: the parameter-hash input."""
        h = hashlib.sha256()
        h.update(",".join(self.symbols).encode())
        h.update(self.dates.astype(np.int64).tobytes())
        h.update(np.ascontiguousarray(self.closes).tobytes())
        return h.hexdigest()[:16]

    def log_returns(self, symbols: tuple[str, ...], until: np.datetime64
                    ) -> tuple[NDArray[np.float64], list[str]]:
        """Daily log returns [n, len(symbols)] for returns ending on or before ``until``, with
        their end dates. A missing symbol is an error; a gap in the dates gives no return."""
        missing = [s for s in symbols if s not in self.symbols]
        if missing:
            raise KeyError(", ".join(missing))
        cols = [self.symbols.index(s) for s in symbols]
        keep = self.dates <= until
        d, c = self.dates[keep], self.closes[keep][:, cols]
        consecutive = np.diff(d.astype(np.int64)) == 1
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.log(c[1:] / c[:-1])
        r[~consecutive] = np.nan
        return r, [str(x) for x in d[1:]]
