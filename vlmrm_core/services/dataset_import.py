"""Creating datasets from every frame source, with the input checks the app and CLI share.

Each ``import_*`` function validates its arguments *before* any frame is produced (so a typo
in an env id fails in milliseconds, not after a MuJoCo scene was built), then streams the source
into :func:`~vlmrm_core.store.ingest.ingest_frames`, which stores everything or nothing.

Bad input raises :class:`ImportInputError` (or the source's own ``ValueError`` subclass, such
as :class:`~vlmrm_core.sources.RolloutError`); the message is written for the user.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import pandas as pd

from vlmrm_core.errors import VlmrmError
from vlmrm_core.frames import FrameRecord, ProgressCallback, Rejection
from vlmrm_core.store import Engine
from vlmrm_core.store.ingest import IngestReport, ingest_frames

__all__ = [
    "COMMON_ENV_IDS",
    "MAX_DATASET_NAME",
    "MAX_SWEEP_POINTS",
    "SWEEP_LABELS",
    "ImportInputError",
    "UploadedItem",
    "check_dataset_name",
    "import_humanoid_poses",
    "import_lerobot",
    "import_rollout",
    "import_sweep",
    "import_uploads",
    "iter_uploaded",
    "rejection_table",
    "report_summary",
]

COMMON_ENV_IDS = (
    "CartPole-v1",
    "MountainCar-v0",
    "MountainCarContinuous-v0",
    "Pendulum-v1",
    "Acrobot-v1",
    "Humanoid-v5",
)
"""Environment ids offered as suggestions; any registered id that renders rgb_array works."""

SWEEP_LABELS = {
    "cartpole": "CartPole: pole angle from −90° to +90°",
    "mountaincar": "MountainCar: car position along the track",
}
"""The state sweeps of :data:`vlmrm_core.sources.SWEEPS`, described for a picker."""

MAX_DATASET_NAME = 120
"""Longest dataset name accepted (it is shown in pickers and file names of exports)."""

MAX_SWEEP_POINTS = 2001
"""Most frames one sweep may render (each is a 400×600 PNG of roughly 10 kB)."""

UploadedItem = tuple[str, "bytes | BinaryIO"]
"""One uploaded file: the name the user gave it and its bytes or a binary file object."""


class ImportInputError(VlmrmError, ValueError):
    """The user's input cannot start an import; the message says what to change."""


def check_dataset_name(name: str) -> str:
    """The dataset name with surrounding whitespace removed, or a clear error.

    Args:
        name: What the user typed.

    Returns:
        The cleaned name.

    Raises:
        ImportInputError: Empty, longer than :data:`MAX_DATASET_NAME`, or containing control
            characters (newlines, tabs, …) that would garble listings.
    """
    cleaned = name.strip()
    if not cleaned:
        raise ImportInputError("Enter a dataset name.")
    if len(cleaned) > MAX_DATASET_NAME:
        raise ImportInputError(
            f"The dataset name is {len(cleaned)} characters long; use at most {MAX_DATASET_NAME}."
        )
    if any(unicodedata.category(ch).startswith("C") for ch in cleaned):
        raise ImportInputError(
            "The dataset name contains control characters (such as line breaks); remove them."
        )
    return cleaned


def iter_uploaded(
    files: Sequence[UploadedItem],
    *,
    every_k: int = 1,
    max_video_frames: int = 300,
    progress: ProgressCallback | None = None,
) -> Iterator[FrameRecord | Rejection]:
    """Frames of several uploaded files, one file after the other.

    File names are only ever used as display names (see :func:`~vlmrm_core.sources.iter_upload`);
    nothing is written under them. A ZIP's images are named by their path inside it, as a
    folder's files are by their path inside the folder.

    Args:
        files: ``(name, bytes or binary file object)`` pairs.
        every_k: Keep every k-th frame of videos and animations.
        max_video_frames: Most frames kept per video or animation.
        progress: Called as ``progress(files_done, n_files, message)`` before each file and once
            at the end.

    Yields:
        FrameRecord and Rejection items, in file order.
    """
    from vlmrm_core.sources.uploads import iter_upload

    total = len(files)
    for index, (name, data) in enumerate(files):
        if progress is not None:
            progress(index, total, f"reading {name} ({index + 1}/{total})")
        if hasattr(data, "seek"):
            # An uploaded file object may have been read by an earlier attempt in this session.
            data.seek(0)
        yield from iter_upload(name, data, every_k=every_k, max_video_frames=max_video_frames)
    if progress is not None:
        progress(total, total, "saving")


