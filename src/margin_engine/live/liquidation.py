"""Liquidation bands of every unit of a book at once, through the live book's fast engines.

The per-unit solver (:func:`~margin_engine.policy.liquidation.fast_liquidation_band`) walks
each unit's grid of factors on its own: about 20–30 evaluations of the unit's maintenance margin
on a shifted market, per unit and underlying. The grid is the same for every unit, so here:

1. **Common factors.** For each underlying ``U`` a :class:`~margin_engine.live.book.LiveBook`
   of the book is moved to ``shift_underlying(market, U, x)`` (the same arithmetic through one
   :class:`~margin_engine.policy.liquidation.UnitShifter` over ``U``'s instruments, which keeps
   each option's forward and model price today) once per grid factor ``x`` some unit needs,
   and its engine re-margins the units whose walk asks for ``x`` in one vectorised pass
   (``LiveBook.move_market(..., slots)``: units whose walk is elsewhere or finished are left
   alone; their equity is re-summed from their positions, so it depends on the market alone).
   Each unit's walk to a one-step bracket
   (:func:`~margin_engine.policy.liquidation.bracket_search`, the per-unit solver's own) is fed
   from these passes; a grid point is moved to once, whichever units need it. Where a move
   costs more than the units asking for the point would on their own (the risk-based family,
   whose move revalues every held instrument on ``U`` over every scenario:
   :func:`~margin_engine.live.engines.positions_per_move`), those units get their own surplus
   function there instead, and a book whose units share too few instruments for any point to
   be worth a move is left to the per-unit solver whole.
2. **The root in the bracket.** Brent's method per unit on that bracket with the unit's own
   surplus function (:meth:`~margin_engine.live.engines.ReferenceEngine.surplus_function`;
   the per-unit solver's by default, the engine's arrays for ``okx-pm`` and ``deribit-pm``),
   as the per-unit solver ends; its opening evaluations at the bracket's two ends are the
   surpluses the walk already has (two of about six evaluations per root).

The brackets are the per-unit solver's, and the root is found from them by the same function
and Brent's method to its tolerance (``xtol = rtol = 1e-12``): the ends' surpluses come from
the live engine, whose sums may differ from the per-unit surplus function's in the last bits,
so a root may differ from the per-unit solver's within that tolerance (measured: ≤ 2e-14
relative on 2,000 accounts; the tests hold them to 1e-9). The bands do not depend on which
other accounts share the book (a Dask partition gives the single process's bands, to the bit:
every surplus read is a function of the unit and the market). Only a surplus within rounding
of zero at a grid point could make the live engines' sign, hence the bracket, differ. Where a
move is refused (a model error on a shifted market), that underlying's bands are left out and
the assessment solves them with the per-unit solver, which reproduces the reference's answer
or error.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence

import numpy as np

from margin_engine.domain.book import Account, Book
from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError
from margin_engine.live.book import LiveBook
from margin_engine.live.engines import positions_per_move, scans_whole_book
from margin_engine.models.core.base import MarginModel
from margin_engine.models.core.units import MarginUnit
from margin_engine.policy.health import HealthPolicy
from margin_engine.policy.liquidation import (
    GRID,
    Band,
    UnitShifter,
    bracket_search,
    grid_factor,
    root_in_step,
)

#: Grid factors on each side of today's price: below, above.
SIDES = (1.0 / GRID, GRID)

Walk = Generator[int, float, tuple[int, int] | None]


def book_bands(model: MarginModel, accounts: Sequence[Account],
               units: Sequence[Sequence[MarginUnit]], market: MarketSnapshot,
               policy: HealthPolicy, *, every_engine: bool = False,
               per_move: float | None = None) -> list[list[dict[str, Band]]]:
    """Every unit's liquidation band on each underlying it holds, as
    :func:`~margin_engine.policy.liquidation.fast_liquidation_band` gives it.

    Parameters
    ----------
    model : MarginModel
        A model without a closed-form liquidation price.
    accounts : sequence of Account
        Netted accounts (:func:`~margin_engine.domain.book.net_positions`).
    units : sequence of sequence of MarginUnit
        ``model.units`` of each account, as the assessment grouped them.
    market : MarketSnapshot
        Today's market.
    policy : HealthPolicy
        Collateral haircuts.
    every_engine : bool, default False
        Scan with any model's engine; by default only where the scan pays
        (:func:`~margin_engine.live.engines.scans_whole_book`), every band left to the
        per-unit solver otherwise.
    per_move : float, optional
        Positions on an underlying, per instrument on it that the book holds, that the units
        asking for a grid point must hold for the book to be moved there (each unit's surplus
        function is evaluated there otherwise); by default
        :func:`~margin_engine.live.engines.positions_per_move`. Where no point can be worth a
        move (the units together hold fewer), every band is left to the per-unit solver.

    Returns
    -------
    list of list of dict
        Per account, per unit: ``{underlying: (low factor, high factor)}`` (factors of today's
        price; ``None`` on a side without a root within 100×; ``(1.0, 1.0)`` for a unit at or
        below maintenance today).

    An underlying on which a shifted market is refused (a model error) is missing from its
    units' dicts: the caller solves those with the per-unit solver (which gives the
    reference's answer, or its error, for that account).
    """
    out: list[list[dict[str, Band]]] = [[{} for _ in us] for us in units]
    if not (every_engine or scans_whole_book(model, sum(map(len, units)))):
        return out
    by_und, weight, dense = _holdings(accounts, units, market)
    per_move = positions_per_move(model) if per_move is None else per_move
    if not any(w.sum() >= per_move * dense[und] for und, w in weight.items()):
        return out  # no grid point would be worth a move: all left to the per-unit solver
    live = LiveBook(model, Book.model_construct(accounts=tuple(accounts)), market,
                    policy=policy)
    order = live.live_slots()  # every account's unit slots, in book and unit order
    if len(order) != sum(map(len, units)):
        return out  # grouped otherwise than the caller (not expected): all left per unit
    it = iter(order)
    slots = [[next(it) for _ in us] for us in units]
    if any([u.position_indices for u in us] != [live.unit(s).position_indices for s in ss]
           for us, ss in zip(units, slots, strict=True)):
        return out
    for und, held in by_und.items():
        sl = np.array([slots[i][k] for i, k in held], dtype=np.int64)
        try:
            bands = _underlying_bands(live, und, sl, weight[und], per_move * dense[und])
        except (InputError, ValueError, ArithmeticError):
            # a shifted market refused: these units are left to the per-unit solver, which
            # gives the reference's answer or error; a fresh book for the next underlying
            live = LiveBook(model, Book.model_construct(accounts=tuple(accounts)), market,
                            policy=policy)
            continue
        for (i, k), band in zip(held, bands, strict=True):
            out[i][k][und] = band
    return out


def _holdings(accounts: Sequence[Account], units: Sequence[Sequence[MarginUnit]],
              market: MarketSnapshot
              ) -> tuple[dict[str, list[tuple[int, int]]], dict[str, np.ndarray], dict[str, int]]:
    """Per underlying: the (account, unit) pairs holding it, in book order; how many
    positions on it each of those holds; how many distinct instruments on it the book holds."""
    by_und: dict[str, list[tuple[int, int]]] = {}
    count: dict[str, list[int]] = {}
    symbols: dict[str, set[str]] = {}
    for i, (account, us) in enumerate(zip(accounts, units, strict=True)):
        for k, unit in enumerate(us):
            for j in unit.position_indices:
                symbol = account.positions[j].symbol
                und = market.instrument(symbol).underlying
                symbols.setdefault(und, set()).add(symbol)
                if not by_und.setdefault(und, []) or by_und[und][-1] != (i, k):
                    by_und[und].append((i, k))
                    count.setdefault(und, []).append(0)
                count[und][-1] += 1
    weight = {und: np.array(c, dtype=np.float64) for und, c in count.items()}
    return by_und, weight, {und: len(s) for und, s in symbols.items()}


def _underlying_bands(live: LiveBook, und: str, sl: np.ndarray, weight: np.ndarray,
                      per_move: float) -> list[Band]:
    """The bands on ``und`` of unit slots ``sl`` (the live book left at today's market).

    A grid point is one market move of the book when the units asking for it hold at least
    ``per_move`` positions on ``und`` (``weight``: each unit's); the units asking for a point
    worth less get their own surplus function there (made at today's market; Brent's method
    uses the same one)."""
    base = live.market
    # shift_underlying's markets, today's forward and model price of each option kept
    shifter = UnitShifter(base, und, {i.symbol for i in base.instruments
                                      if i.underlying == und})
    s0 = live.unit_surplus(sl)
    safe = np.flatnonzero(s0 > 0.0).tolist()
    fs: dict[int, Callable[[float], float]] = {}
    if per_move > 0.0:
        fs = {u: live.engine.surplus_function(int(sl[u]), und) for u in safe}
    walks: dict[tuple[int, int], Walk] = {}
    want: dict[tuple[int, int], int] = {}  # (unit, side) -> the grid index its walk needs
    found: dict[tuple[int, int], tuple[int, int] | None] = {}
    known: dict[tuple[int, int], dict[int, float]] = {}  # (unit, side) -> {grid index: surplus}
    for u in safe:
        for side in (0, 1):
            walks[(u, side)] = bracket_search()
            want[(u, side)] = next(walks[(u, side)])
    try:
        while want:
            asking: dict[tuple[int, int], list[int]] = {}  # (side, grid index) -> units
            for (u, side), i in want.items():
                asking.setdefault((side, i), []).append(u)
            got: dict[tuple[int, int], float] = {}  # (unit, side) -> surplus at its point
            for (side, i), us in sorted(asking.items()):
                if weight[us].sum() < per_move:
                    continue
                ask = np.array(us, dtype=np.int64)  # ascending: book order
                # only the asking units are re-margined (the others' walks are elsewhere)
                live.move_market(shifter.at(grid_factor(SIDES[side], i)), frozenset({und}),
                                 sl[ask])
                for u, s in zip(us, live.unit_surplus(sl[ask]).tolist(), strict=True):
                    got[(u, side)] = s
            for key, i in list(want.items()):
                u, side = key
                s = got[key] if key in got else fs[u](grid_factor(SIDES[side], i))
                known.setdefault(key, {})[i] = s
                try:
                    want[key] = walks[key].send(s)
                except StopIteration as done:
                    found[key] = done.value
                    del want[key]
    finally:
        live.move_market(base, frozenset({und}))
    out: list[Band] = []
    for u, slot in enumerate(sl.tolist()):
        if not s0[u] > 0.0:
            out.append((1.0, 1.0))
            continue
        f: Callable[[float], float] | None = fs.get(u)
        band: list[float | None] = []
        for side in (0, 1):
            step = found[(u, side)]
            if step is None:
                band.append(None)
                continue
            if f is None:
                f = live.engine.surplus_function(slot, und)
            lo, hi = step
            ends = known[(u, side)]
            a, b = grid_factor(SIDES[side], lo), grid_factor(SIDES[side], hi)
            band.append(root_in_step(_with_ends(f, {a: ends[lo] if lo else float(s0[u]),
                                                    b: ends[hi]}), a, b))
        out.append((band[0], band[1]))
    return out


def _with_ends(f: Callable[[float], float], ends: dict[float, float]
               ) -> Callable[[float], float]:
    """``f``, answering the factors in ``ends`` (the bracket's ends, whose surplus the walk
    already has) from there: Brent's method opens with both ends, two of its ~6 evaluations."""
    def g(x: float) -> float:
        got = ends.get(x)
        return f(x) if got is None else got
    return g
