"""Datasets as episodes in time: VOC of a reward over a stored dataset, and time-reversed copies.

Frames that carry an episode and a step (rollouts, training evaluations, LeRobot imports) form
episodes; frames without them (uploaded images, sweeps) are left out of everything here.

* :func:`dataset_voc` is the value-order correlation (:mod:`vlmrm_core.metrics.progress`) of
  one reward over a dataset's episodes: the successful ones (by their labels), or all of them
  for a dataset of demonstrations.
* :func:`dataset_voc_gap` compares it with the VOC on a reversed copy's episodes;
  :func:`episode_rows` gives each episode's frames in time order (scoring over time).
* :func:`make_reversed_copies` stores time-reversed copies of episodes as a new dataset
  (ReWiND's failure data). The frames are the same pixels, so nothing is decoded or written but
  membership rows: each frame keeps its episode id and gets the step it has when the episode
  plays backwards.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from vlmrm_core.errors import InvalidInputError, NotFoundError
from vlmrm_core.metrics.progress import (
    VocGap,
    VocResult,
    episode_groups,
    reversed_steps,
    successful_episodes,
    value_order_correlation,
    voc_gap,
)
from vlmrm_core.store import Engine, FrameInfo

__all__ = [
    "REVERSED_KEY",
    "EpisodeFrames",
    "dataset_voc",
    "dataset_voc_gap",
    "episode_frames",
    "episode_rows",
    "make_reversed_copies",
    "reversed_copies",
]

REVERSED_KEY = "reversed_from"
"""Key of a reversed copy's ``meta`` (the source dataset and its episodes) and of each frame's
``extra`` (the step the frame had in the forward episode)."""


@dataclass(frozen=True)
class EpisodeFrames:
    """The frames of a dataset that belong to an episode, as arrays."""

    rows: np.ndarray
    """Indices into the frame list given to :func:`episode_frames`."""
    episodes: np.ndarray
    steps: np.ndarray


def episode_frames(frames: Sequence[FrameInfo]) -> EpisodeFrames:
    """The frames that have both an episode and a step, with those as arrays."""
    rows = [i for i, f in enumerate(frames) if f.episode is not None and f.step is not None]
    return EpisodeFrames(
        rows=np.array(rows, dtype=np.int64),
        episodes=np.array([frames[i].episode for i in rows], dtype=np.int64),
        steps=np.array([frames[i].step for i in rows], dtype=np.int64),
    )


def episode_rows(frames: Sequence[FrameInfo]) -> tuple[list[np.ndarray], np.ndarray]:
    """Each episode's frame rows in step order, and the rows of frames in no episode.

    What scoring over time needs (a windowed reward, progress shaping, an episode's curve):
    ``rows`` index ``frames``; episodes come in ascending id, the loose frames in their order.
    """
    found = episode_frames(frames)
    episodes = [
        found.rows[group[np.argsort(found.steps[group], kind="stable")]]
        for _, group in sorted(episode_groups(found.episodes).items())
    ]
    in_episode = np.zeros(len(frames), dtype=bool)
    in_episode[found.rows] = True
    return episodes, np.flatnonzero(~in_episode)


def reversed_copies(engine: Engine, dataset: str) -> list[str]:
    """Names of the datasets :func:`make_reversed_copies` made from ``dataset``, oldest first."""
    from vlmrm_core.store import list_datasets

    names = []
    for summary in list_datasets(engine):
        origin = (summary.meta or {}).get(REVERSED_KEY)
        if isinstance(origin, Mapping) and origin.get("dataset") == dataset:
            names.append(summary.name)
    return names


def _successful(
    frames: Sequence[FrameInfo], found: EpisodeFrames, labels: Mapping[str, float]
) -> set[int]:
    values = np.array(
        [labels.get(frames[i].hash, np.nan) for i in found.rows], dtype=np.float64
    ).reshape(-1)
    return successful_episodes(found.episodes, found.steps, values)


def dataset_voc(
    frames: Sequence[FrameInfo],
    rewards: npt.ArrayLike,
    *,
    labels: Mapping[str, float] | None = None,
    demonstrations: bool = False,
    n_boot: int = 1000,
    seed: int | None = 0,
) -> VocResult:
    """VOC of one reward over a dataset's episodes.

    Args:
        frames: The dataset's frames (:func:`vlmrm_core.store.dataset_frames`).
        rewards: One reward per frame, in the same order.
        labels: Label per frame hash (e.g. :func:`vlmrm_core.store.consensus_labels`); an
            episode counts when its last labelled frame is a success.
        demonstrations: Every episode counts (the dataset holds demonstrations); labels are
            then not needed.
        n_boot: Bootstrap resamples of the episodes.
        seed: Bootstrap seed.

    Returns:
        The VOC with its interval (``voc`` None, with a note, when no episode counts).

    Raises:
        InvalidInputError: Not one reward per frame, or neither labels nor demonstrations.
    """
    values = np.asarray(rewards, dtype=np.float64).reshape(-1)
    if values.shape[0] != len(frames):
        raise InvalidInputError(f"{values.shape[0]} rewards for {len(frames)} frames.")
    found = episode_frames(frames)
    if demonstrations:
        include: set[int] | None = None
    elif labels is None:
        raise InvalidInputError(
            "VOC needs the successful episodes: give labels, or say the dataset holds "
            "demonstrations."
        )
    else:
        include = _successful(frames, found, labels)
    return value_order_correlation(
        values[found.rows], found.episodes, found.steps, include=include, n_boot=n_boot, seed=seed
    )


def dataset_voc_gap(
    forward: VocResult,
    frames: Sequence[FrameInfo],
    rewards: npt.ArrayLike,
    reversed_frames: Sequence[FrameInfo],
    reversed_rewards: npt.ArrayLike | None = None,
    *,
    n_boot: int = 1000,
    seed: int | None = 0,
) -> VocGap:
    """The VOC gap between a dataset's episodes and a reversed copy of them (ReWiND).

    Args:
        forward: :func:`dataset_voc` of ``frames`` (the episodes that count).
        frames: The forward dataset's frames.
        rewards: One reward per forward frame (NaN: not scored).
        reversed_frames: The frames of a :func:`make_reversed_copies` copy.
        reversed_rewards: One reward per copied frame; None takes each copied frame's reward
            from the forward frame with the same pixels, which is right for rewards of single
            frames (not for a windowed or shaped reward: score the copy itself).
        n_boot: Bootstrap resamples of the paired episodes.
        seed: Bootstrap seed.

    Returns:
        Forward minus reversed VOC over the episodes in both, every reversed episode counting.
    """
    values = np.asarray(rewards, dtype=np.float64).reshape(-1)
    if values.shape[0] != len(frames):
        raise InvalidInputError(f"{values.shape[0]} rewards for {len(frames)} frames.")
    if reversed_rewards is None:
        by_hash = {f.hash: float(v) for f, v in zip(frames, values, strict=True) if v == v}
        copied = np.array([by_hash.get(f.hash, np.nan) for f in reversed_frames])
    else:
        copied = np.asarray(reversed_rewards, dtype=np.float64).reshape(-1)
        if copied.shape[0] != len(reversed_frames):
            raise InvalidInputError(
                f"{copied.shape[0]} rewards for {len(reversed_frames)} reversed frames."
            )
    scored = np.flatnonzero(~np.isnan(copied)).tolist()
    backward = dataset_voc(
        [reversed_frames[i] for i in scored],
        copied[scored],
        demonstrations=True,  # played backwards, every copied episode is a failure to rank
        n_boot=n_boot,
        seed=seed,
    )
    return voc_gap(forward, backward, n_boot=n_boot, seed=seed)


def make_reversed_copies(
    engine: Engine,
    dataset: str,
    new_dataset: str,
    *,
    episodes: Collection[int] | None = None,
    demonstrations: bool = False,
) -> int:
    """Store time-reversed copies of a dataset's episodes as a new dataset (ReWiND).

    Each copied frame keeps its pixels, source, name, episode id and provenance; its step
    becomes ``first + last − step`` of its episode, and its ``extra['reversed_from']`` the
    step it had. Frames are in reversed time order within each episode. The new dataset's
    ``meta['reversed_from']`` names the source dataset and the episodes copied.

    Args:
        engine: The project database.
        dataset: The dataset to copy from.
        new_dataset: Name of the dataset to create (it must not exist).
        episodes: Episode ids to copy; None for the successful ones (their last labelled frame
            is a success), or all with ``demonstrations``.
        demonstrations: With ``episodes`` None, copy every episode.

    Returns:
        Frames in the new dataset.

    Raises:
        NotFoundError: No such dataset.
        InvalidInputError: The new dataset exists, the source has no episodes, no episode is
            labelled successful, or an asked-for episode is not in the dataset.
    """
    from vlmrm_core.services.dataset_import import check_dataset_name
    from vlmrm_core.store import consensus_labels, dataset_frames, get_dataset, update_dataset
    from vlmrm_core.store.datasets import add_frames_to_dataset

    target = check_dataset_name(new_dataset)
    source = get_dataset(engine, dataset)
    try:
        get_dataset(engine, target)
    except NotFoundError:
        pass
    else:
        raise InvalidInputError(f"A dataset named {target!r} exists already; choose a new name.")
    frames = dataset_frames(engine, dataset)
    found = episode_frames(frames)
    if found.rows.size == 0:
        raise InvalidInputError(
            f"Dataset {dataset!r} has no episodes (no frame has an episode and a step)."
        )
    present = set(int(e) for e in np.unique(found.episodes))
    if episodes is not None:
        chosen = set(int(e) for e in episodes)
        missing = sorted(chosen - present)
        if missing or not chosen:
            raise InvalidInputError(
                f"Episode(s) {missing or '(none)'} are not in {dataset!r}; it has "
                f"{len(present)} episodes ({min(present)} … {max(present)})."
            )
    elif demonstrations:
        chosen = present
    else:
        labels = consensus_labels(engine, dataset)
        chosen = _successful(frames, found, {str(k): float(v) for k, v in labels.items()})
        if not chosen:
            raise InvalidInputError(
                f"No episode of {dataset!r} is labelled successful (its last labelled frame a "
                "success); label the final frames, or copy all episodes as demonstrations."
            )
    new_steps = reversed_steps(found.episodes, found.steps)
    members = []
    for episode, group in episode_groups(found.episodes).items():
        if episode not in chosen:
            continue
        for k in group[np.argsort(new_steps[group], kind="stable")]:
            info = frames[int(found.rows[k])]
            members.append(
                {
                    "frame_hash": info.hash,
                    "source": info.source,
                    "name": info.name,
                    "env_id": info.env_id,
                    "episode": info.episode,
                    "step": int(new_steps[k]),
                    "state": info.state,
                    "param_name": info.param_name,
                    "param_value": info.param_value,
                    "extra": {**(info.extra or {}), REVERSED_KEY: info.step},
                }
            )
    added = add_frames_to_dataset(engine, target, source.kind, [], members, create=True)
    update_dataset(
        engine,
        target,
        description=f"Time-reversed copies of episodes of {dataset}",
        meta={REVERSED_KEY: {"dataset": dataset, "episodes": sorted(chosen)}},
    )
    return added