def import_uploads(
    engine: Engine,
    dataset: str,
    files: Sequence[UploadedItem],
    *,
    every_k: int = 1,
    max_video_frames: int = 300,
    progress: ProgressCallback | None = None,
) -> IngestReport:
    """Import uploaded images, ZIP archives and videos into a dataset (created if missing).

    Args:
        engine: The project database.
        dataset: Dataset name (an existing dataset gets the frames added).
        files: ``(name, bytes or binary file object)`` pairs.
        every_k: Keep every k-th frame of videos and animations (≥ 1).
        max_video_frames: Most frames kept per video or animation (≥ 1).
        progress: ``progress(files_done, n_files, message)``.

    Returns:
        The import report (new frames, duplicates, rejections with reasons).

    Raises:
        ImportInputError: Bad dataset name, no files, or a frame option below 1.
    """
    name = check_dataset_name(dataset)
    if not files:
        raise ImportInputError("Choose at least one file to upload.")
    if every_k < 1:
        raise ImportInputError(f"Keep every k-th frame needs k ≥ 1, got {every_k}.")
    if max_video_frames < 1:
        raise ImportInputError(f"The cap on frames per video must be ≥ 1, got {max_video_frames}.")
    source = iter_uploaded(
        files, every_k=every_k, max_video_frames=max_video_frames, progress=progress
    )
    from vlmrm_core.store import NotFoundError, get_dataset

    try:
        get_dataset(engine, name)
    except NotFoundError:
        # a new dataset is only created when at least one file gives a frame
        source = _refuse_when_all_rejected(source, name)
    return ingest_frames(engine, name, source, kind="upload")


def _refuse_when_all_rejected(
    items: Iterator[FrameRecord | Rejection], dataset: str
) -> Iterator[FrameRecord | Rejection]:
    """Pass items through; raise at the end when none was a frame (the store then rolls the
    import back, so no empty dataset is left behind)."""
    rejected: list[Rejection] = []
    frames = 0
    for item in items:
        if isinstance(item, Rejection):
            rejected.append(item)
        else:
            frames += 1
        yield item
    if frames == 0:
        reasons = "; ".join(f"{r.name}: {r.reason}" for r in rejected[:5])
        more = f" (and {len(rejected) - 5} more)" if len(rejected) > 5 else ""
        raise ImportInputError(
            f"Nothing to import, so dataset {dataset!r} was not created: every file was "
            f"rejected ({reasons}{more}). Upload images, ZIP archives of images or videos."
        )


def import_rollout(
    engine: Engine,
    dataset: str,
    env_id: str,
    *,
    episodes: int = 1,
    steps: int = 100,
    policy: str = "random",
    seed: int | None = 0,
    textured: bool = False,
    progress: ProgressCallback | None = None,
) -> IngestReport:
    """Roll out a policy in a gymnasium environment and store the frames.

    Args:
        engine: The project database.
        dataset: Dataset name.
        env_id: Registered gymnasium id that renders ``rgb_array`` frames.
        episodes: Number of episodes (≥ 1).
        steps: Most steps per episode (≥ 0; each episode also keeps its reset frame).
        policy: ``'random'`` or the path of a saved stable-baselines3 ``.zip``.
        seed: Seed of the first reset and the random policy; None for a fresh rollout.
        textured: Textured rendering (MountainCar and Humanoid only).
        progress: ``progress(frames_done, max_frames, message)``.

    Returns:
        The import report.

    Raises:
        ImportInputError: Bad dataset name, empty env id or policy, or counts out of range.
        RolloutError: Unknown env id (with suggestions), no rgb_array rendering, textured for
            another env, or a policy that cannot be loaded.
    """
    from vlmrm_core.sources.rollouts import rollout_frames

    name = check_dataset_name(dataset)
    env_id = env_id.strip()
    if not env_id:
        raise ImportInputError("Enter a gymnasium environment id, such as CartPole-v1.")
    if episodes < 1:
        raise ImportInputError(f"Episodes must be at least 1, got {episodes}.")
    if steps < 0:
        raise ImportInputError(f"Steps per episode must be at least 0, got {steps}.")
    policy = policy.strip()
    if not policy:
        raise ImportInputError(
            "Enter 'random' or the path of a saved stable-baselines3 model (.zip)."
        )
    # rollout_frames checks the env id and loads the policy before returning its generator.
    source = rollout_frames(
        env_id, episodes, steps, policy, seed, textured=textured, progress=progress
    )
    return ingest_frames(engine, name, source, kind="rollout")


def import_sweep(
    engine: Engine,
    dataset: str,
    sweep: str,
    *,
    points: int = 41,
    textured: bool = False,
    progress: ProgressCallback | None = None,
) -> IngestReport:
    """Render a state sweep (the paper's Fig. 2) into a dataset.

    Args:
        engine: The project database.
        dataset: Dataset name.
        sweep: ``'cartpole'`` or ``'mountaincar'`` (see :data:`SWEEP_LABELS`).
        points: Number of evenly spaced states (1 … :data:`MAX_SWEEP_POINTS`).
        textured: Realistic MountainCar renderer (MountainCar only).
        progress: ``progress(done, points, message)``.

    Returns:
        The import report.

    Raises:
        ImportInputError: Unknown sweep, points out of range, or textured CartPole.
    """
    from vlmrm_core.sources.state_sweeps import SWEEPS

    name = check_dataset_name(dataset)
    if sweep not in SWEEPS:
        raise ImportInputError(f"Unknown sweep {sweep!r}; choose one of {sorted(SWEEPS)}.")
    if not 1 <= points <= MAX_SWEEP_POINTS:
        raise ImportInputError(f"Points must be between 1 and {MAX_SWEEP_POINTS}, got {points}.")
    kwargs: dict[str, object] = {"points": points, "progress": progress}
    if sweep == "mountaincar":
        kwargs["textured"] = textured
    elif textured:
        raise ImportInputError("Textured rendering exists only for the MountainCar sweep.")
    return ingest_frames(engine, name, SWEEPS[sweep](**kwargs), kind="sweep")


