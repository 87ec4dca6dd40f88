"""Video-backed frames: ``frames.video_pts``.

A frame imported from a LeRobot dataset is no longer written out as a PNG: its ``path`` names a
content-addressed copy of the MP4 it came from (``videos/<sha256>.mp4`` under ``frames_dir``) and
the new column locates it there: its presentation timestamp in the time base of the file's first
video stream. It is NULL for a PNG-backed frame, which every existing frame is. The index on ``path`` lets deletion and garbage collection find
whether any frame still refers to a video file.

Revision ID: 0010
Revises: 0009
Create Date: 2027-02-10
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from vlmrm_core.store.db import MigrationRefusedError

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("frames") as batch:
        batch.add_column(sa.Column("video_pts", sa.BigInteger(), nullable=True))
        batch.create_index("ix_frames_path", ["path"])


def downgrade() -> None:
    # Video-backed frames cannot be represented without these columns; refuse rather than turn
    # them into frames whose ``path`` points at an MP4 that the older code would read as a PNG.
    bind = op.get_bind()
    count = bind.execute(sa.text("SELECT COUNT(*) FROM frames WHERE video_pts IS NOT NULL"))
    n_frames = count.scalar_one()
    if n_frames:
        names = bind.execute(
            sa.text(
                "SELECT DISTINCT d.name FROM datasets d JOIN dataset_frames m "
                "ON m.dataset_id = d.id JOIN frames f ON f.hash = m.frame_hash "
                "WHERE f.video_pts IS NOT NULL ORDER BY d.name"
            )
        ).scalars()
        listed = ", ".join(repr(name) for name in names) or "none (unused frames)"
        raise MigrationRefusedError(
            f"cannot downgrade the database below revision 0010: {n_frames} frame(s) are stored "
            f"by reference to a video (LeRobot imports; datasets: {listed}), which older versions "
            "cannot read; delete those datasets first (Frames page, Delete), then downgrade again"
        )
    with op.batch_alter_table("frames") as batch:
        batch.drop_index("ix_frames_path")
        batch.drop_column("video_pts")
