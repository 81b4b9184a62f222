"""Market snapshot: index prices, FX, instrument marks, implied vols, order-book depth.

Prices are USD per unit of the named currency (``index`` for coins, ``fx`` for stablecoins and
fiat). Time to expiry is ACT/365 from ``timestamp``.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import cached_property
from itertools import pairwise
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from margin_engine.domain.instruments import Instrument, Kind
from margin_engine.domain.types import FROZEN, Name, NonNegative, Price, Rate, Timestamp, Vol
from margin_engine.errors import InputError

SECONDS_PER_YEAR = 365.0 * 24 * 3600
USD_NAMES = frozenset({"USD"})


class OrderBook(BaseModel):
    """Depth as ``[price, size]`` levels: bids best (highest) first, asks best (lowest) first."""

    model_config = FROZEN

    bids: tuple[tuple[Price, NonNegative], ...] = ()
    asks: tuple[tuple[Price, NonNegative], ...] = ()

    @model_validator(mode="after")
    def _sorted(self) -> OrderBook:
        b = [p for p, _ in self.bids]
        a = [p for p, _ in self.asks]
        if any(x <= y for x, y in pairwise(b)):
            raise ValueError("bids must be strictly decreasing in price")
        if any(x >= y for x, y in pairwise(a)):
            raise ValueError("asks must be strictly increasing in price")
        if b and a and b[0] >= a[0]:
            raise ValueError(f"crossed book: best bid {b[0]} >= best ask {a[0]}")
        return self


class VolSlice(BaseModel):
    """Implied vols at one expiry on a strike grid (strictly increasing strikes); ``forward``
    is the slice's forward price, informational."""

    model_config = FROZEN

    expiry: Timestamp
    forward: Price | None = None
    strikes: tuple[Price, ...] = Field(min_length=1)
    vols: tuple[Vol, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _shape(self) -> VolSlice:
        if len(self.strikes) != len(self.vols):
            raise ValueError(f"{len(self.strikes)} strikes but {len(self.vols)} vols")
        if any(x >= y for x, y in pairwise(self.strikes)):
            raise ValueError("strikes must be strictly increasing")
        return self

    def vol_at(self, strike: float) -> float:
        """Linear in strike, flat beyond the grid."""
        ks, vs = self.strikes, self.vols
        if strike <= ks[0]:
            return vs[0]
        if strike >= ks[-1]:
            return vs[-1]
        i = bisect.bisect_right(ks, strike)
        w = (strike - ks[i - 1]) / (ks[i] - ks[i - 1])
        return vs[i - 1] + w * (vs[i] - vs[i - 1])


class MarketSnapshot(BaseModel):
    """Everything a margin calculation reads about the market at one instant."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    timestamp: Timestamp
    index: dict[Name, Price]
    fx: dict[Name, Price] = Field(default_factory=dict)
    instruments: tuple[Instrument, ...] = ()
    order_books: dict[Name, OrderBook] = Field(default_factory=dict)
    vol_surface: dict[Name, tuple[VolSlice, ...]] = Field(default_factory=dict)
    rates: dict[Name, Rate] = Field(default_factory=dict)

    @field_validator("timestamp")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError("timestamp must carry a time zone (use Z for UTC)")
        return v

    @model_validator(mode="after")
    def _coherent(self) -> MarketSnapshot:
        problems: list[tuple[str, str]] = []
        seen: dict[str, int] = {}
        for i, ins in enumerate(self.instruments):
            at = f"instruments[{i}]"
            if ins.symbol in seen:
                problems.append((f"{at}.symbol", f"duplicate of instruments[{seen[ins.symbol]}]"))
            seen[ins.symbol] = i
            if ins.underlying not in self.index:
                problems.append((f"{at}.underlying", f"no index price for {ins.underlying!r}"))
            if not self.is_priced(ins.settle):
                problems.append((f"{at}.settle", f"no index or fx price for {ins.settle!r}"))
            if ins.expiry is not None and ins.expiry <= self.timestamp:
                problems.append((f"{at}.expiry", f"expired ({ins.expiry.isoformat()}) at or before "
                                 f"the snapshot timestamp {self.timestamp.isoformat()}"))
            if ins.is_option and ins.mark_iv is None and ins.underlying not in self.vol_surface:
                problems.append((f"{at}.mark_iv", "option has no mark_iv and no vol_surface for "
                                 f"{ins.underlying!r}"))
        for sym in self.order_books:
            if sym not in seen:
                problems.append((f"order_books.{sym}", "no instrument with this symbol"))
        if problems:
            raise ValueError("; ".join(f"{p}: {r}" for p, r in problems))
        return self

    def is_priced(self, currency: str) -> bool:
        return currency in USD_NAMES or currency in self.fx or currency in self.index

    @cached_property
    def _by_symbol(self) -> dict[str, Instrument]:
        return {ins.symbol: ins for ins in self.instruments}

    def model_copy(self, *, update: Mapping[str, Any] | None = None,
                   deep: bool = False) -> MarketSnapshot:
        """A copy (pydantic's), less the symbol lookup cached from the original's instruments."""
        copy = super().model_copy(update=update, deep=deep)
        copy.__dict__.pop("_by_symbol", None)
        return copy

    def has(self, symbol: str) -> bool:
        return symbol in self._by_symbol

    def instrument(self, symbol: str) -> Instrument:
        try:
            return self._by_symbol[symbol]
        except KeyError:
            raise InputError("symbol", f"unknown symbol {symbol!r}") from None

    def usd_price(self, currency: str) -> float:
        """USD value of one unit of ``currency`` (1 for USD, ``fx`` then ``index``)."""
        if currency in USD_NAMES:
            return 1.0
        if currency in self.fx:
            return self.fx[currency]
        if currency in self.index:
            return self.index[currency]
        raise InputError("currency", f"no index or fx price for {currency!r}")

    def convert(self, amount: float, from_ccy: str, to_ccy: str) -> float:
        """Convert an amount between currencies at index/FX prices."""
        if from_ccy == to_ccy:
            return amount
        return amount * self.usd_price(from_ccy) / self.usd_price(to_ccy)

    def years_to_expiry(self, ins: Instrument) -> float:
        """ACT/365 years from the snapshot to expiry (0 for perpetuals and spot)."""
        if ins.expiry is None:
            return 0.0
        return max((ins.expiry - self.timestamp).total_seconds(), 0.0) / SECONDS_PER_YEAR

    def forward(self, ins: Instrument) -> float:
        """Forward for an option: its ``underlying_price``, else a same-expiry future's mark,
        else the index (zero rates)."""
        if ins.underlying_price is not None:
            return ins.underlying_price
        if ins.expiry is not None:
            for other in self.instruments:
                if (other.kind is Kind.FUTURE and other.underlying == ins.underlying
                        and other.expiry == ins.expiry and other.mark_price is not None):
                    return other.mark_price
        return self.index[ins.underlying]

    def forwards(self, instruments: Sequence[Instrument]) -> list[float]:
        """:meth:`forward` of many instruments, the listed futures scanned once (``forward``
        scans every instrument per call: quadratic over a market's options)."""
        table: dict[tuple[str, datetime], float] = {}
        for other in self.instruments:
            if (other.kind is Kind.FUTURE and other.expiry is not None
                    and other.mark_price is not None):
                table.setdefault((other.underlying, other.expiry), other.mark_price)
        out = []
        for ins in instruments:
            if ins.underlying_price is not None:
                out.append(ins.underlying_price)
            elif ins.expiry is not None and (ins.underlying, ins.expiry) in table:
                out.append(table[ins.underlying, ins.expiry])
            else:
                out.append(self.index[ins.underlying])
        return out

    def implied_vol(self, ins: Instrument) -> float:
        """The option's ``mark_iv``, else the surface interpolated in strike (linear, flat
        outside) and expiry (linear in total variance, flat vol outside)."""
        if ins.mark_iv is not None:
            return ins.mark_iv
        slices = sorted(self.vol_surface.get(ins.underlying, ()), key=lambda s: s.expiry)
        if not slices or ins.strike is None or ins.expiry is None:
            raise InputError("mark_iv", f"no implied vol for {ins.symbol!r}")
        k, t = ins.strike, ins.expiry
        if t <= slices[0].expiry:
            return slices[0].vol_at(k)
        if t >= slices[-1].expiry:
            return slices[-1].vol_at(k)
        j = next(i for i, s in enumerate(slices) if s.expiry >= t)
        lo, hi = slices[j - 1], slices[j]
        t0, t1, tx = self._years(lo.expiry), self._years(hi.expiry), self._years(t)
        w0, w1 = lo.vol_at(k) ** 2 * t0, hi.vol_at(k) ** 2 * t1
        w = w0 + (w1 - w0) * (tx - t0) / (t1 - t0)
        return math.sqrt(max(w, 0.0) / tx)

    def _years(self, when: datetime) -> float:
        return max((when - self.timestamp).total_seconds(), 0.0) / SECONDS_PER_YEAR
