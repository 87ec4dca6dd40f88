"""Reporting a trial's checkpoint to Tune while the worker prunes old ones."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from vlmrm_core.scale.grid_trials import _report
from vlmrm_core.training.checkpoints import Checkpoint


class _Tune:
    """The two names of ``ray.tune`` that ``_report`` uses, recording what it reports."""

    class Checkpoint:
        def __init__(self, files: list[str]) -> None:
            self.files = files

        @classmethod
        def from_directory(cls, folder: str) -> _Tune.Checkpoint:
            return cls(sorted(p.name for p in Path(folder).iterdir()))

    def __init__(self) -> None:
        self.reports: list[tuple[dict[str, Any], Any]] = []

    def report(self, metrics: dict[str, Any], checkpoint: Any = None) -> None:
        self.reports.append((metrics, checkpoint))


def _checkpoint(folder: Path, steps: int) -> Checkpoint:
    model = folder / f"model_{steps}.zip"
    buffer = folder / f"replay_buffer_{steps}.pkl"
    model.write_bytes(b"model")
    buffer.write_bytes(b"buffer")
    return Checkpoint(steps=steps, model_path=model, replay_buffer_path=buffer)


def test_the_checkpoint_goes_with_the_metrics(tmp_path: Path) -> None:
    tune = _Tune()
    _report(tune, {"step": 100}, _checkpoint(tmp_path, 100))
    ((metrics, checkpoint),) = tune.reports
    assert metrics == {"step": 100}
    assert checkpoint.files == ["model_100.zip", "replay_buffer_100.pkl"]


@pytest.mark.parametrize("when", ["before the copy", "during the copy"])
def test_a_checkpoint_pruned_by_the_worker_is_left_out_not_sent_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    listed = _checkpoint(tmp_path, 100)
    if when == "before the copy":
        listed.model_path.unlink()
        listed.replay_buffer_path.unlink()  # type: ignore[union-attr]
    else:  # listed, then deleted by the worker between a check and the copy

        def copy_of_a_pruned_file(src: Path, dst: Path) -> None:
            raise FileNotFoundError(2, "No such file or directory", str(src))

        monkeypatch.setattr(shutil, "copy2", copy_of_a_pruned_file)
    tune = _Tune()
    _report(tune, {"step": 120}, listed)
    assert tune.reports == [({"step": 120}, None)]


def test_a_pruned_replay_buffer_leaves_the_model(tmp_path: Path) -> None:
    listed = _checkpoint(tmp_path, 100)
    listed.replay_buffer_path.unlink()  # type: ignore[union-attr]
    tune = _Tune()
    _report(tune, {"step": 100}, listed)
    assert tune.reports[0][1].files == ["model_100.zip"]
