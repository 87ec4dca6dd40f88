"""LeRobot frames stored by reference to their video: reading, thumbnails, deletion, GC, faults."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import Engine, inspect

from tests._lerobot_data import CAMERAS, LENGTHS, write_lerobot_dataset
from vlmrm_core.errors import VlmrmError
from vlmrm_core.frames import FrameRecord, pixel_hash
from vlmrm_core.scale.embed import stored_frame_bytes
from vlmrm_core.services.dataset_import import import_lerobot
from vlmrm_core.settings import Settings
from vlmrm_core.sources.lerobot import lerobot_frames
from vlmrm_core.store import (
    dataset_frames,
    delete_dataset,
    downgrade,
    frame_image_file,
    get_engine,
    iter_pixels,
    list_datasets,
    load_pixels,
    stored_image_bytes,
    upgrade,
)
from vlmrm_core.store.ingest import INCOMING_DIR, collect_garbage, ingest_frames
from vlmrm_core.store.videos import (
    VIDEO_DIR,
    FramePixelsMismatchError,
    MissingFrameVideoError,
    VideoFrameReader,
    video_frame_locations,
)


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    root = tmp_path / "lerobot"
    write_lerobot_dataset(root, "v3.0")
    return root


def _videos(settings: Settings) -> list[Path]:
    folder = settings.frames_dir / VIDEO_DIR
    return sorted(folder.glob("*.mp4")) if folder.is_dir() else []


def _pngs(settings: Settings) -> list[Path]:
    return sorted(settings.frames_dir.glob("??/*.png"))


def test_frames_are_stored_by_reference_and_read_back_exactly(
    engine: Engine, settings: Settings, dataset: Path
) -> None:
    expected = [r.pixels for r in lerobot_frames(dataset, camera=CAMERAS[0])]
    report = import_lerobot(engine, dataset, "robot", camera=CAMERAS[0])
    assert report.imported == len(expected) == sum(LENGTHS)
    assert _pngs(settings) == [] and len(_videos(settings)) == 1  # v3.0: one file per camera
    infos = dataset_frames(engine, "robot")
    assert [i.hash for i in infos] == [pixel_hash(p) for p in expected]
    # iter_pixels: position order, pixels equal frame by frame (small batches span the video).
    streamed = [px for _, batch in iter_pixels(engine, "robot", batch_size=4) for px in batch]
    assert len(streamed) == len(expected)
    for got, want in zip(streamed, expected, strict=True):
        np.testing.assert_array_equal(got, want)
    # Random access: a late frame, then a middle one (behind it: needs a seek), then the first.
    for index in (len(expected) - 1, len(expected) // 2, 0):
        np.testing.assert_array_equal(load_pixels(infos[index].hash), expected[index])


def test_random_access_seeks_back_to_a_keyframe(
    engine: Engine, settings: Settings, dataset: Path
) -> None:
    import_lerobot(engine, dataset, "robot", camera=CAMERAS[0])
    hashes = [i.hash for i in dataset_frames(engine, "robot")]
    located = video_frame_locations(engine, hashes)
    middle = located[hashes[len(hashes) // 2]]
    reader = VideoFrameReader(settings.frames_dir)
    try:
        reader.read([located[hashes[-1]]])  # the decoder is now past the middle frame
        (pixels,) = reader.read([middle])
    finally:
        reader.close()
    assert pixel_hash(pixels) == middle.hash


def test_thumbnail_bytes_and_export_files_of_video_frames(
    engine: Engine, settings: Settings, dataset: Path
) -> None:
    import_lerobot(engine, dataset, "robot", camera=CAMERAS[1])
    frame = dataset_frames(engine, "robot")[3].hash
    with Image.open(io.BytesIO(stored_image_bytes(frame))) as image:
        assert pixel_hash(np.asarray(image.convert("RGB"))) == frame
    with Image.open(io.BytesIO(stored_frame_bytes(frame)())) as image:  # what Ray workers get
        assert pixel_hash(np.asarray(image.convert("RGB"))) == frame
    path = frame_image_file(frame)
    assert path.suffix == ".png" and path.is_relative_to(settings.frames_dir)
    with Image.open(path) as image:
        assert pixel_hash(np.asarray(image.convert("RGB"))) == frame
    assert frame_image_file(frame) == path  # made once
    delete_dataset(engine, "robot")
    assert not path.exists()


def test_the_video_goes_with_the_last_dataset_that_uses_it(
    engine: Engine, settings: Settings, dataset: Path
) -> None:
    import_lerobot(engine, dataset, "a", camera=CAMERAS[0])
    shared = import_lerobot(engine, dataset, "b", camera=CAMERAS[0], episodes="1:3")
    assert shared.imported == 0 and shared.duplicates == sum(LENGTHS[1:])
    (video,) = _videos(settings)
    delete_dataset(engine, "a")
    assert video.exists()  # b's frames still refer to it
    for info in dataset_frames(engine, "b"):
        assert pixel_hash(load_pixels(info.hash)) == info.hash
    delete_dataset(engine, "b")
    assert _videos(settings) == []


def test_gc_reports_frames_whose_video_is_missing(
    engine: Engine, settings: Settings, dataset: Path
) -> None:
    import_lerobot(engine, dataset, "robot", camera=CAMERAS[0])
    hashes = {i.hash for i in dataset_frames(engine, "robot")}
    (video,) = _videos(settings)
    video.unlink()
    report = collect_garbage(engine, settings)
    assert set(report.missing_files) == hashes
    with pytest.raises(MissingFrameVideoError, match="missing; run `vlmrm frames gc`") as err:
        load_pixels(sorted(hashes)[0])
    assert isinstance(err.value, VlmrmError) and "\n" not in str(err.value)


def test_gc_deletes_videos_no_frame_refers_to(
    engine: Engine, settings: Settings, dataset: Path
) -> None:
    import_lerobot(engine, dataset, "robot", camera=CAMERAS[0])
    (video,) = _videos(settings)
    stray = video.with_name("0" * 64 + ".mp4")
    stray.write_bytes(video.read_bytes())
    report = collect_garbage(engine, settings)
    assert report.removed_orphans == 1 and report.missing_files == []
    assert _videos(settings) == [video]


def test_a_video_that_decodes_to_other_pixels_is_reported(
    engine: Engine, settings: Settings, dataset: Path
) -> None:
    import_lerobot(engine, dataset, "robot", camera=CAMERAS[0])
    (video,) = _videos(settings)
    other = next((dataset / "videos" / CAMERAS[1]).glob("**/*.mp4"))
    video.write_bytes(other.read_bytes())  # same timing, other camera's pixels
    frame = dataset_frames(engine, "robot")[5].hash
    with pytest.raises(FramePixelsMismatchError, match="decodes to other pixels") as err:
        load_pixels(frame)
    assert "\n" not in str(err.value)


def test_an_import_failing_midway_leaves_nothing(
    engine: Engine, settings: Settings, dataset: Path
) -> None:
    def broken() -> Iterator[FrameRecord]:
        for n, record in enumerate(lerobot_frames(dataset, camera=CAMERAS[0])):
            if n == 15:
                raise OSError("disk went away")
            yield record

    with pytest.raises(OSError, match="disk went away"):
        ingest_frames(engine, "robot", broken(), kind="lerobot")
    assert _videos(settings) == [] and _pngs(settings) == []
    assert list(settings.frames_dir.glob(f"{INCOMING_DIR}/*")) == []
    assert [d.name for d in list_datasets(engine, include_importing=True)] == []


def test_migration_0010_up_and_down(db_url: str, settings: Settings) -> None:
    engine = get_engine(db_url)
    upgrade(engine, "0009")
    assert "video_pts" not in {c["name"] for c in inspect(engine).get_columns("frames")}
    upgrade(engine, "0010")
    assert "video_pts" in {c["name"] for c in inspect(engine).get_columns("frames")}
    downgrade(engine, "0009")
    assert "video_pts" not in {c["name"] for c in inspect(engine).get_columns("frames")}
