"""The machine a run's worker runs on: ``training_runs.host``, recorded with its pid.

A pid only names a process on one machine, and Ray sweeps run workers on any node of a cluster.
Crash detection checks the pid only when the run's host is the checking process's own
(``vlmrm_core.training.jobs.this_host``); runs on other hosts are judged by their heartbeat.
Rows from before this revision keep a null host and today's behaviour (the pid is taken as this
machine's).

Revision ID: 0007
Revises: 0006
Create Date: 2027-01-15
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("training_runs", sa.Column("host", sa.String(255), nullable=True))


def downgrade() -> None:
    op.drop_column("training_runs", "host")
