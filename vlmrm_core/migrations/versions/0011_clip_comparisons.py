"""Comparisons of clips: ``comparisons.length``, ``position_a`` and ``position_b``.

A comparison may now be between two clips (``length`` > 1 consecutive frames of one episode of
the dataset) instead of two frames. ``frame_a`` / ``frame_b`` stay the first frames of the two
sides; ``position_a`` / ``position_b`` name the dataset memberships those clips start at (a frame
hash can repeat within an episode, a membership cannot). Every existing row compares two frames:
length 1 and no positions.

Revision ID: 0011
Revises: 0010
Create Date: 2027-02-11
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("comparisons") as batch:
        batch.add_column(
            sa.Column("length", sa.Integer(), nullable=False, server_default=sa.text("1"))
        )
        batch.add_column(sa.Column("position_a", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("position_b", sa.Integer(), nullable=True))


def downgrade() -> None:
    # Clip comparisons have no meaning as frame comparisons (their first frames were not what
    # was compared): they go, rather than turn into answers nobody gave.
    op.execute(sa.text("DELETE FROM comparisons WHERE length <> 1"))
    with op.batch_alter_table("comparisons") as batch:
        batch.drop_column("position_b")
        batch.drop_column("position_a")
        batch.drop_column("length")
