"""A video-backed (LeRobot) frame that cannot be read reaches the page as one line naming the
fix, never as an exception: its stored video altered (other pixels) or deleted."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests._lerobot_data import CAMERAS, write_lerobot_dataset
from tests.studio._pages import open_with_random_model
from vlmrm_core.frames import FrameRecord
from vlmrm_core.services.dataset_import import import_lerobot
from vlmrm_core.services.landscape import embed_dataset
from vlmrm_core.settings import get_settings
from vlmrm_core.store import dataset_frames, frame_path, ingest_frames, init_db
from vlmrm_core.store.videos import VIDEO_DIR
from vlmrm_studio.views.prompt_lab.episodes import step_key


@pytest.fixture
def robot(data_dir: Path, tmp_path: Path, tiny_clip: Any) -> tuple[Path, Path]:
    """The LeRobot test dataset imported as ``robot`` and embedded with the tiny model (so the
    pages need no pixels for their charts). Returns the dataset folder and the stored video."""
    from vlmrm_studio.widgets.frames import _thumbnail_uri, thumbnail_png

    # Thumbnails are cached process-wide by pixel hash, and other tests import the same frames.
    thumbnail_png.clear()
    _thumbnail_uri.clear()
    folder = write_lerobot_dataset(tmp_path / "lerobot", "v3.0")
    engine = init_db()
    import_lerobot(engine, folder, "robot", camera=CAMERAS[0])
    embed_dataset(engine, tiny_clip, "robot")
    (video,) = (get_settings().frames_dir / VIDEO_DIR).glob("*.mp4")
    return folder, video


def _replace_with_other_pixels(folder: Path, video: Path) -> None:
    """The other camera's video: the same timing, other pixels (a new file, as a copy would)."""
    other = next((folder / "videos" / CAMERAS[1]).glob("**/*.mp4"))
    part = video.with_suffix(".part")
    part.write_bytes(other.read_bytes())
    os.replace(part, video)


def _widgets(frame_hash: str) -> None:
    import streamlit as st

    from vlmrm_studio.widgets.embeddings import frame_grid
    from vlmrm_studio.widgets.frames import frame_image, full_frame, thumbnail_uri

    st.session_state["thumb"] = frame_image(frame_hash)
    st.session_state["full"] = full_frame(frame_hash)
    st.session_state["uri"] = thumbnail_uri(frame_hash)
    frame_grid([frame_hash], ["grid caption"])


def _grid_only(frame_hash: str) -> None:
    from vlmrm_studio.widgets.embeddings import frame_grid

    frame_grid([frame_hash], ["grid caption"])


def _one_line_messages(at: AppTest) -> list[str]:
    shown = [e.value for e in at.error] + [c.value for c in at.caption]
    assert all("\n" not in m for m in shown)
    return [m.replace("\\", "") for m in shown]  # Markdown escapes removed


@pytest.mark.parametrize(
    ("damage", "expected", "fix"),
    [
        ("replace", "decodes to other pixels", "re-import its dataset"),
        ("delete", "which is missing", "run `vlmrm frames gc`"),
    ],
)
def test_the_frame_widgets_show_a_damaged_video_as_one_line(
    robot: tuple[Path, Path], damage: str, expected: str, fix: str
) -> None:
    folder, video = robot
    frame = dataset_frames(init_db(), "robot")[2].hash
    if damage == "replace":
        _replace_with_other_pixels(folder, video)
    else:
        video.unlink()
    at = AppTest.from_function(_widgets, args=(frame,), default_timeout=60)
    at.run()
    assert not at.exception
    assert at.session_state["thumb"] is None and at.session_state["full"] is None
    assert at.session_state["uri"] is None  # an empty cell in a table
    messages = [m for m in _one_line_messages(at) if expected in m]
    assert len(messages) == 3 and all(fix in m for m in messages)  # thumbnail, full frame, grid
    assert any(m.startswith("grid caption: ") for m in messages)
    assert not at.image  # nothing drawn for the frame


def test_the_episode_scrubber_says_what_is_wrong_with_a_replaced_video(
    robot: tuple[Path, Path],
) -> None:
    at = open_with_random_model("prompt_lab", "lab", reselect=True)
    at.text_area(key="lab-goal").input("a robot arm holding a red cube").run()
    at.text_area(key="lab-baseline").input("a robot arm").run()
    at.radio(key="lab-view").set_value("Episode").run()
    assert not at.exception and not at.error
    assert any(c.startswith("step 0 · ") for image in at.image for c in image.captions)
    _replace_with_other_pixels(*robot)
    # A step not decoded yet (the last few frames decoded are kept, and they were right).
    at.select_slider(key=step_key("robot", 0)).set_value(3).run()
    assert not at.exception
    assert any(
        "decodes to other pixels" in m and "re-import its dataset" in m
        for m in _one_line_messages(at)
    )
    # One line: no "image file missing" of the page's own besides.
    assert not [w.value for w in at.warning if "image file" in w.value]


def test_a_grid_thumbnail_whose_png_is_gone_names_the_fix(data_dir: Path) -> None:
    engine = init_db()
    pixels = np.full((8, 8, 3), 7, dtype=np.uint8)
    ingest_frames(engine, "pngs", [FrameRecord(pixels=pixels, source="upload", name="a.png")])
    frame = dataset_frames(engine, "pngs")[0].hash
    frame_path(frame).unlink()
    at = AppTest.from_function(_grid_only, args=(frame,), default_timeout=60)
    at.run()
    assert not at.exception
    (caption,) = [c.value for c in at.caption if c.value.startswith("grid caption")]
    assert "image file is missing" in caption and "vlmrm frames gc" in caption
