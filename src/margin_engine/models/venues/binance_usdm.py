"""Binance USDⓈ-M futures: notional brackets with a maintenance amount (research/crypto-venues §3).

Per position, with notional ``N = |size|·contract_size·mark`` (quote currency):

- ``IM = N / leverage`` with the account's leverage for the symbol. A leverage above the
  ``initialLeverage`` of the bracket holding ``N`` is refused, as Binance refuses it (an input
  error naming ``leverage.SYMBOL``), unless the notional at the position's entry price allowed
  it (the price has moved since); the default leverage (20×) of an account that sets none is
  lowered to the bracket's maximum and the position's details say so;
- ``MM = N·maintMarginRatio − cum`` of the bracket holding ``N``;
- ``cum_1 = 0``, ``cum_n = cum_{n−1} + notionalFloor_n·(MMR_n − MMR_{n−1})``.

Isolated: one unit per position. Cross: one unit per margin asset (USDT, USDC). The liquidation
price is Binance's one-way-mode closed form, solved with the other positions of the unit held at
their marks and the bracket re-evaluated at the price found.
"""

from __future__ import annotations

import json
from importlib import resources
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from margin_engine.domain.book import Account, MarginMode
from margin_engine.domain.instruments import Instrument, Kind
from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError, first_validation_problem
from margin_engine.models.core.base import MarginModel, ModelParams
from margin_engine.models.core.registry import register
from margin_engine.models.core.results import PositionMargin, UnitMargin
from margin_engine.models.core.units import MarginUnit
from margin_engine.models.core.valuation import mark, unrealised_pnl

#: Shipped bracket tables by the date they were recorded; ``brackets=DATE`` selects one.
TABLES = {"2024-10-24": "binance_usdm_brackets_2024-10-24.json",
          "2021-03-18": "binance_usdm_brackets_2021-03-18.json"}
DEFAULT_TABLE_DATE = "2024-10-24"
STABLE_SETTLE = frozenset({"USDT", "USDC", "FDUSD", "BUSD"})


