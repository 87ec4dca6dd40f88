"""Revision 0010's downgrade refuses, in one line naming the fix, while video-backed frames are
stored, and leaves the store readable; once their datasets are deleted it goes down."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect

from tests._lerobot_data import CAMERAS, write_lerobot_dataset
from vlmrm_core.errors import VlmrmError
from vlmrm_core.frames import pixel_hash
from vlmrm_core.services.dataset_import import import_lerobot
from vlmrm_core.store import dataset_frames, delete_dataset, downgrade, load_pixels
from vlmrm_core.store.db import MigrationRefusedError


def _frames_columns(engine: Engine) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns("frames")}


def test_downgrade_below_0010_with_video_frames_names_the_datasets_to_delete(
    engine: Engine, tmp_path: Path
) -> None:
    folder = write_lerobot_dataset(tmp_path / "lerobot", "v3.0")
    import_lerobot(engine, folder, "robot", camera=CAMERAS[0])
    with pytest.raises(MigrationRefusedError) as refused:
        downgrade(engine, "0009")
    message = str(refused.value)
    assert isinstance(refused.value, VlmrmError) and isinstance(refused.value, RuntimeError)
    assert "\n" not in message
    assert "below revision 0010" in message and "datasets: 'robot'" in message
    assert "delete those datasets first" in message
    # Refused before anything changed: the frames still read back from their video.
    assert "video_pts" in _frames_columns(engine)
    frame = dataset_frames(engine, "robot")[4].hash
    assert pixel_hash(load_pixels(frame)) == frame

    delete_dataset(engine, "robot")
    downgrade(engine, "0009")
    assert "video_pts" not in _frames_columns(engine)
