"""The live market and the feeds' positions, so a restart resumes from the last applied market
(and a JSON feed neither loses nor re-applies an update).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create ``market_state`` and ``feed_positions``."""
    op.create_table(
        "market_state",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("market_timestamp", sa.String(40), nullable=False),
        sa.Column("snapshot", sa.Text(), nullable=False),
        sa.Column("updates", sa.Integer(), nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_table(
        "feed_positions",
        sa.Column("feed", sa.String(256), primary_key=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("applied", sa.Integer(), nullable=False),
        sa.Column("market_timestamp", sa.String(40), nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )


def downgrade() -> None:
    """Drop them."""
    op.drop_table("feed_positions")
    op.drop_table("market_state")
