"""Rewards out as a parquet file keyed by (episode_index, frame_index), to sit next to a LeRobot
dataset.

The file has three columns, ``episode_index`` (int64), ``frame_index`` (int64) and ``reward``
(float32), one row per frame, sorted by the key. Which reward produced the numbers travels in
the parquet's key-value metadata, so the file explains itself:

* ``vlmrm.reward.identity``: :attr:`vlmrm_core.reward.base.Reward.identity` (what caches, runs
  and reward files key on);
* ``vlmrm.reward.description``: the reward's one-line description;
* ``vlmrm.provenance``: JSON of where the frames came from (the dataset, the LeRobot folder and
  camera, ...) and when the file was written;
* ``vlmrm.format``: the version of this layout.

Any parquet reader sees the table; :func:`read_rewards_parquet` also returns the metadata.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from vlmrm_core.errors import InvalidInputError

if TYPE_CHECKING:
    from vlmrm_core.reward.base import Reward
    from vlmrm_core.store import FrameInfo

__all__ = [
    "FORMAT_VERSION",
    "KEY_COLUMNS",
    "RewardsParquet",
    "read_rewards_parquet",
    "write_dataset_rewards",
    "write_rewards_parquet",
]

FORMAT_VERSION = "1"
KEY_COLUMNS = ("episode_index", "frame_index")
"""The key of a rewards parquet, as LeRobot names episode and frame."""

_IDENTITY = b"vlmrm.reward.identity"
_DESCRIPTION = b"vlmrm.reward.description"
_PROVENANCE = b"vlmrm.provenance"
_FORMAT = b"vlmrm.format"


@dataclass(frozen=True)
class RewardsParquet:
    """A rewards parquet read back."""

    table: pd.DataFrame
    """Columns ``episode_index``, ``frame_index``, ``reward``, sorted by the key."""
    identity: str | None
    """The reward's identity (None in a file not written by this project)."""
    description: str | None
    provenance: dict[str, Any] = field(default_factory=dict)

    def rewards_by_key(self) -> dict[tuple[int, int], float]:
        """``{(episode_index, frame_index): reward}``."""
        keys = zip(self.table["episode_index"], self.table["frame_index"], strict=True)
        return {
            (int(e), int(f)): float(r) for (e, f), r in zip(keys, self.table["reward"], strict=True)
        }


