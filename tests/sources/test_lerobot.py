"""The LeRobot reader (layouts v2.1 and v3.0) and its import into the store."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests._lerobot_data import CAMERAS, LENGTHS, TASKS, frame_colour, write_lerobot_dataset
from vlmrm_core.errors import VlmrmError
from vlmrm_core.sources.lerobot import (
    LeRobotError,
    lerobot_cameras,
    lerobot_frames,
    lerobot_tasks,
    parse_episode_range,
    read_lerobot_dataset,
)

VERSIONS = ("v2.1", "v3.0")
TOLERANCE = 8
"""Largest channel error h264 may put on the test's flat colours (they are ≥ 20 apart)."""


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One v2.1 and one v3.0 dataset: two cameras, three episodes of 5, 9 and 7 frames."""
    root = tmp_path_factory.mktemp("lerobot")
    return {v: write_lerobot_dataset(root / v.replace(".", "_"), v) for v in VERSIONS}


def copy_of(datasets: dict[str, Path], version: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(datasets[version], tmp_path / "copy"))


def parquet_rows(root: Path, version: str) -> list[tuple[int, int]]:
    """(episode_index, frame_index) of every row of the data parquet files, in file order."""
    files = sorted((root / "data").glob("**/*.parquet"))
    rows: list[tuple[int, int]] = []
    for file in files:
        table = pq.read_table(file, columns=["episode_index", "frame_index"])
        rows += list(zip(*(table[c].to_pylist() for c in table.column_names), strict=True))
    return rows


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("camera", [0, 1])
def test_every_frame_is_the_one_its_parquet_row_names(
    datasets: dict[str, Path], version: str, camera: int
) -> None:
    root = datasets[version]
    records = list(lerobot_frames(root, camera=CAMERAS[camera]))
    assert [(r.episode, r.step) for r in records] == parquet_rows(root, version)
    for record in records:
        assert record.pixels.shape == (48, 64, 3) and record.pixels.dtype == np.uint8
        expected = np.array(frame_colour(camera, record.episode or 0, record.step or 0))
        error = np.abs(record.pixels.astype(int) - expected).max()
        assert error <= TOLERANCE, (record.episode, record.step, error)
        assert record.source == "lerobot" and record.env_id == "test-arm"
        assert record.extra["camera"] == CAMERAS[camera]
        assert record.extra["timestamp"] == pytest.approx((record.step or 0) / 10)


@pytest.mark.parametrize("version", VERSIONS)
def test_default_camera_is_the_first_video_feature(datasets: dict[str, Path], version: str) -> None:
    first = next(iter(lerobot_frames(datasets[version])))
    assert first.extra["camera"] == CAMERAS[0]
    assert lerobot_cameras(datasets[version]) == list(CAMERAS)


@pytest.mark.parametrize("version", VERSIONS)
def test_an_episode_range_reads_only_those_episodes(
    datasets: dict[str, Path], version: str
) -> None:
    # Episode 2 starts 1.4 s into the v3.0 file of the first camera: the reader must seek.
    records = list(lerobot_frames(datasets[version], episodes="2:3"))
    assert [(r.episode, r.step) for r in records] == [(2, i) for i in range(LENGTHS[2])]
    for record in records:
        expected = np.array(frame_colour(0, 2, record.step or 0))
        assert np.abs(record.pixels.astype(int) - expected).max() <= TOLERANCE
    middle = list(lerobot_frames(datasets[version], episodes="1", camera=CAMERAS[1]))
    assert {r.episode for r in middle} == {1} and len(middle) == LENGTHS[1]


@pytest.mark.parametrize("version", VERSIONS)
def test_tasks_become_goal_prompts_and_episode_tasks_travel(
    datasets: dict[str, Path], version: str
) -> None:
    assert lerobot_tasks(datasets[version]) == list(TASKS)
    info = read_lerobot_dataset(datasets[version])
    assert info.codebase_version == version and info.fps == 10
    assert [e.length for e in info.episodes.values()] == list(LENGTHS)
    ep1 = [r for r in lerobot_frames(datasets[version], episodes="1:2")]
    assert ep1[0].extra["tasks"] == [TASKS[1]]


def test_progress_counts_frames_up_to_the_total(datasets: dict[str, Path]) -> None:
    calls: list[tuple[int, int | None]] = []
    list(lerobot_frames(datasets["v3.0"], progress=lambda d, t, m: calls.append((d, t))))
    assert calls[0] == (1, sum(LENGTHS)) and calls[-1] == (sum(LENGTHS), sum(LENGTHS))


# ------------------------------------------------------------------------------- bad input


def test_a_missing_camera_names_the_ones_there_are(datasets: dict[str, Path]) -> None:
    with pytest.raises(LeRobotError) as caught:
        lerobot_frames(datasets["v3.0"], camera="observation.images.side")
    message = str(caught.value)
    assert "observation.images.side" in message and all(c in message for c in CAMERAS)
    assert "\n" not in message


@pytest.mark.parametrize("text", ["3:5", "0:4", "7", "-1:2"])
def test_episodes_out_of_range_are_refused(datasets: dict[str, Path], text: str) -> None:
    with pytest.raises(LeRobotError, match=r"out of range|select nothing"):
        lerobot_frames(datasets["v2.1"], episodes=text)


@pytest.mark.parametrize("text", ["a:b", "1:2:3", "1-3"])
def test_a_malformed_range_says_how_to_write_one(text: str) -> None:
    with pytest.raises(LeRobotError, match="A:B"):
        parse_episode_range(text, [0, 1, 2])


def test_open_ended_ranges() -> None:
    assert parse_episode_range("1:", [0, 1, 2]) == [1, 2]
    assert parse_episode_range(":2", [0, 1, 2]) == [0, 1]
    assert parse_episode_range(None, [0, 1, 2]) == parse_episode_range(":", [0, 1, 2]) == [0, 1, 2]


def test_an_unknown_codebase_version_is_refused(datasets: dict[str, Path], tmp_path: Path) -> None:
    root = copy_of(datasets, "v2.1", tmp_path)
    info = json.loads((root / "meta/info.json").read_text())
    (root / "meta/info.json").write_text(json.dumps({**info, "codebase_version": "v1.6"}))
    with pytest.raises(LeRobotError, match=r"'v1\.6'.*not supported"):
        lerobot_frames(root)


def test_a_folder_without_meta_info_is_not_a_dataset(tmp_path: Path) -> None:
    with pytest.raises(LeRobotError, match="no meta/info.json"):
        lerobot_frames(tmp_path)


@pytest.mark.parametrize("version", VERSIONS)
def test_a_video_shorter_than_its_timestamps_is_refused(tmp_path: Path, version: str) -> None:
    root = write_lerobot_dataset(tmp_path / "short", version, drop_frames={2: 2})
    frames = lerobot_frames(root, episodes="2:3")  # the metadata is fine: no error yet
    with pytest.raises(LeRobotError, match="shorter than its timestamps say") as caught:
        list(frames)
    assert "episode 2" in str(caught.value) and "\n" not in str(caught.value)


def test_a_missing_video_file_is_named(datasets: dict[str, Path], tmp_path: Path) -> None:
    root = copy_of(datasets, "v2.1", tmp_path)
    victim = root / f"videos/chunk-000/{CAMERAS[0]}/episode_000001.mp4"
    victim.unlink()
    with pytest.raises(LeRobotError, match="episode_000001.mp4 is missing"):
        list(lerobot_frames(root))


def test_a_path_template_leading_outside_the_dataset_is_refused(
    datasets: dict[str, Path], tmp_path: Path
) -> None:
    root = copy_of(datasets, "v3.0", tmp_path)
    info = json.loads((root / "meta/info.json").read_text())
    info["video_path"] = "../../{video_key}/file-{file_index:03d}.mp4"
    (root / "meta/info.json").write_text(json.dumps(info))
    with pytest.raises(LeRobotError, match="outside the dataset"):
        lerobot_frames(root)


def test_errors_are_user_errors() -> None:
    assert issubclass(LeRobotError, VlmrmError)


# ------------------------------------------------------------------------------- the import


@pytest.mark.parametrize("version", VERSIONS)
def test_import_keeps_episode_and_frame_index(
    datasets: dict[str, Path], data_dir: Path, version: str
) -> None:
    from vlmrm_core.services.dataset_import import import_lerobot
    from vlmrm_core.store import dataset_frames, get_dataset, init_db, load_pixels

    engine = init_db()
    report = import_lerobot(engine, datasets[version], "robot", camera=CAMERAS[1])
    assert report.added == sum(LENGTHS) and not report.rejected
    frames = dataset_frames(engine, "robot")
    assert [(f.episode, f.step) for f in frames] == parquet_rows(datasets[version], version)
    for info in frames[::4]:
        pixels = load_pixels(info.hash)
        expected = np.array(frame_colour(1, info.episode or 0, info.step or 0))
        assert np.abs(pixels.astype(int) - expected).max() <= TOLERANCE
    summary = get_dataset(engine, "robot")
    assert summary.kind == "lerobot"
    assert summary.meta["lerobot"]["tasks"] == list(TASKS)
    assert summary.meta["lerobot"]["camera"] == CAMERAS[1]


def test_a_short_video_imports_nothing(tmp_path: Path, data_dir: Path) -> None:
    from vlmrm_core.services.dataset_import import import_lerobot
    from vlmrm_core.store import NotFoundError, get_dataset, init_db

    root = write_lerobot_dataset(tmp_path / "short", "v3.0", drop_frames={2: 1})
    engine = init_db()
    with pytest.raises(LeRobotError, match="shorter"):
        import_lerobot(engine, root, "robot")  # episodes 0 and 1 decode fine first
    with pytest.raises(NotFoundError):
        get_dataset(engine, "robot")
    stored = (
        [p for p in (data_dir / "frames").rglob("*.png")] if (data_dir / "frames").exists() else []
    )
    assert stored == []


def test_bad_input_fails_before_the_store_is_touched(
    datasets: dict[str, Path], data_dir: Path
) -> None:
    from vlmrm_core.services.dataset_import import ImportInputError, import_lerobot
    from vlmrm_core.store import init_db, list_datasets

    engine = init_db()
    with pytest.raises(LeRobotError, match="cameras are"):
        import_lerobot(engine, datasets["v2.1"], "robot", camera="nope")
    with pytest.raises(LeRobotError, match="out of range"):
        import_lerobot(engine, datasets["v2.1"], "robot", episodes="1:9")
    with pytest.raises(ImportInputError):
        import_lerobot(engine, datasets["v2.1"], "  ")
    assert list_datasets(engine) == []


def test_importing_a_server_folder_needs_an_admin_when_signed_in(
    datasets: dict[str, Path], data_dir: Path
) -> None:
    """The Frames page hides the folder box from non-admins; the service refuses them too."""
    from vlmrm_core.services.dataset_import import import_lerobot
    from vlmrm_core.store import init_db, list_datasets
    from vlmrm_core.store.users import AccessError, ensure_admins, set_user_role

    engine = init_db()
    ensure_admins(engine, ["admin@example.org"])
    set_user_role(engine, "res@example.org", "researcher", actor="admin@example.org")
    for stranger in ("res@example.org", "nobody@example.org"):
        with pytest.raises(AccessError):
            import_lerobot(engine, datasets["v3.0"], "robot", actor=stranger)
    assert list_datasets(engine) == []
    report = import_lerobot(engine, datasets["v3.0"], "robot", actor="admin@example.org")
    assert report.added == sum(LENGTHS)
