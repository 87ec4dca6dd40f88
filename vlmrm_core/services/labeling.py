"""Labelling sessions, label agreement and label export, as used by the Label page.

* :class:`LabelSession`: one labeler working through one dataset. The order of the queue comes
  from the store (:func:`~vlmrm_core.store.label_queue`: reproducible shuffle, frames with
  enough labels from others left out); the session only remembers what this browser session
  changed about it: skipped frames go to the end, frames whose label was undone come back first.
  Every label is committed to the database the moment it is given.
* :func:`agreement_report`: Cohen's κ per pair of labelers, Krippendorff's α over everyone, and
  the frames labelers disagree on.
* :func:`export_bytes`: the store's CSV / JSONL / Parquet export, as bytes for a download.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
import unicodedata
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from vlmrm_core.errors import InvalidInputError
from vlmrm_core.metrics.agreement import (
    UndefinedAgreementError,
    krippendorff_alpha,
    labeller_disagreements,
    pairwise_kappa,
)
from vlmrm_core.store import (
    Engine,
    FrameInfo,
    LabelProgress,
    LabelRecord,
    add_label,
    check_person_name,
    current_labels,
    dataset_frames,
    export_labels,
    frames_by_hash,
    label_progress,
    label_queue,
    undo_last_label,
)

__all__ = [
    "EXPORT_MIME",
    "FAILURE",
    "QUEUE_ORDERS",
    "MAX_LABELER_NAME",
    "SUCCESS",
    "AgreementReport",
    "LabelSession",
    "agreement_report",
    "check_labeler_name",
    "export_bytes",
    "export_file_name",
    "first_positions",
    "frame_infos",
    "label_text",
    "labeler_seed",
    "order_queue",
]

SUCCESS = 1.0
"""Label value of a success."""
FAILURE = 0.0
"""Label value of a failure."""

MAX_LABELER_NAME = 80
"""Longest labeler name accepted."""

EXPORT_MIME = {
    "csv": "text/csv",
    "jsonl": "application/jsonl",
    "parquet": "application/vnd.apache.parquet",
}
"""MIME type of each export format of :func:`~vlmrm_core.store.export_labels`."""


def check_labeler_name(name: str) -> str:
    """The labeler name without surrounding whitespace.

    Raises:
        InvalidInputError: (a ``ValueError``) the name is empty, too long, has control
            characters or starts with the machine labellers' prefix
            (:func:`~vlmrm_core.store.check_person_name`); the message says which.
    """
    cleaned = name.strip()
    if not cleaned:
        raise InvalidInputError("Enter your name to start labelling.")
    if len(cleaned) > MAX_LABELER_NAME:
        raise InvalidInputError(f"Your name is {len(cleaned)} characters long; use at most 80.")
    if any(unicodedata.category(ch).startswith("C") for ch in cleaned):
        raise InvalidInputError("Your name contains control characters (such as line breaks).")
    return check_person_name(cleaned)


def labeler_seed(name: str) -> int:
    """The queue seed of a labeler: stable across sessions, different between labelers.

    Different labelers get different shuffles, so when every frame needs only k labels the
    labelers spread over the dataset instead of all starting on the same frames.
    """
    return int(hashlib.sha256(name.strip().encode()).hexdigest()[:8], 16)


def label_text(value: float) -> str:
    """``'success'`` for 1, ``'failure'`` for 0, and the value with two decimals otherwise."""
    if value == SUCCESS:
        return "success"
    if value == FAILURE:
        return "failure"
    return f"{value:.2f}"


@dataclass
class LabelSession:
    """One labeler working through one dataset in one browser session.

    Attributes:
        dataset: Dataset name.
        labeler: Labeler name (already checked with :func:`check_labeler_name`).
        front: Frames whose label was undone, most recently undone first; shown before the rest.
        skipped: Frames skipped in this session, in skip order; shown after the rest.
    """

    dataset: str
    labeler: str
    front: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    session_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    """Tags every label this session writes; Undo removes only labels with this tag."""
    signed_in: bool = False
    """True when ``labeler`` is a signed-in email: every write goes through the permission
    checks of :mod:`vlmrm_core.store.tasks` (role, assigned tasks)."""
    order: str = "random"
    """Queue order, one of :data:`QUEUE_ORDERS` (see :func:`order_queue`)."""
    ranking: tuple[str, ...] = ()
    """Frame hashes, most informative first (the ``informative`` order; from
    :func:`vlmrm_core.reward.active_labels.informative_order`)."""
    task: str | None = None
    """The labelling task worked on (signed in only): its kind decides the accepted values."""

    @property
    def seed(self) -> int:
        """The labeler's queue seed (see :func:`labeler_seed`)."""
        return labeler_seed(self.labeler)

    def arrange(self, queue: Sequence[str]) -> list[str]:
        """Apply this session's undo and skip history to the store's queue order.

        Frames no longer in ``queue`` (labelled meanwhile, here or by enough others) are
        dropped from the history silently.
        """
        pending = set(queue)
        first = [h for h in self.front if h in pending]
        first_set = set(first)
        last = [h for h in self.skipped if h in pending and h not in first_set]
        moved = first_set | set(last)
        return first + [h for h in queue if h not in moved] + last

    def queue(self, engine: Engine) -> list[str]:
        """The frames left for this labeler, current frame first, in this session's order."""
        pending = label_queue(engine, self.dataset, self.labeler, self.seed)
        positions = (
            first_positions(dataset_frames(engine, self.dataset))
            if self.order == "sequential"
            else None
        )
        return self.arrange(
            order_queue(pending, self.order, positions=positions, ranking=self.ranking)
        )

    def progress(self, engine: Engine) -> LabelProgress:
        """``(yours, total, frames_with_k)`` from the store."""
        return label_progress(engine, self.dataset, self.labeler)

    def label(self, engine: Engine, frame_hash: str, value: float) -> LabelRecord:
        """Commit a label for a frame now, and take it out of this session's history."""
        if self.signed_in:
            from vlmrm_core.store.tasks import add_label_as

            record = add_label_as(
                engine,
                self.labeler,
                self.dataset,
                frame_hash,
                value,
                session_id=self.session_id,
                task=self.task,
            )
        else:
            record = add_label(
                engine, self.dataset, frame_hash, self.labeler, value, session_id=self.session_id
            )
        self._forget(frame_hash)
        return record

    def skip(self, frame_hash: str) -> None:
        """Move a frame to the end of this session's queue without labelling it."""
        self._forget(frame_hash)
        self.skipped.append(frame_hash)

    def undo(self, engine: Engine) -> LabelRecord | None:
        """Delete this session's latest label in the dataset and bring its frame back first.

        Only a label written in this session, by this labeler, is ever removed: another
        person (or another browser session under the same name) keeps theirs.

        Returns:
            The deleted label, or None when there was nothing to undo.
        """
        if self.signed_in:
            from vlmrm_core.store.tasks import undo_label_as

            record = undo_label_as(engine, self.labeler, self.dataset, session_id=self.session_id)
        else:
            record = undo_last_label(engine, self.dataset, self.labeler, session_id=self.session_id)
        if record is not None:
            self._forget(record.frame_hash)
            self.front.insert(0, record.frame_hash)
        return record

    def _forget(self, frame_hash: str) -> None:
        self.front = [h for h in self.front if h != frame_hash]
        self.skipped = [h for h in self.skipped if h != frame_hash]


