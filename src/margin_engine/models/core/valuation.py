"""Per-position values in the settlement currency: notional, mark value, unrealised P&L.

Linear contracts pay ``size·contract_size·(P − entry)`` in the settlement (quote) currency;
inverse contracts pay ``size·contract_size·(1/entry − 1/P)`` coin. Options and spot count at
market value ``size·contract_size·mark`` (mark in the settlement currency).
"""

from __future__ import annotations

from margin_engine.domain.book import Position
from margin_engine.domain.instruments import Instrument, Kind
from margin_engine.domain.market import MarketSnapshot
from margin_engine.maths import black76


def option_mark(ins: Instrument, market: MarketSnapshot) -> float:
    """Option mark per unit in the settlement currency: the quoted mark, else Black-76."""
    if ins.mark_price is not None:
        return ins.mark_price
    return model_option_price(ins, market, market.forward(ins))


def model_option_price(ins: Instrument, market: MarketSnapshot, forward: float) -> float:
    """Black-76 price per unit in the settlement currency (coin when inverse) at ``forward``."""
    assert ins.strike is not None
    T, vol = market.years_to_expiry(ins), market.implied_vol(ins)
    usd = black76.price_usd(forward, ins.strike, T, vol, ins.is_call)
    return usd / forward if ins.inverse else usd


def mark(ins: Instrument, market: MarketSnapshot) -> float:
    """Mark price: quote currency per underlying unit (futures, spot); settlement currency per
    unit for options."""
    if ins.is_option:
        return option_mark(ins, market)
    assert ins.mark_price is not None
    return ins.mark_price


def notional_usd(ins: Instrument, size: float, market: MarketSnapshot) -> float:
    """Absolute notional in USD: contracts × size at mark (underlying at index for options)."""
    if ins.inverse and not ins.is_option:
        return abs(size) * ins.contract_size
    px = market.index[ins.underlying] if ins.is_option else mark(ins, market)
    quote = 1.0 if ins.inverse else market.usd_price(ins.settle)
    return abs(size) * ins.contract_size * px * quote


def notional(ins: Instrument, size: float, market: MarketSnapshot) -> float:
    """Absolute notional in the settlement currency."""
    return market.convert(notional_usd(ins, size, market), "USD", ins.settle)


def unrealised_pnl(ins: Instrument, pos: Position, market: MarketSnapshot) -> float:
    """Unrealised P&L of a future/perpetual in the settlement currency (0 without entry)."""
    if ins.kind in (Kind.OPTION, Kind.SPOT) or pos.entry_price is None:
        return 0.0
    px = mark(ins, market)
    if ins.inverse:
        return pos.size * ins.contract_size * (1.0 / pos.entry_price - 1.0 / px)
    return pos.size * ins.contract_size * (px - pos.entry_price)


def equity_value(ins: Instrument, pos: Position, market: MarketSnapshot) -> float:
    """What the position adds to equity, in the settlement currency: unrealised P&L for
    futures and perpetuals, market value for options and spot."""
    if ins.kind in (Kind.OPTION, Kind.SPOT):
        return pos.size * ins.contract_size * mark(ins, market)
    return unrealised_pnl(ins, pos, market)
