"""Tasks in a studio without sign-in (AppTest): typed labeller names, marked unverified; the
review shows only the disagreements, by frame name and thumbnail."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.studio._pages import page_test
from vlmrm_core.errors import InvalidInputError
from vlmrm_core.frames import FrameRecord, pixel_hash
from vlmrm_core.store import add_label, current_labels, ingest_frames, init_db
from vlmrm_core.store.tasks import create_task, final_labels, list_tasks, tasks_for


def _cars() -> list[str]:
    records = [
        FrameRecord(np.full((8, 10, 3), 50 * i, np.uint8), "upload", f"car{i}.png")
        for i in range(3)
    ]
    ingest_frames(init_db(), "cars", records)
    return [pixel_hash(r.pixels) for r in records]


def test_a_laptop_studio_creates_a_task_for_typed_names(data_dir: Path) -> None:
    _cars()
    at = page_test("tasks").run()
    assert not at.exception, [e.value for e in at.exception]
    at.text_input(key="tasks-new-name").input("hill")
    at.selectbox(key="tasks-new-dataset").select("cars")
    at.text_input(key="tasks-new-typed").input("alice, bob")
    at.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    (task,) = list_tasks(init_db())
    assert task.assignees == ("alice", "bob") and not task.verified
    assert "(typed, unverified)" in at.dataframe[0].value["labellers"].iloc[0]

    # alice types her name on the Label page and gets the task (marked unverified)
    label = page_test("label").run()
    label.text_input(key="label-name").input("alice").run()
    assert not label.exception, [e.value for e in label.exception]
    assert any("Is the goal achieved" in h.value for h in label.subheader)
    assert any("not verified" in c.value for c in label.caption)
    label.button(key="label-success").click().run()
    assert list(current_labels(init_db(), "cars")["labeler"]) == ["alice"]


def test_typed_names_cannot_pass_for_signed_in_identities(data_dir: Path) -> None:
    _cars()
    with pytest.raises(InvalidInputError, match="looks like an email"):
        create_task(init_db(), "t", "cars", "Q?", actor=None, assignees=["alice@x.org"])
    create_task(init_db(), "t", "cars", "Q?", actor=None, assignees=["alice"])
    assert tasks_for(init_db(), "alice", verified=False)[0].name == "t"
    with pytest.raises(InvalidInputError):
        tasks_for(init_db(), "alice@x.org", verified=False)
    assert tasks_for(init_db(), "alice@x.org") == []  # a signed-in alice gets no typed task


def test_review_lists_only_disagreements_by_name(data_dir: Path) -> None:
    frames = _cars()
    db = init_db()
    add_label(db, "cars", frames[0], "ann", 1.0)  # agreed
    add_label(db, "cars", frames[0], "bob", 1.0)
    add_label(db, "cars", frames[1], "ann", 1.0)  # disputed
    add_label(db, "cars", frames[1], "bob", 0.0)
    add_label(db, "cars", frames[2], "ann", 0.0)  # one label
    at = page_test("tasks").run()
    at.selectbox(key="tasks-review-dataset").select("cars").run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Disagreements (1)" in [h.value for h in at.subheader]
    disputed = at.dataframe[0].value  # no tasks yet: the review's tables come first
    assert list(disputed["frame"]) == ["car1.png"]
    assert disputed["thumbnail"].iloc[0].startswith("data:image/png")
    assert len(at.dataframe[1].value) == 3  # every final label, in the expander

    stats = at.dataframe[-1].value.set_index("labeler")
    assert list(stats["agreement"]) == [0.5, 0.5]  # they disagree on one of two shared frames

    picker = at.selectbox(key="tasks-adjudicate-frame")
    assert picker.options == ["car1.png"]
    at.number_input(key="tasks-adjudicate-value").set_value(0.0)
    at.button(key="tasks-adjudicate").click().run()
    assert not at.exception, [e.value for e in at.exception]
    final = final_labels(db, "cars").set_index("frame_hash")
    assert final.loc[frames[1], "source"] == "adjudicated"
