"""The storage API the service's routes call: every write is one atomic transaction that also
appends its audit entry, so state and log never disagree.

Writers are serialised on the ``audit`` row of ``chain_heads`` (``SELECT ... FOR UPDATE`` on
PostgreSQL; ``BEGIN IMMEDIATE`` on SQLite), which makes ``seq`` gap-free and commit-ordered and
rules out lost updates between concurrent fills on one account. A refused operation (a
:class:`~margin_engine.service.errors.ConflictError` from a check, a bad amount) rolls back:
nothing is stored.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation, localcontext
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from margin_engine.errors import InputError

from . import auth
from .audit_chain import ChainCheck, entry_hash, verify_chain
from .canonical import canonical_json, dec_str
from .db import make_engine, migrate, reader
from .errors import ConflictError, NotFoundError
from .merkle import InclusionProof, build_proofs
from .tables import (
    SCALE,
    Account,
    AuditEntry,
    Balance,
    ChainHead,
    Commitment,
    CommitmentLeaf,
    DynamicState,
    Event,
    FeedPosition,
    Fill,
    MarginSnapshot,
    MarketState,
    ModelConfig,
    Position,
)

MAX_ABS = Decimal(10) ** 20
QUANTUM = Decimal(1).scaleb(-SCALE)
MARGIN_MODES = ("cross", "isolated", "portfolio")


def _now() -> datetime:
    return datetime.now(UTC)


def money(value: Decimal | int | str, path: str, *, positive: bool = False,
          nonzero: bool = False) -> Decimal:
    """``value`` as an exact decimal of at most 18 decimal places and |value| < 1e20.

    Raises
    ------
    InputError
        ``path: reason`` for floats, non-numbers, NaN/Infinity, too many places, out of range.
    """
    if isinstance(value, float | bool):
        raise InputError(path, "must be an exact decimal (a string or integer), not a float")
    try:
        d = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise InputError(path, f"not a number: {value!r}") from None
    if not d.is_finite():
        raise InputError(path, "must be finite")
    if d.as_tuple().exponent < -SCALE and d != d.quantize(QUANTUM):  # type: ignore[operator]
        raise InputError(path, f"more than {SCALE} decimal places")
    if abs(d) >= MAX_ABS:
        raise InputError(path, "out of range (|value| must be < 1e20)")
    if positive and d <= 0:
        raise InputError(path, "must be > 0")
    if nonzero and d == 0:
        raise InputError(path, "must not be zero")
    return d


@dataclass(frozen=True)
class MarginStamp:
    """Which model produced which margin, recorded with an audit entry.

    ``margin`` holds the figures (``initial_margin``, ``maintenance_margin``, ``equity``, ...).
    """

    model: str
    model_version: str
    params_hash: str
    market_timestamp: str
    margin: Mapping[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True)
class PositionState:
    """A stored position: signed size, average entry price, realised P&L (quote currency)."""

    size: Decimal
    avg_price: Decimal
    realised_pnl: Decimal


@dataclass(frozen=True)
class AccountState:
    """An account as stored (or as it would be after a change, when passed to a check hook)."""

    id: str
    margin_mode: str
    credit_rating: str | None
    balances: dict[str, Decimal]
    positions: dict[str, PositionState]


CheckHook = Callable[[AccountState], str | None]
"""Called inside the transaction with the would-be state; a returned reason refuses (409)."""


@dataclass(frozen=True)
class CreatedAccount:
    """``create_account``'s answer; ``api_key`` is shown once and stored only as a hash."""

    id: str
    api_key: str
    audit_seq: int


@dataclass(frozen=True)
class CollateralResult:
    """A deposit or withdrawal as applied: the signed amount, the new balance, its audit seq."""

    account: str
    currency: str
    amount: Decimal
    balance: Decimal
    audit_seq: int


@dataclass(frozen=True)
class FillResult:
    """A fill as applied; ``replayed`` is True when the ``fill_id`` had been applied before and
    this is the first application's result, returned again."""

    fill_id: str
    account: str
    symbol: str
    size: Decimal
    price: Decimal
    position_after: Decimal
    audit_seq: int
    replayed: bool


