"""The hedge universe and the trade sizes the optimiser tries.

Default universe: every perpetual and future on an underlying the account holds, every option it
holds, and per held underlying and option expiry the call and put nearest the money; instruments
the model cannot margin are left out. ``--universe`` replaces it with named symbols.

Sizes: per instrument, ``±{10, 25, 50, 100}%`` of the account's gross USD notional on that
underlying, in contracts (rounded to 6 significant digits), and for a held instrument the trades
that close ``{25, 50, 100}%`` of it. The largest size tried is also the bound of the exact solver.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from margin_engine.domain.book import Account
from margin_engine.domain.instruments import Instrument, Kind
from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError
from margin_engine.models.core.base import MarginModel
from margin_engine.models.core.valuation import notional_usd

FRACTIONS = (0.10, 0.25, 0.50, 1.00)
CLOSE = (0.25, 0.50, 1.00)


@dataclass(frozen=True)
class Candidates:
    """Instruments, the signed sizes tried for each, and each one's size bound (contracts)."""

    symbols: tuple[str, ...]
    sizes: dict[str, tuple[float, ...]]
    bound: dict[str, float]


def _round(x: float) -> float:
    return float(f"{x:.6g}")


def default_universe(account: Account, market: MarketSnapshot, model: MarginModel) -> list[str]:
    held = {p.symbol for p in account.positions}
    unds = {market.instrument(s).underlying for s in held}
    out: list[str] = []
    options: dict[tuple[str, object, str], list[Instrument]] = {}
    for ins in market.instruments:
        if ins.underlying not in unds or model.check_instrument(ins):
            continue
        if ins.kind in (Kind.PERPETUAL, Kind.FUTURE) or ins.symbol in held:
            out.append(ins.symbol)
        elif ins.is_option:
            key = (ins.underlying, ins.expiry, ins.option_type.value if ins.option_type else "")
            options.setdefault(key, []).append(ins)
    for group in options.values():
        f = market.forward(group[0])
        best = min(group, key=lambda i: (abs((i.strike or 0.0) - f), i.symbol))
        if best.symbol not in out:
            out.append(best.symbol)
    return out


def parse_universe(raw: str, market: MarketSnapshot, model: MarginModel) -> list[str]:
    """``SYM,SYM,...`` → symbols (each known to the market and margined by ``model``)."""
    out = []
    for n, s in enumerate(x.strip() for x in raw.split(",")):
        if not s:
            raise InputError(f"--universe[{n}]", "empty symbol")
        if not market.has(s):
            raise InputError(f"--universe[{n}]", f"unknown symbol {s!r}")
        why = model.check_instrument(market.instrument(s))
        if why:
            raise InputError(f"--universe[{n}]", f"{s!r}: {why}")
        if s not in out:
            out.append(s)
    return out


def candidate_sizes(account: Account, market: MarketSnapshot,
                    universe: Sequence[str]) -> Candidates:
    """The sizes tried per instrument (see the module docstring)."""
    gross: dict[str, float] = {}
    held: dict[str, float] = {}
    for p in account.positions:
        ins = market.instrument(p.symbol)
        gross[ins.underlying] = gross.get(ins.underlying, 0.0) + notional_usd(ins, p.size, market)
        held[p.symbol] = held.get(p.symbol, 0.0) + p.size
    sizes: dict[str, tuple[float, ...]] = {}
    bound: dict[str, float] = {}
    for s in universe:
        ins = market.instrument(s)
        n1 = notional_usd(ins, 1.0, market)
        g = gross.get(ins.underlying, 0.0)
        if g <= 0.0:  # an underlying the account does not hold: size on the whole book
            g = sum(gross.values())
        got: set[float] = set()
        if n1 > 0 and g > 0:
            for f in FRACTIONS:
                q = _round(f * g / n1)
                if q > 0:
                    got |= {q, -q}
        h = held.get(s, 0.0)
        if h:
            got |= {_round(-f * h) for f in CLOSE}
        got.discard(0.0)
        if got:
            sizes[s] = tuple(sorted(got))
            bound[s] = max(abs(q) for q in got)
    return Candidates(tuple(sizes), sizes, bound)
