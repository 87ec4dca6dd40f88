"""Labels: history, undo, queues, consensus, export, and concurrent labelling."""

from __future__ import annotations

import json
import multiprocessing
import threading
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine

from vlmrm_core.frames import FrameRecord, pixel_hash
from vlmrm_core.store import (
    NotFoundError,
    add_label,
    consensus_labels,
    current_labels,
    dataset_frames,
    export_labels,
    get_or_create_labeler,
    ingest_frames,
    init_db,
    label_history,
    label_progress,
    label_queue,
    list_datasets,
    undo_last_label,
    update_dataset,
)

MakeFrame = Callable[..., FrameRecord]


def _dataset(engine: Engine, make_frame: MakeFrame, n: int = 6, name: str = "d") -> list[str]:
    ingest_frames(engine, name, [make_frame(i) for i in range(n)])
    return [pixel_hash(make_frame(i).pixels) for i in range(n)]


def test_labeler_get_or_create(engine: Engine) -> None:
    a = get_or_create_labeler(engine, "ann")
    assert get_or_create_labeler(engine, " ann ") == a
    assert get_or_create_labeler(engine, "bob") != a
    with pytest.raises(ValueError):
        get_or_create_labeler(engine, "  ")


def test_later_label_supersedes_and_history_is_kept(engine: Engine, make_frame: MakeFrame) -> None:
    h = _dataset(engine, make_frame)
    first = add_label(engine, "d", h[0], "ann", 1)
    add_label(engine, "d", h[0], "ann", 0)
    add_label(engine, "d", h[0], "bob", 1)
    add_label(engine, "d", h[1], "ann", 1)
    assert first.value == 1.0 and first.created_at.tzinfo is not None

    current = current_labels(engine, "d")
    assert list(current.columns) == ["frame_hash", "labeler", "value", "created_at"]
    got = {(r.frame_hash, r.labeler): r.value for r in current.itertuples()}
    assert got == {(h[0], "ann"): 0.0, (h[0], "bob"): 1.0, (h[1], "ann"): 1.0}
    assert str(current["created_at"].dt.tz) == "UTC"

    history = label_history(engine, "d")
    assert len(history) == 4 and list(history["value"]) == [1.0, 0.0, 1.0, 1.0]
    assert len(label_history(engine, "d", labeler="bob")) == 1

    consensus = consensus_labels(engine, "d")
    assert consensus.name == "consensus"
    assert consensus.to_dict() == {h[0]: 0.5, h[1]: 1.0}
    assert list_datasets(engine)[0].n_labelled == 2


def test_value_validation(engine: Engine, make_frame: MakeFrame) -> None:
    h = _dataset(engine, make_frame)
    with pytest.raises(ValueError, match="graded"):
        add_label(engine, "d", h[0], "ann", 0.5)
    for bad in (1.5, -0.1, float("nan")):
        with pytest.raises(ValueError):
            add_label(engine, "d", h[0], "ann", bad)
    update_dataset(engine, "d", graded=True)
    assert add_label(engine, "d", h[0], "ann", 0.25).value == 0.25
    with pytest.raises(NotFoundError):
        add_label(engine, "d", "0" * 64, "ann", 1)
    with pytest.raises(NotFoundError):
        add_label(engine, "nope", h[0], "ann", 1)


def test_undo(engine: Engine, make_frame: MakeFrame) -> None:
    h = _dataset(engine, make_frame)
    assert undo_last_label(engine, "d", "ann") is None  # unknown labeler
    add_label(engine, "d", h[0], "ann", 1)
    add_label(engine, "d", h[1], "ann", 1)
    add_label(engine, "d", h[1], "ann", 0)
    add_label(engine, "d", h[2], "bob", 1)
    removed = undo_last_label(engine, "d", "ann")
    assert removed is not None and (removed.frame_hash, removed.value) == (h[1], 0.0)
    # The earlier label of that frame is current again.
    current = current_labels(engine, "d").set_index(["frame_hash", "labeler"])["value"]
    assert current[(h[1], "ann")] == 1.0
    assert undo_last_label(engine, "d", "ann").frame_hash == h[1]  # type: ignore[union-attr]
    assert undo_last_label(engine, "d", "ann").frame_hash == h[0]  # type: ignore[union-attr]
    assert undo_last_label(engine, "d", "ann") is None
    assert len(label_history(engine, "d")) == 1  # bob's label untouched


