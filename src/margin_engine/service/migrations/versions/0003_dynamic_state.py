"""The dynamic margin controller's state, stored with each market update so a restart of
``serve --dynamic`` resumes the multiplier in force and an announced increase.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``dynamic_state`` (one row, ``id`` 1)."""
    op.create_table(
        "dynamic_state",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("market_timestamp", sa.String(40), nullable=False),
        sa.Column("im_multiplier", sa.Float(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    """Drop it."""
    op.drop_table("dynamic_state")
