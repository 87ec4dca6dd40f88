"""Training runs and their metrics; labelling policy per dataset; FrameRecord.extra.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    # Added columns carry server defaults so rows written by revision 0001 stay valid.
    op.add_column(
        "datasets",
        sa.Column("labels_required", sa.Integer(), server_default=sa.text("1"), nullable=False),
    )
    op.add_column(
        "datasets",
        sa.Column("graded", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.add_column("dataset_frames", sa.Column("extra", sa.JSON(), nullable=True))
    op.create_table(
        "training_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("env_id", sa.String(255), nullable=False),
        sa.Column("algo", sa.String(16), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("prompt_set_id", sa.Integer(), nullable=True),
        sa.Column("total_steps", sa.Integer(), nullable=False),
        sa.Column("steps_done", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("heartbeat_at", TS, nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("run_dir", sa.Text(), server_default="", nullable=False),
        sa.Column("eval_dataset_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["prompt_set_id"],
            ["prompt_sets.id"],
            name="fk_training_runs_prompt_set_id_prompt_sets",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_training_runs"),
    )
    op.create_table(
        "run_metrics",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("wall_time", sa.Float(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["training_runs.id"],
            name="fk_run_metrics_run_id_training_runs",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_run_metrics"),
    )
    op.create_index("ix_run_metrics_run_step", "run_metrics", ["run_id", "step"])


def downgrade() -> None:
    op.drop_index("ix_run_metrics_run_step", table_name="run_metrics")
    op.drop_table("run_metrics")
    op.drop_table("training_runs")
    with op.batch_alter_table("dataset_frames") as batch:
        batch.drop_column("extra")
    with op.batch_alter_table("datasets") as batch:
        batch.drop_column("graded")
        batch.drop_column("labels_required")
