"""Binance USDⓈ-M futures: notional brackets with a maintenance amount (research/crypto-venues §3).

Per position, with notional ``N = |size|·contract_size·mark`` (quote currency):

- ``IM = N / leverage`` with the account's leverage for the symbol (default 20×), capped at the
  bracket's ``initialLeverage``;
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
from margin_engine.errors import first_validation_problem
from margin_engine.models.core.base import MarginModel, ModelParams
from margin_engine.models.core.registry import register
from margin_engine.models.core.results import PositionMargin, UnitMargin
from margin_engine.models.core.units import MarginUnit
from margin_engine.models.core.valuation import mark, unrealised_pnl

DEFAULT_TABLE = "binance_usdm_brackets_2021-03-18.json"
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


def default_tables() -> dict[str, SymbolBrackets]:
    text = resources.files("margin_engine.data").joinpath(DEFAULT_TABLE).read_text()
    return _read_tables(json.loads(text), DEFAULT_TABLE)


class BinanceUsdmParams(ModelParams):
    brackets: dict[str, SymbolBrackets] = Field(
        default_factory=default_tables,
        description="Bracket tables by symbol. Default: BTCUSDT 2021-03-18 (published) and "
                    "ETHUSDT (UNCONFIRMED reconstruction). `brackets=FILE` reads the JSON that "
                    "GET /fapi/v1/leverageBracket returns; its symbols replace the defaults.")
    default_leverage: float = Field(20.0, gt=0, le=125,
                                    description="Leverage when the account sets none (Binance "
                                                "default 20×).")

    @field_validator("brackets", mode="before")
    @classmethod
    def _from_file(cls, v: Any) -> Any:
        if isinstance(v, str | Path):
            try:
                data = json.loads(Path(v).read_text())
            except (OSError, ValueError) as exc:
                raise ValueError(f"cannot read bracket file {v}: {exc}") from None
            return {**default_tables(), **_read_tables(data, str(v))}
        return v


def _position_margin(ins: Instrument, size: float, leverage: float, market: MarketSnapshot,
                     table: SymbolBrackets, index: int) -> PositionMargin:
    n = abs(size) * ins.contract_size * mark(ins, market)
    row = table.at(n)
    lev = min(leverage, row.initialLeverage)
    mm = max(n * row.maintMarginRatio - row.cum, 0.0)
    im = max(n / lev, mm)
    return PositionMargin(index=index, symbol=ins.symbol, size=size, initial_margin=im,
                          maintenance_margin=mm, contribution=im, notional=n,
                          details={"bracket": row.bracket, "maint_margin_ratio":
                                   row.maintMarginRatio, "cum": row.cum, "leverage": lev})


@register
class BinanceUsdm(MarginModel):
    name = "binance-usdm"
    version = "2021-03-18.1"
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

    def _leverage(self, account: Account, symbol: str) -> float:
        return account.leverage.get(symbol, self.params.default_leverage)

    def margin_unit(self, unit: MarginUnit, account: Account,
                    market: MarketSnapshot) -> UnitMargin:
        rows = []
        for j in unit.position_indices:
            pos = account.positions[j]
            ins = market.instrument(pos.symbol)
            rows.append(_position_margin(ins, pos.size, self._leverage(account, pos.symbol),
                                         market, self.params.brackets[pos.symbol], j))
        im = sum(r.initial_margin for r in rows)
        mm = sum(r.maintenance_margin for r in rows)
        return UnitMargin(id=unit.id, currency=unit.currency, initial_margin=im,
                          maintenance_margin=mm, components={"position_initial_margin": im},
                          positions=tuple(rows))

    def liquidation_price(self, unit: MarginUnit, account: Account, market: MarketSnapshot,
                          position_index: int, equity: float) -> float | None:
        """Binance one-way LP: ``(WB − TMM1 + UPNL1 + cum − s·Q·EP) / (Q·MMR − s·Q)``."""
        pos = account.positions[position_index]
        ins = market.instrument(pos.symbol)
        if pos.size == 0:
            return None
        upnl = {j: unrealised_pnl(market.instrument(account.positions[j].symbol),
                                  account.positions[j], market) for j in unit.position_indices}
        wallet = equity - sum(upnl.values())
        others = [j for j in unit.position_indices if j != position_index]
        tmm1 = sum(_position_margin(market.instrument(account.positions[j].symbol),
                                    account.positions[j].size, 1.0, market,
                                    self.params.brackets[account.positions[j].symbol], j
                                    ).maintenance_margin for j in others)
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

