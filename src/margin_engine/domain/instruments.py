"""Contract specifications: spot, perpetual, dated future and European option; linear or inverse.

Units: ``contract_size`` is base units per contract for linear contracts and options, USD face
value per contract for inverse futures and perpetuals. Prices are in quote currency (USD/USDT/USDC)
except an option's ``mark_price``, which is in the settlement currency (coin for inverse options).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, Strict, model_validator

from margin_engine.domain.types import FROZEN, Name, Price, Timestamp, Vol


class Kind(StrEnum):
    SPOT = "spot"
    PERPETUAL = "perpetual"
    FUTURE = "future"
    OPTION = "option"


class OptionType(StrEnum):
    CALL = "call"
    PUT = "put"


_MONTHS = {m: i + 1 for i, m in enumerate(
    ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"])}
_DERIBIT = re.compile(
    r"^(?P<und>[A-Z0-9]+?)(?:_(?P<quote>[A-Z]+))?-(?P<day>\d{1,2})(?P<mon>[A-Z]{3})(?P<yy>\d{2})"
    r"(?:-(?P<strike>\d+(?:d\d+)?)-(?P<cp>[CP]))?$", re.ASCII)


def parse_deribit_symbol(symbol: str) -> dict[str, Any] | None:
    """Parse Deribit-style names: ``BTC-27MAR26``, ``BTC-27MAR26-80000-C``, ``BTC-PERPETUAL``.

    Returns the fields the name implies (kind, underlying, expiry at 08:00 UTC, strike,
    option_type), or ``None`` when the name is not in that style. Linear USDC names such as
    ``SOL_USDC-27MAR26-150-C`` carry the underlying before ``_``; ``d`` stands for a decimal point
    in strikes (``XRP_USDC-27MAR26-2d5-C``).
    """
    if symbol.endswith("-PERPETUAL"):
        und = symbol[: -len("-PERPETUAL")].split("_")[0]
        return {"kind": Kind.PERPETUAL, "underlying": und} if und else None
    m = _DERIBIT.match(symbol)
    if not m or m["mon"] not in _MONTHS:
        return None
    try:
        expiry = datetime(2000 + int(m["yy"]), _MONTHS[m["mon"]], int(m["day"]), 8, tzinfo=UTC)
    except ValueError:
        return None
    out: dict[str, Any] = {"underlying": m["und"], "expiry": expiry}
    if m["strike"]:
        out |= {"kind": Kind.OPTION, "strike": float(m["strike"].replace("d", ".")),
                "option_type": OptionType.CALL if m["cp"] == "C" else OptionType.PUT}
    else:
        out["kind"] = Kind.FUTURE
    return out


class Instrument(BaseModel):
    """One listed contract. Fields a Deribit-style symbol implies may be omitted."""

    model_config = FROZEN

    symbol: Name
    kind: Kind
    underlying: Name
    settle: Name
    inverse: Annotated[bool, Strict()] = False
    contract_size: Price = 1.0
    mark_price: Price | None = None
    expiry: Timestamp | None = None
    strike: Price | None = None
    option_type: OptionType | None = None
    mark_iv: Vol | None = None
    underlying_price: Price | None = None

    @model_validator(mode="before")
    @classmethod
    def _fill_from_symbol(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("symbol"), str):
            implied = parse_deribit_symbol(data["symbol"])
            if implied:
                data = {**{k: v for k, v in implied.items() if k not in data}, **data}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Instrument:
        if self.kind is Kind.OPTION:
            missing = [f for f in ("expiry", "strike", "option_type") if getattr(self, f) is None]
            if missing:
                raise ValueError(f"option needs {', '.join(missing)}")
        elif self.kind is Kind.FUTURE:
            if self.expiry is None:
                raise ValueError("dated future needs expiry")
            if self.mark_price is None:
                raise ValueError("mark_price is required for a future")
        else:
            if self.mark_price is None:
                raise ValueError(f"mark_price is required for a {self.kind.value}")
            if self.expiry is not None:
                raise ValueError(f"a {self.kind.value} has no expiry")
        if self.kind is not Kind.OPTION and (self.strike is not None or self.option_type):
            raise ValueError("strike/option_type only apply to options")
        if self.inverse and self.settle != self.underlying:
            raise ValueError(f"an inverse contract settles in its underlying "
                             f"({self.underlying}), not {self.settle}")
        if not self.inverse and self.settle == self.underlying:
            raise ValueError(f"a linear contract settles in a quote currency, not its "
                             f"underlying {self.underlying} (set inverse: true for a "
                             f"coin-settled contract)")
        if self.expiry is not None and self.expiry.tzinfo is None:
            raise ValueError("expiry must carry a time zone (use Z for UTC)")
        return self

    @property
    def is_option(self) -> bool:
        return self.kind is Kind.OPTION

    @property
    def is_call(self) -> bool:
        return self.option_type is OptionType.CALL

    @property
    def has_expiry(self) -> bool:
        return self.expiry is not None
