"""Checkpoint files of a run: ``model_<steps>.zip`` and ``replay_<steps>.pkl`` in one folder.

Kept free of stable-baselines3 imports so that listing checkpoints (the app, ``vlmrm train``)
stays cheap.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Checkpoint:
    """One saved model (and, for off-policy algorithms, maybe its replay buffer)."""

    steps: int
    """``num_timesteps`` when it was saved."""
    model_path: Path
    replay_buffer_path: Path | None


_MODEL_RE = re.compile(r"^model_(\d+)\.zip$")


def list_checkpoints(checkpoint_dir: Path) -> list[Checkpoint]:
    """Complete checkpoints in a folder, oldest first.

    Args:
        checkpoint_dir: Folder written by :class:`CheckpointCallback`.

    Returns:
        The checkpoints; a replay buffer path is given only where that file exists.
    """
    if not checkpoint_dir.is_dir():
        return []
    found = []
    for path in checkpoint_dir.iterdir():
        match = _MODEL_RE.match(path.name)
        if match:
            steps = int(match.group(1))
            replay = checkpoint_dir / f"replay_{steps}.pkl"
            found.append(Checkpoint(steps, path, replay if replay.exists() else None))
    return sorted(found, key=lambda c: c.steps)


def save_checkpoint(
    model: BaseAlgorithm,
    checkpoint_dir: Path,
    *,
    save_replay_buffer: bool = True,
    keep_replay: int = 1,
) -> Checkpoint:
    """Save ``model`` (and its replay buffer) as ``model_<steps>.zip`` / ``replay_<steps>.pkl``.

    Files are written under a temporary name and renamed, and the replay buffer goes first, so a
    worker killed mid-save never leaves a ``model_*.zip`` that is incomplete or whose replay
    buffer is missing. Only the newest ``keep_replay`` replay buffers are kept (they can be
    gigabytes); all model files are kept, since evaluating a run means rolling out its checkpoints.

    Args:
        model: The algorithm.
        checkpoint_dir: Destination folder (created if missing).
        save_replay_buffer: Save the replay buffer of off-policy algorithms.
        keep_replay: How many replay buffers to keep.

    Returns:
        The new checkpoint.
    """
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    steps = int(model.num_timesteps)
    replay_path: Path | None = None
    if save_replay_buffer and getattr(model, "replay_buffer", None) is not None:
        replay_path = checkpoint_dir / f"replay_{steps}.pkl"
        tmp = replay_path.with_name(replay_path.name + ".tmp")
        model.save_replay_buffer(tmp)  # type: ignore[attr-defined]
        os.replace(tmp, replay_path)
    model_path = checkpoint_dir / f"model_{steps}.zip"
    tmp = model_path.with_name(model_path.name + ".tmp")
    model.save(tmp)
    os.replace(tmp, model_path)
    old_replays = [
        path for c in list_checkpoints(checkpoint_dir) if (path := c.replay_buffer_path) is not None
    ]
    for path in old_replays[: max(0, len(old_replays) - keep_replay)]:
        path.unlink(missing_ok=True)
    log.info("checkpoint saved at step %d: %s", steps, model_path.name)
    return Checkpoint(steps, model_path, replay_path)
