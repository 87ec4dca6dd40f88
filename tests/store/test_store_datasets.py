"""Ingest, dedupe, atomicity, reading back and deleting datasets."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, func, select

from vlmrm_core.frames import FrameRecord, Rejection, pixel_hash
from vlmrm_core.settings import Settings
from vlmrm_core.store import (
    NotFoundError,
    add_label,
    count_frames,
    dataset_frames,
    delete_dataset,
    frame_path,
    get_dataset,
    get_embeddings,
    ingest_frames,
    iter_pixels,
    list_datasets,
    load_pixels,
    put_embeddings,
    session_scope,
    update_dataset,
)
from vlmrm_core.store.schema import DatasetFrame, Frame

MakeFrame = Callable[..., FrameRecord]


def _table_counts(engine: Engine) -> tuple[int, int]:
    with session_scope(engine) as s:
        return (
            s.scalar(select(func.count()).select_from(Frame)) or 0,
            s.scalar(select(func.count()).select_from(DatasetFrame)) or 0,
        )


def test_ingest_end_to_end(
    engine: Engine, settings: Settings, make_frame: MakeFrame, frame_files: Callable[[], set[Path]]
) -> None:
    records = [
        make_frame(
            i,
            source="rollout",
            env_id="CartPole-v1",
            episode=0,
            step=i,
            state={"x": np.float32(0.5) * i, "v": [1, 2], "bad": float("nan")},
            extra={"note": "hi"},
        )
        for i in range(5)
    ]
    seen: list[tuple[int, int | None, str]] = []
    report = ingest_frames(
        engine, "roll", iter(records), kind="rollout", progress=lambda *a: seen.append(a)
    )
    assert (report.imported, report.duplicates, report.added, report.rejected) == (5, 0, 5, [])
    assert [d for d, _, _ in seen] == [1, 2, 3, 4, 5]
    assert all(total is None for _, total, _ in seen)

    assert len(frame_files()) == 5
    infos = dataset_frames(engine, "roll")
    assert [i.position for i in infos] == list(range(5))
    first = infos[0]
    assert first.hash == pixel_hash(records[0].pixels)
    assert (first.source, first.env_id, first.episode, first.step) == (
        "rollout",
        "CartPole-v1",
        0,
        0,
    )
    assert (first.width, first.height) == (10, 8)
    assert infos[2].state == {"x": 1.0, "v": [1, 2], "bad": None}  # numpy and NaN made JSON-safe
    assert first.extra == {"note": "hi"}
    assert frame_path(first.hash, settings) == settings.frames_dir / first.hash[:2] / (
        first.hash + ".png"
    )
    for rec, info in zip(records, infos, strict=True):
        np.testing.assert_array_equal(load_pixels(info.hash, settings), rec.pixels)

    assert dataset_frames(engine, "roll", offset=1, limit=2)[0].position == 1
    assert len(dataset_frames(engine, "roll", offset=1, limit=2)) == 2
    assert count_frames(engine, "roll") == 5

    batches = list(iter_pixels(engine, "roll", batch_size=2))
    assert [len(b[0]) for b in batches] == [2, 2, 1]
    np.testing.assert_array_equal(batches[2][1][0], records[4].pixels)

    [summary] = list_datasets(engine)
    assert (summary.name, summary.kind, summary.n_frames, summary.n_labelled) == (
        "roll",
        "rollout",
        5,
        0,
    )
    assert summary.created_at.tzinfo is not None


def test_dedupe_within_input_and_across_datasets(
    engine: Engine, make_frame: MakeFrame, frame_files: Callable[[], set[Path]]
) -> None:
    a, b = make_frame(1), make_frame(2)
    # Same pixels under another name within one input: one stored frame, two memberships.
    again = make_frame(1, name="copy-of-1.png")
    report = ingest_frames(engine, "one", [a, b, again])
    assert (report.imported, report.duplicates, report.added) == (2, 1, 3)
    assert count_frames(engine, "one") == 3
    assert count_frames(engine, "one", distinct_frames=True) == 2

    report = ingest_frames(engine, "two", [make_frame(2), make_frame(3)])
    assert (report.imported, report.duplicates, report.added) == (1, 1, 2)
    assert len(frame_files()) == 3
    assert _table_counts(engine) == (3, 5)


def test_rollout_repeats_same_pixels_at_different_steps(
    engine: Engine, make_frame: MakeFrame
) -> None:
    frames = [make_frame(7, source="rollout", name=None, episode=0, step=t) for t in range(3)]
    report = ingest_frames(engine, "still", frames, kind="rollout")
    assert (report.imported, report.duplicates, report.added) == (1, 2, 3)
    assert [i.step for i in dataset_frames(engine, "still")] == [0, 1, 2]
    # unnamed memberships are found again too (duplicates are looked up by hash and name)
    again = ingest_frames(engine, "still", frames, kind="rollout")
    assert (again.duplicates, again.added) == (3, 0)


def test_reimport_same_files_adds_nothing(
    engine: Engine, make_frame: MakeFrame, frame_files: Callable[[], set[Path]]
) -> None:
    ingest_frames(engine, "up", [make_frame(i) for i in range(4)])
    files = frame_files()
    report = ingest_frames(engine, "up", [make_frame(i) for i in range(4)])
    assert (report.imported, report.duplicates, report.added) == (0, 4, 0)
    assert count_frames(engine, "up") == 4
    assert frame_files() == files
    # New files appended after the existing ones.
    report = ingest_frames(engine, "up", [make_frame(1), make_frame(9)])
    assert (report.imported, report.duplicates, report.added) == (1, 1, 1)
    assert [i.position for i in dataset_frames(engine, "up")] == [0, 1, 2, 3, 4]


def test_rejections_counted(engine: Engine, make_frame: MakeFrame) -> None:
    bad_shape = FrameRecord(pixels=np.zeros((4, 4), dtype=np.uint8), source="upload", name="gray")
    bad_dtype = FrameRecord(pixels=np.zeros((4, 4, 3)), source="upload", name="float")
    items = [
        make_frame(1),
        Rejection(name="notes.txt", reason="not an image"),
        bad_shape,
        bad_dtype,
        make_frame(2),
    ]
    report = ingest_frames(engine, "mixed-input", items)
    assert (report.imported, report.added) == (2, 2)
    assert [r.name for r in report.rejected] == ["notes.txt", "gray", "float"]
    assert "uint8" in report.rejected[1].reason


def test_failure_midway_leaves_nothing_behind(
    engine: Engine, settings: Settings, make_frame: MakeFrame, frame_files: Callable[[], set[Path]]
) -> None:
    ingest_frames(engine, "base", [make_frame(i) for i in range(3)])
    before_files = frame_files()
    before_rows = _table_counts(engine)

    def exploding() -> Iterator[FrameRecord]:
        # Spans more than one internal batch, reuses stored frames, then fails.
        yield make_frame(0)
        for i in range(100, 170):
            yield make_frame(i)
        raise RuntimeError("decoder crashed")

    with pytest.raises(RuntimeError, match="decoder crashed"):
        ingest_frames(engine, "base", exploding())
    with pytest.raises(RuntimeError, match="decoder crashed"):
        ingest_frames(engine, "brand-new", exploding())
    assert frame_files() == before_files
    assert _table_counts(engine) == before_rows
    assert [d.name for d in list_datasets(engine)] == ["base"]
    assert list(settings.frames_dir.rglob("*.tmp")) == []


def test_create_false_and_kinds(engine: Engine, make_frame: MakeFrame) -> None:
    with pytest.raises(NotFoundError):
        ingest_frames(engine, "nope", [make_frame(1)], create=False)
    with pytest.raises(ValueError):
        ingest_frames(engine, "x", [], kind="bogus")
    ingest_frames(engine, "k", [make_frame(1)], kind="sweep")
    assert get_dataset(engine, "k").kind == "sweep"
    ingest_frames(engine, "k", [make_frame(2)], kind="sweep", create=False)
    assert get_dataset(engine, "k").kind == "sweep"
    ingest_frames(engine, "k", [make_frame(3)], kind="upload")
    assert get_dataset(engine, "k").kind == "mixed"
    assert ingest_frames(engine, "empty", []).added == 0
    assert get_dataset(engine, "empty").n_frames == 0


def test_update_dataset(engine: Engine, make_frame: MakeFrame) -> None:
    ingest_frames(engine, "d", [make_frame(1)])
    got = update_dataset(
        engine, "d", labels_required=3, graded=True, description="hi", meta={"k": 1}
    )
    assert (got.labels_required, got.graded, got.description, got.meta) == (3, True, "hi", {"k": 1})
    with pytest.raises(ValueError):
        update_dataset(engine, "d", labels_required=0)
    with pytest.raises(NotFoundError):
        update_dataset(engine, "zzz", graded=True)


def test_delete_dataset_keeps_shared_frames(
    engine: Engine, settings: Settings, make_frame: MakeFrame, frame_files: Callable[[], set[Path]]
) -> None:
    ingest_frames(engine, "a", [make_frame(i) for i in range(4)])
    ingest_frames(engine, "b", [make_frame(i) for i in range(2, 6)])
    shared = {pixel_hash(make_frame(i).pixels) for i in (2, 3)}
    only_a = {pixel_hash(make_frame(i).pixels) for i in (0, 1)}
    add_label(engine, "a", next(iter(only_a)), "ann", 1)
    add_label(engine, "a", next(iter(shared)), "ann", 0)
    put_embeddings(engine, "enc", sorted(only_a), np.ones((2, 3), dtype=np.float32))

    assert delete_dataset(engine, "a") == 2
    assert [d.name for d in list_datasets(engine)] == ["b"]
    names = {p.stem for p in frame_files()}
    assert shared <= names and not (only_a & names)
    assert len(names) == 4
    assert _table_counts(engine) == (4, 4)
    for h in shared:
        load_pixels(h, settings)  # still readable
    assert set(get_embeddings(engine, "enc", only_a)) == only_a  # the cache may stay
    with pytest.raises(NotFoundError):
        delete_dataset(engine, "a")
    with pytest.raises(NotFoundError):
        dataset_frames(engine, "a")


def test_missing_file_is_reported(settings: Settings) -> None:
    with pytest.raises(FileNotFoundError):
        load_pixels("ff" * 32, settings)


def test_large_import_streams(engine: Engine, make_frame: MakeFrame) -> None:
    # Generated lazily: the importer never asks for the whole input at once.
    produced = 0

    def gen() -> Iterator[FrameRecord]:
        nonlocal produced
        for i in range(300):
            produced += 1
            yield make_frame(10_000 + i, size=4)

    report = ingest_frames(engine, "big", gen())
    assert produced == 300 and report.imported == 300 and report.added == 300


def test_import_does_not_block_writers_while_reading_input(
    engine: Engine, make_frame: MakeFrame
) -> None:
    """A slow source must not hold the database's write lock (labellers keep working)."""
    ingest_frames(engine, "labelled", [make_frame(1)])
    target = pixel_hash(make_frame(1).pixels)
    stamps: list[float] = []

    def slow_source() -> Iterator[FrameRecord]:
        yield make_frame(50)
        start = time.perf_counter()
        add_label(engine, "labelled", target, "ann", 1)  # another writer, mid-import
        stamps.append(time.perf_counter() - start)
        yield make_frame(51)

    report = ingest_frames(engine, "slow", slow_source())
    assert report.added == 2
    assert stamps and stamps[0] < 5  # would wait for busy_timeout (30 s) if the lock were held
