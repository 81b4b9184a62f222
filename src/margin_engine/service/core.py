"""The service's state: the repository (what is durable) and the live book (what is current),
kept in step.

Every change goes to storage first (one audited transaction) and then to the live book; the
status changes the live book reports are appended to the stored event sequence and pushed to
WebSocket subscribers, and a Merkle commitment over every account's figures is published. One
lock serialises changes and live-book reads (the live book is not thread-safe; the storage layer
serialises its own writers as well).

At start the live book is rebuilt by replaying the audit log's account, collateral and fill
entries in order (the same fill rule, at the stored prices), so a restart reproduces the state
the live book had, realised P&L and option premiums included. The market is the one stored by
the last applied update (``market_state``) when there is one, else the start market: a restart
resumes from the last applied market and its timestamp.

A market update publishes, besides the status changes, a ``margin`` event for every other
account whose initial margin, maintenance margin or equity it moved (DESIGN §8), so a client
following the stream sees margin move with the feed. They are coalesced per account: one is
published only when one of the three figures has moved by more than ``margin_threshold``
(relative, default :data:`MARGIN_EVENT_THRESHOLD` = 1 %) from the figures the account's last
published event (``margin`` or status change) carried; status changes are always published.

**A market update is all or nothing.** The update is applied to the live book first (it yields
the events and figures to store), then the controller of ``serve --dynamic`` sees the new market
and puts a parameter change in force, then one transaction stores the market, the feed
position, every event (status changes, ``margin`` moves, ``margin_parameters``), the commitment
and the controller's state (multiplier in force, announced increase, its observations). If that
write fails, the live book is rolled back to the previous market and margin scale, the
controller to its previous state and the coalescing baseline to its previous figures, and the
error propagates: the live book never runs ahead of storage. A restart of ``serve --dynamic``
resumes the stored controller state (the multiplier in force and an announced increase).

Every stamp (event ``audit``, audit-log entries, the account report, the commitment's audit
entry) carries the live book's ``params_hash``, which covers the margin scale in force
(:func:`~margin_engine.policy.margin_scale.scaled_params_hash`): a proof says which parameters,
multiplier included, produced its number.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from decimal import Decimal
from typing import Any

from margin_engine.domain.book import Account, Book
from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError
from margin_engine.io.loaders import parse_model
from margin_engine.live import LiveBook
from margin_engine.live.dynamic import LiveDynamic, RegimeSignals, parse_signals
from margin_engine.live.events import AccountState, Event, WhatIf
from margin_engine.models.core.base import MarginModel
from margin_engine.policy.assess import AccountReport, assess_account

from .errors import ConflictError, NotFoundError
from .repository import (
    AccountFigures,
    CollateralResult,
    CreatedAccount,
    EventRecord,
    FeedRecord,
    FillResult,
    MarginStamp,
    Repository,
    StoredDynamic,
)

MARGIN_EVENT_THRESHOLD = 0.01
"""Relative move of IM, MM or equity (since the account's last published figures) above which a
market update publishes a ``margin`` event: 1 %, a house choice (UNCONFIRMED, 2026-12-06) that
keeps a large book from flooding the stream on every tick; 0 publishes every move."""


def dec(x: float | None) -> Decimal | None:
    """A float figure as the exact decimal of its shortest repr (None for None/NaN/inf)."""
    if x is None or not math.isfinite(x):
        return None
    return Decimal(repr(float(x)))


def _plain(value: Any) -> Any:
    """Floats → decimals, recursively (canonical JSON refuses floats)."""
    if isinstance(value, float):
        return dec(value)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


@dataclass
class _Subscriber:
    queue: asyncio.Queue[dict[str, Any]]
    loop: asyncio.AbstractEventLoop
    account: str | None  # None: the operator (every event)


@dataclass
class ServiceCore:
    """The repository and the live book of one service instance.

    Parameters
    ----------
    repo : Repository
        Open, migrated storage.
    live : LiveBook
        The live book, already holding the stored accounts.
    """

    repo: Repository
    live: LiveBook
    lock: threading.RLock = field(default_factory=threading.RLock)
    known_keys: dict[bytes, str] = field(default_factory=dict)
    """SHA-256 of an account key already checked against its stored hash → the account."""
    _subs: list[_Subscriber] = field(default_factory=list)
    dynamic: LiveDynamic | None = None
    """The dynamic margin controller on the feed (``serve --dynamic``), or None."""
    margin_threshold: float = MARGIN_EVENT_THRESHOLD
    """Relative move that publishes a ``margin`` event (see :data:`MARGIN_EVENT_THRESHOLD`)."""
    _published: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    """Per account: (IM, MM, equity) of its last published event, the coalescing baseline."""

    @classmethod
    def open(cls, model: MarginModel, market: MarketSnapshot, repo: Repository,
             dynamic: LiveDynamic | None = None, *,
             margin_threshold: float = MARGIN_EVENT_THRESHOLD) -> ServiceCore:
        """Rebuild the live book from ``repo``'s audit log on ``market`` and publish a first
        commitment when there are accounts and none yet. With ``dynamic``, the stored
        controller state is resumed when there is one (else the controller starts at its
        initial multiplier), and its multiplier in force applies from the start (no events).

        Raises
        ------
        InputError
            ``margin_threshold`` not in [0, 1), or a stored controller state that cannot be
            resumed (``dynamic_state...``).
        """
        if not (0.0 <= margin_threshold < 1.0):
            raise InputError("margin_threshold", f"must lie in [0, 1), got {margin_threshold!r}")
        stored = repo.stored_market()
        if stored is not None:
            market = MarketSnapshot.model_validate_json(stored.snapshot)
        live = LiveBook(model, Book(accounts=()), market)
        if dynamic is not None:
            doc = stored_dynamic_state(repo)
            if doc is not None:
                dynamic.restore_doc(doc)
            dynamic.observe(market)
            live.set_margin_scale(dynamic.scale, emit=False)
        after = 0
        while True:
            page = repo.audit_after(after, limit=1000)
            if not page:
                break
            for e in page:
                _replay(live, e.action, e.account, e.changes)
            after = page[-1].seq
        core = cls(repo, live, dynamic=dynamic, margin_threshold=margin_threshold)
        if live.account_ids() and repo.latest_commitment() is None:
            core.publish_commitment()
        return core

    # -- reads --------------------------------------------------------------------------------
    def stamp(self, account: str | None = None) -> MarginStamp:
        """The audit stamp of the live book now (with ``account``'s figures when given); its
        ``params_hash`` covers the margin scale in force."""
        st = self.live.stamp()
        margin: dict[str, Decimal] = {}
        if account is not None:
            margin = _figures(self.live.state(account))
        return MarginStamp(st.model, st.model_version, st.params_hash, st.market_timestamp,
                           margin)

    def report(self, account: str) -> AccountReport:
        """The account's full report (as ``compute`` prints it) on the live market."""
        with self.lock:
            i = self.live.account_ids().index(account)
            return assess_account(self.live.model, self.live.account_object(i),
                                  self.live.market, policy=self.live.policy,
                                  scale=self.live.scale)

    def what_if(self, account: str, orders: list[tuple[str, float, float | None]]) -> WhatIf:
        """The live book's pre-trade answer; nothing changes."""
        with self.lock:
            if not self.live.has_account(account):
                raise NotFoundError("id", f"no account {account!r}")
            return self.live.what_if(account, orders)

    # -- changes ------------------------------------------------------------------------------
    def create_account(self, account_id: str, margin_mode: str,
                       collateral: Mapping[str, Decimal], credit_rating: str | None,
                       actor: str) -> CreatedAccount:
        """Store the account, then open it in the live book."""
        with self.lock:
            if self.live.has_account(account_id):
                raise ConflictError("id", f"account {account_id!r} already exists")
            acct = _account(account_id, margin_mode, credit_rating,
                            {c: float(v) for c, v in collateral.items()})
            self.live.model.units(acct, self.live.market)  # refuse what cannot be margined
            for c in collateral:
                if not self.live.market.is_priced(c):
                    raise InputError(f"collateral.{c}", f"no index or fx price for {c!r}")
            created = self.repo.create_account(account_id, margin_mode,
                                               credit_rating=credit_rating,
                                               collateral=dict(collateral), actor=actor)
            self._changed(self.live.add_account(acct))
            return created

    def change_collateral(self, account: str, currency: str, amount: Decimal,
                          actor: str) -> CollateralResult:
        """Deposit (> 0) or withdraw (< 0); a withdrawal leaving equity below IM is a 409 and
        changes nothing."""
        with self.lock:
            self.repo.get_account(account)
            amt = float(amount)
            if amt == 0.0 or not math.isfinite(amt):
                raise InputError("amount", "must be a finite non-zero number")
            # Try it on the live book, read the after-state, undo: the verdict for the check.
            self.live.deposit(account, currency, amt)
            after = self.live.state(account)
            self.live.deposit(account, currency, -amt)
            reason = None
            if amount < 0 and after.available_balance < 0.0:
                reason = (f"withdrawal would leave equity {after.equity:.10g} below initial "
                          f"margin {after.initial_margin:.10g} {after.currency}")
            stamp = self.stamp()
            stamp = MarginStamp(stamp.model, stamp.model_version, stamp.params_hash,
                                stamp.market_timestamp, _figures(after))
            result = self.repo.change_collateral(account, currency, amount, actor=actor,
                                                 check=lambda _acc: reason, stamp=stamp)
            self._changed(self.live.deposit(account, currency, amt))
            return result

    def apply_fill(self, account: str, fill_id: str, symbol: str, size: Decimal,
                   price: Decimal, actor: str) -> FillResult:
        """Store the fill (idempotent on ``fill_id``), then apply it to the live book."""
        with self.lock:
            self.repo.get_account(account)
            # validates symbol/size/price against the live market and gives the after-state
            try:
                w = self.live.what_if(account, [(symbol, float(size), float(price))])
            except InputError as exc:
                raise InputError(exc.path.removeprefix("orders[0]."), exc.reason) from None
            stamp = self.stamp()
            stamp = MarginStamp(stamp.model, stamp.model_version, stamp.params_hash,
                                stamp.market_timestamp, _figures(w.after))
            result = self.repo.apply_fill(account, fill_id, symbol, size, price, actor=actor,
                                          stamp=stamp)
            if not result.replayed:
                self._changed(self.live.apply_fill(account, symbol, float(size), float(price)))
            return result

    def update_market(self, body: Mapping[str, Any], *,
                      feed: tuple[str, int] | None = None) -> list[EventRecord] | None:
        """A partial update (``{timestamp, index?, fx?, order_books?, instruments?}``) or, when
        the instruments carry their definitions (``kind``), a whole snapshot. With the dynamic
        controller the update may carry ``regime: {dvol?, funding?, depth?}``; the controller
        then sees the new market, and a parameter change it puts in force re-margins the book
        at the new prices (its status changes have cause ``margin_parameters``, after the
        price move's own, cause ``market``).

        Parameters
        ----------
        body : mapping
            The update (``POST /v1/market``'s body, or one feed message).
        feed : (str, int), optional
            The feed's key and the message's position (a stream sequence). A position at or
            before the stored one is skipped (None is returned: it was applied before a
            restart); otherwise the position is stored with the market, in one transaction.

        Returns
        -------
        list of EventRecord or None
            The events the update caused (status changes, then ``margin`` moves).
        """
        with self.lock:
            if feed is not None:
                done = self.repo.feed_position(feed[0])
                if done is not None and feed[1] <= done.position:
                    return None
            signals = None
            if self.dynamic is not None and isinstance(body, Mapping) and "regime" in body:
                signals = parse_signals(body["regime"])
                body = {k: v for k, v in body.items() if k != "regime"}
            prev_market, prev_scale = self.live.market, self.live.scale
            checkpoint = self.dynamic.checkpoint() if self.dynamic is not None else None
            published = dict(self._published)
            try:
                stored = self._apply_market(body, feed, signals)
            except BaseException:
                if self.live.market is not prev_market or self.live.scale is not prev_scale:
                    self.live.rollback(prev_market, prev_scale)
                if self.dynamic is not None and checkpoint is not None:
                    self.dynamic.rollback(checkpoint)
                self._published = published
                raise
            for rec in stored:
                self._push(rec)
            return stored

    def _apply_market(self, body: Mapping[str, Any], feed: tuple[str, int] | None,
                      signals: RegimeSignals | None) -> list[EventRecord]:
        """Apply the update (and the controller's changes) to the live book, then store it all
        in one transaction; the caller rolls the live book back when this raises."""
        before = {s.id: s for s in self.live.states()}
        ins = body.get("instruments") if isinstance(body, Mapping) else None
        full = isinstance(ins, list) and any(isinstance(x, dict) and "kind" in x for x in ins)
        if full:
            events = self.live.set_market(parse_model(MarketSnapshot, dict(body), "market"))
        else:
            events = self.live.update_market(body)
        rows = _event_rows([*events, *self._margin_moves(before, events, "market")])
        dyn: StoredDynamic | None = None
        if self.dynamic is not None:
            for ch in self.dynamic.observe(self.live.market, signals):
                rows.append(("margin_parameters", _plain(ch.payload()), None))
                if ch.scale is not None:
                    mid = {s.id: s for s in self.live.states()}
                    ev = self.live.set_margin_scale(ch.scale)
                    rows += _event_rows([*ev, *self._margin_moves(mid, ev,
                                                                  "margin_parameters")])
            dyn = StoredDynamic(json.dumps(self.dynamic.state_doc(), sort_keys=True),
                                self.dynamic.multiplier)
        market = self.live.market
        return self.repo.record_market_update(
            market.model_dump_json(), _ts(market), feed=feed, events=rows,
            figures=self._commitment_figures() if self.live.account_ids() else None,
            dynamic=dyn, stamp=self.stamp())

    def feed_position(self, feed: str) -> FeedRecord | None:
        """How far ``feed`` has been applied (None before its first message)."""
        return self.repo.feed_position(feed)

    def _margin_moves(self, before: Mapping[str, AccountState], status_events: list[Event],
                      cause: str) -> list[Event]:
        """``margin`` events, coalesced: accounts without a status change whose IM, MM or
        equity moved by more than ``margin_threshold`` from their last published figures
        (:func:`moved_enough`). Every published event becomes the account's new baseline."""
        for e in status_events:
            self._published[e.account] = (e.initial_margin, e.maintenance_margin, e.equity)
        changed = {e.account for e in status_events}
        stamp = self.live.stamp()
        out = []
        for s in self.live.states():
            old = before.get(s.id)
            if old is None or s.id in changed:
                continue
            base = self._published.get(s.id)
            if base is None:
                base = (old.initial_margin, old.maintenance_margin, old.equity)
                self._published[s.id] = base
            now = (s.initial_margin, s.maintenance_margin, s.equity)
            if not moved_enough(base, now, self.margin_threshold):
                continue
            self._published[s.id] = now
            out.append(Event(0, "margin", s.id, s.status, old.status, s.initial_margin,
                             s.maintenance_margin, s.equity, s.margin_ratio, s.currency,
                             cause, stamp))
        return out

    def publish_commitment(self) -> None:
        """Commit to every account's IM, MM and equity at the live market's timestamp (the
        commitment's audit entry carries the stamp: model, params hash with the scale)."""
        st = self.stamp()
        self.repo.publish_commitment(self._commitment_figures(), st.market_timestamp, stamp=st)

    def _commitment_figures(self) -> dict[str, AccountFigures]:
        figs = {}
        for s in self.live.states():
            f = _figures(s)
            figs[s.id] = AccountFigures(f["initial_margin"], f["maintenance_margin"],
                                        f["equity"])
        return figs

    def _changed(self, events: list[Event]) -> list[EventRecord]:
        for e in events:  # a published status change is the account's new baseline
            self._published[e.account] = (e.initial_margin, e.maintenance_margin, e.equity)
        stored = self.repo.append_events(_event_rows(events))
        if self.live.account_ids():
            self.publish_commitment()
        for rec in stored:
            self._push(rec)
        return stored

    # -- WebSocket subscribers ------------------------------------------------------------------
    def subscribe(self, account: str | None) -> tuple[asyncio.Queue[dict[str, Any]],
                                                      Callable[[], None]]:
        """A queue receiving every new event (``account``'s only when given) and the function
        that unsubscribes it. Call from the event loop that will read the queue."""
        sub = _Subscriber(asyncio.Queue(), asyncio.get_running_loop(), account)
        with self.lock:
            self._subs.append(sub)

        def leave() -> None:
            with self.lock:
                if sub in self._subs:
                    self._subs.remove(sub)
        return sub.queue, leave

    def _push(self, rec: EventRecord) -> None:
        doc = event_json(rec)
        for sub in list(self._subs):
            if sub.account is None or rec.account is None or sub.account == rec.account:
                try:
                    sub.loop.call_soon_threadsafe(sub.queue.put_nowait, doc)
                except RuntimeError:  # its loop has closed
                    self._subs.remove(sub)


def moved_enough(old: tuple[float, ...], new: tuple[float, ...], threshold: float) -> bool:
    """Whether any figure moved by more than ``threshold`` relative to the larger magnitude of
    its old and new value: ``|n − o| > threshold × max(|o|, |n|)`` (so a move away from 0
    counts; with ``threshold`` 0, any change)."""
    return any(abs(n - o) > threshold * max(abs(o), abs(n)) for o, n in zip(old, new,
                                                                          strict=True))


def stored_dynamic_state(repo: Repository) -> dict[str, Any] | None:
    """The dynamic controller's stored state (None before its first decision is stored);
    a state that is not a JSON object is refused in one line."""
    saved = repo.stored_dynamic()
    if saved is None:
        return None
    try:
        doc = json.loads(saved.state)
    except ValueError:
        raise InputError("dynamic_state.state", "not JSON") from None
    if not isinstance(doc, dict):
        raise InputError("dynamic_state.state", "not a JSON object")
    return doc


def event_json(rec: EventRecord) -> dict[str, Any]:
    """A stored event as ``/v1/events`` and the WebSocket send it (``type`` = its kind)."""
    at = rec.created_at if rec.created_at.tzinfo else rec.created_at.replace(tzinfo=UTC)
    body = {k: v for k, v in rec.payload.items() if k != "kind"}
    return {**body, "seq": rec.seq, "type": rec.kind, "account": rec.account,
            "created_at": at.isoformat().replace("+00:00", "Z")}


def _event_rows(events: list[Event]) -> list[tuple[str, Mapping[str, Any], str | None]]:
    """``(kind, payload, account)`` of each live-book event, as the repository stores them."""
    rows: list[tuple[str, Mapping[str, Any], str | None]] = []
    for e in events:
        payload = _plain(e.as_dict())
        for k in ("seq", "account", "type"):
            payload.pop(k, None)
        rows.append((e.type, payload, e.account))
    return rows


def _ts(market: MarketSnapshot) -> str:
    return market.timestamp.isoformat().replace("+00:00", "Z")


def _figures(s: AccountState) -> dict[str, Decimal]:
    out = {"initial_margin": dec(s.initial_margin), "maintenance_margin":
           dec(s.maintenance_margin), "equity": dec(s.equity)}
    return {k: (v if v is not None else Decimal(0)) for k, v in out.items()}


def _account(account_id: str, margin_mode: str, credit_rating: str | None,
             collateral: dict[str, float]) -> Account:
    doc: dict[str, Any] = {"id": account_id, "margin_mode": margin_mode,
                           "collateral": collateral}
    if credit_rating is not None:
        doc["credit_rating"] = credit_rating
    return parse_model(Account, doc, "account")


def _replay(live: LiveBook, action: str, account: str | None, changes: Mapping[str, Any]) -> None:
    """Apply one stored audit entry to the live book (entries that change no account state,
    such as commitments, are skipped)."""
    if account is None:
        return
    if action == "account.create":
        coll = {c: float(Decimal(v)) for c, v in (changes.get("collateral") or {}).items()}
        live.add_account(_account(account, changes["margin_mode"],
                                  changes.get("credit_rating"), coll))
    elif action in ("collateral.deposit", "collateral.withdraw"):
        live.deposit(account, changes["currency"], float(Decimal(changes["amount"])))
    elif action == "fill.apply":
        live.apply_fill(account, changes["symbol"], float(Decimal(changes["size"])),
                        float(Decimal(changes["price"])))


__all__ = ["NotFoundError", "ServiceCore", "event_json"]