def import_humanoid_poses(
    engine: Engine,
    dataset: str,
    poses: Sequence[str],
    *,
    textured: bool = True,
    progress: ProgressCallback | None = None,
) -> IngestReport:
    """Render the humanoid in named poses (kneeling, lotus, splits, …) into a dataset.

    Args:
        engine: The project database.
        dataset: Dataset name.
        poses: Names from :data:`vlmrm_core.sources.POSES`, in order.
        textured: The paper's textured scene.
        progress: ``progress(done, n_poses, message)``.

    Returns:
        The import report (frames have ``param_name='pose'``).

    Raises:
        ImportInputError: Bad dataset name, no pose or an unknown pose.
    """
    from vlmrm_core.sources.humanoid import POSES, humanoid_poses

    name = check_dataset_name(dataset)
    if not poses:
        raise ImportInputError("Choose at least one pose.")
    unknown = [p for p in poses if p not in POSES]
    if unknown:
        raise ImportInputError(f"Unknown pose(s) {unknown}; known poses are {list(POSES)}.")
    source = humanoid_poses(textured=textured, progress=progress, poses=list(poses))
    return ingest_frames(engine, name, source, kind="sweep")


def import_lerobot(
    engine: Engine,
    path: str | Path,
    dataset: str,
    *,
    camera: str | None = None,
    episodes: str | Sequence[int] | None = None,
    progress: ProgressCallback | None = None,
    actor: str | None = None,
) -> IngestReport:
    """Import one camera of a LeRobot dataset (layout v2.x or v3.0) into a dataset.

    Frames keep their ``episode_index`` as ``episode`` and their ``frame_index`` as ``step``.
    All or nothing: a problem found while decoding (a video shorter than its timestamps say)
    stores no frame. The dataset's ``meta['lerobot']`` records where the frames came from and
    the LeRobot tasks, which the app offers as goal prompts.

    Args:
        engine: The project database.
        path: The LeRobot dataset folder (holding ``meta/info.json``).
        dataset: Dataset name (an existing dataset gets the frames added).
        camera: A video feature key; None for the dataset's first camera.
        episodes: ``'A:B'`` (half-open, like a Python slice), episode indices, or None for all.
        progress: ``progress(frames_done, frames_total, message)``.
        actor: The signed-in user (None: the local user without sign-in). ``path`` is a folder
            on the server's disk, so a signed-in user must be an admin.

    Returns:
        The import report.

    Raises:
        AccessError: ``actor`` is signed in but not an admin.
        ImportInputError: Bad dataset name.
        LeRobotError: Not a LeRobot dataset, an unknown codebase version, a missing camera
            (the message names those there are), episodes out of range, a missing or short
            video.
    """
    from vlmrm_core.sources.lerobot import lerobot_frames, read_lerobot_dataset
    from vlmrm_core.store import get_dataset, update_dataset
    from vlmrm_core.store.users import require_role

    if actor is not None:  # reads any folder the server can: admins only, when signed in
        require_role(engine, actor, "admin")
    name = check_dataset_name(dataset)
    source = lerobot_frames(path, camera=camera, episodes=episodes, progress=progress)
    report = ingest_frames(engine, name, source, kind="lerobot")
    info = read_lerobot_dataset(path)
    meta = dict(get_dataset(engine, name).meta)
    meta["lerobot"] = {
        "path": str(Path(path).expanduser().resolve()),
        "codebase_version": info.codebase_version,
        "fps": info.fps,
        "camera": camera or info.cameras[0],
        "tasks": list(info.tasks),
    }
    update_dataset(engine, name, meta=meta)
    return report


def rejection_table(report: IngestReport) -> pd.DataFrame:
    """The rejected inputs of an import as a table with the columns ``input`` and ``reason``."""
    return pd.DataFrame(
        [(r.name, r.reason) for r in report.rejected], columns=["input", "reason"], dtype=object
    )


def report_summary(report: IngestReport) -> str:
    """One plain-text sentence about an import, e.g. ``'3 new frames, 1 duplicate, …'``."""

    def count(n: int, noun: str) -> str:
        return f"{n} {noun}{'' if n == 1 else 's'}"

    return (
        f"{count(report.imported, 'new frame')}, {count(report.duplicates, 'duplicate')}, "
        f"{count(len(report.rejected), 'rejected input')}; "
        f"{count(report.added, 'frame')} added to dataset {report.dataset!r}."
    )
