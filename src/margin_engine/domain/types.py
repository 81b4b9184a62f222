"""Validated scalar types shared by the domain models (pydantic annotated aliases).

Every number is strict (a JSON number: ``true`` and ``"2.5"`` are refused), finite and inside a
documented range whose bounds the error message states (docs/formats.md, "Limits"). Every
timestamp is an ISO-8601 string with a time zone between :data:`TIME_MIN` and :data:`TIME_MAX`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, Strict

#: Frozen, strict-about-unknown-fields, no NaN/inf configuration used by every domain model.
FROZEN = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, str_strip_whitespace=True)

#: Prices (index, fx, marks, strikes, entry prices), USD or coin per unit: (PRICE_MIN, PRICE_MAX].
PRICE_MIN = 1e-8
PRICE_MAX = 1e12
#: Sizes, collateral amounts and order-book quantities: |x| <= AMOUNT_MAX.
AMOUNT_MAX = 1e12
#: The smallest nonzero position size in a book file (|size| below it is a unit or typing
#: error, and its margin would be lost in subnormal floating point); checked by the loader.
SIZE_MIN = 1e-12
#: Chosen leverage: [LEVERAGE_MIN, LEVERAGE_MAX].
LEVERAGE_MIN = 1.0
LEVERAGE_MAX = 200.0
#: Implied volatility (annualised decimal): [VOL_MIN, VOL_MAX].
VOL_MIN = 1e-4
VOL_MAX = 20.0
#: Interest rates (annual decimal): [RATE_MIN, RATE_MAX].
RATE_MIN = -1.0
RATE_MAX = 10.0
#: Timestamps and expiries: [TIME_MIN, TIME_MAX) (Bitcoin's genesis year to 2100).
TIME_MIN = datetime(2009, 1, 1, tzinfo=UTC)
TIME_MAX = datetime(2100, 1, 1, tzinfo=UTC)

#: Kept for callers that still name it: the largest magnitude any amount may have.
ABSURD = AMOUNT_MAX


def _show(x: float) -> str:
    """A number as typed where short (``5e-324``, ``0.5``), else 6 significant digits."""
    r = repr(x)
    return r if len(r) <= 12 else f"{x:.6g}"


def _finite(x: float) -> float:
    if not math.isfinite(x):
        raise ValueError("not a finite number")
    return x


def _within(lo: float, hi: float, *, lo_open: bool = False, what: str = "must be"
            ) -> Callable[[float], float]:
    """A check ``lo <(=) x <= hi`` whose message states the range."""
    shown = f"{'(' if lo_open else '['}{lo:g}, {hi:g}]"

    def check(x: float) -> float:
        _finite(x)
        if x > hi or x < lo or (lo_open and x == lo):
            raise ValueError(f"{what} in {shown}, got {_show(x)}")
        return x
    return check


def _abs_within(hi: float) -> Callable[[float], float]:
    def check(x: float) -> float:
        _finite(x)
        if abs(x) > hi:
            raise ValueError(f"magnitude must be at most {hi:g}, got {_show(x)}")
        return x
    return check


_CHECK_AMOUNT = _abs_within(AMOUNT_MAX)
_CHECK_NONNEG = _within(0.0, AMOUNT_MAX)
_CHECK_PRICE = _within(PRICE_MIN, PRICE_MAX, lo_open=True)
_CHECK_LEVERAGE = _within(LEVERAGE_MIN, LEVERAGE_MAX)
_CHECK_VOL = _within(VOL_MIN, VOL_MAX)
_CHECK_RATE = _within(RATE_MIN, RATE_MAX)


#: A signed size or amount, |x| <= AMOUNT_MAX.
Finite = Annotated[float, Strict(), AfterValidator(_CHECK_AMOUNT)]
Amount = Finite
#: A quantity >= 0 (isolated margin, order-book size), at most AMOUNT_MAX.
NonNegative = Annotated[float, Strict(), AfterValidator(_CHECK_NONNEG)]
#: A price or contract size in (PRICE_MIN, PRICE_MAX].
Price = Annotated[float, Strict(), AfterValidator(_CHECK_PRICE)]
Positive = Price
#: A leverage multiple in [LEVERAGE_MIN, LEVERAGE_MAX].
Leverage = Annotated[float, Strict(), AfterValidator(_CHECK_LEVERAGE)]
#: An implied volatility in [VOL_MIN, VOL_MAX].
Vol = Annotated[float, Strict(), AfterValidator(_CHECK_VOL)]
#: An annual interest rate in [RATE_MIN, RATE_MAX].
Rate = Annotated[float, Strict(), AfterValidator(_CHECK_RATE)]


def _fraction(x: float) -> float:
    _finite(x)
    if not 0.0 <= x < 1.0:
        raise ValueError(f"must be in [0, 1), got {_show(x)}")
    return x


#: A fraction in [0, 1).
Fraction = Annotated[float, Strict(), AfterValidator(_fraction)]

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def _printable(s: str) -> str:
    if _CONTROL.search(s):
        raise ValueError("contains a control character or an unpaired surrogate")
    return s


Name = Annotated[str, Strict(), Field(min_length=1, max_length=128), AfterValidator(_printable)]

_ISO = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
                  r"(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,9})?)?)?"
                  r"(?:Z|[+-][0-9]{2}:?[0-9]{2})?$", re.ASCII)


def _iso_timestamp(v: Any) -> Any:
    """Only an ISO-8601 string (or a ``datetime`` from Python callers) is a timestamp: a number
    or a compact ``20250907`` would otherwise be read as unix seconds."""
    if isinstance(v, datetime):
        return v
    if not isinstance(v, str):
        raise ValueError(f"expected an ISO-8601 string such as 2026-02-04T09:30:00Z, got "
                         f"{type(v).__name__}")
    s = v.strip()
    if not _ISO.match(s):
        raise ValueError(f"expected an ISO-8601 date-time such as 2026-02-04T09:30:00Z, got "
                         f"{s[:40]!r}")
    try:
        return datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"not a valid date-time {s[:40]!r} ({exc})") from None


def _aware_in_range(v: datetime) -> datetime:
    if v.tzinfo is None or v.utcoffset() is None:
        raise ValueError("must carry a time zone (use Z for UTC)")
    if not TIME_MIN <= v < TIME_MAX:
        raise ValueError(f"{v.isoformat()} is outside {TIME_MIN.date()}..{TIME_MAX.date()}")
    return v


#: A zone-aware timestamp in [TIME_MIN, TIME_MAX), given as an ISO-8601 string.
Timestamp = Annotated[datetime, BeforeValidator(_iso_timestamp), AfterValidator(_aware_in_range)]