@dataclass(frozen=True)
class EventRecord:
    """A stored event: ``seq``, ``kind``, ``account`` and its JSON payload."""

    seq: int
    kind: str
    account: str | None
    payload: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class AuditRecord:
    """One audit entry as stored (``changes``/``margin`` parsed from their canonical JSON)."""

    seq: int
    recorded_at: str
    actor: str
    action: str
    account: str | None
    changes: dict[str, Any]
    model: str | None
    model_version: str | None
    params_hash: str | None
    market_timestamp: str | None
    margin: dict[str, Any]
    prev_hash: str
    hash: str

    def to_json(self) -> dict[str, Any]:
        """The entry as ``GET /v1/audit`` answers it."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class StoredMarket:
    """The market as last stored: its snapshot JSON, timestamp and the number of updates
    applied since the database was created."""

    snapshot: str
    market_timestamp: str
    updates: int


@dataclass(frozen=True)
class StoredDynamic:
    """The dynamic controller's state: its JSON document, the IM multiplier in force
    (dimensionless) and the market timestamp of the update that stored it."""

    state: str
    im_multiplier: float
    market_timestamp: str = ""


@dataclass(frozen=True)
class FeedRecord:
    """A feed's stored position: the last applied stream ``position`` and how many of its
    messages have been applied (each exactly once)."""

    feed: str
    position: int
    applied: int
    market_timestamp: str


@dataclass(frozen=True)
class AccountFigures:
    """One account's margin figures going into a commitment leaf."""

    initial_margin: Decimal
    maintenance_margin: Decimal
    equity: Decimal


@dataclass(frozen=True)
class CommitmentRecord:
    """A published Merkle commitment: ``{root, tree_size, market_timestamp, seq}``."""

    seq: int
    root: str
    tree_size: int
    market_timestamp: str

    def to_json(self) -> dict[str, Any]:
        """The JSON object of DESIGN §8."""
        return {"root": self.root, "tree_size": self.tree_size,
                "market_timestamp": self.market_timestamp, "seq": self.seq}


@dataclass(frozen=True)
class ProofBundle:
    """An account's inclusion proof with the commitment it belongs to and the account's salt
    (the owner checks ``leaf.account == SHA-256(salt || account id)``)."""

    commitment: CommitmentRecord
    proof: InclusionProof
    salt: str

    def to_json(self) -> dict[str, Any]:
        """``{"commitment": {...}, "proof": {...}, "salt": ...}`` as ``audit prove`` reads it."""
        return {"commitment": self.commitment.to_json(), "proof": self.proof.to_json(),
                "salt": self.salt}


def account_id_hash(salt_hex: str, account_id: str) -> str:
    """``SHA-256(salt || account id)`` in hex: the account's name inside a commitment leaf."""
    return hashlib.sha256(bytes.fromhex(salt_hex) + account_id.encode("utf-8")).hexdigest()


def commitment_leaf(id_hash: str, figures: AccountFigures, market_timestamp: str) -> str:
    """The canonical JSON leaf of one account (keys ``account``, ``equity``, ``initial_margin``,
    ``maintenance_margin``, ``market_timestamp``)."""
    return canonical_json({"account": id_hash, "initial_margin": figures.initial_margin,
                           "maintenance_margin": figures.maintenance_margin,
                           "equity": figures.equity, "market_timestamp": market_timestamp})


def _audit_record(row: AuditEntry) -> AuditRecord:
    return AuditRecord(seq=row.seq, recorded_at=row.recorded_at, actor=row.actor,
                       action=row.action, account=row.account, changes=json.loads(row.changes),
                       model=row.model, model_version=row.model_version,
                       params_hash=row.params_hash, market_timestamp=row.market_timestamp,
                       margin=json.loads(row.margin), prev_hash=row.prev_hash, hash=row.hash)


def _row_dict(row: AuditEntry) -> dict[str, Any]:
    """The entry as hashed: ``changes`` and ``margin`` parsed back from canonical JSON."""
    rec = _audit_record(row)
    return {k: getattr(rec, k) for k in rec.__dataclass_fields__}


