"""The ORM models: one class per table, typed with ``Mapped[...]``.

The tables themselves are created by the Alembic migrations in ``vlmrm_core/migrations``; these
classes describe the head revision and must be kept in step with the newest migration (the tests
compare the two).

Design notes:
    * Enumerations (dataset kind, run status, reward kind...) are plain strings validated in
      Python. SQLite can only change a CHECK constraint by rebuilding the table, so keeping them
      out of the database keeps future migrations cheap.
    * Every timestamp is stored as a timezone-aware UTC value (:class:`UTCDateTime`); SQLite has no
      time zone support, so the type decorator attaches UTC on the way out.
    * ``dataset_frames`` is keyed by ``(dataset_id, position)``, not ``(dataset_id, frame_hash)``:
      a rollout can legitimately show the same pixels at two different steps, and each of those
      steps is a separate membership with its own provenance.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from vlmrm_core.enums import DatasetKind, RunStatus, choices

DATASET_KINDS = choices(DatasetKind)
"""Allowed values of ``datasets.kind``."""
RUN_STATUSES = choices(RunStatus)
"""Allowed values of ``training_runs.status``."""
RUN_ALGOS = ("sac", "dqn", "ppo")
"""Allowed values of ``training_runs.algo``."""


def utcnow() -> datetime:
    """The current time as a timezone-aware UTC datetime."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that always comes back timezone-aware in UTC.

    PostgreSQL stores ``timestamptz`` natively; SQLite stores text without an offset, so values are
    normalised to UTC before they are written and UTC is attached when they are read. Naive
    datetimes given by callers are taken to be UTC already.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Deterministic constraint names, so later migrations (SQLite batch mode) can refer to them."""


class Base(DeclarativeBase):
    """Declarative base of all store tables."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[str]: JSON()}


