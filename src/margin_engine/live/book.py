"""The live book (DESIGN §8): accounts, collateral and positions held as arrays, re-margined
incrementally.

- A market update revalues only the instruments on the touched underlyings and re-margins only
  the margin units that hold them (or hold collateral in a touched currency). Each unit's and
  account's Σ position equity (and the bracket engine's Σ position IM/MM) is a running sum to
  which a tick adds only the moved positions' changes (:class:`~margin_engine.live.arrays.
  RunningSums`: compensated, its rounding drift bounded; a sum past its bound, held in a
  currency whose price moved, or whose positions changed is re-summed from its positions).
- A fill changes one account: its positions, its collateral, its units.
- A what-if answers from the cached state without changing it.
- Every status change (healthy → margin call → liquidation → recovery) comes back as an
  :class:`~margin_engine.live.events.Event`.
- :meth:`LiveBook.snapshot` gives the same reports as ``policy.assess.assess_book`` (what
  ``compute`` prints) on the equivalent book and market.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from margin_engine.domain.book import Account, Book, Position, check_against_market, net_positions
from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError
from margin_engine.live.arrays import (
    Column,
    Grouping,
    InstrumentArrays,
    RunningSums,
    first_by_row,
    position_equity,
    position_equity_one,
)
from margin_engine.live.collateral import CollateralTable, Holdings
from margin_engine.live.engines import ReferenceEngine, make_engine, segment_sums
from margin_engine.live.events import AccountState, Event, WhatIf
from margin_engine.live.fills import fill_account, trade
from margin_engine.live.market_update import apply_update, parse_update
from margin_engine.live.rollup import unit_rollup
from margin_engine.models.core.base import MarginModel
from margin_engine.models.core.results import AuditStamp
from margin_engine.models.core.units import MarginUnit
from margin_engine.policy import health
from margin_engine.policy.assess import AccountReport, assess_account
from margin_engine.policy.health import HealthPolicy, Status
from margin_engine.policy.margin_scale import IDENTITY, MarginScale, scaled_stamp

_STATUS = (Status.HEALTHY, Status.MARGIN_CALL, Status.LIQUIDATION)  # by severity


def _event_type(old: Status, new: Status) -> str:
    if new is Status.HEALTHY:
        return "recovery"
    return new.value


@dataclass(frozen=True)
class TickPlan:
    """The positions a move of some instruments touches, grouped by unit and by account, and
    their fixed inputs (:meth:`LiveBook.tick_plan`; kept while no account changes, so a stream
    of ticks on the same underlyings prepares them once)."""

    hit: np.ndarray
    """Global ids of the positions on the moved instruments, ascending (the arrays indexed by
    position are then read in order)."""
    ins: np.ndarray
    size: np.ndarray
    entry: np.ndarray
    settle: np.ndarray
    """Their instrument rows, sizes, entry prices (NaN: none), settlement currency codes."""
    live: np.ndarray
    """Whether each is in a live unit."""
    pos: np.ndarray
    pos_ins: np.ndarray
    pos_size: np.ndarray
    leverage: np.ndarray
    """``hit[live]``, their instrument rows, sizes and leverage (:meth:`LiveBook.pos_leverage`).
    """
    units: Grouping
    """The units of ``pos``."""
    to_unit: np.ndarray
    """The currency code of the unit of each of ``hit[live]``."""
    acct: np.ndarray
    accounts: Grouping
    """The account of each of ``hit``, and them grouped."""


class LiveBook:
    """Live margin state of a book under one model.

    Parameters
    ----------
    model : MarginModel
        The active model (its parameters fixed for the life of the book).
    book : Book
        The accounts at start.
    market : MarketSnapshot
        The market at start.
    policy : HealthPolicy, optional
        Collateral haircuts (the default policy otherwise).
    engine : {"auto", "reference"}
        ``auto`` picks the fast engine of the model's family when there is one; ``reference``
        re-margins every unit with ``model.margin_unit`` (the readable per-unit path).

    Raises
    ------
    InputError
        When the book names what the market cannot price or the model cannot margin.
    """

    def __init__(self, model: MarginModel, book: Book, market: MarketSnapshot, *,
                 policy: HealthPolicy | None = None, engine: str = "auto") -> None:
        check_against_market(book, market)
        self.model = model
        self.policy = policy or HealthPolicy()
        self._market = market
        self.instruments = InstrumentArrays(market)
        # one net position per symbol, as assess_account margins them (domain.book.net_positions)
        self._accounts: list[Account] = [net_positions(a, market) for a in book.accounts]
        self._stale: set[int] = set()  # account objects whose positions lag the arrays
        self._by_id = {a.id: i for i, a in enumerate(self._accounts)}
        self._collateral: list[dict[str, float]] = [dict(a.collateral) for a in self._accounts]
        self._acct_by_ccy: dict[str, set[int]] = {}  # accounts holding collateral in a currency
        for i, a in enumerate(self._accounts):
            for c in a.collateral:
                self._acct_by_ccy.setdefault(c, set()).add(i)
        # positions (global ids) -------------------------------------------------------------
        nan = math.nan
        row = self.instruments.index
        cols: tuple[list[float], ...] = ([], [], [], [], [])
        self._acct_pos: list[list[int]] = []
        owner: list[int] = []
        for i, a in enumerate(self._accounts):
            start = len(cols[0])
            owner.extend([i] * len(a.positions))
            for p in a.positions:
                cols[0].append(row[p.symbol])
                cols[1].append(p.size)
                cols[2].append(nan if p.entry_price is None else p.entry_price)
                cols[3].append(a.leverage.get(p.symbol, nan))
                cols[4].append(nan if p.isolated_margin is None else p.isolated_margin)
            self._acct_pos.append(list(range(start, len(cols[0]))))
        self._pos_ins = Column(np.int64, cols[0])
        self._pos_size = Column(np.float64, cols[1])
        self._pos_entry = Column(np.float64, cols[2])
        self._pos_lev = Column(np.float64, cols[3])
        self._pos_iso = Column(np.float64, cols[4])
        self._pos_eq = Column(np.float64, np.zeros(len(cols[0])))
        self._pos_acct = Column(np.int64, owner)
        self._pos_slot = Column(np.int64, np.full(len(cols[0]), -1))  # its live unit
        self._by_ins: tuple[int, np.ndarray, np.ndarray] | None = None  # positions by instrument
        self._last_on: tuple[int, bytes, np.ndarray] | None = None
        self._plans: dict[bytes, tuple[tuple[int, int], TickPlan]] = {}
        # units (slots) ----------------------------------------------------------------------
        self._units: list[MarginUnit] = []
        self._unit_acct: list[int] = []
        self._unit_acct_a = Column(np.int64)  # the same, as an array
        self._unit_pos: list[np.ndarray] = []
        self._unit_ccys: list[frozenset[str]] = []
        self._acct_units: list[list[int]] = [[] for _ in self._accounts]
        self._im = Column(np.float64)
        self._mm = Column(np.float64)
        self._eq = Column(np.float64)
        self._coll = Column(np.float64)  # collateral value of each unit, in its currency
        # Σ position equity value per unit (unit currency) and per account (in the currency
        # ``_a_peq_ccy`` names; -1: not summed yet), kept current by adding changes
        self._u_peq = RunningSums()
        self._a_peq = RunningSums()
        self._whole_coll = np.zeros(len(self._accounts))
        self._by_ccy: dict[str, set[int]] = {}  # units whose requirement or equity may move
        self._coll_by_ccy: dict[str, set[int]] = {}  # units whose collateral value may move
        self._unit_ccy = Column(np.int64)
        # account results (NaN ratio: unbounded, i.e. ``None``) -------------------------------
        n = len(self._accounts)
        self._a = {k: np.zeros(n) for k in ("im", "mm", "eq", "avail", "ratio")}
        self._a_status = np.full(n, -1, dtype=np.int64)
        self._a_ccy = np.zeros(n, dtype=np.int64)
        self._a_peq_ccy = np.full(n, -1, dtype=np.int64)
        self._a_peq.extend_to(n)
        self._touched: dict[frozenset[str], tuple[int, np.ndarray, np.ndarray]] = {}
        self._coll_tables: dict[frozenset[str] | None,
                                tuple[int, tuple[np.ndarray, np.ndarray, CollateralTable]]] = {}
        self._held_cache: dict[int, tuple[int, dict[int, int]]] = {}
        self._refused: dict[int, str | None] = {}  # check_instrument by instrument row
        self._reports: dict[int, AccountReport] = {}
        self._version = 0  # bumped whenever an account's positions or units change
        self._concat_cache: dict[tuple[int, int],
                                 tuple[int, np.ndarray, np.ndarray]] = {}
        self._acct_concat: dict[tuple[int, int], tuple[int, np.ndarray, np.ndarray]] = {}
        self._acct_units_cache: dict[tuple[int, int], tuple[int, np.ndarray, np.ndarray]] = {}
        self._seq = 0
        self.scale: MarginScale = IDENTITY  # the dynamic multiplier in force (policy.margin_scale)
        self.engine: ReferenceEngine = ReferenceEngine(self)
        for i in range(len(self._accounts)):
            try:
                self._build_units(i)
            except InputError as exc:
                raise exc.within(f"accounts[{i}]") from None
        self.engine = make_engine(model, self) if engine == "auto" else ReferenceEngine(self)
        self._refresh_equity_inputs(None)
        self._remargin(self.live_slots(), cause="start", emit=False,
                       accounts=set(range(len(self._accounts))))

    # -- read access (engines use these) -------------------------------------------------------
    @property
    def market(self) -> MarketSnapshot:
        """The current market snapshot (the start market with every update applied)."""
        return self._market

    @property
    def pos_ins(self) -> np.ndarray:
        return self._pos_ins.a

    @property
    def pos_size(self) -> np.ndarray:
        return self._pos_size.a

    @property
    def pos_slot(self) -> np.ndarray:
        """The live unit slot of each position (-1: in none)."""
        return self._pos_slot.a

    def positions_on(self, rows: np.ndarray) -> np.ndarray:
        """Global ids of the positions on instruments ``rows`` (an index of positions by
        instrument is kept; positions opened since it was built are scanned)."""
        n = self._pos_ins.n
        key = rows.tobytes()
        if self._last_on is not None and self._last_on[:2] == (n, key):
            return self._last_on[2]  # the engine and the equity refresh ask for the same
        if self._by_ins is None or n - self._by_ins[0] > max(1024, self._by_ins[0] // 8):
            order = np.argsort(self._pos_ins.a, kind="stable")
            starts = np.searchsorted(self._pos_ins.a[order],
                                     np.arange(len(self.instruments.instruments) + 1))
            self._by_ins = (n, order, starts)
        n0, order, starts = self._by_ins
        parts = [order[starts[k]: starts[k + 1]] for k in rows.tolist()]
        if n > n0:
            flag = np.zeros(len(self.instruments.instruments), dtype=bool)
            flag[rows] = True
            parts.append(n0 + np.flatnonzero(flag[self._pos_ins.a[n0:]]))
        out = np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
        self._last_on = (n, key, out)
        return out

    def tick_plan(self, rows: np.ndarray) -> TickPlan:
        """:class:`TickPlan` of a move of instruments ``rows`` (kept, for the last 16 sets of
        rows, until an account changes: ticks on the same underlyings reuse it)."""
        key = rows.tobytes()
        now = (self._version, self._pos_ins.n)
        got = self._plans.get(key)
        if got is not None and got[0] == now:
            return got[1]
        hit = np.sort(self.positions_on(rows))
        ins = self._pos_ins.a[hit]
        slot = self._pos_slot.a[hit]
        live = slot >= 0
        acct = self._pos_acct.a[hit]
        pos = hit[live]
        size = self._pos_size.a[hit]
        plan = TickPlan(hit, ins, size, self._pos_entry.a[hit], self.instruments.settle[ins],
                        live, pos, ins[live], size[live], self.pos_leverage(pos),
                        Grouping(slot[live]), self._unit_ccy.a[slot[live]], acct,
                        Grouping(acct))
        if len(self._plans) >= 16 or (got is not None and got[0][0] != now[0]):
            self._plans = {k: v for k, v in self._plans.items() if v[0] == now}
            if len(self._plans) >= 16:
                self._plans.clear()
        self._plans[key] = (now, plan)
        return plan

    def pos_leverage(self, idx: np.ndarray) -> np.ndarray:
        lev = self._pos_lev.a[idx]
        default = getattr(self.model.params, "default_leverage", math.nan)
        return np.where(np.isnan(lev), default, lev)

    def pos_leverage_one(self, g: int) -> float:
        """:meth:`pos_leverage` of one position (the model's default when unset)."""
        lev = float(self._pos_lev.a[g])
        if math.isnan(lev):
            return float(getattr(self.model.params, "default_leverage", math.nan))
        return lev

    @property
    def n_units(self) -> int:
        return len(self._units)

    def unit(self, slot: int) -> MarginUnit:
        return self._units[slot]

    def unit_account(self, slot: int) -> int:
        return self._unit_acct[slot]

    def unit_positions(self, slot: int) -> np.ndarray:
        """Global position ids of a unit, in the unit's order."""
        return self._unit_pos[slot]

    def live_slots(self) -> list[int]:
        return [s for slots in self._acct_units for s in slots]

    def concat_positions(self, slots: Sequence[int] | np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray]:
        """The positions of ``slots`` one after the other, and how many each unit has (the
        concatenation over every live unit is kept until an account changes)."""
        sl = np.asarray(slots, dtype=np.int64)
        key = (sl.size, hash(sl.tobytes()))
        hit = self._concat_cache.get(key)
        if hit is not None and hit[0] == self._version:
            return hit[1], hit[2]
        pos = [self._unit_pos[s] for s in sl.tolist()]
        lens = np.fromiter((p.size for p in pos), dtype=np.int64, count=len(pos))
        idx = np.concatenate(pos) if pos else np.empty(0, dtype=np.int64)
        if len(slots) > 1000:
            if len(self._concat_cache) >= 8:
                self._concat_cache.clear()
            self._concat_cache[key] = (self._version, idx, lens)
        return idx, lens

    def account_ids(self) -> list[str]:
        return [a.id for a in self._accounts]

    def account_object(self, i: int) -> Account:
        """Account ``i`` as a domain object (positions and collateral as they are now)."""
        if i in self._stale:
            ids = self._acct_pos[i]
            names = self.instruments.instruments
            positions = tuple(Position.model_construct(
                symbol=names[k].symbol, size=q, entry_price=None if math.isnan(e) else e,
                isolated_margin=None if math.isnan(m) else m)
                for k, q, e, m in zip(self._pos_ins.a[ids].tolist(),
                                      self._pos_size.a[ids].tolist(),
                                      self._pos_entry.a[ids].tolist(),
                                      self._pos_iso.a[ids].tolist(), strict=True))
            self._accounts[i] = self._accounts[i].model_copy(
                update={"positions": positions, "collateral": dict(self._collateral[i])})
            self._stale.discard(i)
        return self._accounts[i]

    def book(self) -> Book:
        """The book as it is now (domain objects)."""
        return Book.model_construct(accounts=tuple(self.account_object(i)
                                                   for i in range(len(self._accounts))))

    def has_account(self, account_id: str) -> bool:
        """Whether the book holds ``account_id``."""
        return account_id in self._by_id

    def state(self, account_id: str) -> AccountState:
        """An account's headline numbers (IM, MM, equity, available, ratio, status)."""
        return self._state(self._account_index(account_id))

    def states(self) -> list[AccountState]:
        """Every account's headline numbers, in book order."""
        return [self._state(i) for i in range(len(self._accounts))]

    def _state(self, i: int) -> AccountState:
        a = self._a
        ratio = a["ratio"].item(i)
        return AccountState(self._accounts[i].id,
                            self.instruments.currencies[self._a_ccy.item(i)],
                            a["im"].item(i), a["mm"].item(i), a["eq"].item(i),
                            a["avail"].item(i), None if math.isnan(ratio) else ratio,
                            _STATUS[self._a_status.item(i)])

    # -- changes --------------------------------------------------------------------------------
    def update_market(self, update: Mapping[str, Any]) -> list[Event]:
        """Apply a partial market update and re-margin what it touches.

        Parameters
        ----------
        update : mapping
            ``{timestamp?, index?: {COIN: price}, fx?: {CCY: price},
            instruments?: [{symbol, mark_price?, mark_iv?, underlying_price?}]}``.

        Returns
        -------
        list of Event
            The status changes it caused.
        """
        upd = parse_update(update, self._market)
        market, touched, _symbols = apply_update(self._market, upd)
        return self._move_market(market, touched, emit=True)

    def move_market(self, market: MarketSnapshot, touched: frozenset[str],
                    slots: np.ndarray | None = None) -> None:
        """Put ``market`` in place, in which only what is on or priced in the ``touched``
        currencies differs from the current one (e.g. ``shift_underlying`` of it), and re-margin
        the units that touches, reporting no events: a scan of hypothetical markets (the
        whole-book liquidation solver, :mod:`margin_engine.live.liquidation`).

        ``slots``: re-margin only these unit slots (among those the move touches) and no
        account: the other units' figures and every account's stay stale until a move without
        ``slots`` (the scan's move back to today's market) brings the book level again."""
        if slots is None:
            self._move_market(market, touched, emit=False)
            return
        self._market = market
        usd = self.instruments.usd.copy()
        moved = self.instruments.refresh(market, touched)
        self.engine.on_market(moved)
        self._refresh_equity_inputs(touched, moved=moved, usd_before=usd)
        sl = np.asarray(slots, dtype=np.int64)
        # their equity re-summed from the positions' values: a function of the market only,
        # not of the moves before (the running sums' rounding), whichever units share the book
        self._u_peq.invalidate(sl)
        self._remargin_units(sl)

    def unit_surplus(self, slots: np.ndarray) -> np.ndarray:
        """Equity − maintenance margin of unit ``slots``, each in its unit's currency."""
        return self._eq.a[slots] - self._mm.a[slots]

    def _move_market(self, market: MarketSnapshot, touched: frozenset[str], *,
                     emit: bool) -> list[Event]:
        self._market = market
        usd = self.instruments.usd.copy()
        moved = self.instruments.refresh(market, touched)
        self.engine.on_market(moved)
        self._refresh_equity_inputs(touched, moved=moved, usd_before=usd)
        slots, accts = self._touched_by(touched)
        return self._remargin(slots, cause="market", acct=accts, emit=emit)

    def _touched_by(self, touched: frozenset[str]) -> tuple[np.ndarray, np.ndarray]:
        """The unit slots a move of ``touched`` currencies may change, and every account they
        or a collateral holding in those currencies belong to (sorted; kept until an account
        changes)."""
        hit = self._touched.get(touched)
        if hit is not None and hit[0] == self._version:
            return hit[1], hit[2]
        slots: set[int] = set()
        accts: set[int] = set()
        for ccy in touched:
            slots |= self._by_ccy.get(ccy, set())
            accts |= self._acct_by_ccy.get(ccy, set())
        sl = np.array(sorted(slots), dtype=np.int64)
        acct = np.union1d(self._unit_acct_a.a[sl], np.fromiter(accts, dtype=np.int64))
        if len(self._touched) >= 16:
            self._touched.clear()
        self._touched[touched] = (self._version, sl, acct)
        return sl, acct

    def add_account(self, account: Account) -> list[Event]:
        """Open an account (``POST /v1/accounts``) and margin it.

        Raises
        ------
        InputError
            A duplicate id, or what the market cannot price or the model cannot margin
            (nothing is added then).
        """
        if account.id in self._by_id:
            raise InputError("id", f"duplicate account id {account.id!r}")
        check_against_market(Book.model_construct(accounts=(account,)), self._market)
        account = net_positions(account, self._market)
        self.model.units(account, self._market)  # raises before anything changes
        i = len(self._accounts)
        self._accounts.append(account)
        self._by_id[account.id] = i
        self._collateral.append(dict(account.collateral))
        for c in account.collateral:
            self._acct_by_ccy.setdefault(c, set()).add(i)
        ids = []
        for p in account.positions:
            ids.append(self._add_position(i, account, p.symbol, p.size, p.entry_price,
                                          p.isolated_margin))
        self._acct_pos.append(ids)
        self._acct_units.append([])
        self._a = {k: np.append(v, 0.0) for k, v in self._a.items()}
        self._a_status = np.append(self._a_status, -1)
        self._a_ccy = np.append(self._a_ccy, 0)
        self._a_peq_ccy = np.append(self._a_peq_ccy, -1)
        self._a_peq.extend_to(len(self._accounts))
        self._whole_coll = np.append(self._whole_coll, 0.0)
        return self._account_changed(i, "open")

    def set_market(self, market: MarketSnapshot) -> list[Event]:
        """Replace the whole market (a new snapshot listing the same instruments in the same
        order) and re-margin every unit: the end-to-end path from a snapshot to every account's
        IM, MM and status."""
        if [i.symbol for i in market.instruments] != [
                i.symbol for i in self._market.instruments]:
            raise InputError("instruments", "a new snapshot must list the live book's "
                             "instruments in the same order (send a partial update instead)")
        if market.timestamp < self._market.timestamp:
            raise InputError("timestamp", "before the current market time")
        self._market = market
        self.instruments.refresh(market, None)
        everything = np.arange(len(market.instruments), dtype=np.int64)
        self.engine.on_market(everything)
        self._reports.clear()
        self._refresh_equity_inputs(None)
        return self._remargin(self.live_slots(), cause="market",
                              accounts=set(range(len(self._accounts))))

    def apply_fill(self, account_id: str, symbol: str, size: float,
                   price: float | None = None) -> list[Event]:
        """A fill of ``size`` contracts (buy > 0) at ``price`` (the mark when omitted); see
        :mod:`margin_engine.live.fills` for what it does to positions and collateral."""
        i = self._account_index(account_id)
        self._fill(i, *self._check_order(symbol, size, price, "fill"))
        return self._account_changed(i, "fill")

    def apply_fills(self, fills: Sequence[tuple[str, str, float, float | None]],
                    deposits: Sequence[tuple[str, str, float]] = ()) -> list[Event]:
        """Many fills and collateral transfers at once, re-margined once (a liquidation round
        of the cascade simulator): the same result as :meth:`apply_fill` and :meth:`deposit`
        one by one, in ``O(changes)`` unit rebuilds and one re-margin instead of one per call.

        Parameters
        ----------
        fills : sequence of (account id, symbol, size, price or None)
            Signed sizes in contracts (buy > 0); price in the instrument's quote currency.
        deposits : sequence of (account id, currency, amount)
            Collateral added (> 0) or taken (< 0); zero amounts are skipped.

        Raises
        ------
        InputError
            Before anything changes, when a fill or transfer is malformed.
        """
        checked = [(self._account_index(a), *self._check_order(sym, q, px, f"fills[{n}]"))
                   for n, (a, sym, q, px) in enumerate(fills)]
        moves = []
        for n, (a, ccy, amount) in enumerate(deposits):
            if not self._market.is_priced(ccy):
                raise InputError(f"deposits[{n}].currency", f"no index or fx price for {ccy!r}")
            if not isinstance(amount, int | float) or not math.isfinite(amount):
                raise InputError(f"deposits[{n}].amount", f"must be finite, got {amount!r}")
            if amount != 0:
                moves.append((self._account_index(a), ccy, float(amount)))
        for i, k, q, px in checked:
            self._fill(i, k, q, px)
        for i, ccy, amount in moves:
            coll = self._collateral[i]
            coll[ccy] = coll.get(ccy, 0.0) + amount
            self._acct_by_ccy.setdefault(ccy, set()).add(i)
            self._stale.add(i)
        changed = sorted({c[0] for c in checked} | {m[0] for m in moves})
        if not changed:
            return []
        self._version += 1
        self._concat_cache.clear()
        self._acct_concat.clear()
        slots = [s for i in changed for s in self._build_units(i)]
        self.engine.on_units(slots)
        self._refresh_equity_inputs(None, accounts=changed)
        for i in changed:
            self._reports.pop(i, None)
        return self._remargin(slots, cause="fill", accounts=set(changed))

    def margin_arrays(self) -> dict[str, np.ndarray]:
        """Every account's numbers as arrays in book order (copies): ``im``, ``mm``, ``eq``,
        ``avail`` in the account currency, ``ratio`` (NaN: unbounded) and ``status``
        (0 healthy, 1 margin call, 2 liquidation)."""
        out: dict[str, np.ndarray] = {k: v.copy() for k, v in self._a.items()}
        out["status"] = self._a_status.copy()
        return out

    def _fill(self, i: int, k: int, q: float, px: float) -> None:
        """Positions and collateral of account ``i`` after a checked fill (no re-margin)."""
        symbol = self.instruments.instruments[k].symbol
        ins = self.instruments.instruments[k]
        ids = self._acct_pos[i]
        hit = next((g for g in ids if int(self._pos_ins.a[g]) == k), None)
        mark_now = float(self.instruments.mark[k])
        if hit is None:
            new, entry, cash = trade(0.0, None, q, px, ins, mark_now)
            g = self._add_position(i, self._accounts[i], symbol, new, entry)
            ids.append(g)
        else:
            e0 = self._pos_entry.a[hit]
            new, entry, cash = trade(float(self._pos_size.a[hit]),
                                     None if np.isnan(e0) else float(e0), q, px, ins, mark_now)
            self._pos_size.a[hit] = new
            self._pos_entry.a[hit] = math.nan if entry is None else entry
        if cash != 0.0:
            coll = self._collateral[i]
            coll[ins.settle] = coll.get(ins.settle, 0.0) + cash
            self._acct_by_ccy.setdefault(ins.settle, set()).add(i)
        self._stale.add(i)

    def deposit(self, account_id: str, currency: str, amount: float) -> list[Event]:
        """Add (``amount`` > 0) or withdraw (< 0) collateral; no check against IM here (the
        service refuses withdrawals that would leave equity below IM)."""
        i = self._account_index(account_id)
        if not self._market.is_priced(currency):
            raise InputError("currency", f"no index or fx price for {currency!r}")
        if not isinstance(amount, int | float) or not math.isfinite(amount) or amount == 0:
            raise InputError("amount", f"must be a finite non-zero number, got {amount!r}")
        coll = self._collateral[i]
        coll[currency] = coll.get(currency, 0.0) + float(amount)
        self._acct_by_ccy.setdefault(currency, set()).add(i)
        self._stale.add(i)
        return self._account_changed(i, "deposit")

    def set_margin_scale(self, scale: MarginScale, *, emit: bool = True) -> list[Event]:
        """Put a dynamic margin multiplier in force (:mod:`~margin_engine.policy.margin_scale`)
        and re-margin every unit at the current market.

        Parameters
        ----------
        scale : MarginScale
            The multipliers on each unit's IM and MM from now on.
        emit : bool
            False: update the statuses without reporting changes (at start).

        Returns
        -------
        list of Event
            The status changes the new parameters alone caused (``cause`` =
            ``"margin_parameters"``).
        """
        if not isinstance(scale, MarginScale):
            raise InputError("scale", f"expected a MarginScale, got {type(scale).__name__}")
        self.scale = scale
        self._reports.clear()
        return self._remargin(self.live_slots(), cause="margin_parameters", emit=emit,
                              accounts=set(range(len(self._accounts))))

    def rollback(self, market: MarketSnapshot, scale: MarginScale) -> None:
        """Put back a market and a scale the book held before (the same instruments in the same
        order), whatever their time, and re-margin every unit without reporting events: the
        statuses return to what they were. The service calls it when the changes it applied
        could not be stored, so the live book never runs ahead of storage."""
        if [i.symbol for i in market.instruments] != [
                i.symbol for i in self._market.instruments]:
            raise InputError("instruments", "a rollback must list the live book's instruments")
        self._market = market
        self.scale = scale
        self.instruments.refresh(market, None)
        self.engine.on_market(np.arange(len(market.instruments), dtype=np.int64))
        self._reports.clear()
        self._refresh_equity_inputs(None)
        self._remargin(self.live_slots(), cause="rollback", emit=False,
                       accounts=set(range(len(self._accounts))))

    def stamp(self) -> AuditStamp:
        """The audit stamp of the book's numbers now: the model's, with the parameters hash
        covering the margin scale in force (:func:`~margin_engine.policy.margin_scale.
        scaled_stamp`)."""
        return scaled_stamp(self.model.stamp(self._market), self.scale)

    # -- questions ------------------------------------------------------------------------------
    def what_if(self, account_id: str, orders: Sequence[tuple[str, float, float | None]]
                | Sequence[Mapping[str, Any]]) -> WhatIf:
        """Margin before and after ``orders`` fill, and whether they would be accepted.

        Parameters
        ----------
        account_id : str
        orders : sequence
            ``(symbol, size, price or None)`` tuples or ``{symbol, size, price?}`` mappings.

        Returns
        -------
        WhatIf
            Nothing in the book changes.
        """
        i = self._account_index(account_id)
        parsed = [self._check_order(*_order(o, n), f"orders[{n}]")
                  for n, o in enumerate(orders)]
        before = self._state(i)
        after = self._fast_what_if(i, parsed) or self._rebuilt_what_if(i, parsed)
        change = after.initial_margin - before.initial_margin
        # covered after the orders, or risk-reducing (WhatIf.reason says which, when asked)
        accept = after.available_balance >= 0.0 or change <= 0.0
        return WhatIf(account_id, before, after, change, accept)

    def snapshot(self, *, liquidation_prices: bool = False) -> list[AccountReport]:
        """Every account's full report, as ``assess_book`` gives on :meth:`book` and
        :attr:`market` (reports of accounts unchanged since the last call are reused)."""
        out = []
        for i in range(len(self._accounts)):
            rep = self._reports.get(i) if not liquidation_prices else None
            if rep is None:
                rep = assess_account(self.model, self.account_object(i), self._market,
                                     policy=self.policy, liquidation_prices=liquidation_prices,
                                     scale=self.scale)
                if not liquidation_prices:
                    self._reports[i] = rep
            out.append(rep)
        return out

    # -- internals ------------------------------------------------------------------------------
    def _account_index(self, account_id: str) -> int:
        try:
            return self._by_id[account_id]
        except KeyError:
            raise InputError("account", f"unknown account {account_id!r}") from None

    def _check_order(self, symbol: str, size: float, price: float | None,
                     at: str) -> tuple[int, float, float]:
        k = self.instruments.index.get(symbol)
        if k is None:
            raise InputError(f"{at}.symbol", f"unknown symbol {symbol!r}")
        why = self._refused.get(k, "")
        if why == "":  # the model's answer for an instrument is fixed: asked once
            why = self._refused[k] = self.model.check_instrument(self.instruments.instruments[k])
        if why:
            raise InputError(f"{at}.symbol", f"{symbol!r}: {why}")
        if not isinstance(size, int | float) or not math.isfinite(size) or size == 0:
            raise InputError(f"{at}.size", f"must be a finite non-zero number, got {size!r}")
        if price is None:
            px = float(self.instruments.mark[k])
        elif not isinstance(price, int | float) or not math.isfinite(price) or price <= 0:
            raise InputError(f"{at}.price", f"must be a finite number > 0, got {price!r}")
        else:
            px = float(price)
        return k, float(size), px

    def _add_position(self, i: int, account: Account, symbol: str, size: float,
                      entry: float | None, isolated: float | None = None) -> int:
        k = self.instruments.index[symbol]
        self._pos_acct.append(i)
        self._pos_slot.append(-1)
        self._pos_ins.append(k)
        self._pos_size.append(size)
        self._pos_entry.append(math.nan if entry is None else entry)
        self._pos_lev.append(account.leverage.get(symbol, math.nan))
        self._pos_iso.append(math.nan if isolated is None else isolated)
        return self._pos_eq.append(0.0)

    def _build_units(self, i: int) -> list[int]:
        """(Re)group account ``i`` into units; returns the new slots."""
        for s in self._acct_units[i]:
            for c in self._unit_ccys[s]:
                self._by_ccy.get(c, set()).discard(s)
                self._coll_by_ccy.get(c, set()).discard(s)
        account = self.account_object(i)
        arr = self.instruments
        ids = self._acct_pos[i]
        self._pos_slot.a[ids] = -1
        slots = []
        for unit in self.model.units(account, self._market):
            s = len(self._units)
            self._units.append(unit)
            self._unit_acct.append(i)
            self._unit_acct_a.append(i)
            pos = np.array([ids[j] for j in unit.position_indices], dtype=np.int64)
            self._unit_pos.append(pos)
            self._pos_slot.a[pos] = s
            ins = arr.instruments
            ccys = {unit.currency, *unit.collateral}
            for g in pos.tolist():
                x = ins[int(self._pos_ins.a[g])]
                ccys |= {x.underlying, x.settle}
            self._unit_ccys.append(frozenset(ccys))
            for c in ccys:
                self._by_ccy.setdefault(c, set()).add(s)
            for c in {unit.currency, *unit.collateral}:
                self._coll_by_ccy.setdefault(c, set()).add(s)
            self._unit_ccy.append(arr.ccy[unit.currency])
            for col in (self._im, self._mm, self._eq, self._coll):
                col.append(0.0)
            slots.append(s)
        self._u_peq.extend_to(len(self._units))  # the new units: summed when re-margined
        self._acct_units[i] = slots
        return slots

    def _account_changed(self, i: int, cause: str) -> list[Event]:
        self._version += 1
        self._concat_cache.clear()
        self._acct_concat.clear()
        self._acct_units_cache.clear()
        old = self._acct_units[i]
        try:
            slots = self._build_units(i)
        except InputError:
            self._acct_units[i] = old
            raise
        self.engine.on_units(slots)
        self._refresh_equity_inputs(None, accounts=[i])
        self._reports.pop(i, None)
        return self._remargin(slots, cause=cause, accounts={i})

    def _refresh_equity_inputs(self, touched: frozenset[str] | None,
                               accounts: Iterable[int] | None = None,
                               moved: np.ndarray | None = None,
                               usd_before: np.ndarray | None = None) -> None:
        """Position equity values and collateral values of the units and accounts whose
        collateral may have moved.

        Position values: of ``accounts`` (their positions changed; their sums are re-summed);
        else of the positions on ``moved`` instruments, their changes added to their units' and
        accounts' sums (``usd_before``: the currency prices before the move); else (or when
        every instrument moved, as a new timestamp does) of every position, every sum
        re-summed, as the bracket engine does.
        """
        hit = np.empty(0, dtype=np.int64)
        if accounts is not None:
            accounts = list(accounts)
            hit = np.fromiter((g for i in accounts for g in self._acct_pos[i]), dtype=np.int64)
            self._a_peq_ccy[accounts] = -1
        elif moved is None or moved.size == len(self.instruments.instruments):
            hit = np.arange(self._pos_ins.n)  # everything moved: every sum re-summed
            self._u_peq.invalidate(slice(None))
            self._a_peq_ccy[:] = -1
        else:
            assert usd_before is not None
            self._move_equity(self.tick_plan(moved), usd_before)
            hit = hit[:0]
        if hit.size:
            self._pos_eq.a[hit] = position_equity(self.instruments, self._pos_ins.a[hit],
                                                  self._pos_size.a[hit], self._pos_entry.a[hit])
        if accounts is not None:
            unit_slots = [s for i in accounts for s in self._acct_units[i]]
            slots = np.array(unit_slots, dtype=np.int64)
            accts = np.array(accounts, dtype=np.int64)
            table = self._collateral_table(unit_slots, accounts)
        else:
            slots, accts, table = self._collateral_touched(touched)
        values = table.values(self._market, self.policy)
        self._coll.a[slots] = values[: len(slots)]
        self._whole_coll[accts] = values[len(slots):]

    def _collateral_table(self, slots: Sequence[int], accts: Sequence[int]) -> CollateralTable:
        """The holdings of units ``slots`` then of accounts ``accts``, flattened."""
        owners = [Holdings(self._units[s].collateral, self._units[s].currency,
                           self.account_object(self._unit_acct[s])) for s in slots]
        owners += [Holdings(self._collateral[i], self._account_currency(i),
                            self.account_object(i)) for i in accts]
        return CollateralTable.build(owners, self.policy)

    def _collateral_touched(self, touched: frozenset[str] | None
                            ) -> tuple[np.ndarray, np.ndarray, CollateralTable]:
        """The units and accounts whose collateral value a move of ``touched`` currencies (all:
        ``None``) may change, and their holdings (kept until an account changes)."""
        got = self._coll_tables.get(touched)
        if got is not None and got[0] == self._version:
            return got[1]
        if touched is None:
            slots = self.live_slots()
            accts = list(range(len(self._accounts)))
        else:
            units: set[int] = set()
            for c in touched:
                units |= self._coll_by_ccy.get(c, set())
            slots = sorted(units)
            accts = sorted({self._unit_acct[s] for s in slots}.union(
                *(self._acct_by_ccy.get(c, set()) for c in touched)))
        # index arrays: a tick writes 65,000 values through them (lists cost 10 ms a tick)
        entry = (np.array(slots, dtype=np.int64), np.array(accts, dtype=np.int64),
                 self._collateral_table(slots, accts))
        if len(self._coll_tables) >= 16:
            self._coll_tables.clear()
        self._coll_tables[touched] = (self._version, entry)
        return entry

    def _move_equity(self, plan: TickPlan, usd_before: np.ndarray) -> None:
        """Re-value the equity of ``plan``'s positions and add the changes to their units' and
        accounts' sums (``usd_before``: the currency prices before the move); sums held in a
        currency whose price moved are re-summed instead (every term's conversion moved)."""
        usd = self.instruments.usd
        moved = ~((usd == usd_before) | (np.isnan(usd) & np.isnan(usd_before)))
        if moved.any():
            self._u_peq.invalidate(np.flatnonzero(moved[self._unit_ccy.a]))
            self._a_peq_ccy[(self._a_peq_ccy >= 0) & moved[self._a_peq_ccy]] = -1
        old = self._pos_eq.a[plan.hit]
        new = position_equity(self.instruments, plan.ins, plan.size, plan.entry)
        self._pos_eq.a[plan.hit] = new
        live = plan.live
        self._u_peq.add(plan.units, _changes(new[live], old[live], plan.settle[live],
                                             plan.to_unit, usd, usd_before))
        dest = self._a_peq_ccy[plan.acct]
        held = dest >= 0  # else not summed yet: re-summed when the account is aggregated
        if held.all():
            groups, settle = plan.accounts, plan.settle
        else:
            new, old, dest = new[held], old[held], dest[held]
            groups, settle = Grouping(plan.acct[held]), plan.settle[held]
        self._a_peq.add(groups, _changes(new, old, settle, dest, usd, usd_before))

    def _account_currency(self, i: int) -> str:
        ccys = {self._units[s].currency for s in self._acct_units[i]}
        return ccys.pop() if len(ccys) == 1 else "USD"

    def _converted_sums(self, idx: np.ndarray, lens: np.ndarray, to: np.ndarray) -> np.ndarray:
        """Per group of positions: Σ equity value converted to currency code ``to[group]``."""
        arr = self.instruments
        if not lens.sum():
            return np.zeros(lens.size)
        settle = arr.settle[self._pos_ins.a[idx]]
        return segment_sums(_to_ccy(self._pos_eq.a[idx], settle, np.repeat(to, lens), arr.usd),
                            lens)

    def _remargin(self, slots: Sequence[int] | np.ndarray, *, cause: str, emit: bool = True,
                  accounts: set[int] | None = None, acct: np.ndarray | None = None
                  ) -> list[Event]:
        """Re-margin units ``slots`` and their accounts (with ``accounts``; or exactly the
        sorted accounts ``acct`` when the caller knows them); the status changes as events."""
        sl = np.asarray(slots, dtype=np.int64)
        if sl.size:
            self._remargin_units(sl)
        if acct is None:
            acct = np.unique(self._unit_acct_a.a[sl])
            if accounts:
                acct = np.union1d(acct, np.fromiter(accounts, dtype=np.int64))
        if self._reports:
            for i in acct.tolist():
                self._reports.pop(i, None)
        old = self._a_status[acct].copy()
        self._aggregate_many(acct)
        changed = acct[(old != self._a_status[acct]) & (old >= 0)] if emit else acct[:0]
        events = []
        if changed.size:
            stamp = self.stamp()  # one parameter hash, not one per event
        for i in changed.tolist():
            new = self._state(i)
            prev = _STATUS[int(old[np.searchsorted(acct, i)])]
            self._seq += 1
            events.append(Event(self._seq, _event_type(prev, new.status), new.id, new.status,
                                prev, new.initial_margin, new.maintenance_margin, new.equity,
                                new.margin_ratio, new.currency, cause, stamp))
        return events

    def _remargin_units(self, sl: np.ndarray) -> None:
        """IM, MM and equity of unit slots ``sl`` (non-empty) at the current market."""
        # an int64 array serves every engine as a sequence of slots (no list of 65,000)
        im, mm = self.engine.margins(cast(Sequence[int], sl))
        if not self.scale.is_identity:
            im, mm = self.scale.apply(im, mm)
        self._im.a[sl] = im
        self._mm.a[sl] = mm
        redo = self._u_peq.stale(sl)
        if redo.size:
            self._u_peq.set_exact(redo, self._converted_sums(
                *self.concat_positions(redo), self._unit_ccy.a[redo]))
        self._eq.a[sl] = self._coll.a[sl] + self._u_peq.values(sl)

    def _account_positions(self, acct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The positions of accounts ``acct`` one after the other, and how many each has (kept
        for repeated account sets until an account changes)."""
        key = (acct.size, hash(acct.tobytes()))
        hit = self._acct_concat.get(key)
        if hit is not None and hit[0] == self._version:
            return hit[1], hit[2]
        groups = [self._acct_pos[i] for i in acct.tolist()]
        lens = np.fromiter((len(g) for g in groups), dtype=np.int64, count=len(groups))
        idx = np.fromiter((g for grp in groups for g in grp), dtype=np.int64,
                          count=int(lens.sum()))
        if acct.size > 1000:
            if len(self._acct_concat) >= 8:
                self._acct_concat.clear()
            self._acct_concat[key] = (self._version, idx, lens)
        return idx, lens

    def _account_units(self, acct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """How many units each of accounts ``acct`` has, and their slots one after the other
        (kept for repeated account sets until an account changes, as the positions are)."""
        key = (acct.size, hash(acct.tobytes()))
        hit = self._acct_units_cache.get(key)
        if hit is not None and hit[0] == self._version:
            return hit[1], hit[2]
        groups = [self._acct_units[i] for i in acct.tolist()]
        nu = np.fromiter((len(g) for g in groups), dtype=np.int64, count=len(groups))
        su = np.fromiter((s for g in groups for s in g), dtype=np.int64, count=int(nu.sum()))
        if acct.size > 1000:
            if len(self._acct_units_cache) >= 8:
                self._acct_units_cache.clear()
            self._acct_units_cache[key] = (self._version, nu, su)
        return nu, su

    def _aggregate_many(self, acct: np.ndarray) -> None:
        """``assess_account``'s account-level arithmetic, vectorised over accounts."""
        if not acct.size:
            return
        arr = self.instruments
        nu, su = self._account_units(acct)
        if nu.size and nu.min() == 1 and nu.max() == 1:
            self._aggregate_single(acct, su)
            return
        uccy = self._unit_ccy.a[su]
        im_u, mm_u, eq_u = self._im.a[su], self._mm.a[su], self._eq.a[su]
        accy, im_t, mm_t, spare, status, ratio = unit_rollup(
            nu, uccy, im_u, mm_u, eq_u, arr.usd, arr.ccy["USD"])
        eq = self._whole_coll[acct] + self._account_equity(acct, accy)
        available = np.minimum(eq - im_t, spare)
        empty = nu == 0
        if empty.any():
            e_eq, e_im, e_mm = eq[empty], im_t[empty], mm_t[empty]
            status[empty] = np.where((e_eq < 0) | ((e_mm > 0) & (e_eq <= e_mm)), 2,
                                     np.where(e_eq < e_im, 1, 0))
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio[empty] = np.where(e_eq > 0, e_mm / e_eq,
                                        np.where((e_mm == 0) & (e_eq == 0), 0.0, np.nan))
        a = self._a
        a["im"][acct], a["mm"][acct], a["eq"][acct] = im_t, mm_t, eq
        a["avail"][acct], a["ratio"][acct] = available, ratio
        self._a_status[acct] = status
        self._a_ccy[acct] = accy

    def _aggregate_single(self, acct: np.ndarray, su: np.ndarray) -> None:
        """:meth:`_aggregate_many` when each account has one unit (``su``, in account order):
        the unit's numbers are the account's, in the unit's currency (the same values the
        general path gives, without its per-account reductions)."""
        accy = self._unit_ccy.a[su]
        im_u, mm_u, eq_u = self._im.a[su], self._mm.a[su], self._eq.a[su]
        eq = self._whole_coll[acct] + self._account_equity(acct, accy)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(eq_u > 0, mm_u / eq_u,
                             np.where((mm_u == 0) & (eq_u == 0), 0.0, np.nan))
        a = self._a
        a["im"][acct], a["mm"][acct], a["eq"][acct] = im_u, mm_u, eq
        a["avail"][acct] = np.minimum(eq - im_u, eq_u - im_u)
        a["ratio"][acct] = ratio
        self._a_status[acct] = np.where((eq_u < 0) | ((mm_u > 0) & (eq_u <= mm_u)), 2,
                                        np.where(eq_u < im_u, 1, 0))
        self._a_ccy[acct] = accy

    def _account_equity(self, acct: np.ndarray, accy: np.ndarray) -> np.ndarray:
        """Σ position equity value of accounts ``acct`` in currency codes ``accy`` (the kept
        sums; re-summed where stale or kept in another currency)."""
        resum = (self._a_peq_ccy[acct] != accy) | ~self._a_peq.is_current(acct)
        if resum.any():
            redo, to = acct[resum], accy[resum]
            self._a_peq.set_exact(redo, self._converted_sums(*self._account_positions(redo), to))
            self._a_peq_ccy[redo] = to
        return self._a_peq.values(acct)

    def _aggregate(self, i: int, *, im_mm: Mapping[int, tuple[float, float]] | None = None,
                   eq_delta: Mapping[int, float] | None = None, whole_delta: float = 0.0
                   ) -> AccountState:
        """``assess_account``'s account-level arithmetic over the cached unit numbers."""
        slots = self._acct_units[i]
        ccy = self.instruments.currencies[self._a_ccy.item(i)]  # _account_currency's, kept
        eq = self._a["eq"].item(i) + whole_delta  # the account's equity now, plus the change
        # every unit converted into the account's currency as market.convert does (the
        # instrument arrays' USD prices are the market's)
        usd = self.instruments.usd
        to = self._a_ccy.item(i)
        usd_to = usd.item(to)
        im_t = mm_t = 0.0
        spare = []
        worst: tuple[int, float] | None = None
        status = Status.HEALTHY
        ratios = []
        for s in slots:
            got = im_mm.get(s) if im_mm else None
            im, mm = (self._im.a.item(s), self._mm.a.item(s)) if got is None else got
            eq_u = self._eq.a.item(s) + (eq_delta.get(s, 0.0) if eq_delta else 0.0)
            r, st = health.margin_ratio(mm, eq_u), health.status(im, mm, eq_u)
            key = (_STATUS.index(st), r or 0.0)  # severity (an identity test, no Enum hash)
            if worst is None or key > worst:  # the first of the worst units, as max() picks
                worst, status = key, st
            ratios.append(r)
            frm = self._unit_ccy.a.item(s)
            if frm == to:
                im_t += im
                mm_t += mm
                spare.append(eq_u - im)
            else:
                u = usd.item(frm)
                im_t += im * u / usd_to
                mm_t += mm * u / usd_to
                spare.append((eq_u - im) * u / usd_to)
        available = eq - im_t
        for x in spare:  # min([eq - im_t, *spare])
            if x < available:
                available = x
        ratio = None if None in ratios else max(
            cast(list[float], ratios), default=health.margin_ratio(mm_t, eq))
        if worst is None:  # no unit
            status = health.status(im_t, mm_t, eq)
        return AccountState(self._accounts[i].id, ccy, im_t, mm_t, eq, available, ratio, status)

    def _fast_what_if(self, i: int, orders: list[tuple[int, float, float]]
                      ) -> AccountState | None:
        """Answer from the cache when every order adds to a position the account holds.

        Plain floats throughout (``ndarray.item``: no NumPy scalars), each unit's engine asked
        once; the same operations in the same order as the rebuild's arithmetic."""
        arr = self.instruments
        slots = self._acct_units[i]
        held = self._held(i)
        units = self._units
        pos_slot, pos_ins = self._pos_slot.a, self._pos_ins.a
        by_slot: dict[int, list[tuple[int, float]]] = {}
        coll = coll0 = self._collateral[i]
        changed: dict[int, tuple[float, float | None]] = {}  # position -> (size, entry)
        moved: set[str] = set()  # collateral currencies the orders' cash moves
        for k, q, px in orders:
            g = held.get(k, -1)
            slot = -1 if g < 0 else pos_slot.item(g)
            if slot < 0 or (units[slot].scope == "position" and len(slots) > 1):
                return None  # a new unit, or isolated: the rebuild decides
            ods = by_slot.get(slot)
            if ods is None:
                by_slot[slot] = [(k, q)]
            else:
                ods.append((k, q))
            got = changed.get(g)
            if got is not None:
                size0, entry0 = got
            else:
                e0 = self._pos_entry.a.item(g)
                size0, entry0 = self._pos_size.a.item(g), None if math.isnan(e0) else e0
            ins = arr.instruments[k]
            new, entry, cash = trade(size0, entry0, q, px, ins, arr.mark.item(k))
            changed[g] = (new, entry)
            if cash != 0.0:
                if coll is coll0:
                    coll = dict(coll)
                coll[ins.settle] = coll.get(ins.settle, 0.0) + cash
                moved.add(ins.settle)
        ccy = arr.currencies[self._a_ccy.item(i)]
        eq_delta: dict[int, float] = {}
        whole = 0.0
        for g, (q, e) in changed.items():  # a position is in one unit
            k = pos_ins.item(g)
            v = position_equity_one(arr, k, q, math.nan if e is None else e) \
                - self._pos_eq.a.item(g)
            s = pos_slot.item(g)
            eq_delta[s] = eq_delta.get(s, 0.0) + self._convert(v, k, units[s].currency)
            whole += self._convert(v, k, ccy)
        if moved:  # cash moved: the collateral values change by the moved balances' terms
            account = self.account_object(i)
            for s in slots:
                u = units[s]
                if u.scope == "currency":
                    seen = moved & {u.currency}
                elif u.scope == "position" and not math.isnan(
                        self._pos_iso.a.item(self._unit_pos[s].item(0))):
                    continue  # its own isolated margin: no account cash
                else:
                    seen = moved
                if seen:
                    eq_delta[s] = eq_delta.get(s, 0.0) + self._collateral_change(
                        coll0, coll, seen, u.currency, account)
            whole += self._collateral_change(coll0, coll, moved, ccy, account)
        im_mm = {}
        scale = None if self.scale.is_identity else self.scale
        engine = self.engine
        # an engine whose model reads no collateral is asked without building the mapping
        plain = type(engine).what_if_with is ReferenceEngine.what_if_with
        for slot, ods in by_slot.items():
            got_im_mm = engine.what_if(slot, ods) if plain else engine.what_if_with(
                slot, ods, self._unit_collateral(slot, coll))
            if got_im_mm is None:
                return None
            im_mm[slot] = got_im_mm if scale is None else scale.apply_one(*got_im_mm)
        return self._aggregate(i, im_mm=im_mm, eq_delta=eq_delta, whole_delta=whole)

    def _collateral_change(self, old: Mapping[str, float], new: Mapping[str, float],
                           moved: set[str], currency: str, account: Account) -> float:
        """Change of ``health.collateral_value`` in ``currency`` from balances ``old`` to
        ``new``, which differ only in ``moved``: the moved balances' terms, each valued as the
        reference values it (converted, haircut when positive and foreign), new minus old (the
        others' terms cancel; rounding apart, the full re-valuation's difference)."""
        mk, policy = self._market, self.policy
        out = 0.0
        for c in sorted(moved):
            out += health.collateral_value({c: new[c]}, currency, account, mk, policy)
            if c in old:
                out -= health.collateral_value({c: old[c]}, currency, account, mk, policy)
        return out

    def _unit_collateral(self, s: int, coll: Mapping[str, float]) -> Mapping[str, float]:
        """Unit ``s``'s collateral when its account's is ``coll``."""
        u = self._units[s]
        if u.scope == "currency":
            return {u.currency: coll.get(u.currency, 0.0)}
        if u.scope == "position" and not math.isnan(self._pos_iso.a[self._unit_pos[s][0]]):
            return u.collateral
        return coll

    def _held(self, i: int) -> dict[int, int]:
        """Account ``i``'s first position on each instrument row it holds (kept until an
        account changes)."""
        got = self._held_cache.get(i)
        if got is not None and got[0] == self._version:
            return got[1]
        ids = self._acct_pos[i]
        held = first_by_row(self._pos_ins.a[ids].tolist(), ids)
        if len(self._held_cache) >= 4096:
            self._held_cache.clear()
        self._held_cache[i] = (self._version, held)
        return held

    def _convert(self, value: float, k: int, currency: str) -> float:
        """``value`` in instrument row ``k``'s settlement currency, in ``currency``."""
        arr = self.instruments
        settle = arr.settle.item(k)
        if arr.currencies[settle] == currency:
            return value
        return value * arr.usd.item(settle) / arr.usd.item(arr.ccy[currency])

    def _rebuilt_what_if(self, i: int, orders: list[tuple[int, float, float]]) -> AccountState:
        account = self.account_object(i)
        for k, q, px in orders:
            account = fill_account(account, self._market,
                                   self.instruments.instruments[k].symbol, q, px)
        rep = assess_account(self.model, account, self._market, policy=self.policy,
                             liquidation_prices=False, scale=self.scale)
        return AccountState(rep.id, rep.currency, rep.initial_margin, rep.maintenance_margin,
                            rep.equity, rep.available_balance, rep.margin_ratio, rep.status)


def _to_ccy(v: np.ndarray, settle: np.ndarray, dest: np.ndarray, usd: np.ndarray) -> np.ndarray:
    """Amounts ``v`` in currency codes ``settle`` converted to codes ``dest`` at USD prices
    ``usd`` (unchanged where the two are the same)."""
    return np.where(settle == dest, v, v * usd[settle] / usd[dest])


def _changes(new: np.ndarray, old: np.ndarray, settle: np.ndarray, dest: np.ndarray,
             usd: np.ndarray, usd_before: np.ndarray) -> np.ndarray:
    """Changes of amounts (``old`` at prices ``usd_before``, ``new`` at ``usd``) in codes
    ``settle``, converted to codes ``dest``: the new converted value minus the old one."""
    if np.array_equal(settle, dest):
        return new - old
    return _to_ccy(new, settle, dest, usd) - _to_ccy(old, settle, dest, usd_before)


def _order(o: Any, n: int) -> tuple[str, float, float | None]:
    if type(o) is tuple and len(o) == 3:  # the usual (symbol, size, price) first
        return str(o[0]), o[1], o[2]
    if isinstance(o, Mapping):
        unknown = sorted(set(o) - {"symbol", "size", "price"})
        if unknown:
            raise InputError(f"orders[{n}].{unknown[0]}", "unknown field (symbol, size, price)")
        if "symbol" not in o or "size" not in o:
            raise InputError(f"orders[{n}]", "needs symbol and size")
        return str(o["symbol"]), o["size"], o.get("price")
    sym, size, *rest = o
    return str(sym), size, rest[0] if rest else None