def _key_array(values: npt.ArrayLike, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1 or not (
        np.issubdtype(array.dtype, np.integer)
        or (array.size == 0)
        or (np.issubdtype(array.dtype, np.floating) and np.all(array == np.round(array)))
    ):
        raise InvalidInputError(f"{name} must be a 1-D array of integers.")
    return array.astype(np.int64)


def write_rewards_parquet(
    path: str | Path,
    episode_index: npt.ArrayLike,
    frame_index: npt.ArrayLike,
    rewards: npt.ArrayLike,
    *,
    reward: Reward | None = None,
    identity: str | None = None,
    description: str | None = None,
    provenance: Mapping[str, Any] | None = None,
) -> Path:
    """Write rewards keyed by (episode_index, frame_index) with the reward's identity.

    The file is written next to its final name and renamed into place, so a reader never sees
    half a file.

    Args:
        path: Where to write (``.parquet``); its folder must exist.
        episode_index: Episode per frame.
        frame_index: Frame index within the episode, per frame.
        rewards: Reward per frame (finite).
        reward: The reward that produced them: its identity and description go into the
            metadata (``identity`` and ``description`` override them).
        identity: The reward's identity, when no ``reward`` is given.
        description: Its one-line description.
        provenance: JSON-serialisable facts about where the frames came from.

    Returns:
        The path written.

    Raises:
        InvalidInputError: Arrays of different lengths, non-integer keys, a key given twice,
            a non-finite reward, or provenance that is not JSON.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    episodes = _key_array(episode_index, "episode_index")
    frames = _key_array(frame_index, "frame_index")
    values = np.asarray(rewards, dtype=np.float64).reshape(-1)
    if not episodes.shape == frames.shape == values.shape:
        raise InvalidInputError(
            f"{values.shape[0]} rewards for {episodes.shape[0]} episode and {frames.shape[0]} "
            "frame indices; give one of each per frame."
        )
    if not np.all(np.isfinite(values)):
        bad = int(np.sum(~np.isfinite(values)))
        raise InvalidInputError(
            f"{bad} reward(s) are NaN or infinite; a rewards file needs finite rewards."
        )
    order = np.lexsort((frames, episodes))
    episodes, frames, values = episodes[order], frames[order], values[order]
    repeated = (np.diff(episodes) == 0) & (np.diff(frames) == 0)
    if np.any(repeated):
        at = int(np.argmax(repeated))
        raise InvalidInputError(
            f"(episode {episodes[at]}, frame {frames[at]}) has more than one reward; a rewards "
            "file holds one per frame (score one camera's frames at a time)."
        )
    written_at = datetime.now(UTC).isoformat(timespec="seconds")
    try:
        facts = json.dumps({**dict(provenance or {}), "written_at": written_at})
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"the provenance is not JSON-serialisable ({exc}).") from None
    metadata = {_FORMAT: FORMAT_VERSION.encode(), _PROVENANCE: facts.encode()}
    ident = identity if identity is not None else (reward.identity if reward else None)
    text = description if description is not None else (reward.description if reward else None)
    if ident is not None:
        metadata[_IDENTITY] = ident.encode()
    if text is not None:
        metadata[_DESCRIPTION] = text.encode()
    table = pa.table(
        {
            "episode_index": pa.array(episodes, pa.int64()),
            "frame_index": pa.array(frames, pa.int64()),
            "reward": pa.array(values.astype(np.float32), pa.float32()),
        }
    ).replace_schema_metadata(metadata)
    target = Path(path).expanduser()
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def write_dataset_rewards(
    path: str | Path,
    frames: Sequence[FrameInfo],
    rewards: npt.ArrayLike,
    reward: Reward,
    *,
    provenance: Mapping[str, Any] | None = None,
) -> Path:
    """Write the rewards of a stored dataset's frames, keyed by their episode and step.

    Args:
        path: Where to write.
        frames: The dataset's frames (:func:`vlmrm_core.store.dataset_frames`).
        rewards: One reward per frame, same order.
        reward: The reward that scored them.
        provenance: Facts to record, e.g. ``{'dataset': name}`` plus the dataset's
            ``meta['lerobot']`` (folder, camera) for a LeRobot import.

    Raises:
        InvalidInputError: A frame without an episode or step (uploads, sweeps), or the
            checks of :func:`write_rewards_parquet`.
    """
    values = np.asarray(rewards, dtype=np.float64).reshape(-1)
    if values.shape[0] != len(frames):
        raise InvalidInputError(f"{values.shape[0]} rewards for {len(frames)} frames.")
    loose = [f for f in frames if f.episode is None or f.step is None]
    if loose:
        raise InvalidInputError(
            f"{len(loose)} frame(s) (e.g. {loose[0].name or loose[0].hash[:12]!r}) have no "
            "episode and step; only episodes (rollouts, LeRobot imports) can be written keyed "
            "by episode and frame."
        )
    return write_rewards_parquet(
        path,
        np.array([f.episode for f in frames], dtype=np.int64),
        np.array([f.step for f in frames], dtype=np.int64),
        values,
        reward=reward,
        provenance=provenance,
    )


def read_rewards_parquet(path: str | Path) -> RewardsParquet:
    """Read a rewards parquet back, with the reward's identity and provenance.

    Raises:
        InvalidInputError: Not a readable parquet file, or one without the key and reward
            columns.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = Path(path).expanduser()
    try:
        table = pq.read_table(source)
    except (OSError, pa.ArrowException) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise InvalidInputError(f"{source} is not a readable parquet file ({exc}).") from None
    missing = [c for c in (*KEY_COLUMNS, "reward") if c not in table.column_names]
    if missing:
        raise InvalidInputError(
            f"{source} has no column(s) {missing}; a rewards file has episode_index, "
            "frame_index and reward."
        )
    meta = table.schema.metadata or {}
    try:
        provenance = json.loads(meta.get(_PROVENANCE, b"{}").decode())
    except (UnicodeDecodeError, json.JSONDecodeError):
        provenance = {}
    frame = table.select([*KEY_COLUMNS, "reward"]).to_pandas()
    frame = frame.sort_values(list(KEY_COLUMNS), kind="stable").reset_index(drop=True)
    return RewardsParquet(
        table=frame,
        identity=meta[_IDENTITY].decode() if _IDENTITY in meta else None,
        description=meta[_DESCRIPTION].decode() if _DESCRIPTION in meta else None,
        provenance=provenance if isinstance(provenance, dict) else {},
    )
