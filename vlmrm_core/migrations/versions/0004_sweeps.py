"""Training sweeps (Ray Tune or the local queue) and their trials.

A sweep is a grid (prompt set × α × seed) of training runs; each trial is an ordinary row of
``training_runs`` that names its sweep in ``sweep_id`` (no foreign key, like
``eval_dataset_id``: SQLite could only add one by rebuilding the table).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sweeps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("engine", sa.String(16), nullable=False),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("storage_path", sa.Text(), server_default="", nullable=False),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(320), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_sweeps"),
    )
    op.add_column("training_runs", sa.Column("sweep_id", sa.Integer(), nullable=True))
    op.create_index("ix_training_runs_sweep_id", "training_runs", ["sweep_id"])


def downgrade() -> None:
    op.drop_index("ix_training_runs_sweep_id", table_name="training_runs")
    with op.batch_alter_table("training_runs") as batch:
        batch.drop_column("sweep_id")
    op.drop_table("sweeps")
