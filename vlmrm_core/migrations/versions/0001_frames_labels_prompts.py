"""Frames, datasets, embeddings, labels and prompt sets.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Migrations spell their types out instead of importing the ORM models, so that they keep
# describing the schema as it was at this revision when the models change later.
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("meta", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_datasets"),
        sa.UniqueConstraint("name", name="uq_datasets_name"),
    )
    op.create_table(
        "frames",
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("path", sa.String(255), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("hash", name="pk_frames"),
    )
    op.create_table(
        "dataset_frames",
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("frame_hash", sa.String(64), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("env_id", sa.String(255), nullable=True),
        sa.Column("episode", sa.Integer(), nullable=True),
        sa.Column("step", sa.Integer(), nullable=True),
        sa.Column("state", sa.JSON(), nullable=True),
        sa.Column("param_name", sa.String(255), nullable=True),
        sa.Column("param_value", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name="fk_dataset_frames_dataset_id_datasets",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["frame_hash"], ["frames.hash"], name="fk_dataset_frames_frame_hash_frames"
        ),
        sa.PrimaryKeyConstraint("dataset_id", "position", name="pk_dataset_frames"),
    )
    op.create_index("ix_dataset_frames_frame_hash", "dataset_frames", ["frame_hash"])
    op.create_table(
        "embeddings",
        sa.Column("frame_hash", sa.String(64), nullable=False),
        sa.Column("encoder_key", sa.String(255), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("frame_hash", "encoder_key", name="pk_embeddings"),
    )
    op.create_table(
        "labelers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_labelers"),
        sa.UniqueConstraint("name", name="uq_labelers_name"),
    )
    op.create_table(
        "labels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("frame_hash", sa.String(64), nullable=False),
        sa.Column("labeler_id", sa.Integer(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name="fk_labels_dataset_id_datasets",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["frame_hash"], ["frames.hash"], name="fk_labels_frame_hash_frames"
        ),
        sa.ForeignKeyConstraint(
            ["labeler_id"], ["labelers.id"], name="fk_labels_labeler_id_labelers"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_labels"),
    )
    op.create_index("ix_labels_dataset_frame", "labels", ["dataset_id", "frame_hash"])
    op.create_index("ix_labels_labeler", "labels", ["labeler_id"])
    op.create_table(
        "prompt_sets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("model_name", sa.String(255), nullable=False),
        sa.Column("pretrained", sa.Text(), nullable=False),
        sa.Column("goal_prompts", sa.JSON(), nullable=False),
        sa.Column("baseline_prompts", sa.JSON(), nullable=False),
        sa.Column("alpha", sa.Float(), nullable=False),
        sa.Column("reward_kind", sa.String(32), nullable=False),
        sa.Column("negatives", sa.JSON(), nullable=False),
        sa.Column("tau", sa.Float(), nullable=True),
        sa.Column("beta", sa.Float(), nullable=True),
        sa.Column("aspect", sa.String(32), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_prompt_sets"),
        sa.UniqueConstraint("name", name="uq_prompt_sets_name"),
    )


def downgrade() -> None:
    op.drop_table("prompt_sets")
    op.drop_index("ix_labels_labeler", table_name="labels")
    op.drop_index("ix_labels_dataset_frame", table_name="labels")
    op.drop_table("labels")
    op.drop_table("labelers")
    op.drop_table("embeddings")
    op.drop_index("ix_dataset_frames_frame_hash", table_name="dataset_frames")
    op.drop_table("dataset_frames")
    op.drop_table("frames")
    op.drop_table("datasets")
