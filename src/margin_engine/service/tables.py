"""The service's tables (SQLAlchemy 2 typed declarative). The schema itself is created by the
Alembic migrations in ``migrations/versions``; these classes must agree with them
(``tests/service/test_storage.py`` compares the migrated schema with this metadata).

Money and sizes are exact decimals (:class:`Money`): ``NUMERIC(38, 18)`` on PostgreSQL, decimal
text on SQLite (whose NUMERIC affinity would round through a binary float).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Integer,
    Numeric,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeEngine

from .canonical import dec_str

SCALE = 18


class Money(TypeDecorator[Decimal]):
    """An exact decimal: ``NUMERIC(38, 18)`` on PostgreSQL, decimal text elsewhere."""

    impl = String(64)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Numeric(38, SCALE, asdecimal=True))
        return dialect.type_descriptor(String(64))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if dialect.name == "postgresql":
            return value
        return dec_str(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return Decimal(dec_str(Decimal(value)))


class Base(DeclarativeBase):
    """Declarative base of the service tables."""


class Account(Base):
    """A margin account; ``api_key_hash`` is :func:`margin_engine.service.auth.hash_key` output."""

    __tablename__ = "accounts"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    margin_mode: Mapped[str] = mapped_column(String(32))
    credit_rating: Mapped[str | None] = mapped_column(String(16))
    api_key_id: Mapped[str] = mapped_column(String(16), unique=True)
    api_key_hash: Mapped[str] = mapped_column(String(160))
    commitment_salt: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Balance(Base):
    """Collateral per (account, currency)."""

    __tablename__ = "collateral_balances"
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    currency: Mapped[str] = mapped_column(String(16), primary_key=True)
    amount: Mapped[Decimal] = mapped_column(Money())


class Position(Base):
    """A position per (account, symbol): signed size, average entry price, realised P&L."""

    __tablename__ = "positions"
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[Decimal] = mapped_column(Money())
    avg_price: Mapped[Decimal] = mapped_column(Money())
    realised_pnl: Mapped[Decimal] = mapped_column(Money())


class Fill(Base):
    """An applied fill; ``fill_id`` is unique (idempotency key), the result is kept for replays."""

    __tablename__ = "fills"
    fill_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    symbol: Mapped[str] = mapped_column(String(64))
    size: Mapped[Decimal] = mapped_column(Money())
    price: Mapped[Decimal] = mapped_column(Money())
    position_after: Mapped[Decimal] = mapped_column(Money())
    audit_seq: Mapped[int] = mapped_column(Integer)
    applied_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ModelConfig(Base):
    """A model configuration: name, version, parameters (canonical JSON) and their hash."""

    __tablename__ = "model_configs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(32))
    params: Mapped[str] = mapped_column(Text)
    params_hash: Mapped[str] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class MarginSnapshot(Base):
    """An account's margin at one market timestamp under one model configuration."""

    __tablename__ = "margin_snapshots"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    market_timestamp: Mapped[str] = mapped_column(String(40))
    model: Mapped[str] = mapped_column(String(64))
    params_hash: Mapped[str] = mapped_column(String(64))
    initial_margin: Mapped[Decimal] = mapped_column(Money())
    maintenance_margin: Mapped[Decimal] = mapped_column(Money())
    equity: Mapped[Decimal] = mapped_column(Money())
    status: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Event(Base):
    """A published event (``margin_call``, ``liquidation``, ...) with its gap-free ``seq``."""

    __tablename__ = "events"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(32))
    account_id: Mapped[str | None] = mapped_column(String(64), index=True)
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AuditEntry(Base):
    """One entry of the hash-chained audit log (see :mod:`margin_engine.service.audit_chain`).

    Every hashed field is stored as text exactly as hashed (``changes`` and ``margin`` as canonical
    JSON), so the chain recomputes identically on every backend.
    """

    __tablename__ = "audit_log"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    recorded_at: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    account: Mapped[str | None] = mapped_column(String(64))
    changes: Mapped[str] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(String(64))
    model_version: Mapped[str | None] = mapped_column(String(32))
    params_hash: Mapped[str | None] = mapped_column(String(64))
    market_timestamp: Mapped[str | None] = mapped_column(String(40))
    margin: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class Commitment(Base):
    """A published Merkle commitment over every account's margin leaf."""

    __tablename__ = "commitments"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    root: Mapped[str] = mapped_column(String(64))
    tree_size: Mapped[int] = mapped_column(Integer)
    market_timestamp: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CommitmentLeaf(Base):
    """One account's leaf (canonical JSON) in a commitment, by 0-based index."""

    __tablename__ = "commitment_leaves"
    __table_args__ = (UniqueConstraint("commitment_seq", "account_id"),)
    commitment_seq: Mapped[int] = mapped_column(ForeignKey("commitments.seq"), primary_key=True)
    leaf_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    leaf: Mapped[str] = mapped_column(Text)


class ChainHead(Base):
    """The last ``seq`` and hash of a sequence (``audit``, ``events``, ``commitments``).

    Appending locks this row (``SELECT ... FOR UPDATE``), so concurrent writers get gap-free,
    commit-ordered numbers and a reader of ``after=SEQ`` never misses a late commit.
    """

    __tablename__ = "chain_heads"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


class MarketState(Base):
    """The live market as last applied (one row, ``id`` 1): the snapshot's JSON, its timestamp,
    and how many updates have been applied to it, so a restart resumes from it."""

    __tablename__ = "market_state"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    market_timestamp: Mapped[str] = mapped_column(String(40))
    snapshot: Mapped[str] = mapped_column(Text)
    updates: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class FeedPosition(Base):
    """How far a feed has been applied (``feed``: its key, e.g. ``nats://host:port/subject``
    with its durable name; ``position``: the last applied stream sequence), stored in the same
    transaction as the market it produced: a redelivered message at or before it is skipped."""

    __tablename__ = "feed_positions"
    feed: Mapped[str] = mapped_column(String(256), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    applied: Mapped[int] = mapped_column(Integer)
    market_timestamp: Mapped[str] = mapped_column(String(40))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DynamicState(Base):
    """The dynamic margin controller's state (one row, ``id`` 1): its JSON
    (:meth:`~margin_engine.live.dynamic.LiveDynamic.state_doc`) and the IM multiplier in force,
    written in the transaction of the market update that produced it."""

    __tablename__ = "dynamic_state"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    market_timestamp: Mapped[str] = mapped_column(String(40))
    im_multiplier: Mapped[float] = mapped_column(Float)
    state: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