class Repository:
    """Atomic, audited reads and writes of the service's state.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        A migrated engine (see :meth:`open`).
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._reads = sessionmaker(reader(engine), expire_on_commit=False)

    @classmethod
    def open(cls, url: str, *, upgrade: bool = True, **engine_kwargs: Any) -> Repository:
        """Open the database at ``url``, migrating it to the newest schema first by default."""
        engine = make_engine(url, **engine_kwargs)
        if upgrade:
            migrate(engine)
        return cls(engine)

    def close(self) -> None:
        """Dispose of the engine's connections."""
        self.engine.dispose()

    # -- transactions -----------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[Session]:
        """A write transaction holding the writer lock (the ``audit`` head row)."""
        with self._sessions.begin() as s:
            s.execute(select(ChainHead).where(ChainHead.name == "audit").with_for_update())
            yield s

    def _next(self, s: Session, name: str) -> ChainHead:
        head = s.execute(select(ChainHead).where(ChainHead.name == name)
                         .with_for_update()).scalar_one()
        head.seq += 1
        return head

    def _audit(self, s: Session, *, actor: str, action: str, account: str | None,
               changes: Mapping[str, Any], stamp: MarginStamp | None = None) -> AuditEntry:
        head = self._next(s, "audit")
        row = AuditEntry(
            seq=head.seq, recorded_at=_now().isoformat(timespec="microseconds"), actor=actor,
            action=action, account=account, changes=canonical_json(changes),
            model=stamp.model if stamp else None,
            model_version=stamp.model_version if stamp else None,
            params_hash=stamp.params_hash if stamp else None,
            market_timestamp=stamp.market_timestamp if stamp else None,
            margin=canonical_json(dict(stamp.margin) if stamp else {}),
            prev_hash=head.hash, hash="")
        row.hash = entry_hash(head.hash, _row_dict(row))
        head.hash = row.hash
        s.add(row)
        return row

    # -- accounts ---------------------------------------------------------------------------

    def create_account(self, account_id: str, margin_mode: str = "cross", *,
                       credit_rating: str | None = None,
                       collateral: Mapping[str, Decimal | int | str] | None = None,
                       actor: str = "operator") -> CreatedAccount:
        """Create an account (optionally with opening collateral); returns its new API key.

        Raises
        ------
        InputError
            ``id``/``margin_mode``/``collateral.<CUR>`` invalid.
        ConflictError
            ``id: account already exists``.
        """
        if not account_id or len(account_id) > 64 or not account_id.isprintable():
            raise InputError("id", "must be 1 to 64 printable characters")
        if margin_mode not in MARGIN_MODES:
            raise InputError("margin_mode", f"must be one of {', '.join(MARGIN_MODES)}")
        opening = {cur: money(v, f"collateral.{cur}", positive=True)
                   for cur, v in (collateral or {}).items()}
        key = auth.generate_key()
        with self._write() as s:
            if s.get(Account, account_id) is not None:
                raise ConflictError("id", f"account {account_id!r} already exists")
            s.add(Account(id=account_id, margin_mode=margin_mode, credit_rating=credit_rating,
                          api_key_id=auth.key_id(key), api_key_hash=auth.hash_key(key),
                          commitment_salt=secrets.token_hex(16), created_at=_now()))
            s.flush()
            for cur, amt in opening.items():
                s.add(Balance(account_id=account_id, currency=cur, amount=amt))
            entry = self._audit(s, actor=actor, action="account.create", account=account_id,
                                changes={"margin_mode": margin_mode,
                                         "credit_rating": credit_rating,
                                         "collateral": opening})
            return CreatedAccount(account_id, key, entry.seq)

    def _state(self, s: Session, account_id: str) -> AccountState:
        acc = s.get(Account, account_id)
        if acc is None:
            raise NotFoundError("id", f"no account {account_id!r}")
        bals = s.execute(select(Balance).where(Balance.account_id == account_id)).scalars()
        poss = s.execute(select(Position).where(Position.account_id == account_id)).scalars()
        return AccountState(acc.id, acc.margin_mode, acc.credit_rating,
                            {b.currency: b.amount for b in bals},
                            {p.symbol: PositionState(p.size, p.avg_price, p.realised_pnl)
                             for p in poss})

    def get_account(self, account_id: str) -> AccountState:
        """The stored account; :class:`NotFoundError` (``id``) when there is none."""
        with self._reads() as s:
            return self._state(s, account_id)

    def account_ids(self) -> list[str]:
        """Every account id, sorted."""
        with self._reads() as s:
            return list(s.execute(select(Account.id).order_by(Account.id)).scalars())

    def account_for_key(self, key: str) -> str | None:
        """The id of the account whose API key is ``key`` (checked in constant time), else None."""
        with self._reads() as s:
            acc = s.execute(select(Account).where(Account.api_key_id == auth.key_id(key))
                            ).scalar_one_or_none()
        if acc is None:
            auth.check_key(key, "sha256$00$00")  # same work either way
            return None
        return acc.id if auth.check_key(key, acc.api_key_hash) else None

    # -- collateral ---------------------------------------------------------------------------

    def change_collateral(self, account_id: str, currency: str, amount: Decimal | int | str, *,
                          actor: str = "operator", check: CheckHook | None = None,
                          stamp: MarginStamp | None = None) -> CollateralResult:
        """Deposit (``amount > 0``) or withdraw (``amount < 0``) atomically.

        A withdrawal must not take the balance below zero, and ``check`` (given the account as
        it would be) may refuse it, e.g. "would leave equity < IM"; a refusal raises
        :class:`ConflictError` and stores nothing.
        """
        amt = money(amount, "amount", nonzero=True)
        if not currency or len(currency) > 16:
            raise InputError("currency", "must be 1 to 16 characters")
        with self._write() as s:
            state = self._state(s, account_id)
            old = state.balances.get(currency, Decimal(0))
            new = old + amt
            if new < 0:
                raise ConflictError("amount", f"withdrawal of {dec_str(-amt)} {currency} exceeds"
                                    f" the balance of {dec_str(old)}")
            if check is not None and amt < 0:
                after = AccountState(state.id, state.margin_mode, state.credit_rating,
                                     {**state.balances, currency: new}, state.positions)
                reason = check(after)
                if reason:
                    raise ConflictError("amount", reason)
            row = s.get(Balance, (account_id, currency))
            if row is None:
                s.add(Balance(account_id=account_id, currency=currency, amount=new))
            else:
                row.amount = new
            action = "collateral.deposit" if amt > 0 else "collateral.withdraw"
            entry = self._audit(s, actor=actor, action=action, account=account_id,
                                changes={"currency": currency, "amount": amt,
                                         "balance_after": new}, stamp=stamp)
            return CollateralResult(account_id, currency, amt, new, entry.seq)

    def deposit(self, account_id: str, currency: str, amount: Decimal | int | str, *,
                actor: str = "operator", stamp: MarginStamp | None = None) -> CollateralResult:
        """Add collateral (``amount > 0``)."""
        amt = money(amount, "amount", positive=True)
        return self.change_collateral(account_id, currency, amt, actor=actor, stamp=stamp)

    def withdraw(self, account_id: str, currency: str, amount: Decimal | int | str, *,
                 actor: str = "operator", check: CheckHook | None = None,
                 stamp: MarginStamp | None = None) -> CollateralResult:
        """Remove collateral (``amount > 0`` is the quantity withdrawn); see
        :meth:`change_collateral` for the checks."""
        amt = money(amount, "amount", positive=True)
        return self.change_collateral(account_id, currency, -amt, actor=actor, check=check,
                                      stamp=stamp)

    # -- fills --------------------------------------------------------------------------------

    def apply_fill(self, account_id: str, fill_id: str, symbol: str,
                   size: Decimal | int | str, price: Decimal | int | str, *,
                   actor: str = "operator", check: CheckHook | None = None,
                   stamp: MarginStamp | None = None) -> FillResult:
        """Apply a fill atomically and idempotently.

        The position's signed size moves by ``size``; its average entry price follows the
        increases; a reduction realises ``closed × (price − avg) × sign`` into ``realised_pnl``
        (settling it into collateral is the live book's business). The same ``fill_id`` again
        returns the first result with ``replayed=True`` and changes nothing; a ``fill_id`` reused
        with other contents is a :class:`ConflictError`.
        """
        if not fill_id or len(fill_id) > 128:
            raise InputError("fill_id", "must be 1 to 128 characters")
        if not symbol or len(symbol) > 64:
            raise InputError("symbol", "must be 1 to 64 characters")
        sz = money(size, "size", nonzero=True)
        px = money(price, "price", positive=True)
        with self._write() as s:
            prior = s.get(Fill, fill_id)
            if prior is not None:
                if (prior.account_id, prior.symbol, prior.size, prior.price) != (
                        account_id, symbol, sz, px):
                    raise ConflictError("fill_id", f"{fill_id!r} was already applied with"
                                        " different account, symbol, size or price")
                return FillResult(fill_id, account_id, symbol, prior.size, prior.price,
                                  prior.position_after, prior.audit_seq, replayed=True)
            state = self._state(s, account_id)
            old = state.positions.get(symbol, PositionState(Decimal(0), Decimal(0), Decimal(0)))
            new = _after_fill(old, sz, px)
            if check is not None:
                reason = check(AccountState(state.id, state.margin_mode, state.credit_rating,
                                            state.balances, {**state.positions, symbol: new}))
                if reason:
                    raise ConflictError("size", reason)
            row = s.get(Position, (account_id, symbol))
            if row is None:
                s.add(Position(account_id=account_id, symbol=symbol, size=new.size,
                               avg_price=new.avg_price, realised_pnl=new.realised_pnl))
            else:
                row.size, row.avg_price, row.realised_pnl = (new.size, new.avg_price,
                                                             new.realised_pnl)
            entry = self._audit(s, actor=actor, action="fill.apply", account=account_id,
                                changes={"fill_id": fill_id, "symbol": symbol, "size": sz,
                                         "price": px, "position_after": new.size,
                                         "avg_price_after": new.avg_price,
                                         "realised_pnl_after": new.realised_pnl}, stamp=stamp)
            s.add(Fill(fill_id=fill_id, account_id=account_id, symbol=symbol, size=sz,
                       price=px, position_after=new.size, audit_seq=entry.seq,
                       applied_at=_now()))
            return FillResult(fill_id, account_id, symbol, sz, px, new.size, entry.seq,
                              replayed=False)

    def fills(self, account_id: str) -> list[FillResult]:
        """The account's applied fills in audit order."""
        with self._reads() as s:
            rows = s.execute(select(Fill).where(Fill.account_id == account_id)
                             .order_by(Fill.audit_seq)).scalars()
            return [FillResult(r.fill_id, r.account_id, r.symbol, r.size, r.price,
                               r.position_after, r.audit_seq, replayed=False) for r in rows]

    # -- events and audit ------------------------------------------------------------------------

    def append_event(self, kind: str, payload: Mapping[str, Any],
                     account_id: str | None = None) -> EventRecord:
        """Store an event with the next gap-free ``seq`` (payload stored as canonical JSON)."""
        with self._sessions.begin() as s:
            head = self._next(s, "events")
            text = canonical_json({**payload, "kind": kind, "seq": head.seq,
                                   "account": account_id})
            created = _now()
            s.add(Event(seq=head.seq, kind=kind, account_id=account_id, payload=text,
                        created_at=created))
            return EventRecord(head.seq, kind, account_id, json.loads(text), created)

    def append_events(self, events: Sequence[tuple[str, Mapping[str, Any], str | None]]
                      ) -> list[EventRecord]:
        """Store several ``(kind, payload, account_id)`` events in one transaction (one
        commit, one sync to disk), with consecutive gap-free ``seq``."""
        if not events:
            return []
        with self._sessions.begin() as s:
            return self._events(s, events)

    def _events(self, s: Session, events: Sequence[tuple[str, Mapping[str, Any], str | None]]
                ) -> list[EventRecord]:
        if not events:
            return []
        out = []
        head = self._next(s, "events")
        seq = head.seq
        created = _now()
        for kind, payload, account_id in events:
            text = canonical_json({**payload, "kind": kind, "seq": seq, "account": account_id})
            s.add(Event(seq=seq, kind=kind, account_id=account_id, payload=text,
                        created_at=created))
            out.append(EventRecord(seq, kind, account_id, json.loads(text), created))
            seq += 1
        head.seq = seq - 1
        return out

    def events_after(self, seq: int = 0, *, account_id: str | None = None,
                     limit: int = 1000) -> list[EventRecord]:
        """Events with ``seq > seq`` in order (only ``account_id``'s and the market-wide ones,
        such as ``margin_parameters``, when given)."""
        with self._reads() as s:
            q = select(Event).where(Event.seq > seq)
            if account_id is not None:
                q = q.where((Event.account_id == account_id) | Event.account_id.is_(None))
            rows = s.execute(q.order_by(Event.seq).limit(limit)).scalars()
            return [EventRecord(r.seq, r.kind, r.account_id, json.loads(r.payload),
                                r.created_at) for r in rows]

    def append_audit(self, actor: str, action: str, changes: Mapping[str, Any], *,
                     account: str | None = None, stamp: MarginStamp | None = None
                     ) -> AuditRecord:
        """Append one audit entry on its own (writes above append theirs themselves)."""
        with self._write() as s:
            return _audit_record(self._audit(s, actor=actor, action=action, account=account,
                                             changes=changes, stamp=stamp))

    def audit_after(self, seq: int = 0, *, limit: int = 1000) -> list[AuditRecord]:
        """Audit entries with ``seq > seq`` in order."""
        with self._reads() as s:
            rows = s.execute(select(AuditEntry).where(AuditEntry.seq > seq)
                             .order_by(AuditEntry.seq).limit(limit)).scalars()
            return [_audit_record(r) for r in rows]

    def verify_audit(self) -> ChainCheck:
        """Recompute the whole chain (streamed in ``seq`` order); see :func:`verify_chain`."""
        with self._reads() as s:
            rows = s.execute(select(AuditEntry).order_by(AuditEntry.seq)
                             .execution_options(yield_per=1000)).scalars()
            return verify_chain(_row_dict(r) for r in rows)

    def reconcile(self) -> list[tuple[str, str]]:
        """Replay the audit log's collateral and fill entries and compare with the tables.

        Returns
        -------
        list of (path, reason)
            Empty when every stored balance and position size equals the log's replay;
            otherwise one item per difference, e.g.
            ``("collateral_balances[a1,USDT]", "1500 stored, the audit log gives 1000")``.
        """
        bal: dict[tuple[str, str], Decimal] = {}
        pos: dict[tuple[str, str], Decimal] = {}
        with self._reads() as s:
            for r in s.execute(select(AuditEntry).order_by(AuditEntry.seq)).scalars():
                ch = json.loads(r.changes)
                if r.action == "account.create" and r.account is not None:
                    for cur, v in ch.get("collateral", {}).items():
                        bal[(r.account, cur)] = Decimal(v)
                elif r.action.startswith("collateral.") and r.account is not None:
                    key = (r.account, ch["currency"])
                    bal[key] = bal.get(key, Decimal(0)) + Decimal(ch["amount"])
                elif r.action == "fill.apply" and r.account is not None:
                    key = (r.account, ch["symbol"])
                    pos[key] = pos.get(key, Decimal(0)) + Decimal(ch["size"])
            stored_bal = {(b.account_id, b.currency): b.amount
                          for b in s.execute(select(Balance)).scalars()}
            stored_pos = {(p.account_id, p.symbol): p.size
                          for p in s.execute(select(Position)).scalars()}
        out: list[tuple[str, str]] = []
        for table, log, stored in (("collateral_balances", bal, stored_bal),
                                   ("positions", pos, stored_pos)):
            for key in sorted(set(log) | set(stored)):
                a, b = stored.get(key), log.get(key)
                if a is None or b is None or a != b:
                    out.append((f"{table}[{key[0]},{key[1]}]",
                                f"{'absent' if a is None else dec_str(a)} stored, the audit log"
                                f" gives {'nothing' if b is None else dec_str(b)}"))
        return out

    # -- model configuration and snapshots ---------------------------------------------------------

    def save_model_config(self, model: str, version: str, params: Mapping[str, Any], *,
                          actor: str = "operator") -> str:
        """Store and activate a model configuration; returns its ``params_hash``
        (SHA-256 of the parameters' canonical JSON)."""
        text = canonical_json(params)
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        with self._write() as s:
            for row in s.execute(select(ModelConfig).where(ModelConfig.active)).scalars():
                row.active = False
            s.add(ModelConfig(model=model, version=version, params=text, params_hash=digest,
                              active=True, created_at=_now()))
            self._audit(s, actor=actor, action="model.configure", account=None,
                        changes={"model": model, "version": version, "params": params,
                                 "params_hash": digest})
        return digest

    def active_model_config(self) -> tuple[str, str, dict[str, Any], str] | None:
        """``(model, version, params, params_hash)`` of the active configuration, or None."""
        with self._reads() as s:
            row = s.execute(select(ModelConfig).where(ModelConfig.active)
                            .order_by(ModelConfig.id.desc()).limit(1)).scalar_one_or_none()
            if row is None:
                return None
            return row.model, row.version, json.loads(row.params), row.params_hash

    def save_snapshot(self, account_id: str, stamp: MarginStamp, status: str) -> None:
        """Store an account's margin figures (``stamp.margin``) at ``stamp.market_timestamp``."""
        m = stamp.margin
        with self._sessions.begin() as s:
            s.add(MarginSnapshot(account_id=account_id, market_timestamp=stamp.market_timestamp,
                                 model=stamp.model, params_hash=stamp.params_hash,
                                 initial_margin=m["initial_margin"],
                                 maintenance_margin=m["maintenance_margin"],
                                 equity=m["equity"], status=status, created_at=_now()))

    # -- the market and the feeds' positions ----------------------------------------------------

    def save_market(self, snapshot: str, market_timestamp: str, *,
                    feed: tuple[str, int] | None = None) -> None:
        """Store the live market (``snapshot``: its JSON) in one transaction with, when given,
        the feed position ``(feed key, stream sequence)`` of the message that produced it.

        Raises
        ------
        ConflictError
            ``feed``: the position is not after the stored one (the message was applied).
        """
        with self._sessions.begin() as s:
            self._market(s, snapshot, market_timestamp, feed)

    def record_market_update(self, snapshot: str, market_timestamp: str, *,
                             feed: tuple[str, int] | None = None,
                             events: Sequence[tuple[str, Mapping[str, Any], str | None]] = (),
                             figures: Mapping[str, AccountFigures] | None = None,
                             dynamic: StoredDynamic | None = None,
                             stamp: MarginStamp | None = None) -> list[EventRecord]:
        """One market update in one transaction: the market (and feed position, as
        :meth:`save_market`), the events it caused (as :meth:`append_events`), when
        ``figures`` are given the commitment over them (as :meth:`publish_commitment`, its audit
        entry carrying ``stamp``) and, when given, the dynamic controller's state. All of it is
        stored or none: a crash never leaves a stored market without its events, nor a
        multiplier in force that storage does not know."""
        with self._write() as s:
            self._market(s, snapshot, market_timestamp, feed)
            out = self._events(s, events)
            if figures:
                self._publish(s, figures, market_timestamp, "service", stamp)
            if dynamic is not None:
                row = s.get(DynamicState, 1, with_for_update=True)
                if row is None:
                    s.add(DynamicState(id=1, market_timestamp=market_timestamp,
                                       im_multiplier=dynamic.im_multiplier,
                                       state=dynamic.state, updated_at=_now()))
                else:
                    row.market_timestamp, row.im_multiplier = (market_timestamp,
                                                               dynamic.im_multiplier)
                    row.state, row.updated_at = dynamic.state, _now()
            return out

    def stored_dynamic(self) -> StoredDynamic | None:
        """The dynamic controller's state as last stored, or None (never stored)."""
        with self._reads() as s:
            row = s.get(DynamicState, 1)
            return None if row is None else StoredDynamic(row.state, row.im_multiplier,
                                                          row.market_timestamp)

    def _market(self, s: Session, snapshot: str, market_timestamp: str,
                feed: tuple[str, int] | None) -> None:
        now = _now()
        row = s.get(MarketState, 1, with_for_update=True)
        if feed is not None:
            key, pos = feed
            fp = s.get(FeedPosition, key, with_for_update=True)
            if fp is not None and pos <= fp.position:
                raise ConflictError("feed", f"{key} position {pos} was already applied "
                                    f"(stored {fp.position})")
            if fp is None:
                s.add(FeedPosition(feed=key, position=pos, applied=1,
                                   market_timestamp=market_timestamp, updated_at=now))
            else:
                fp.position, fp.applied = pos, fp.applied + 1
                fp.market_timestamp, fp.updated_at = market_timestamp, now
        if row is None:
            s.add(MarketState(id=1, market_timestamp=market_timestamp, snapshot=snapshot,
                              updates=1, updated_at=now))
        else:
            row.market_timestamp, row.snapshot = market_timestamp, snapshot
            row.updates, row.updated_at = row.updates + 1, now

    def stored_market(self) -> StoredMarket | None:
        """The market as last stored, or None before the first update."""
        with self._reads() as s:
            row = s.get(MarketState, 1)
            return None if row is None else StoredMarket(row.snapshot, row.market_timestamp,
                                                         row.updates)

    def feed_position(self, feed: str) -> FeedRecord | None:
        """The feed's stored position, or None before its first applied message."""
        with self._reads() as s:
            row = s.get(FeedPosition, feed)
            return None if row is None else FeedRecord(row.feed, row.position, row.applied,
                                                       row.market_timestamp)

    # -- commitments ------------------------------------------------------------------------------

    def publish_commitment(self, figures: Mapping[str, AccountFigures],
                           market_timestamp: str, *, actor: str = "service",
                           stamp: MarginStamp | None = None) -> CommitmentRecord:
        """Commit to every given account's figures: one leaf per account (sorted by id), the
        RFC 6962 root stored with its leaves and recorded in the audit log (the entry carrying
        ``stamp``: which model and parameters, the margin scale included, produced them)."""
        with self._write() as s:
            return self._publish(s, figures, market_timestamp, actor, stamp)

    def _publish(self, s: Session, figures: Mapping[str, AccountFigures],
                 market_timestamp: str, actor: str,
                 stamp: MarginStamp | None = None) -> CommitmentRecord:
        salts = {a: salt for a, salt in s.execute(select(Account.id, Account.commitment_salt))}
        missing = sorted(set(figures) - set(salts))
        if missing:
            raise NotFoundError("figures", f"no account {missing[0]!r}")
        ids = sorted(figures)
        leaves = [commitment_leaf(account_id_hash(salts[a], a), figures[a], market_timestamp)
                  for a in ids]
        root, _ = build_proofs(leaves) if leaves else (hashlib.sha256(b"").hexdigest(), [])
        head = self._next(s, "commitments")
        head.hash = root
        s.add(Commitment(seq=head.seq, root=root, tree_size=len(leaves),
                         market_timestamp=market_timestamp, created_at=_now()))
        s.flush()
        s.add_all(CommitmentLeaf(commitment_seq=head.seq, leaf_index=i, account_id=a,
                                 leaf=leaf) for i, (a, leaf) in enumerate(zip(ids, leaves,
                                                                              strict=True)))
        self._audit(s, actor=actor, action="commitment.publish", account=None,
                    changes={"seq": head.seq, "root": root, "tree_size": len(leaves),
                             "market_timestamp": market_timestamp}, stamp=stamp)
        return CommitmentRecord(head.seq, root, len(leaves), market_timestamp)

    def latest_commitment(self) -> CommitmentRecord | None:
        """The newest commitment, or None before the first."""
        with self._reads() as s:
            row = s.execute(select(Commitment).order_by(Commitment.seq.desc()).limit(1)
                            ).scalar_one_or_none()
            return None if row is None else CommitmentRecord(row.seq, row.root, row.tree_size,
                                                             row.market_timestamp)

    def proof_for(self, account_id: str, commitment_seq: int | None = None) -> ProofBundle:
        """The account's inclusion proof in the given (default: newest) commitment.

        Raises
        ------
        NotFoundError
            No such account, no commitment yet, or the account is not in it.
        """
        with self._reads() as s:
            acc = s.get(Account, account_id)
            if acc is None:
                raise NotFoundError("id", f"no account {account_id!r}")
            q = select(Commitment).order_by(Commitment.seq.desc()).limit(1)
            if commitment_seq is not None:
                q = select(Commitment).where(Commitment.seq == commitment_seq)
            c = s.execute(q).scalar_one_or_none()
            if c is None:
                raise NotFoundError("commitment", "no commitment has been published yet")
            rows = list(s.execute(select(CommitmentLeaf)
                                  .where(CommitmentLeaf.commitment_seq == c.seq)
                                  .order_by(CommitmentLeaf.leaf_index)).scalars())
            mine = [r.leaf_index for r in rows if r.account_id == account_id]
            if not mine:
                raise NotFoundError("id", f"account {account_id!r} is not in commitment {c.seq}")
            _, proofs = build_proofs([r.leaf for r in rows])
            return ProofBundle(CommitmentRecord(c.seq, c.root, c.tree_size, c.market_timestamp),
                               proofs[mine[0]], acc.commitment_salt)


def _after_fill(old: PositionState, size: Decimal, price: Decimal) -> PositionState:
    """The position after a fill of signed ``size`` at ``price`` (see :meth:`apply_fill`)."""
    with localcontext() as ctx:
        ctx.prec = 80
        new_size = old.size + size
        realised = old.realised_pnl
        if old.size == 0 or (old.size > 0) == (size > 0):
            avg = (abs(old.size) * old.avg_price + abs(size) * price) / abs(new_size)
        else:
            closed = min(abs(size), abs(old.size))
            sign = 1 if old.size > 0 else -1
            realised += closed * (price - old.avg_price) * sign
            if new_size == 0:
                avg = Decimal(0)
            elif (new_size > 0) != (old.size > 0):
                avg = price
            else:
                avg = old.avg_price
        avg = avg.quantize(QUANTUM, rounding=ROUND_HALF_EVEN)
        realised = realised.quantize(QUANTUM, rounding=ROUND_HALF_EVEN)
    return PositionState(new_size, Decimal(dec_str(avg)), Decimal(dec_str(realised)))
