"""Labelling tasks on a subset of a dataset, tasks whose kind differs from the dataset's, and
several tasks per labeller on one dataset (the service layer, on SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Engine

from tests.store.conftest import ALICE, BOB, RESEARCHER
from vlmrm_core.errors import InvalidInputError
from vlmrm_core.frames import FrameRecord, pixel_hash
from vlmrm_core.services.labeling import LabelSession
from vlmrm_core.store import add_label, current_labels, ingest_frames, update_dataset
from vlmrm_core.store.tasks import (
    add_label_as,
    create_task,
    label_studio_tasks,
    select_task_frames,
    task_frame_count,
    task_queue,
)
from vlmrm_core.store.users import AccessError

MakeFrame = Callable[..., FrameRecord]


def _sweep(engine: Engine, make_frame: MakeFrame, n: int = 6) -> list[str]:
    """A dataset 'sweep' of n frames with angle = 0.0, 0.1, ...; returns hashes in order."""
    records = [make_frame(i, param_name="angle", param_value=i / 10) for i in range(n)]
    ingest_frames(engine, "sweep", records)
    return [pixel_hash(r.pixels) for r in records]


def test_select_task_frames_by_position_parameter_and_unlabelled(
    team: Engine, make_frame: MakeFrame
) -> None:
    frames = _sweep(team, make_frame)
    assert select_task_frames(team, "sweep") == frames
    assert select_task_frames(team, "sweep", positions=(1, 3)) == frames[1:4]
    assert select_task_frames(team, "sweep", param_range=(0.15, 0.45)) == frames[2:5]
    add_label(team, "sweep", frames[0], "carol", 1.0)
    add_label(team, "sweep", frames[2], "carol", 0.0)
    assert select_task_frames(team, "sweep", unlabelled_only=True) == [
        frames[1],
        *frames[3:],
    ]
    both = select_task_frames(team, "sweep", positions=(0, 3), unlabelled_only=True)
    assert both == [frames[1], frames[3]]
    with pytest.raises(InvalidInputError, match="starts after it ends"):
        select_task_frames(team, "sweep", positions=(4, 2))
    # Frames without a sweep parameter never match a parameter range.
    ingest_frames(team, "plain", [make_frame(50)])
    assert select_task_frames(team, "plain", param_range=(-1e9, 1e9)) == []


def test_a_subset_task_queues_and_counts_only_its_frames(
    team: Engine, make_frame: MakeFrame
) -> None:
    frames = _sweep(team, make_frame)
    subset = select_task_frames(team, "sweep", positions=(2, 4))
    create_task(
        team,
        "middle",
        "sweep",
        "Upright?",
        actor=RESEARCHER,
        assignees=[ALICE],
        frame_hashes=subset,
    )
    create_task(team, "all", "sweep", "Upright?", actor=RESEARCHER, assignees=[ALICE])
    assert task_frame_count(team, "middle") == 3
    assert task_frame_count(team, "all") == 6
    assert sorted(task_queue(team, "middle", ALICE)) == sorted(frames[2:5])
    with pytest.raises(InvalidInputError, match="empty"):
        create_task(team, "none", "sweep", "Upright?", actor=RESEARCHER, frame_hashes=[])


def test_the_task_kind_decides_accepted_values(team: Engine, make_frame: MakeFrame) -> None:
    frames = _sweep(team, make_frame)
    update_dataset(team, "sweep", graded=False)
    create_task(
        team, "graded", "sweep", "How upright?", actor=RESEARCHER, graded=True, assignees=[ALICE]
    )
    create_task(team, "binary", "sweep", "Upright?", actor=RESEARCHER, assignees=[ALICE, BOB])
    # A graded task on a binary dataset accepts values in between...
    record = add_label_as(team, ALICE, "sweep", frames[0], 0.25, task="graded")
    assert record.value == pytest.approx(0.25)
    (exported,) = label_studio_tasks(team, "sweep")  # a number, not a success / failure choice
    assert exported["annotations"][0]["result"][0]["value"] == {"number": 0.25}
    # ...a binary task refuses them (whatever the dataset's setting)...
    update_dataset(team, "sweep", graded=True)
    with pytest.raises(InvalidInputError, match="success \\(1\\) or failure \\(0\\) only"):
        add_label_as(team, BOB, "sweep", frames[1], 0.5, task="binary")
    add_label_as(team, BOB, "sweep", frames[1], 1.0, task="binary")
    # ...and a labeller cannot label through a task they are not assigned to.
    with pytest.raises(AccessError, match="not assigned"):
        add_label_as(team, BOB, "sweep", frames[2], 0.5, task="graded")
    labels = current_labels(team, "sweep").set_index("labeler")["value"].to_dict()
    assert labels == {ALICE: pytest.approx(0.25), BOB: 1.0}
    # The app's LabelSession goes through the same check.
    session = LabelSession("sweep", BOB, signed_in=True, task="binary")
    with pytest.raises(InvalidInputError):
        session.label(team, frames[3], 0.4)


def test_several_tasks_on_one_dataset_have_their_own_queues(
    team: Engine, make_frame: MakeFrame
) -> None:
    frames = _sweep(team, make_frame)
    first = select_task_frames(team, "sweep", positions=(0, 2))
    second = select_task_frames(team, "sweep", positions=(3, 5))
    for name, subset in (("first", first), ("second", second)):
        create_task(
            team,
            name,
            "sweep",
            "Upright?",
            actor=RESEARCHER,
            assignees=[ALICE],
            frame_hashes=subset,
        )
    add_label_as(team, ALICE, "sweep", frames[4], 1.0, task="second")
    assert sorted(task_queue(team, "first", ALICE)) == sorted(frames[:3])
    assert sorted(task_queue(team, "second", ALICE)) == sorted([frames[3], frames[5]])
