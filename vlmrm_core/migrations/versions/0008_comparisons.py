"""Pairwise comparisons: which of two frames of a dataset is closer to the goal.

- ``comparisons``: one row per answer (``a``, ``b`` or ``equal``) by a labeller about two frames
  (left ``frame_a``, right ``frame_b``), with the browser session that wrote it (Undo removes only
  those) and the labelling task it was given in, if any. Rows are never updated: a labeller's
  current answer about a pair is their latest row, as for labels. On SQLite the table uses
  AUTOINCREMENT so an undone comparison's id is never reused.

The frames have no foreign key to ``frames`` (like ``embeddings``): a dataset's frames are
removed before the dataset row when it is deleted, and its comparisons go with the dataset row
(``ON DELETE CASCADE``). Deleting a task keeps its comparisons (``task_id`` becomes null).

Revision ID: 0008
Revises: 0007
Create Date: 2027-02-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "comparisons",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("frame_a", sa.String(64), nullable=False),
        sa.Column("frame_b", sa.String(64), nullable=False),
        sa.Column("labeler_id", sa.Integer(), nullable=False),
        sa.Column("choice", sa.String(8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("session_id", sa.String(64), nullable=True),
        sa.Column("task_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name="fk_comparisons_dataset_id_datasets",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["labeler_id"], ["labelers.id"], name="fk_comparisons_labeler_id_labelers"
        ),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["labelling_tasks.id"],
            name="fk_comparisons_task_id_labelling_tasks",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_comparisons"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_comparisons_dataset_id", "comparisons", ["dataset_id"])
    op.create_index("ix_comparisons_labeler_id", "comparisons", ["labeler_id"])


def downgrade() -> None:
    op.drop_index("ix_comparisons_labeler_id", table_name="comparisons")
    op.drop_index("ix_comparisons_dataset_id", table_name="comparisons")
    op.drop_table("comparisons")
