"""Pairwise labelling tasks: ``labelling_tasks.pairwise``.

A pairwise task asks its labellers which of two of its frames is closer to the goal (answers in
``comparisons``) instead of a label per frame. Existing tasks are not pairwise.

Revision ID: 0009
Revises: 0008
Create Date: 2027-02-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("labelling_tasks") as batch:
        batch.add_column(
            sa.Column("pairwise", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("labelling_tasks") as batch:
        batch.drop_column("pairwise")