def test_queue_is_reproducible_and_skips_done_frames(engine: Engine, make_frame: MakeFrame) -> None:
    h = _dataset(engine, make_frame, n=20)
    # Same pixels at another position: queued once.
    ingest_frames(engine, "d", [make_frame(0, name="again.png")])
    queue = label_queue(engine, "d", "ann")
    assert sorted(queue) == sorted(h)
    assert label_queue(engine, "d", "ann") == queue
    assert label_queue(engine, "d", "bob") == queue  # order depends on dataset and seed only
    other_seed = label_queue(engine, "d", "ann", seed=1)
    assert sorted(other_seed) == sorted(queue) and other_seed != queue
    assert queue != sorted(queue) and queue != h  # shuffled

    # Labelling keeps the order of what is left (stable).
    add_label(engine, "d", queue[0], "ann", 1)
    add_label(engine, "d", queue[5], "ann", 0)
    assert label_queue(engine, "d", "ann") == [q for i, q in enumerate(queue) if i not in (0, 5)]

    # k = 1: a frame labelled by someone else leaves everybody else's queue.
    add_label(engine, "d", queue[3], "bob", 1)
    ann = label_queue(engine, "d", "ann")
    assert queue[3] not in ann
    assert queue[3] not in label_queue(engine, "d", "bob")  # bob did it himself
    assert queue[0] not in label_queue(engine, "d", "carol")

    # k = 2: one other label is not enough any more; two are.
    update_dataset(engine, "d", labels_required=2)
    assert queue[3] in label_queue(engine, "d", "carol")
    add_label(engine, "d", queue[3], "ann", 1)
    assert queue[3] not in label_queue(engine, "d", "carol")

    progress = label_progress(engine, "d", "ann")
    assert progress == (3, 20, 1)
    assert progress.yours == 3 and progress.frames_with_k == 1
    assert label_progress(engine, "d", "nobody") == (0, 20, 1)


def test_export_roundtrip(engine: Engine, make_frame: MakeFrame, tmp_path: Path) -> None:
    h = _dataset(engine, make_frame, n=3)
    add_label(engine, "d", h[0], "ann", 1)
    add_label(engine, "d", h[0], "ann", 0)
    add_label(engine, "d", h[2], "bob", 1)
    names = {i.hash: i.name for i in dataset_frames(engine, "d")}
    expected = {(h[0], "ann", 0.0), (h[2], "bob", 1.0)}

    for fmt in ("csv", "jsonl", "parquet"):
        path = export_labels(engine, "d", tmp_path / "out" / f"labels.{fmt}", fmt=fmt)
        if fmt == "csv":
            table = pd.read_csv(path)
        elif fmt == "jsonl":
            lines = path.read_text().splitlines()
            assert all(json.loads(line) for line in lines)
            table = pd.read_json(path, lines=True)
        else:
            table = pd.read_parquet(path)
        assert (
            set(zip(table["frame_hash"], table["labeler"], table["value"], strict=True)) == expected
        )
        assert set(table["dataset"]) == {"d"}
        assert {r.frame_hash: r.frame_name for r in table.itertuples()} == {
            h[0]: names[h[0]],
            h[2]: names[h[2]],
        }
        stamps = pd.to_datetime(table["created_at"], utc=True)
        assert stamps.notna().all()
    with pytest.raises(ValueError):
        export_labels(engine, "d", tmp_path / "x.xlsx", fmt="xlsx")


def test_eight_threads_label_at_once(engine: Engine, make_frame: MakeFrame) -> None:
    """8 threads × 125 labels on distinct (labeler, frame) pairs: exactly 1000 rows."""
    h = _dataset(engine, make_frame, n=125, name="busy")
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def work(t: int) -> None:
        try:
            barrier.wait()
            for frame in h:
                add_label(engine, "busy", frame, f"labeler{t}", (t + len(frame)) % 2)
        except BaseException as exc:  # pragma: no cover - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    history = label_history(engine, "busy")
    assert len(history) == 1000
    assert not history.duplicated(["frame_hash", "labeler"]).any()
    assert history["id"].is_unique
    assert len(current_labels(engine, "busy")) == 1000


def _label_in_process(
    url: str, frames: list[str], worker: int, queue: multiprocessing.Queue
) -> None:  # type: ignore[type-arg]
    try:
        engine = init_db(url)  # each process starts the way the app and a worker do
        for frame in frames:
            add_label(engine, "busy", frame, f"proc{worker}", 1)
        queue.put("ok")
    except BaseException as exc:  # pragma: no cover - reported to the parent
        queue.put(repr(exc))


def test_four_processes_label_the_same_sqlite_file(
    tmp_path: Path, data_dir: Path, make_frame: MakeFrame
) -> None:
    """4 processes × 250 labels on one SQLite file: exactly 1000 rows."""
    db_url = f"sqlite:///{tmp_path / 'shared.db'}"
    engine = init_db(db_url)
    h = _dataset(engine, make_frame, n=250, name="busy")
    ctx = multiprocessing.get_context("fork")  # fast start; engines are per-process (pid-keyed)
    queue = ctx.Queue()
    procs = [ctx.Process(target=_label_in_process, args=(db_url, h, w, queue)) for w in range(4)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert results == ["ok"] * 4
    history = label_history(engine, "busy")
    assert len(history) == 1000
    assert not history.duplicated(["frame_hash", "labeler"]).any()
