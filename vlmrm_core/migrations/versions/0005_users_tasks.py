"""Users and roles, labelling tasks with overlap and review, adjudicated labels, creators.

- ``users``: verified email -> role (admin, researcher, labeller).
- ``datasets.created_by``, ``training_runs.created_by``: who created them (email or None).
- ``labels.session_id``: the browser session that wrote a label (Undo removes only those);
  on SQLite the table is rebuilt with AUTOINCREMENT so an undone label's id is never reused.
- ``labelling_tasks`` and ``task_assignees``: a dataset (or a subset) given to labellers with a
  question, instructions, label kind and an overlap target k.
- ``adjudications``: a reviewer's final label of a frame, kept apart from the raw labels.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
EMAIL = sa.String(320)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", EMAIL, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", EMAIL, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("email", name="uq_users_email"),
    )
    op.add_column("datasets", sa.Column("created_by", EMAIL, nullable=True))
    op.add_column("training_runs", sa.Column("created_by", EMAIL, nullable=True))
    if op.get_bind().dialect.name == "sqlite":
        # Rebuild with AUTOINCREMENT: plain INTEGER PRIMARY KEY reuses the id of a deleted row.
        with op.batch_alter_table(
            "labels", recreate="always", table_kwargs={"sqlite_autoincrement": True}
        ) as batch:
            batch.add_column(sa.Column("session_id", sa.String(64), nullable=True))
    else:  # PostgreSQL sequences never hand out an id twice
        op.add_column("labels", sa.Column("session_id", sa.String(64), nullable=True))
    op.create_table(
        "labelling_tasks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("instructions", sa.Text(), server_default="", nullable=False),
        sa.Column("graded", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("overlap", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("show_state", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("frame_hashes", sa.JSON(), nullable=True),
        sa.Column("created_by", EMAIL, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name="fk_labelling_tasks_dataset_id_datasets",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_labelling_tasks"),
        sa.UniqueConstraint("name", name="uq_labelling_tasks_name"),
    )
    op.create_table(
        "task_assignees",
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("email", EMAIL, nullable=False),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["labelling_tasks.id"],
            name="fk_task_assignees_task_id_labelling_tasks",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("task_id", "email", name="pk_task_assignees"),
    )
    op.create_table(
        "adjudications",
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("frame_hash", sa.String(64), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("adjudicator", EMAIL, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name="fk_adjudications_dataset_id_datasets",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["frame_hash"], ["frames.hash"], name="fk_adjudications_frame_hash_frames"
        ),
        sa.PrimaryKeyConstraint("dataset_id", "frame_hash", name="pk_adjudications"),
    )


def downgrade() -> None:
    op.drop_table("adjudications")
    op.drop_table("task_assignees")
    op.drop_table("labelling_tasks")
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table(
            "labels", recreate="always", table_kwargs={"sqlite_autoincrement": False}
        ) as batch:
            batch.drop_column("session_id")
    else:
        op.drop_column("labels", "session_id")
    op.drop_column("training_runs", "created_by")
    op.drop_column("datasets", "created_by")
    op.drop_table("users")