QUEUE_ORDERS = ("random", "sequential", "informative")
"""Labelling orders: the store's reproducible shuffle, dataset order, most informative first."""


def first_positions(frames: Iterable[FrameInfo]) -> dict[str, int]:
    """Frame hash → its lowest position among the given memberships."""
    positions: dict[str, int] = {}
    for frame in frames:
        if frame.hash not in positions or frame.position < positions[frame.hash]:
            positions[frame.hash] = frame.position
    return positions


def order_queue(
    queue: Sequence[str],
    order: str,
    *,
    positions: Mapping[str, int] | None = None,
    ranking: Sequence[str] = (),
) -> list[str]:
    """The frames left to label, in the chosen order.

    Args:
        queue: the store's queue (:func:`~vlmrm_core.store.label_queue`: a reproducible
            shuffle of the frames left for this labeler).
        order: ``random`` (the queue as it is), ``sequential`` (dataset position) or
            ``informative`` (the ranking's order).
        positions: frame hash → dataset position (``sequential``; see :func:`first_positions`).
        ranking: frame hashes, most informative first (``informative``; from
            :func:`vlmrm_core.reward.active_labels.informative_order`).

    Returns:
        The same frames, reordered. Frames the positions or ranking do not know (added since)
        follow in the queue's own order.

    Raises:
        InvalidInputError: an unknown order.
    """
    if order not in QUEUE_ORDERS:
        raise InvalidInputError(
            f"unknown labelling order {order!r}: use one of {', '.join(QUEUE_ORDERS)}"
        )
    if order == "random":
        return list(queue)
    if order == "sequential":
        where = positions or {}
        unknown = len(where) + len(queue)
        index = {h: i for i, h in enumerate(queue)}
        return sorted(queue, key=lambda h: (where.get(h, unknown), index[h]))
    rank = {h: i for i, h in enumerate(ranking)}
    index = {h: i for i, h in enumerate(queue)}
    return sorted(queue, key=lambda h: (rank.get(h, len(rank)), index[h]))


def frame_infos(engine: Engine, dataset: str, hashes: Iterable[str]) -> dict[str, FrameInfo]:
    """The first membership (lowest position) in ``dataset`` of each of the given frames.

    The Label page shows a few frames by hash; see :func:`~vlmrm_core.store.frames_by_hash`.

    Args:
        engine: The project database.
        dataset: Dataset name.
        hashes: Frame hashes; those not in the dataset are left out of the result.

    Returns:
        Frame hash → FrameInfo.

    Raises:
        NotFoundError: No such dataset.
    """
    return frames_by_hash(engine, dataset, hashes)


