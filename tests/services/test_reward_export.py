"""Rewards out as a parquet keyed by (episode_index, frame_index), and back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests._lerobot_data import LENGTHS, write_lerobot_dataset
from tests.reward._brightness import BrightnessReward
from vlmrm_core.errors import InvalidInputError
from vlmrm_core.services.reward_export import (
    read_rewards_parquet,
    write_dataset_rewards,
    write_rewards_parquet,
)


def test_a_scored_lerobot_import_reads_back_with_the_same_keys(
    tmp_path: Path, data_dir: Path
) -> None:
    from vlmrm_core.services.dataset_import import import_lerobot
    from vlmrm_core.store import dataset_frames, get_dataset, init_db, load_pixels

    engine = init_db()
    root = write_lerobot_dataset(tmp_path / "lr", "v3.0")
    import_lerobot(engine, root, "robot", episodes="1:3")
    frames = dataset_frames(engine, "robot")
    reward = BrightnessReward(scale=2.0)
    rewards = reward(np.stack([load_pixels(f.hash) for f in frames]))
    provenance = {"dataset": "robot", "lerobot": get_dataset(engine, "robot").meta["lerobot"]}
    path = write_dataset_rewards(
        root / "rewards.parquet", frames, rewards, reward, provenance=provenance
    )

    back = read_rewards_parquet(path)
    assert back.identity == reward.identity == "brightness/scale=2"
    assert back.description == reward.description
    assert back.provenance["lerobot"]["path"] == str(root.resolve())
    assert back.provenance["written_at"]
    expected = {(f.episode, f.step): float(r) for f, r in zip(frames, rewards, strict=True)}
    assert back.rewards_by_key() == pytest.approx(expected)
    assert set(back.rewards_by_key()) == {(e, s) for e in (1, 2) for s in range(LENGTHS[e])}
    # any parquet reader sees the plain table
    table = pq.read_table(path)
    assert table.column_names == ["episode_index", "frame_index", "reward"]
    assert str(table.schema.field("reward").type) == "float"
    assert list(tmp_path.glob("lr/.rewards.parquet.*")) == []  # no temporary file left


def test_rows_are_sorted_by_key(tmp_path: Path) -> None:
    path = write_rewards_parquet(
        tmp_path / "r.parquet", [1, 0, 1, 0], [1, 1, 0, 0], [4.0, 2.0, 3.0, 1.0], identity="x"
    )
    back = read_rewards_parquet(path)
    assert back.table.values.tolist() == [[0, 0, 1.0], [0, 1, 2.0], [1, 0, 3.0], [1, 1, 4.0]]
    assert back.description is None


@pytest.mark.parametrize(
    ("episodes", "frames", "rewards", "match"),
    [
        ([0, 0], [1, 1], [0.1, 0.2], "more than one reward"),
        ([0, 0], [0, 1], [0.1, float("nan")], "NaN or infinite"),
        ([0, 0], [0, 1], [0.1], "1 rewards for 2"),
        ([0.5, 0], [0, 1], [0.1, 0.2], "integers"),
    ],
)
def test_bad_rewards_are_refused(
    tmp_path: Path, episodes: list, frames: list, rewards: list, match: str
) -> None:
    with pytest.raises(InvalidInputError, match=match):
        write_rewards_parquet(tmp_path / "r.parquet", episodes, frames, rewards)
    assert not (tmp_path / "r.parquet").exists()


def test_frames_without_episodes_cannot_be_keyed(tmp_path: Path) -> None:
    from tests.conftest import frame_info

    loose = [frame_info(0)]
    with pytest.raises(InvalidInputError, match="no episode and step"):
        write_dataset_rewards(tmp_path / "r.parquet", loose, [0.5], BrightnessReward())


def test_a_file_without_the_columns_is_refused(tmp_path: Path) -> None:
    import pyarrow as pa

    pq.write_table(pa.table({"x": [1]}), tmp_path / "other.parquet")
    with pytest.raises(InvalidInputError, match="no column"):
        read_rewards_parquet(tmp_path / "other.parquet")
    (tmp_path / "junk.parquet").write_bytes(b"not parquet")
    with pytest.raises(InvalidInputError, match="not a readable parquet"):
        read_rewards_parquet(tmp_path / "junk.parquet")
