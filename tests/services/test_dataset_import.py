"""Creating datasets from uploads, rollouts, sweeps and poses, with the input checks."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import Engine

from vlmrm_core.frames import FrameRecord, Rejection
from vlmrm_core.services.dataset_import import (
    ImportInputError,
    check_dataset_name,
    import_humanoid_poses,
    import_rollout,
    import_sweep,
    import_uploads,
    iter_uploaded,
    rejection_table,
    report_summary,
)
from vlmrm_core.settings import get_settings
from vlmrm_core.sources import RolloutError
from vlmrm_core.store import dataset_frames, get_dataset, init_db, list_datasets, load_pixels


@pytest.fixture
def engine(data_dir: Path) -> Engine:
    return init_db()


def png(colour: tuple[int, int, int], size: tuple[int, int] = (16, 12)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def zip_of(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_check_dataset_name() -> None:
    assert check_dataset_name("  my set ") == "my set"
    for bad in ["", "   ", "a\nb", "tab\there", "x" * 121]:
        with pytest.raises(ImportInputError):
            check_dataset_name(bad)


def test_import_uploads_images_zip_and_bad_file(engine: Engine) -> None:
    red, blue, green = png((255, 0, 0)), png((0, 0, 255)), png((0, 255, 0))
    archive = zip_of({"inner/green.png": green, "inner/red-again.png": red, "notes.txt": b"hi"})
    files = [
        ("red.png", io.BytesIO(red)),
        ("blue.png", blue),
        ("frames.zip", io.BytesIO(archive)),
        ("fake.png", b"this is text, not a PNG"),
    ]
    calls: list[tuple[int, int | None, str]] = []
    report = import_uploads(engine, " shots ", files, progress=lambda *a: calls.append(a))
    assert report.dataset == "shots"
    assert (report.imported, report.duplicates, report.added) == (3, 1, 4)
    rejected = {r.name for r in report.rejected}
    assert rejected == {"frames.zip/notes.txt", "fake.png"}
    assert [c[:2] for c in calls] == [(0, 4), (1, 4), (2, 4), (3, 4), (4, 4)]

    frames = dataset_frames(engine, "shots")
    assert [f.name for f in frames] == [
        "red.png",
        "blue.png",
        "inner/green.png",
        "inner/red-again.png",
    ]
    assert load_pixels(frames[1].hash)[0, 0].tolist() == [0, 0, 255]
    assert get_dataset(engine, "shots").kind == "upload"

    table = rejection_table(report)
    assert list(table.columns) == ["input", "reason"] and len(table) == 2
    assert "not an image" in table.set_index("input").loc["fake.png", "reason"]
    assert report_summary(report) == (
        "3 new frames, 1 duplicate, 2 rejected inputs; 4 frames added to dataset 'shots'."
    )

    # The same files again (file objects already read once): nothing new, all duplicates.
    again = import_uploads(engine, "shots", files)
    assert (again.imported, again.duplicates, again.added) == (0, 4, 0)


def test_import_uploads_rejects_bad_input_before_reading(engine: Engine) -> None:
    with pytest.raises(ImportInputError, match="dataset name"):
        import_uploads(engine, " ", [("a.png", png((1, 2, 3)))])
    with pytest.raises(ImportInputError, match="at least one file"):
        import_uploads(engine, "x", [])
    with pytest.raises(ImportInputError, match="k ≥ 1"):
        import_uploads(engine, "x", [("a.png", png((1, 2, 3)))], every_k=0)
    with pytest.raises(ImportInputError, match="per video"):
        import_uploads(engine, "x", [("a.png", png((1, 2, 3)))], max_video_frames=0)
    assert list_datasets(engine) == []


def test_iter_uploaded_yields_frames_and_rejections_in_order() -> None:
    items = list(iter_uploaded([("a.png", png((9, 9, 9))), ("b.txt", b"nope")]))
    assert isinstance(items[0], FrameRecord) and items[0].name == "a.png"
    assert isinstance(items[1], Rejection) and items[1].name == "b.txt"


def test_import_rollout(engine: Engine) -> None:
    report = import_rollout(engine, "cp", "CartPole-v1", episodes=1, steps=3, seed=1)
    assert report.added == 4 and report.rejected == []
    frames = dataset_frames(engine, "cp")
    assert [(f.episode, f.step) for f in frames] == [(0, 0), (0, 1), (0, 2), (0, 3)]
    assert get_dataset(engine, "cp").kind == "rollout"


def test_import_rollout_errors(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(RolloutError, match="Unknown gymnasium environment"):
        import_rollout(engine, "x", "CartPol-v1")
    with pytest.raises(ImportInputError, match="environment id"):
        import_rollout(engine, "x", "  ")
    with pytest.raises(ImportInputError, match="dataset name"):
        import_rollout(engine, "", "CartPole-v1")
    with pytest.raises(ImportInputError, match="Episodes"):
        import_rollout(engine, "x", "CartPole-v1", episodes=0)
    with pytest.raises(ImportInputError, match="stable-baselines3"):
        import_rollout(engine, "x", "CartPole-v1", policy=" ")
    with pytest.raises(RolloutError):
        import_rollout(engine, "x", "CartPole-v1", policy=str(tmp_path / "missing.zip"))
    with pytest.raises(RolloutError, match="textured"):
        import_rollout(engine, "x", "CartPole-v1", textured=True)
    assert list_datasets(engine) == []


def test_import_sweep(engine: Engine) -> None:
    report = import_sweep(engine, "mc", "mountaincar", points=3, textured=True)
    assert report.added == 3
    frames = dataset_frames(engine, "mc")
    assert [f.param_name for f in frames] == ["position"] * 3
    assert frames[0].param_value == pytest.approx(-1.2) and frames[-1].param_value == 0.6
    assert get_dataset(engine, "mc").kind == "sweep"
    with pytest.raises(ImportInputError, match="Unknown sweep"):
        import_sweep(engine, "x", "pendulum")
    with pytest.raises(ImportInputError, match="Points"):
        import_sweep(engine, "x", "cartpole", points=0)
    with pytest.raises(ImportInputError, match="MountainCar"):
        import_sweep(engine, "x", "cartpole", points=3, textured=True)


def test_import_humanoid_poses_checks_its_input(engine: Engine) -> None:
    with pytest.raises(ImportInputError, match="at least one pose"):
        import_humanoid_poses(engine, "h", [])
    with pytest.raises(ImportInputError, match="Unknown pose"):
        import_humanoid_poses(engine, "h", ["standing", "moonwalk"])
    assert list_datasets(engine) == []


def test_failed_import_leaves_nothing(engine: Engine) -> None:
    def broken(*_: object) -> None:
        raise RuntimeError("progress display died")

    with pytest.raises(RuntimeError):
        import_uploads(engine, "x", [("a.png", png((5, 5, 5)))], progress=broken)
    assert list_datasets(engine) == []
    assert not any((get_settings().frames_dir).rglob("*.png"))
