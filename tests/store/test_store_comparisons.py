"""Pairwise comparisons: history, current answers, undo, identity, export and concurrency."""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine

from tests.store.conftest import ADMIN, ALICE, BOB, RESEARCHER
from vlmrm_core.frames import FrameRecord, pixel_hash
from vlmrm_core.store import (
    InvalidInputError,
    NotFoundError,
    delete_dataset,
    ingest_frames,
    init_db,
)
from vlmrm_core.store.comparisons import (
    add_comparison,
    add_comparison_as,
    comparison_history,
    current_comparisons,
    export_comparisons,
    undo_comparison_as,
    undo_last_comparison,
)
from vlmrm_core.store.tasks import create_task, delete_task
from vlmrm_core.store.users import AccessError

MakeFrame = Callable[..., FrameRecord]


def _dataset(engine: Engine, make_frame: MakeFrame, n: int = 6, name: str = "d") -> list[str]:
    ingest_frames(engine, name, [make_frame(i) for i in range(n)])
    return [pixel_hash(make_frame(i).pixels) for i in range(n)]


def test_latest_answer_about_a_pair_is_current_whichever_side(
    engine: Engine, make_frame: MakeFrame
) -> None:
    h = _dataset(engine, make_frame)
    add_comparison(engine, "d", h[0], h[1], "ann", "a")
    add_comparison(engine, "d", h[1], h[0], "ann", "B ")  # the same pair, shown the other way
    add_comparison(engine, "d", h[0], h[1], "bob", "equal")
    add_comparison(engine, "d", h[2], h[3], "ann", "b")
    history = comparison_history(engine, "d")
    assert len(history) == 4 and history["id"].is_monotonic_increasing
    current = current_comparisons(engine, "d")
    got = {(r.labeler, r.frame_a, r.frame_b, r.choice) for r in current.itertuples()}
    assert got == {
        ("ann", h[1], h[0], "b"),
        ("bob", h[0], h[1], "equal"),
        ("ann", h[2], h[3], "b"),
    }
    assert str(current["created_at"].dt.tz) == "UTC"


def test_bad_input_is_refused(engine: Engine, make_frame: MakeFrame) -> None:
    h = _dataset(engine, make_frame)
    with pytest.raises(InvalidInputError, match="a, b or equal"):
        add_comparison(engine, "d", h[0], h[1], "ann", "left")
    with pytest.raises(InvalidInputError, match="two different frames"):
        add_comparison(engine, "d", h[0], h[0], "ann", "a")
    with pytest.raises(NotFoundError, match="not in dataset"):
        add_comparison(engine, "d", h[0], "f" * 64, "ann", "a")
    with pytest.raises(NotFoundError, match="no dataset"):
        add_comparison(engine, "nope", h[0], h[1], "ann", "a")
    with pytest.raises(NotFoundError, match="no task"):
        add_comparison(engine, "d", h[0], h[1], "ann", "a", task="nope")
    assert comparison_history(engine, "d").empty


def test_undo_removes_only_own_latest_row_of_the_session(
    engine: Engine, make_frame: MakeFrame
) -> None:
    h = _dataset(engine, make_frame)
    add_comparison(engine, "d", h[0], h[1], "ann", "a", session_id="s1")
    add_comparison(engine, "d", h[0], h[1], "ann", "b", session_id="s1")
    add_comparison(engine, "d", h[2], h[3], "ann", "a", session_id="s2")
    add_comparison(engine, "d", h[4], h[5], "bob", "a", session_id="s1")
    undone = undo_last_comparison(engine, "d", "ann", session_id="s1")
    assert undone is not None and undone.choice == "b" and undone.labeler == "ann"
    current = current_comparisons(engine, "d")
    ann = current[current["labeler"] == "ann"].set_index("frame_a")["choice"].to_dict()
    assert ann == {h[0]: "a", h[2]: "a"}  # the earlier answer about (0, 1) is current again
    assert len(current[current["labeler"] == "bob"]) == 1  # bob's row untouched
    assert undo_last_comparison(engine, "d", "carol") is None
    assert undo_last_comparison(engine, "d", "ann", session_id="s3") is None
    # An undone id is never handed out again (AUTOINCREMENT on SQLite, sequences on PostgreSQL).
    record = add_comparison(engine, "d", h[0], h[1], "ann", "equal")
    assert record.id > undone.id