class Dataset(Base):
    """A named, ordered collection of frames (through :class:`DatasetFrame`)."""

    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    kind: Mapped[str] = mapped_column(String(32), default="upload")
    labels_required: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    """Frames with at least this many current labels from others are skipped in queues."""
    graded: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """True: labels may take any value in [0, 1]; False: only 0 (failure) or 1 (success)."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_by: Mapped[str | None] = mapped_column(String(320))
    """Email of the signed-in creator; None without sign-in."""


class Frame(Base):
    """One stored image, identified by its pixel hash; its pixels live under ``frames_dir``,
    as a PNG of their own or as one frame of a stored video (revision 0010)."""

    __tablename__ = "frames"
    __table_args__ = (Index("ix_frames_path", "path"),)

    hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    path: Mapped[str] = mapped_column(String(255))
    """Relative to ``settings.frames_dir``: ``<hash[:2]>/<hash>.png``, or for a video-backed
    frame the shared video ``videos/<sha256 of the file>.mp4``."""
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    video_pts: Mapped[int | None] = mapped_column(BigInteger)
    """Video-backed frames: presentation timestamp in the time base of the video's first video
    stream; NULL for a PNG."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DatasetFrame(Base):
    """A frame's membership in a dataset, with its provenance there."""

    __tablename__ = "dataset_frames"
    __table_args__ = (Index("ix_dataset_frames_frame_hash", "frame_hash"),)

    dataset_id: Mapped[int] = mapped_column(
        ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    frame_hash: Mapped[str] = mapped_column(ForeignKey("frames.hash"))
    source: Mapped[str] = mapped_column(String(32))
    name: Mapped[str | None] = mapped_column(Text)
    env_id: Mapped[str | None] = mapped_column(String(255))
    episode: Mapped[int | None] = mapped_column(Integer)
    step: Mapped[int | None] = mapped_column(Integer)
    state: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    param_name: Mapped[str | None] = mapped_column(String(255))
    param_value: Mapped[float | None] = mapped_column(Float)
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    """``FrameRecord.extra`` (added in revision 0002)."""


class Embedding(Base):
    """A cached image embedding. No foreign key to ``frames``: CLI-scored files are cached too."""

    __tablename__ = "embeddings"

    frame_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    encoder_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    dim: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    """Little-endian float32 bytes, ``dim`` values."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PromptSet(Base):
    """A saved reward: a model reference and a reward spec (``vlmrm_core.reward.spec``), by name."""

    __tablename__ = "prompt_sets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    model: Mapped[dict[str, Any]] = mapped_column()
    """``ModelRef.to_dict()``."""
    reward: Mapped[dict[str, Any]] = mapped_column()
    """``RewardSpec.to_dict()``."""
    environment: Mapped[str | None] = mapped_column(String(255))
    """The environment family or dataset the prompts were written for (e.g. ``CartPole``)."""
    created_by: Mapped[str | None] = mapped_column(String(320))
    """Who saved it first (a signed-in email, or None in single-user mode)."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Labeler(Base):
    """A person (or script) that labels frames."""

    __tablename__ = "labelers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Label(Base):
    """One labelling act. Rows are never updated: a labeler's current label is their latest row."""

    __tablename__ = "labels"
    __table_args__ = (
        Index("ix_labels_dataset_frame", "dataset_id", "frame_hash"),
        Index("ix_labels_labeler", "labeler_id"),
        # SQLite: never reuse the id of a deleted (undone) label.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    frame_hash: Mapped[str] = mapped_column(ForeignKey("frames.hash"))
    labeler_id: Mapped[int] = mapped_column(ForeignKey("labelers.id"))
    value: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    session_id: Mapped[str | None] = mapped_column(String(64))
    """The labelling session that wrote the row: Undo removes only its own session's labels."""


class Comparison(Base):
    """One pairwise answer: which of two frames (or two clips) is closer to the goal (``a``,
    ``b`` or ``equal``).

    Rows are never updated: a labeller's current answer about a pair is their latest row. The
    frames carry no foreign key to ``frames`` (see migration 0008); they are checked to be
    members of the dataset when the row is written, and go with the dataset.
    """

    __tablename__ = "comparisons"
    __table_args__ = (
        Index("ix_comparisons_dataset_id", "dataset_id"),
        Index("ix_comparisons_labeler_id", "labeler_id"),
        # SQLite: never reuse the id of a deleted (undone) comparison.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    frame_a: Mapped[str] = mapped_column(String(64))
    """The frame shown first (left)."""
    frame_b: Mapped[str] = mapped_column(String(64))
    """The frame shown second (right)."""
    labeler_id: Mapped[int] = mapped_column(ForeignKey("labelers.id"))
    choice: Mapped[str] = mapped_column(String(8))
    """``a`` (frame_a is closer to the goal), ``b``, or ``equal``."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    session_id: Mapped[str | None] = mapped_column(String(64))
    """The labelling session that wrote the row: Undo removes only its own session's rows."""
    task_id: Mapped[int | None] = mapped_column(
        ForeignKey("labelling_tasks.id", ondelete="SET NULL")
    )
    """The labelling task the pair was asked in, if any."""
    length: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    """Frames on each side: 1 compares two frames; k > 1 two clips of k consecutive frames of
    an episode (migration 0011), whose first frames are ``frame_a`` and ``frame_b``."""
    position_a: Mapped[int | None] = mapped_column(Integer)
    """A clip's first membership (``dataset_frames.position``) on the left; None for a frame."""
    position_b: Mapped[int | None] = mapped_column(Integer)
    """A clip's first membership on the right; None for a frame."""


class TrainingRun(Base):
    """One RL training job and its lifecycle."""

    __tablename__ = "training_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    env_id: Mapped[str] = mapped_column(String(255))
    algo: Mapped[str] = mapped_column(String(16))
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prompt_set_id: Mapped[int | None] = mapped_column(
        ForeignKey("prompt_sets.id", ondelete="SET NULL")
    )
    total_steps: Mapped[int] = mapped_column(Integer, default=0)
    steps_done: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    pid: Mapped[int | None] = mapped_column(Integer)
    heartbeat_at: Mapped[datetime | None] = mapped_column()
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(Text)
    run_dir: Mapped[str] = mapped_column(Text, default="", server_default="")
    eval_dataset_id: Mapped[int | None] = mapped_column(Integer)
    """Dataset of evaluation frames; deliberately no FK so deleting it keeps the run."""
    created_by: Mapped[str | None] = mapped_column(String(320))
    """Email of the signed-in user who started the run (per-user quota); None without sign-in."""
    sweep_id: Mapped[int | None] = mapped_column(Integer, index=True)
    """The sweep this run is a trial of (``sweeps.id``; no FK, see migration 0004)."""
    host: Mapped[str | None] = mapped_column(String(255))
    """Machine of the worker named by ``pid`` (``jobs.this_host()``); None before revision 0007."""


class Sweep(Base):
    """A grid of training runs (prompt set × α × seed) run on Ray Tune or the local queue."""

    __tablename__ = "sweeps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default="running")
    """``running``, ``finished``, ``failed`` or ``cancelled`` (see ``SWEEP_STATUSES``)."""
    engine: Mapped[str] = mapped_column(String(16))
    """``ray`` (Tune trials) or ``local`` (the local run queue)."""
    address: Mapped[str | None] = mapped_column(Text)
    """Ray cluster address; None for a local cluster."""
    spec: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """The grid: base training config, reward sources, alphas, seeds, resources."""
    storage_path: Mapped[str] = mapped_column(Text, default="", server_default="")
    """Ray Tune's experiment folder (trial checkpoints)."""
    pid: Mapped[int | None] = mapped_column(Integer)
    """Process driving the Ray sweep, while it runs."""
    error: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()


class RunMetric(Base):
    """One row of logged scalars of a training run at a step."""

    __tablename__ = "run_metrics"
    __table_args__ = (Index("ix_run_metrics_run_step", "run_id", "step"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("training_runs.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(Integer)
    wall_time: Mapped[float] = mapped_column(Float)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class User(Base):
    """A person allowed into a deployment with sign-in: verified email and role."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    """``admin``, ``researcher`` or ``labeller``."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(320))


class LabellingTask(Base):
    """A dataset (or a subset of its frames) given to labellers, with an overlap target k."""

    __tablename__ = "labelling_tasks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    question: Mapped[str] = mapped_column(Text)
    instructions: Mapped[str] = mapped_column(Text, default="", server_default="")
    graded: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    overlap: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    """Labels wanted per frame: a frame leaves every queue once it has this many."""
    show_state: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """Show the state caption (can bias labellers; hidden by default)."""
    pairwise: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """A pairwise task: labellers compare pairs of its frames instead of labelling each."""
    frame_hashes: Mapped[list[str] | None] = mapped_column(JSON)
    """The subset of the dataset's frames, or None for all of them."""
    created_by: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TaskAssignee(Base):
    """A labeller (by email) assigned to a task."""

    __tablename__ = "task_assignees"

    task_id: Mapped[int] = mapped_column(
        ForeignKey("labelling_tasks.id", ondelete="CASCADE"), primary_key=True
    )
    email: Mapped[str] = mapped_column(String(320), primary_key=True)


class Adjudication(Base):
    """A reviewer's final label of a frame, kept apart from the raw labels."""

    __tablename__ = "adjudications"

    dataset_id: Mapped[int] = mapped_column(
        ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True
    )
    frame_hash: Mapped[str] = mapped_column(ForeignKey("frames.hash"), primary_key=True)
    value: Mapped[float] = mapped_column(Float)
    adjudicator: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
