"""A LeRobot import killed with SIGKILL leaves nothing behind once the temporary area is swept:
its staged video copy is deleted or moved in, and no frames row refers to a missing video."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests._lerobot_data import CAMERAS, write_lerobot_dataset
from vlmrm_core.frames import pixel_hash
from vlmrm_core.services.dataset_import import import_lerobot
from vlmrm_core.settings import Settings, get_settings
from vlmrm_core.store import dataset_frames, init_db, list_datasets, load_pixels
from vlmrm_core.store.datasets import iter_frame_files
from vlmrm_core.store.ingest import INCOMING_DIR, collect_garbage, sweep_incoming
from vlmrm_core.store.videos import VIDEO_DIR

pytestmark = pytest.mark.slow


@pytest.fixture
def engine(data_dir: Path) -> Engine:
    """A fresh SQLite database in this test's own data directory."""
    return init_db()


def _staged_videos(settings: Settings) -> list[Path]:
    return list((settings.frames_dir / INCOMING_DIR).glob("*/*.mp4"))


def _videos(settings: Settings) -> list[Path]:
    return list((settings.frames_dir / VIDEO_DIR).glob("*.mp4"))


def _rows(engine: Engine) -> list[tuple[str, str]]:
    return [row for part in iter_frame_files(engine) for row in part]


def _no_row_without_its_file(engine: Engine, settings: Settings) -> None:
    for _, relative in _rows(engine):
        assert (settings.frames_dir / relative).is_file(), relative
    assert collect_garbage(engine, settings).missing_files == []


def _reimport_reads_back(engine: Engine, folder: Path) -> None:
    report = import_lerobot(engine, folder, "again", camera=CAMERAS[0], episodes="0:1")
    assert report.added > 0
    for info in dataset_frames(engine, "again")[:3]:
        assert pixel_hash(load_pixels(info.hash)) == info.hash


def test_sigkill_while_reading_leaves_no_video_after_gc(tmp_path: Path, engine: Engine) -> None:
    """Killed after its video copy was staged, before any commit: `vlmrm frames gc` removes it."""
    settings = get_settings()
    # Long enough that decoding outlasts the poll below by far (thousands of frames).
    folder = write_lerobot_dataset(
        tmp_path / "lerobot", "v3.0", lengths=(800, 800, 800), size=(160, 120), textured=True
    )
    cli = [sys.executable, "-m", "vlmrm_core.cli.main"]
    proc = subprocess.Popen(
        [*cli, "frames", "import-lerobot", str(folder), "--dataset", "killed"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while not _staged_videos(settings):
            assert proc.poll() is None, f"the import ended before it was killed: {proc.stderr}"
            assert time.monotonic() < deadline, "the import staged no video in 120 s"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    assert _staged_videos(settings) and _videos(settings) == []  # only in the temporary area
    assert _rows(engine) == [] and list_datasets(engine, include_importing=True) == []

    gc = subprocess.run([*cli, "frames", "gc"], capture_output=True, text=True, timeout=120)
    assert gc.returncode == 0, gc.stderr
    assert not (settings.frames_dir / INCOMING_DIR).exists()
    assert _videos(settings) == [] and _rows(engine) == []
    _reimport_reads_back(engine, folder)
    _no_row_without_its_file(engine, settings)


# Runs the import in a child process that kills itself with SIGKILL when the first chunk of
# frame rows has committed and before its files move in: the worst moment, deterministically.
_KILLED_AFTER_COMMIT = textwrap.dedent(
    """
    import os, signal, sys
    from vlmrm_core.services.dataset_import import import_lerobot
    from vlmrm_core.store import init_db
    from vlmrm_core.store.ingest import _Staging

    def die(self, hashes):
        os.kill(os.getpid(), signal.SIGKILL)

    _Staging.move_in = die
    import_lerobot(init_db(), sys.argv[1], "killed", camera=sys.argv[2])
    """
)


def test_sigkill_after_a_commit_moves_the_video_in_for_its_rows(
    tmp_path: Path, engine: Engine
) -> None:
    """Killed after committing rows that name a video still in the temporary area: the sweep
    takes the memberships back and moves the video in, so no row refers to a missing file."""
    settings = get_settings()
    folder = write_lerobot_dataset(tmp_path / "lerobot", "v3.0")
    proc = subprocess.run(
        [sys.executable, "-c", _KILLED_AFTER_COMMIT, str(folder), CAMERAS[0]],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    rows = _rows(engine)
    assert rows and all(path.startswith(f"{VIDEO_DIR}/") for _, path in rows)
    assert len(_staged_videos(settings)) == 1 and _videos(settings) == []

    report = sweep_incoming(engine, settings)
    assert report.abandoned_memberships > 0 and report.moved_in == 1
    assert not list((settings.frames_dir / INCOMING_DIR).glob("*/*"))
    assert list_datasets(engine, include_importing=True) == []  # all or nothing
    assert len(_videos(settings)) == 1
    _no_row_without_its_file(engine, settings)
    _reimport_reads_back(engine, folder)  # the frames it committed are duplicates now
