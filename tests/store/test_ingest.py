"""The frames folder and the database stay in step: killed imports, failed moves, stray files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import Engine

from vlmrm_core.frames import FrameRecord
from vlmrm_core.settings import Settings, get_settings
from vlmrm_core.store import init_db, list_datasets
from vlmrm_core.store.datasets import frame_relative_path, iter_frame_hashes
from vlmrm_core.store.ingest import (
    INCOMING_DIR,
    _Staging,
    collect_garbage,
    ingest_frames,
    sweep_incoming,
)


def _frame(seed: int, size: int = 12) -> FrameRecord:
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    return FrameRecord(pixels=pixels, source="upload", name=f"f{seed}.png")


def _final_files(settings: Settings) -> set[str]:
    """Hashes of the frame files in their final place (not in the temporary area)."""
    root = settings.frames_dir
    if not root.exists():
        return set()
    return {
        p.stem
        for shard in root.iterdir()
        if shard.is_dir() and shard.name != INCOMING_DIR
        for p in shard.glob("*.png")
    }


def _rows(engine: Engine) -> set[str]:
    return {h for part in iter_frame_hashes(engine) for h in part}


def _staged(settings: Settings) -> list[Path]:
    return list((settings.frames_dir / INCOMING_DIR).glob("*/*.png"))


@pytest.fixture
def engine(data_dir: Path) -> Engine:
    """A fresh database in this test's own data directory."""
    return init_db()


def test_import_leaves_no_temporary_area_and_files_match_rows(engine: Engine) -> None:
    settings = get_settings()
    report = ingest_frames(engine, "d", [_frame(i) for i in range(40)])
    assert report.imported == 40
    assert _final_files(settings) == _rows(engine) and len(_rows(engine)) == 40
    assert _staged(settings) == []


def test_a_failed_move_after_the_commit_is_finished_by_the_sweep(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = get_settings()
    real_move = _Staging.move_in

    def move_half_then_die(self: _Staging, hashes: list[str]) -> None:
        real_move(self, hashes[:5])
        self.committed.update(hashes[5:])
        raise OSError("disk went away")

    monkeypatch.setattr(_Staging, "move_in", move_half_then_die)
    with pytest.raises(OSError, match="disk went away"):
        ingest_frames(engine, "d", [_frame(i) for i in range(12)])
    assert len(_rows(engine)) == 12 and len(_final_files(settings)) == 5
    assert len(_staged(settings)) == 7  # kept: deleting them would lose committed frames
    report = sweep_incoming(engine, settings)
    assert (report.moved_in, report.removed_incoming) == (7, 0)
    assert _final_files(settings) == _rows(engine)
    assert _staged(settings) == []


def test_the_sweep_leaves_a_live_import_alone(engine: Engine) -> None:
    settings = get_settings()
    staging = _Staging(settings.frames_dir)  # holds its lock, like a running import
    try:
        staging.write("ab" * 32, _frame(1).pixels)
        assert sweep_incoming(engine, settings).removed_incoming == 0
        assert len(_staged(settings)) == 1
    finally:
        staging.close()
    assert _staged(settings) == []


def test_gc_removes_files_without_rows_and_reports_rows_without_files(engine: Engine) -> None:
    settings = get_settings()
    ingest_frames(engine, "d", [_frame(i) for i in range(3)])
    stray = settings.frames_dir / frame_relative_path("cd" * 32)
    stray.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(_frame(9).pixels).save(stray)
    lost = sorted(_rows(engine))[0]
    (settings.frames_dir / frame_relative_path(lost)).unlink()
    report = collect_garbage(engine, settings)
    assert report.removed_orphans == 1 and not stray.exists()
    assert report.missing_files == [lost]


_IMPORT_ENV_KEYS = ("VLMRM_DATA_DIR", "VLMRM_DATABASE_URL")


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "vlmrm_core.cli.main", *args]


@pytest.mark.slow
def test_sigkill_during_import_leaves_no_orphans_after_gc(tmp_path: Path, engine: Engine) -> None:
    """Kill a real ``vlmrm frames import`` midway; nothing reaches the frames folder, and
    ``vlmrm frames gc`` (or the next import) clears the temporary area."""
    settings = get_settings()
    folder = tmp_path / "shots"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(1500):
        pixels = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"shot{i:04d}.png", compress_level=0)
    env = {k: v for k, v in os.environ.items() if k not in _IMPORT_ENV_KEYS}
    env.update({k: os.environ[k] for k in _IMPORT_ENV_KEYS if k in os.environ})
    proc = subprocess.Popen(
        _cli("frames", "import", str(folder), "--dataset", "killed"),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while len(_staged(settings)) < 100:
            assert proc.poll() is None, f"the import ended before it was killed: {proc.stderr}"
            assert time.monotonic() < deadline, "the import wrote no frames in 120 s"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    assert len(_staged(settings)) >= 100  # the killed import's files, in the temporary area only
    assert _final_files(settings) == set() and _rows(engine) == set()
    assert [d.name for d in list_datasets(engine)] == []

    gc = subprocess.run(_cli("frames", "gc"), env=env, capture_output=True, text=True, timeout=120)
    assert gc.returncode == 0, gc.stderr
    assert "files of unfinished imports removed" in gc.stdout
    assert not (settings.frames_dir / INCOMING_DIR).exists()
    assert _final_files(settings) == _rows(engine) == set()

    report = ingest_frames(engine, "again", [_frame(i) for i in range(5)])
    assert report.imported == 5 and _final_files(settings) == _rows(engine)