def test_signed_in_identity_and_tasks(team: Engine, make_frame: MakeFrame) -> None:
    engine = team
    h = _dataset(engine, make_frame)
    _dataset(engine, make_frame, name="other")
    create_task(
        engine, "pairs", "d", "Which is closer?", actor=RESEARCHER, assignees=[ALICE],
        frame_hashes=h[:4],
    )  # fmt: skip
    record = add_comparison_as(engine, ALICE, "d", h[0], h[1], "a", session_id="s", task="pairs")
    assert (record.labeler, record.task) == (ALICE, "pairs")
    with pytest.raises(AccessError):  # bob has no task on this dataset
        add_comparison_as(engine, BOB, "d", h[0], h[1], "a", session_id="t")
    with pytest.raises(AccessError):
        add_comparison_as(engine, ALICE, "other", h[0], h[1], "a", session_id="s")
    with pytest.raises(InvalidInputError, match="not among the frames"):
        add_comparison_as(engine, ALICE, "d", h[0], h[5], "a", session_id="s", task="pairs")
    add_comparison_as(engine, ADMIN, "d", h[2], h[3], "b", session_id="s")
    # Alice's undo never removes the admin's newer row, even in the same session id.
    undone = undo_comparison_as(engine, ALICE, "d", session_id="s")
    assert undone is not None and (undone.labeler, undone.task) == (ALICE, "pairs")
    assert current_comparisons(engine, "d")["labeler"].tolist() == [ADMIN]

    add_comparison_as(engine, ALICE, "d", h[0], h[1], "equal", session_id="s", task="pairs")
    delete_task(engine, "pairs", actor=RESEARCHER)  # the comparisons stay, without their task
    current = current_comparisons(engine, "d")
    assert len(current) == 2 and current["task"].isna().all()


def test_export_csv_and_jsonl(engine: Engine, make_frame: MakeFrame, tmp_path: Path) -> None:
    h = _dataset(engine, make_frame)
    add_comparison(engine, "d", h[0], h[1], "=cmd()", "a")
    add_comparison(engine, "d", h[2], h[1], "ann", "equal")
    csv_path = export_comparisons(engine, "d", tmp_path / "out" / "p.csv")
    table = pd.read_csv(csv_path)
    assert table.columns.tolist()[:3] == ["dataset", "frame_a", "frame_b"]
    assert table["choice"].tolist() == ["a", "equal"]
    assert table["name_a"].tolist() == ["frame0.png", "frame2.png"]
    assert table["labeler"].iloc[0] == "'=cmd()"  # no spreadsheet formula
    lines = (export_comparisons(engine, "d", tmp_path / "p.jsonl", "jsonl")).read_text()
    rows = [json.loads(line) for line in lines.splitlines()]
    assert rows[1]["frame_b"] == h[1] and rows[0]["labeler"] == "=cmd()"
    with pytest.raises(InvalidInputError):
        export_comparisons(engine, "d", tmp_path / "p.parquet", "parquet")


def test_comparisons_go_with_their_dataset(engine: Engine, make_frame: MakeFrame) -> None:
    h = _dataset(engine, make_frame)
    add_comparison(engine, "d", h[0], h[1], "ann", "a")
    delete_dataset(engine, "d")
    _dataset(engine, make_frame)  # the same name again: a new, empty dataset
    assert current_comparisons(engine, "d").empty


def _compare_in_process(
    url: str, pairs: list[tuple[str, str]], worker: int, queue: multiprocessing.Queue
) -> None:  # type: ignore[type-arg]
    try:
        engine = init_db(url)  # each process starts the way the app and a worker do
        for i, (a, b) in enumerate(pairs):
            add_comparison(engine, "busy", a, b, f"proc{worker}", ("a", "b", "equal")[i % 3])
        queue.put("ok")
    except BaseException as exc:  # pragma: no cover - reported to the parent
        queue.put(repr(exc))


@pytest.mark.slow
def test_eight_processes_store_500_comparisons_each(
    engine: Engine, db_url: str, make_frame: MakeFrame
) -> None:
    """8 real processes × 500 comparisons on one database (SQLite file or PostgreSQL): 4000 rows,
    none lost, none doubled."""
    h = _dataset(engine, make_frame, n=40, name="busy")
    pairs = [(h[i], h[j]) for i in range(40) for j in range(i + 1, 40)][:500]
    ctx = multiprocessing.get_context("fork")  # engines are per process (pid-keyed)
    queue = ctx.Queue()
    procs = [
        ctx.Process(target=_compare_in_process, args=(db_url, pairs, w, queue)) for w in range(8)
    ]
    for p in procs:
        p.start()
    results = [queue.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert results == ["ok"] * 8
    history = comparison_history(engine, "busy")
    assert len(history) == 4000 and history["id"].is_unique
    assert not history.duplicated(["labeler", "frame_a", "frame_b"]).any()
    assert history.groupby("labeler").size().tolist() == [500] * 8
    assert len(current_comparisons(engine, "busy")) == 4000
