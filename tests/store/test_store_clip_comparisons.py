"""Comparisons of clips: storing, validation, current answers, undo, signed-in subsets, export."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine

from tests.store.conftest import ADMIN, ALICE
from vlmrm_core.frames import FrameRecord, pixel_hash
from vlmrm_core.store import InvalidInputError, NotFoundError, dataset_frames, ingest_frames
from vlmrm_core.store.comparisons import (
    Clip,
    add_comparison,
    add_comparison_as,
    clip_frames,
    current_comparisons,
    export_comparisons,
    undo_last_comparison,
)
from vlmrm_core.store.tasks import create_task

MakeFrame = Callable[..., FrameRecord]


def _episodes(engine: Engine, make_frame: MakeFrame) -> list[list[int]]:
    """Dataset "d": two episodes of 5 steps (steps stored out of order) and one loose frame;
    the pixels of episode 0's step 4 repeat those of its step 0. Returns each episode's
    positions in step order, then the loose frame's."""
    frames = []
    for episode in (0, 1):
        for step in (3, 0, 4, 1, 2):
            seed = 10 * episode + (0 if (episode, step) == (0, 4) else step)
            frames.append(make_frame(seed, source="rollout", episode=episode, step=step))
    frames.append(make_frame(99))
    ingest_frames(engine, "d", frames)
    members = dataset_frames(engine, "d")
    by_episode = [
        [m.position for m in sorted(members, key=lambda m: m.step or 0) if m.episode == e]
        for e in (0, 1)
    ]
    return [*by_episode, [m.position for m in members if m.episode is None]]


def test_clips_are_stored_by_first_membership_and_length(
    engine: Engine, make_frame: MakeFrame
) -> None:
    ep0, ep1, _loose = _episodes(engine, make_frame)
    first = Clip(ep0[0], 3)
    found = clip_frames(engine, "d", [first, Clip(ep0[2], 3)])
    assert found[first] == [pixel_hash(make_frame(s).pixels) for s in (0, 1, 2)]  # step order
    assert found[Clip(ep0[2], 3)][-1] == found[first][0]  # step 4 repeats step 0's pixels

    record = add_comparison(engine, "d", first, Clip(ep1[1], 3), "ann", "a")
    assert (record.length, record.position_a, record.position_b) == (3, ep0[0], ep1[1])
    assert record.frame_a == found[first][0] and record.items == (first, Clip(ep1[1], 3))
    # Same first pixels, another membership: a different clip, so a different pair.
    add_comparison(engine, "d", Clip(ep0[2], 3), Clip(ep1[1], 3), "ann", "b")
    # The first pair again, the other way round: replaces ann's first answer.
    add_comparison(engine, "d", Clip(ep1[1], 3), first, "ann", "equal")
    add_comparison(engine, "d", Clip(ep1[1], 2), Clip(ep0[0], 2), "ann", "a")  # other length
    add_comparison(engine, "d", found[first][0], found[first][1], "ann", "b")  # two frames
    current = current_comparisons(engine, "d")
    got = sorted(
        (int(r.length), r.position_a if r.length > 1 else None, r.choice)
        for r in current.itertuples()
    )
    assert got == [(1, None, "b"), (2, ep1[1], "a"), (3, ep0[2], "b"), (3, ep1[1], "equal")]
    frames_row = current[current["length"] == 1].iloc[0]
    assert pd.isna(frames_row["position_a"]) and pd.isna(frames_row["position_b"])

    undone = undo_last_comparison(engine, "d", "ann")  # the frame pair
    assert undone is not None and undone.length == 1
    undone = undo_last_comparison(engine, "d", "ann")  # the 2-frame clips
    assert undone is not None and undone.items == (Clip(ep1[1], 2), Clip(ep0[0], 2))
    undone = undo_last_comparison(engine, "d", "ann")  # the "equal": the first answer is back
    assert undone is not None and undone.choice == "equal"
    current = current_comparisons(engine, "d")
    first_row = current[current["position_a"] == ep0[0]].iloc[0]
    assert (first_row["choice"], int(first_row["position_b"])) == ("a", ep1[1])


def test_bad_clips_are_refused(engine: Engine, make_frame: MakeFrame) -> None:
    ep0, ep1, loose = _episodes(engine, make_frame)
    h = pixel_hash(make_frame(1).pixels)
    cases: list[tuple[object, object, type[Exception], str]] = [
        (Clip(ep0[3], 3), Clip(ep1[0], 3), InvalidInputError, "runs past the end of episode 0"),
        (Clip(loose[0], 2), Clip(ep1[0], 2), InvalidInputError, "is in no episode"),
        (Clip(ep0[0], 2), Clip(ep1[0], 3), InvalidInputError, "as many frames"),
        (Clip(ep0[0], 2), h, InvalidInputError, "not one of each"),
        (Clip(ep0[0], 2), Clip(ep0[0], 2), InvalidInputError, "same one twice"),
        (Clip(ep0[0], 1), Clip(ep1[0], 1), InvalidInputError, "at least 2 frames"),
        (Clip(999, 2), Clip(ep1[0], 2), NotFoundError, "no frame at position 999"),
    ]
    for a, b, error, message in cases:
        with pytest.raises(error, match=message):
            add_comparison(engine, "d", a, b, "ann", "a")  # type: ignore[arg-type]
    assert current_comparisons(engine, "d").empty


def test_signed_in_clip_must_lie_in_the_tasks_frames(team: Engine, make_frame: MakeFrame) -> None:
    ep0, ep1, _ = _episodes(team, make_frame)
    members = {m.position: m.hash for m in dataset_frames(team, "d")}
    subset = [members[p] for p in ep0[:3] + ep1[:3]]
    create_task(
        team, "clips", "d", "Which clip gets closer?", actor=ADMIN, pairwise=True,
        frame_hashes=subset, assignees=[ALICE],
    )  # fmt: skip
    add_comparison_as(team, ALICE, "d", Clip(ep0[0], 3), Clip(ep1[0], 3), "b", task="clips")
    with pytest.raises(InvalidInputError, match="not among the frames of task"):
        add_comparison_as(team, ALICE, "d", Clip(ep0[1], 3), Clip(ep1[0], 3), "b", task="clips")


def test_export_writes_where_each_clip_starts(
    engine: Engine, make_frame: MakeFrame, tmp_path: Path
) -> None:
    ep0, ep1, _ = _episodes(engine, make_frame)
    add_comparison(engine, "d", Clip(ep0[1], 4), Clip(ep1[0], 4), "ann", "b")
    hashes = clip_frames(engine, "d", [Clip(ep0[0], 2)])[Clip(ep0[0], 2)]
    add_comparison(engine, "d", hashes[0], hashes[1], "ann", "a")
    table = pd.read_csv(export_comparisons(engine, "d", tmp_path / "c.csv"))
    clips = table[table["length"] == 4].iloc[0]
    assert (clips["episode_a"], clips["step_a"], clips["episode_b"], clips["step_b"]) == (
        0, 1, 1, 0,
    )  # fmt: skip
    frames = table[table["length"] == 1].iloc[0]
    assert frames[["episode_a", "step_a", "episode_b", "step_b"]].isna().all()