class Bracket(BaseModel):
    """One row of ``GET /fapi/v1/leverageBracket`` (Binance's own field names)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    bracket: int = Field(ge=1)
    initialLeverage: Annotated[float, Field(gt=0)]
    notionalFloor: Annotated[float, Field(ge=0)]
    notionalCap: Annotated[float, Field(gt=0)]
    maintMarginRatio: Annotated[float, Field(ge=0, lt=1)]
    cum: Annotated[float, Field(ge=0)]


class SymbolBrackets(BaseModel):
    """A symbol's bracket table, validated: contiguous, increasing, ``cum`` by the recursion."""

    model_config = ConfigDict(frozen=True, extra="ignore", allow_inf_nan=False)

    symbol: str
    brackets: tuple[Bracket, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _valid(self) -> SymbolBrackets:
        rows = self.brackets
        if rows[0].notionalFloor != 0:
            raise ValueError("brackets[0].notionalFloor: the first bracket must start at 0")
        if rows[0].cum != 0:
            raise ValueError("brackets[0].cum: the first bracket's cum must be 0")
        for n, (prev, row) in enumerate(pairwise(rows), start=1):
            if row.notionalFloor != prev.notionalCap:
                raise ValueError(f"brackets[{n}].notionalFloor: {row.notionalFloor} does not "
                                 f"continue the previous cap {prev.notionalCap}")
            if row.maintMarginRatio < prev.maintMarginRatio:
                raise ValueError(f"brackets[{n}].maintMarginRatio: decreases")
            if row.initialLeverage > prev.initialLeverage:
                raise ValueError(f"brackets[{n}].initialLeverage: increases")
            want = prev.cum + row.notionalFloor * (row.maintMarginRatio - prev.maintMarginRatio)
            if abs(row.cum - want) > 1e-6 * max(1.0, want) + 0.01:
                raise ValueError(f"brackets[{n}].cum: {row.cum} but the recursion "
                                 f"cum_n = cum_(n-1) + floor_n·(MMR_n − MMR_(n-1)) gives {want:g}")
        for n, row in enumerate(rows):
            if row.notionalCap <= row.notionalFloor:
                raise ValueError(f"brackets[{n}].notionalCap: not above notionalFloor")
        return self

    def at(self, notional: float) -> Bracket:
        """The bracket holding ``notional`` (the last one beyond the top cap)."""
        for row in self.brackets:
            if notional < row.notionalCap:
                return row
        return self.brackets[-1]


def _read_tables(data: Any, origin: str) -> dict[str, SymbolBrackets]:
    items = data if isinstance(data, list) else [data]
    out: dict[str, SymbolBrackets] = {}
    for i, item in enumerate(items):
        try:
            table = SymbolBrackets.model_validate(item)
        except ValidationError as exc:
            path, reason = first_validation_problem(exc)
            raise ValueError(f"{origin}[{i}].{path}: {reason}") from None
        out[table.symbol] = table
    return out


def shipped_tables(date: str) -> dict[str, SymbolBrackets]:
    """The bracket tables recorded on ``date`` (a key of :data:`TABLES`)."""
    name = TABLES[date]
    text = resources.files("margin_engine.data").joinpath(name).read_text()
    return _read_tables(json.loads(text), name)


def default_tables() -> dict[str, SymbolBrackets]:
    """The default tables: BTCUSDT and ETHUSDT as recorded on 2024-10-24."""
    return shipped_tables(DEFAULT_TABLE_DATE)


class BinanceUsdmParams(ModelParams):
    brackets: dict[str, SymbolBrackets] = Field(
        default_factory=default_tables,
        description="Bracket tables by symbol. Default: BTCUSDT and ETHUSDT as GET "
                    "/fapi/v1/leverageBracket returned them on 2024-10-24 (recorded by "
                    "freqtrade; later changes UNCONFIRMED). `brackets=2021-03-18` selects the "
                    "table of Binance's 2021-03-18 announcement (BTCUSDT published, ETHUSDT an "
                    "UNCONFIRMED reconstruction); `brackets=FILE` reads the JSON the endpoint "
                    "returns, its symbols replacing the defaults.")
    default_leverage: float = Field(20.0, gt=0, le=125,
                                    description="Leverage when the account sets none (Binance "
                                                "default 20×).")

    @field_validator("brackets", mode="before")
    @classmethod
    def _from_file(cls, v: Any) -> Any:
        if isinstance(v, str) and v in TABLES:
            return shipped_tables(v)
        if isinstance(v, str | Path):
            try:
                data = json.loads(Path(v).read_text())
            except (OSError, ValueError) as exc:
                raise ValueError(f"cannot read bracket file {v}: {exc}") from None
            return {**default_tables(), **_read_tables(data, str(v))}
        return v


def _position_margin(ins: Instrument, size: float, leverage: float | None,
                     market: MarketSnapshot, table: SymbolBrackets, index: int,
                     default_leverage: float = 20.0) -> PositionMargin:
    """One position's margin; ``leverage=None``: the account set none (the default applies,
    lowered to the bracket's maximum)."""
    n = abs(size) * ins.contract_size * mark(ins, market)
    row = table.at(n)
    lowered = leverage is None and default_leverage > row.initialLeverage
    lev = (min(default_leverage, row.initialLeverage) if leverage is None else leverage)
    mm = max(n * row.maintMarginRatio - row.cum, 0.0)
    im = max(n / lev, mm)
    details: dict[str, Any] = {"bracket": row.bracket, "maint_margin_ratio":
                               row.maintMarginRatio, "cum": row.cum, "leverage": lev,
                               "max_leverage": row.initialLeverage}
    if lowered:
        details["note"] = (f"no leverage set: the default {default_leverage:g}x is above this "
                           f"bracket's maximum {row.initialLeverage:g}x, used the maximum")
    return PositionMargin(index=index, symbol=ins.symbol, size=size, initial_margin=im,
                          maintenance_margin=mm, contribution=im, notional=n, details=details)


@register
class BinanceUsdm(MarginModel):
    name = "binance-usdm"
    version = "2024-10-24.1"
    source = ("Binance FAQ 'Leverage and Margin of USDⓈ-M Futures', 'How to Calculate Liquidation "
              "Price of USDⓈ-M Futures'; GET /fapi/v1/leverageBracket")
    summary = "USDⓈ-M notional brackets: IM = N/leverage, MM = N·MMR − cum; isolated and cross."
    Params = BinanceUsdmParams
    modes = frozenset({MarginMode.ISOLATED, MarginMode.CROSS})
    params: BinanceUsdmParams

    def check_instrument(self, ins: Instrument) -> str | None:
        if ins.kind not in (Kind.PERPETUAL, Kind.FUTURE) or ins.inverse:
            return "binance-usdm margins only linear USDⓈ-M perpetuals and futures"
        if ins.settle not in STABLE_SETTLE:
            return f"settles in {ins.settle}, not a USDⓈ-M margin asset"
        if ins.symbol not in self.params.brackets:
            return "no bracket table for this symbol (pass --param brackets=FILE)"
        return None

    def units(self, account: Account, market: MarketSnapshot) -> list[MarginUnit]:
        """The base checks, then Binance's: a set leverage within the maximum of the bracket
        holding the position's notional — at the mark, or at the ``entry_price`` when that allows
        more. Binance checks the leverage when a position is opened or the leverage changed; a
        price move that later takes the notional into a lower-leverage bracket does not close
        the position."""
        out = super().units(account, market)
        for pos in account.positions:
            lev = account.leverage.get(pos.symbol)
            if lev is None:
                continue
            ins = market.instrument(pos.symbol)
            table = self.params.brackets[pos.symbol]
            n = abs(pos.size) * ins.contract_size * mark(ins, market)
            row = table.at(n)
            allowed = row.initialLeverage
            at_entry = ""
            if pos.entry_price is not None:
                n0 = abs(pos.size) * ins.contract_size * pos.entry_price
                row0 = table.at(n0)
                allowed = max(allowed, row0.initialLeverage)
                at_entry = (f", {row0.initialLeverage:g} for {n0:,.2f} at the entry price "
                            f"(bracket {row0.bracket})")
            if lev > allowed:
                raise InputError(
                    f"leverage.{pos.symbol}",
                    f"{lev:g} exceeds the maximum {row.initialLeverage:g} for a notional of "
                    f"{n:,.2f} {ins.settle} (bracket {row.bracket}{at_entry}); Binance refuses it")
        return out

    def margin_unit(self, unit: MarginUnit, account: Account,
                    market: MarketSnapshot) -> UnitMargin:
        rows = []
        for j in unit.position_indices:
            pos = account.positions[j]
            ins = market.instrument(pos.symbol)
            rows.append(_position_margin(ins, pos.size, account.leverage.get(pos.symbol),
                                         market, self.params.brackets[pos.symbol], j,
                                         self.params.default_leverage))
        im = sum(r.initial_margin for r in rows)
        mm = sum(r.maintenance_margin for r in rows)
        return UnitMargin(id=unit.id, currency=unit.currency, initial_margin=im,
                          maintenance_margin=mm, components={"position_initial_margin": im},
                          positions=tuple(rows))

    def liquidation_price(self, unit: MarginUnit, account: Account, market: MarketSnapshot,
                          position_index: int, equity: float) -> float | None:
        """Binance one-way LP: ``(WB − TMM1 + UPNL1 + cum − s·Q·EP) / (Q·MMR − s·Q)``."""
        if account.positions[position_index].size == 0:
            return None
        upnl, mm = self._unit_terms(unit, account, market)
        return self._liquidation_price(account, market, position_index, equity, upnl, mm)

    def liquidation_prices(self, unit: MarginUnit, account: Account, market: MarketSnapshot,
                           equity: float) -> dict[int, float | None]:
        """:meth:`liquidation_price` of every position of the unit, the unit's unrealised P&L
        and maintenance margins (at leverage 1) computed once for all (the same numbers)."""
        upnl, mm = self._unit_terms(unit, account, market)
        return {j: None if account.positions[j].size == 0 else
                self._liquidation_price(account, market, j, equity, upnl, mm)
                for j in unit.position_indices}

    def _unit_terms(self, unit: MarginUnit, account: Account, market: MarketSnapshot
                    ) -> tuple[dict[int, float], dict[int, float]]:
        """Per position of the unit: unrealised P&L, and maintenance margin at leverage 1."""
        upnl = {j: unrealised_pnl(market.instrument(account.positions[j].symbol),
                                  account.positions[j], market) for j in unit.position_indices}
        mm = {j: _position_margin(market.instrument(account.positions[j].symbol),
                                  account.positions[j].size, 1.0, market,
                                  self.params.brackets[account.positions[j].symbol], j
                                  ).maintenance_margin for j in unit.position_indices}
        return upnl, mm

    def _liquidation_price(self, account: Account, market: MarketSnapshot,
                           position_index: int, equity: float, upnl: dict[int, float],
                           mm: dict[int, float]) -> float | None:
        pos = account.positions[position_index]
        ins = market.instrument(pos.symbol)
        wallet = equity - sum(upnl.values())
        others = [j for j in upnl if j != position_index]
        tmm1 = sum(mm[j] for j in others)
        upnl1 = sum(upnl[j] for j in others)
        side = 1.0 if pos.size > 0 else -1.0
        q = abs(pos.size) * ins.contract_size
        ep = pos.entry_price if pos.entry_price is not None else mark(ins, market)
        table = self.params.brackets[pos.symbol]
        found = []
        for row in table.brackets:
            denom = q * row.maintMarginRatio - side * q
            lp = (wallet - tmm1 + upnl1 + row.cum - side * q * ep) / denom
            if lp > 0 and table.at(q * lp) is row:
                found.append(lp)
        if not found:
            return None
        now = mark(ins, market)
        return min(found, key=lambda p: abs(p - now))

