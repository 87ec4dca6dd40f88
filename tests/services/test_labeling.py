"""Labelling sessions (queue order, skip, undo), agreement reports and label exports."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vlmrm_core.errors import InvalidInputError, VlmrmError
from vlmrm_core.frames import FrameRecord, pixel_hash
from vlmrm_core.services.labeling import (
    LabelSession,
    agreement_report,
    check_labeler_name,
    export_bytes,
    export_file_name,
    frame_infos,
    label_text,
    labeler_seed,
)
from vlmrm_core.store import (
    Engine,
    NotFoundError,
    add_label,
    current_labels,
    ingest_frames,
    init_db,
    label_queue,
    update_dataset,
)


@pytest.fixture
def engine(data_dir: Path) -> Engine:
    return init_db()


def _frames(engine: Engine, n: int = 4, name: str = "d") -> list[str]:
    """A dataset of n distinct frames; returns their hashes in dataset order."""
    records = [
        FrameRecord(
            pixels=np.full((6, 8, 3), 20 * i, np.uint8), source="upload", name=f"frame {i}.png"
        )
        for i in range(n)
    ]
    ingest_frames(engine, name, records)
    return [pixel_hash(r.pixels) for r in records]


def test_queue_follows_the_store_order_for_the_labelers_seed(engine: Engine) -> None:
    hashes = _frames(engine, 6)
    session = LabelSession("d", "ann")
    assert session.seed == labeler_seed("ann") == labeler_seed("  ann ")
    assert labeler_seed("ann") != labeler_seed("bob")
    assert session.queue(engine) == label_queue(engine, "d", "ann", labeler_seed("ann"))
    assert sorted(session.queue(engine)) == sorted(hashes)


def test_label_skip_undo(engine: Engine) -> None:
    _frames(engine, 4)
    session = LabelSession("d", "ann")
    order = session.queue(engine)

    session.label(engine, order[0], 1.0)
    session.label(engine, order[1], 0.0)
    assert session.queue(engine) == order[2:]
    got = current_labels(engine, "d").set_index("frame_hash")["value"].to_dict()
    assert got == {order[0]: 1.0, order[1]: 0.0}

    session.skip(order[2])  # goes last, unlabelled
    assert session.queue(engine) == [order[3], order[2]]
    assert len(current_labels(engine, "d")) == 2

    undone = session.undo(engine)  # removes the latest label (order[1]) and shows it first
    assert undone is not None and undone.frame_hash == order[1] and undone.value == 0.0
    assert session.queue(engine) == [order[1], order[3], order[2]]
    assert set(current_labels(engine, "d")["frame_hash"]) == {order[0]}

    session.undo(engine)  # most recently undone comes first
    assert session.queue(engine) == [order[0], order[1], order[3], order[2]]
    assert session.undo(engine) is None  # nothing left to undo

    # labelling an undone frame takes it out of the history; skipped frames keep their place
    session.label(engine, order[0], 1.0)
    assert session.front == [order[1]] and session.skipped == [order[2]]
    assert session.queue(engine) == [order[1], order[3], order[2]]


def test_queue_leaves_out_frames_with_k_labels_from_others(engine: Engine) -> None:
    hashes = _frames(engine, 3)
    add_label(engine, "d", hashes[0], "bob", 1)
    assert hashes[0] not in LabelSession("d", "ann").queue(engine)  # k = 1 by default
    update_dataset(engine, "d", labels_required=2)
    assert hashes[0] in LabelSession("d", "ann").queue(engine)
    add_label(engine, "d", hashes[0], "cat", 0)
    assert hashes[0] not in LabelSession("d", "ann").queue(engine)
    progress = LabelSession("d", "ann").progress(engine)
    assert (progress.yours, progress.total, progress.frames_with_k) == (0, 3, 1)


def test_arrange_drops_frames_no_longer_queued() -> None:
    session = LabelSession("d", "ann", front=["x", "a"], skipped=["b", "y"])
    assert session.arrange(["a", "b", "c"]) == ["a", "c", "b"]


def test_frame_infos_gives_the_first_membership(engine: Engine) -> None:
    hashes = _frames(engine, 2)
    # the same pixels again under another name: a second membership of the first frame
    again = FrameRecord(pixels=np.full((6, 8, 3), 0, np.uint8), source="upload", name="copy.png")
    ingest_frames(engine, "d", [again])
    infos = frame_infos(engine, "d", [hashes[0], hashes[1], "f" * 64])
    assert set(infos) == set(hashes)
    assert infos[hashes[0]].name == "frame 0.png" and infos[hashes[0]].position == 0
    assert (infos[hashes[1]].width, infos[hashes[1]].height) == (8, 6)
    with pytest.raises(NotFoundError):
        frame_infos(engine, "nope", hashes)
    # Looked up in chunks (SQL parameter limits): hashes spread over several chunks still match.
    unknown = [f"{i:064x}" for i in range(2_000)]
    many = frame_infos(engine, "d", [*unknown[:1_000], hashes[1], *unknown[1_000:], hashes[0]])
    assert set(many) == set(hashes) and many[hashes[1]].name == "frame 1.png"


def test_agreement_report_matches_hand_computation(engine: Engine) -> None:
    hashes = _frames(engine, 4)
    for h, a, b in zip(hashes, [1, 1, 0, 0], [1, 0, 0, 0], strict=True):
        add_label(engine, "d", h, "alice", a)
        add_label(engine, "d", h, "bob", b)
    report = agreement_report(engine, "d")
    assert report.labelers == ["alice", "bob"]
    assert (report.n_frames, report.n_shared, report.graded) == (4, 4, False)
    row = report.pairwise.iloc[0]
    assert (row.labeler_a, row.labeler_b, row.n_common) == ("alice", "bob", 4)
    # p_o = 3/4, p_e = 1/2 · 1/4 + 1/2 · 3/4 = 1/2  →  κ = (3/4 − 1/2) / (1 − 1/2) = 1/2
    assert row.observed_agreement == pytest.approx(0.75)
    assert row.kappa == pytest.approx(0.5)
    # coincidences o00 = 4, o11 = 2, o01 = o10 = 1; n = 8: α = 1 − 7 · 2 / (2 · 5 · 3) = 8/15
    assert report.alpha == pytest.approx(8 / 15)
    assert list(report.labeller_disagreements["frame_hash"]) == [hashes[1]]
    assert report.labeller_disagreements.iloc[0]["labels"] == "alice: success, bob: failure"


def test_agreement_report_edge_cases(engine: Engine) -> None:
    hashes = _frames(engine, 3)
    empty = agreement_report(engine, "d")
    assert empty.n_frames == 0 and empty.alpha is None and empty.pairwise.empty
    assert empty.labeller_disagreements.empty and "two labelers" in empty.alpha_note

    add_label(engine, "d", hashes[0], "alice", 1)
    add_label(engine, "d", hashes[0], "bob", 1)
    same = agreement_report(engine, "d")
    assert same.alpha is None and "undefined" in same.alpha_note
    assert np.isnan(same.pairwise.iloc[0]["kappa"])  # no variation: κ undefined, not 1


def test_agreement_report_graded(engine: Engine) -> None:
    hashes = _frames(engine, 3, name="g")
    update_dataset(engine, "g", graded=True)
    for h, a, b in zip(hashes, [0.9, 0.2, 0.6], [0.8, 0.3, 0.0], strict=True):
        add_label(engine, "g", h, "alice", a)
        add_label(engine, "g", h, "bob", b)
    report = agreement_report(engine, "g")
    assert report.graded and "interval" in report.alpha_note and report.alpha is not None
    # split at 0.5: alice (1, 0, 1), bob (1, 0, 0) agree on 2 of 3
    assert report.pairwise.iloc[0]["observed_agreement"] == pytest.approx(2 / 3)
    # only the frame whose labels spread by ≥ 0.5 is a disagreement
    assert list(report.labeller_disagreements["frame_hash"]) == [hashes[2]]
    assert report.labeller_disagreements.iloc[0]["spread"] == pytest.approx(0.6)
    assert report.labeller_disagreements.iloc[0]["labels"] == "alice: 0.60, bob: failure"


def test_export_bytes_in_every_format(engine: Engine) -> None:
    hashes = _frames(engine, 2)
    add_label(engine, "d", hashes[0], "alice", 1)
    add_label(engine, "d", hashes[1], "bob", 0)
    csv = pd.read_csv(io.BytesIO(export_bytes(engine, "d", "csv")))
    assert list(csv.columns) == [
        "dataset",
        "frame_hash",
        "frame_name",
        "position",
        "labeler",
        "value",
        "created_at",
    ]
    assert set(zip(csv.frame_name, csv.labeler, csv.value, strict=True)) == {
        ("frame 0.png", "alice", 1.0),
        ("frame 1.png", "bob", 0.0),
    }
    lines = export_bytes(engine, "d", "jsonl").decode().splitlines()
    assert sorted(json.loads(line)["labeler"] for line in lines) == ["alice", "bob"]
    parquet = pd.read_parquet(io.BytesIO(export_bytes(engine, "d", "parquet")))
    assert len(parquet) == 2 and set(parquet.frame_hash) == set(hashes)
    with pytest.raises(ValueError):
        export_bytes(engine, "d", "xlsx")


def test_export_file_name_is_safe() -> None:
    assert export_file_name("demo-cartpole", "csv") == "labels-demo-cartpole.csv"
    assert export_file_name("../../etc/passwd", "jsonl") == "labels-etc_passwd.jsonl"
    assert export_file_name("ünïcode <b>", "parquet") == "labels-n_code_b.parquet"
    assert export_file_name("...", "csv") == "labels-dataset.csv"


def test_check_labeler_name_and_label_text() -> None:
    assert check_labeler_name("  ann ") == "ann"
    for bad in ["", "   ", "a\nb", "x" * 81]:
        with pytest.raises(InvalidInputError) as refused:
            check_labeler_name(bad)
        # A user error (shown by the app, one line in the CLI) that old callers catch as before.
        assert isinstance(refused.value, VlmrmError) and isinstance(refused.value, ValueError)
    assert [label_text(v) for v in (1.0, 0.0, 0.25)] == ["success", "failure", "0.25"]


def test_a_typed_labeller_name_may_not_pass_for_a_machine() -> None:
    with pytest.raises(InvalidInputError, match="does not start with 'judge:'"):
        check_labeler_name("judge:qwen#00000000")
    assert check_labeler_name(" judge ") == "judge"
