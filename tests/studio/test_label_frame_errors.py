"""A frame that can't be read (its PNG deleted, or the stored video of a video-backed frame
missing) reaches the Label page (single frames, pairs of frames, pairs of clips) and the Frames
page's grid as one line naming the fix, never as two messages or an exception."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.studio._pages import page_test
from tests.studio.test_label_page import make_dataset
from tests.studio.test_video_frame_errors import robot  # noqa: F401
from vlmrm_core.frames import FrameRecord, pixel_hash
from vlmrm_core.store import frame_path, ingest_frames, init_db

GC_FIX = "run `vlmrm frames gc`"


def _messages(at: AppTest) -> list[str]:
    """Every error and warning line on the page, Markdown escapes removed."""
    assert not at.exception, [e.value for e in at.exception]
    shown = [m.value for m in (*at.error, *at.warning)]
    assert all("\n" not in m for m in shown)
    return [m.replace("\\", "") for m in shown]


@pytest.fixture
def no_video(robot: tuple[Path, Path]) -> None:  # noqa: F811
    """The LeRobot test dataset ``robot`` with its stored video deleted, and no decoded frame
    of it kept in memory (as in a fresh server: the store keeps the last few decoded)."""
    from vlmrm_core.store import videos

    robot[1].unlink()
    with videos._shared_lock:
        videos._recent.clear()


def _open_label(at: AppTest, *, pairs: bool = False) -> AppTest:
    at.run()
    at.text_input(key="label-name").set_value("alice").run()
    if pairs:
        at.button(key="label-mode-1").click().run()
    return at


def test_a_single_frame_whose_png_is_gone_is_one_line_with_the_fix(data_dir: Path) -> None:
    for frame_hash in make_dataset(3):
        frame_path(frame_hash).unlink()
    at = _open_label(page_test("label"))
    (message,) = _messages(at)
    assert message.startswith("frame") and "image file is missing" in message and GC_FIX in message
    assert not at.image


@pytest.mark.usefixtures("no_video")
def test_a_single_frame_whose_video_is_gone_is_one_line_with_the_fix() -> None:
    at = _open_label(page_test("label"))
    (message,) = _messages(at)  # not also an "image file missing" of the page's own
    assert "which is missing" in message and GC_FIX in message
    assert not at.image


@pytest.mark.usefixtures("no_video")
def test_a_pair_of_frames_whose_video_is_gone_is_one_line_per_side() -> None:
    at = _open_label(page_test("label"), pairs=True)
    messages = _messages(at)
    assert [m.split(":")[0] for m in messages] == ["Left", "Right"]
    assert all("which is missing" in m and GC_FIX in m for m in messages)
    assert not at.image


def test_a_pair_of_clips_whose_pngs_are_gone_is_one_line_per_side(data_dir: Path) -> None:
    records = [
        FrameRecord(
            np.full((10, 14, 3), 40 * e + 5 * s, np.uint8),
            "rollout",
            f"ep{e} t{s}",
            episode=e,
            step=s,
        )  # fmt: skip
        for e in range(2)
        for s in range(3)
    ]
    ingest_frames(init_db(), "ds", records)
    at = _open_label(page_test("label"), pairs=True)
    at.button(key="label-pair-unit-1").click().run()  # Clips
    at.number_input(key="label-pair-clip-frames").set_value(3).run()
    assert not _messages(at) and len(at.image) == 2  # the two episodes, drawn
    for record in records:
        frame_path(pixel_hash(record.pixels)).unlink()
    at.run()
    messages = _messages(at)
    assert [m.split(":")[0] for m in messages] == ["Left (3 frames)", "Right (3 frames)"]
    assert all("image file is missing" in m and GC_FIX in m for m in messages)
    assert not at.image


def test_the_frames_grid_shows_a_frame_without_its_png_as_one_line(data_dir: Path) -> None:
    from vlmrm_studio.widgets.frames import thumbnail_png

    thumbnail_png.clear()  # thumbnails are cached process-wide by pixel hash
    names = make_dataset(2)
    gone = next(iter(names))
    frame_path(gone).unlink()
    at = page_test("frames").run()
    (message,) = _messages(at)
    assert message.startswith(f"{names[gone]}: frame {gone[:12]}") and GC_FIX in message
    assert len(at.image) == 1  # the other frame
