"""What a fill does to a position and to collateral (one rule for the live book and what-if).

A fill of ``size`` contracts (signed, buy > 0) at ``price`` (quote currency per underlying unit
for futures and perpetuals; settlement currency per unit for options and spot; the mark when
omitted):

- futures and perpetuals: the part that reduces the position realises
  ``closed·contract_size·(price − entry)`` (linear) or ``closed·contract_size·(1/entry − 1/price)``
  (inverse) into collateral in the settlement currency; the part that opens or adds sets the entry
  to the size-weighted average; a position without an entry price is taken as entered at the mark;
- options and spot: the premium ``size·contract_size·price`` moves out of (buy) or into (sell)
  collateral in the settlement currency; the entry is the weighted average of opening fills;
- a position that reaches zero stays in the book with size 0 (its index does not change).

Either way a fill at the mark leaves equity unchanged, and a fill away from it changes equity by
the trade's P&L at the mark.
"""

from __future__ import annotations

from margin_engine.domain.book import Account, Position
from margin_engine.domain.instruments import Instrument, Kind
from margin_engine.domain.market import MarketSnapshot
from margin_engine.models.core.valuation import mark


def trade(old_size: float, old_entry: float | None, size: float, price: float,
          ins: Instrument, mark_now: float) -> tuple[float, float | None, float]:
    """``(new_size, new_entry, collateral change in the settlement currency)``."""
    new = old_size + size
    cs = ins.contract_size
    if ins.kind in (Kind.OPTION, Kind.SPOT):
        cash = -size * cs * price
        entry: float | None
        if old_size == 0.0 or old_size * size > 0:
            entry = price if old_entry is None or old_size == 0.0 else (
                (abs(old_size) * old_entry + abs(size) * price) / abs(new))
        elif old_size * new < 0:  # flipped: the remainder opens at the fill price
            entry = price
        else:
            entry = old_entry
        return new, entry, cash
    entry0 = old_entry if old_entry is not None else mark_now
    if old_size == 0.0 or old_size * size > 0:  # open or add
        entry_open = price if old_size == 0.0 else (
            (abs(old_size) * entry0 + abs(size) * price) / abs(new))
        return new, entry_open, 0.0
    closed = -size if abs(size) <= abs(old_size) else old_size  # signed like old_size
    if ins.inverse:
        realised = closed * cs * (1.0 / entry0 - 1.0 / price)
    else:
        realised = closed * cs * (price - entry0)
    if new == 0.0:
        entry_out: float | None = entry0
    elif old_size * new < 0:
        entry_out = price
    else:
        entry_out = entry0
    return new, entry_out, realised


def fill_account(account: Account, market: MarketSnapshot, symbol: str, size: float,
                 price: float | None = None) -> Account:
    """``account`` after the fill (a new object; the first position in ``symbol`` takes it,
    else a new position is appended)."""
    ins = market.instrument(symbol)
    px = mark(ins, market) if price is None else price
    positions = list(account.positions)
    j = next((k for k, p in enumerate(positions) if p.symbol == symbol), None)
    if j is None:
        new_size, entry, cash = trade(0.0, None, size, px, ins, mark(ins, market))
        positions.append(Position(symbol=symbol, size=new_size, entry_price=entry))
    else:
        old = positions[j]
        new_size, entry, cash = trade(old.size, old.entry_price, size, px, ins,
                                      mark(ins, market))
        positions[j] = old.model_copy(update={"size": new_size, "entry_price": entry})
    collateral = dict(account.collateral)
    if cash != 0.0:
        collateral[ins.settle] = collateral.get(ins.settle, 0.0) + cash
    return account.model_copy(update={"positions": tuple(positions), "collateral": collateral})
