"""The initial service schema: accounts, collateral, positions, fills, model configuration,
margin snapshots, events, the audit log, commitments and the sequence heads.

Revision ID: 0001
Revises:
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from margin_engine.service.audit_chain import GENESIS
from margin_engine.service.tables import Money

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create every table and seed the sequence heads."""
    op.create_table(
        "accounts",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("margin_mode", sa.String(32), nullable=False),
        sa.Column("credit_rating", sa.String(16), nullable=True),
        sa.Column("api_key_id", sa.String(16), nullable=False),
        sa.Column("api_key_hash", sa.String(160), nullable=False),
        sa.UniqueConstraint("api_key_id"),
        sa.Column("commitment_salt", sa.String(64), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_table(
        "collateral_balances",
        sa.Column("account_id", sa.String(64), sa.ForeignKey("accounts.id"), primary_key=True),
        sa.Column("currency", sa.String(16), primary_key=True),
        sa.Column("amount", Money(), nullable=False),
    )
    op.create_table(
        "positions",
        sa.Column("account_id", sa.String(64), sa.ForeignKey("accounts.id"), primary_key=True),
        sa.Column("symbol", sa.String(64), primary_key=True),
        sa.Column("size", Money(), nullable=False),
        sa.Column("avg_price", Money(), nullable=False),
        sa.Column("realised_pnl", Money(), nullable=False),
    )
    op.create_table(
        "fills",
        sa.Column("fill_id", sa.String(128), primary_key=True),
        sa.Column("account_id", sa.String(64), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("size", Money(), nullable=False),
        sa.Column("price", Money(), nullable=False),
        sa.Column("position_after", Money(), nullable=False),
        sa.Column("audit_seq", sa.Integer(), nullable=False),
        sa.Column("applied_at", TZ, nullable=False),
    )
    op.create_index("ix_fills_account_id", "fills", ["account_id"])
    op.create_table(
        "model_configs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("params_hash", sa.String(64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_table(
        "margin_snapshots",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.String(64), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("market_timestamp", sa.String(40), nullable=False),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("params_hash", sa.String(64), nullable=False),
        sa.Column("initial_margin", Money(), nullable=False),
        sa.Column("maintenance_margin", Money(), nullable=False),
        sa.Column("equity", Money(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_index("ix_margin_snapshots_account_id", "margin_snapshots", ["account_id"])
    op.create_table(
        "events",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("account_id", sa.String(64), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_index("ix_events_account_id", "events", ["account_id"])
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("recorded_at", sa.String(40), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("account", sa.String(64), nullable=True),
        sa.Column("changes", sa.Text(), nullable=False),
        sa.Column("model", sa.String(64), nullable=True),
        sa.Column("model_version", sa.String(32), nullable=True),
        sa.Column("params_hash", sa.String(64), nullable=True),
        sa.Column("market_timestamp", sa.String(40), nullable=True),
        sa.Column("margin", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_table(
        "commitments",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("root", sa.String(64), nullable=False),
        sa.Column("tree_size", sa.Integer(), nullable=False),
        sa.Column("market_timestamp", sa.String(40), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_table(
        "commitment_leaves",
        sa.Column("commitment_seq", sa.Integer(), sa.ForeignKey("commitments.seq"),
                  primary_key=True),
        sa.Column("leaf_index", sa.Integer(), primary_key=True),
        sa.Column("account_id", sa.String(64), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("leaf", sa.Text(), nullable=False),
        sa.UniqueConstraint("commitment_seq", "account_id"),
    )
    heads = op.create_table(
        "chain_heads",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.bulk_insert(heads, [{"name": n, "seq": 0, "hash": GENESIS}
                           for n in ("audit", "events", "commitments")])


def downgrade() -> None:
    """Drop every table."""
    for name in ("chain_heads", "commitment_leaves", "commitments", "audit_log", "events",
                 "margin_snapshots", "model_configs", "fills", "positions",
                 "collateral_balances", "accounts"):
        op.drop_table(name)