@dataclass(frozen=True)
class AgreementReport:
    """How much the labelers of a dataset agree.

    Attributes:
        labelers: Everyone with a current label, sorted.
        n_frames: Frames with at least one current label.
        n_shared: Frames with current labels from at least two labelers.
        graded: Some label lies strictly between 0 and 1; κ then compares labels split at 0.5
            and α is computed at the interval level.
        pairwise: One row per pair of labelers: labeler_a, labeler_b, n_common,
            observed_agreement, kappa (NaN where undefined).
        alpha: Krippendorff's α over all labelers, or None when it is undefined.
        alpha_note: Why α is None, or which level it was computed at.
        labeller_disagreements: Frames whose labels differ (binary) or spread by at least the
            tolerance (graded): frame_hash, n_labelers, labels (text, e.g. ``alice: success, bob:
            failure``), mean, spread; widest spread first.
    """

    labelers: list[str]
    n_frames: int
    n_shared: int
    graded: bool
    pairwise: pd.DataFrame
    alpha: float | None
    alpha_note: str
    labeller_disagreements: pd.DataFrame


_DISAGREEMENT_COLUMNS = ["frame_hash", "n_labelers", "labels", "mean", "spread"]


def agreement_report(
    engine: Engine, dataset: str, *, graded_tolerance: float = 0.5
) -> AgreementReport:
    """Agreement between the current labels of a dataset's labelers.

    Args:
        engine: The project database.
        dataset: Dataset name.
        graded_tolerance: For graded labels, frames whose highest and lowest label differ by at
            least this much count as disagreements (binary labels disagree whenever they differ).

    Returns:
        The report; tables are empty (with their columns) when there are too few labels.
    """
    current = current_labels(engine, dataset)
    labelers = sorted(current["labeler"].unique().tolist())
    values = current["value"].astype(float)
    graded = bool(len(values)) and not values.isin([FAILURE, SUCCESS]).all()
    # κ is a statistic of categories: graded labels are split at 0.5 (success vs failure).
    categories = (values >= 0.5).astype(np.int64) if graded else values.astype(np.int64)
    pairwise = pairwise_kappa(
        current.assign(category=categories), item="frame_hash", value="category"
    )

    per_frame = current.groupby("frame_hash")["labeler"].nunique()
    n_shared = int((per_frame >= 2).sum())
    level: Literal["interval", "nominal"] = "interval" if graded else "nominal"
    alpha: float | None = None
    if n_shared == 0:
        alpha_note = "needs at least one frame labelled by two labelers"
    else:
        matrix = current.pivot(index="labeler", columns="frame_hash", values="value")
        try:
            alpha = krippendorff_alpha(matrix.to_numpy(dtype=float), level=level)
            alpha_note = f"{level} level, {n_shared} frames with two or more labels"
        except UndefinedAgreementError:
            alpha_note = "undefined: every frame labelled twice got the same label from everyone"

    return AgreementReport(
        labelers=labelers,
        n_frames=int(len(per_frame)),
        n_shared=n_shared,
        graded=graded,
        pairwise=pairwise,
        alpha=alpha,
        alpha_note=alpha_note,
        labeller_disagreements=_labeller_disagreements(current, graded, graded_tolerance),
    )


def _labeller_disagreements(current: pd.DataFrame, graded: bool, tolerance: float) -> pd.DataFrame:
    found = labeller_disagreements(current, item="frame_hash", min_spread=graded * tolerance)
    labels = [
        ", ".join(f"{who}: {label_text(v)}" for who, v in sorted(by_labeler.items()))
        for by_labeler in found["labels"]
    ]
    table = found.rename(columns={"item": "frame_hash"}).assign(labels=labels)
    table = table[_DISAGREEMENT_COLUMNS].astype({"mean": float, "spread": float})
    return table.sort_values(["spread", "frame_hash"], ascending=[False, True], ignore_index=True)


def export_bytes(engine: Engine, dataset: str, fmt: str) -> bytes:
    """The store's label export (:func:`~vlmrm_core.store.export_labels`) as bytes.

    Args:
        engine: The project database.
        dataset: Dataset name.
        fmt: ``'csv'``, ``'jsonl'`` or ``'parquet'``.

    Returns:
        The file content.
    """
    with tempfile.TemporaryDirectory(prefix="vlmrm-export-") as folder:
        path = export_labels(engine, dataset, Path(folder) / f"labels.{fmt}", fmt)
        return path.read_bytes()


def export_file_name(dataset: str, fmt: str) -> str:
    """A download file name for a dataset's labels: ``labels-<dataset>.<fmt>``.

    Characters other than letters, digits, ``.``, ``_`` and ``-`` become ``_``, so no dataset
    name can produce a path or an odd name in the user's download folder.
    """
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", dataset).strip("._") or "dataset"
    return f"labels-{slug[:80]}.{fmt}"
