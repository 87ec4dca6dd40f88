"""Imports commit in chunks: labellers keep writing, and the import stays all or nothing."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from vlmrm_core.frames import FrameRecord
from vlmrm_core.settings import get_settings
from vlmrm_core.store import datasets as store_datasets
from vlmrm_core.store import list_datasets
from vlmrm_core.store.datasets import (
    abandon_import,
    begin_import,
    count_frames,
    dataset_frames,
    get_dataset,
    update_dataset,
)
from vlmrm_core.store.db import session_scope
from vlmrm_core.store.ingest import ingest_frames, sweep_incoming
from vlmrm_core.store.labels import add_label, current_labels
from vlmrm_core.store.schema import DatasetFrame, Frame, Label

CHUNK = 40


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Many chunks from a small import, so the tests stay fast."""
    monkeypatch.setattr(store_datasets, "MEMBERS_PER_COMMIT", CHUNK)


def _memberships(engine: Engine) -> int:
    with session_scope(engine) as session:
        return int(session.scalar(select(func.count()).select_from(DatasetFrame)) or 0)


def _frame_files_match_rows(engine: Engine) -> bool:
    frames_dir = get_settings().frames_dir
    files = {p.stem for p in frames_dir.glob("??/*.png")}
    with session_scope(engine) as session:
        rows = set(session.scalars(select(Frame.hash)))
    return files == rows


def _fail_on_chunk(monkeypatch: pytest.MonkeyPatch, n: int) -> list[int]:
    """Make the n-th chunk of the next imports raise; returns the list of chunk calls seen."""
    real = store_datasets.add_import_chunk
    calls: list[int] = []

    def failing(*args: Any, **kwargs: Any) -> int:
        calls.append(1)
        if len(calls) == n:
            raise RuntimeError("chunk failed")
        return real(*args, **kwargs)

    monkeypatch.setattr(store_datasets, "add_import_chunk", failing)
    return calls


def test_labels_go_on_while_an_import_commits_and_none_is_lost(
    engine: Engine, make_frame: Callable[..., FrameRecord]
) -> None:
    ingest_frames(engine, "labelled", [make_frame(i) for i in range(5)])
    targets = [f.hash for f in dataset_frames(engine, "labelled")]
    written: list[int] = []
    stop = threading.Event()

    def label_loop() -> None:
        while not stop.is_set() or len(written) < 20:
            add_label(engine, "labelled", targets[len(written) % 5], "alice", len(written) % 2)
            written.append(1)

    labeller = threading.Thread(target=label_loop)
    labeller.start()
    try:
        report = ingest_frames(engine, "big", [make_frame(100 + i) for i in range(400)])
    finally:
        stop.set()
        labeller.join()
    assert report.added == 400 and count_frames(engine, "big") == 400
    assert not get_dataset(engine, "big").importing
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(Label)) == len(written)
    assert len(current_labels(engine, "labelled")) == 5
    assert _frame_files_match_rows(engine)


def test_a_dataset_is_not_listed_until_its_first_import_is_complete(
    engine: Engine, make_frame: Callable[..., FrameRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest_frames(engine, "old", [make_frame(i) for i in range(3)])
    real = store_datasets.add_import_chunk
    seen: list[dict[str, tuple[int, bool]]] = []

    def watching(*args: Any, **kwargs: Any) -> int:
        added = real(*args, **kwargs)
        listed = list_datasets(engine)
        seen.append({d.name: (d.n_frames, d.importing) for d in listed})
        return added

    monkeypatch.setattr(store_datasets, "add_import_chunk", watching)
    ingest_frames(engine, "new", [make_frame(10 + i) for i in range(200)])
    ingest_frames(engine, "old", [make_frame(300 + i) for i in range(100)])
    assert len(seen) == 5 + 3
    assert all("new" not in listing for listing in seen[:5])  # hidden while half imported
    assert all(listing["old"][1] for listing in seen[5:])  # existing one: marked importing
    final = {d.name: (d.n_frames, d.importing) for d in list_datasets(engine)}
    assert final == {"old": (103, False), "new": (200, False)}
    assert "imports_running" not in get_dataset(engine, "new").meta


def test_a_failed_import_leaves_no_dataset_and_no_memberships(
    engine: Engine, make_frame: Callable[..., FrameRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _fail_on_chunk(monkeypatch, 3)
    with pytest.raises(RuntimeError, match="chunk failed"):
        ingest_frames(engine, "d", [make_frame(i) for i in range(200)])
    assert len(calls) == 3  # two chunks were committed before the failure
    assert list_datasets(engine, include_importing=True) == []
    assert _memberships(engine) == 0
    assert _frame_files_match_rows(engine)  # committed frame rows keep their files


def test_a_failed_import_into_an_existing_dataset_removes_only_its_memberships(
    engine: Engine, make_frame: Callable[..., FrameRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest_frames(engine, "d", [make_frame(i) for i in range(50)])
    update_dataset(engine, "d", description="kept")
    before = [(f.hash, f.position) for f in dataset_frames(engine, "d")]
    _fail_on_chunk(monkeypatch, 2)
    with pytest.raises(RuntimeError, match="chunk failed"):
        ingest_frames(engine, "d", [make_frame(100 + i) for i in range(100)])
    assert [(f.hash, f.position) for f in dataset_frames(engine, "d")] == before
    summary = get_dataset(engine, "d")
    assert not summary.importing and summary.description == "kept"


def test_a_frame_twice_in_one_import_is_handled_across_chunks(
    engine: Engine, make_frame: Callable[..., FrameRecord]
) -> None:
    frames = [make_frame(i) for i in range(CHUNK)]
    again = make_frame(0)  # same pixels and provenance, in the next chunk: not added again
    renamed = make_frame(1, name="other.png")  # same pixels, other name: a second membership
    report = ingest_frames(engine, "d", [*frames, again, renamed])
    assert report.added == CHUNK + 1 and report.imported == CHUNK
    assert count_frames(engine, "d") == CHUNK + 1
    assert count_frames(engine, "d", distinct_frames=True) == CHUNK
    positions = [f.position for f in dataset_frames(engine, "d")]
    assert positions == list(range(CHUNK + 1))


def test_the_sweep_undoes_an_import_whose_process_died(
    engine: Engine, make_frame: Callable[..., FrameRecord]
) -> None:
    ingest_frames(engine, "d", [make_frame(i) for i in range(3)])
    # A killed import: marker and one committed chunk, no staging folder (its lock is gone).
    begin_import(engine, "d", "upload", "dead-import", staged=True)
    store_datasets.add_import_chunk(
        engine, "d", "dead-import", [], [{**_member(f), "name": "x"} for f in _infos(engine)]
    )
    begin_import(engine, "fresh", "upload", "dead-too", staged=True)
    assert count_frames(engine, "d") == 6 and get_dataset(engine, "d").importing
    report = sweep_incoming(engine, get_settings())
    assert report.abandoned_memberships == 3
    assert count_frames(engine, "d") == 3 and not get_dataset(engine, "d").importing
    assert [d.name for d in list_datasets(engine, include_importing=True)] == ["d"]


def test_an_unstaged_import_is_not_swept_and_abandoning_twice_is_harmless(
    engine: Engine,
) -> None:
    begin_import(engine, "d", "upload", "running-elsewhere")  # no staging folder by design
    sweep_incoming(engine, get_settings())
    assert get_dataset(engine, "d").importing
    assert abandon_import(engine, "d", "running-elsewhere") == 0
    assert abandon_import(engine, "d", "running-elsewhere") == 0
    assert list_datasets(engine, include_importing=True) == []


def _infos(engine: Engine) -> list[Any]:
    return dataset_frames(engine, "d")


def _member(info: Any) -> dict[str, Any]:
    return {
        "frame_hash": info.hash,
        "source": info.source,
        "name": info.name,
        "env_id": None,
        "episode": None,
        "step": None,
        "state": None,
        "param_name": None,
        "param_value": None,
        "extra": None,
    }
