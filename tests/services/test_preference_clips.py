"""Comparisons of clips in the agreement reports, judges' suggestions and the "most
informative first" order, on a real SQLite store whose episodes start from the same pixels (as
rollouts of one reset state do), so that different clips share their first frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.store.conftest import _make_frame
from vlmrm_core.services.preferences import (
    informative_pairs,
    judge_agreement,
    preference_agreement,
)
from vlmrm_core.store import Engine, dataset_frames, ingest_frames, init_db
from vlmrm_core.store.comparisons import Clip, add_comparison, clip_frames, current_comparisons

JUDGE = "judge:test#00000000"


@pytest.fixture
def episodes(data_dir: Path) -> tuple[Engine, dict[tuple[int, int], int], dict[int, str]]:
    """Dataset "e": three episodes of 4 steps; episodes 0 and 1 start from the same pixels.
    Returns the membership of each (episode, step) and each membership's frame hash."""
    engine = init_db()
    frames = [
        _make_frame(10 * (e if (e, s) != (1, 0) else 0) + s, source="rollout", episode=e, step=s)
        for e in range(3)
        for s in range(4)
    ]
    ingest_frames(engine, "e", frames)
    members = dataset_frames(engine, "e")
    at = {(int(m.episode), int(m.step)): m.position for m in members if m.episode is not None}
    return engine, at, {m.position: m.hash for m in members}


def test_agreement_tells_clips_with_the_same_first_frame_apart(episodes) -> None:
    engine, at, hash_of = episodes
    c0, c1, c2 = (Clip(at[(e, 0)], 2) for e in range(3))
    assert hash_of[c0.position] == hash_of[c1.position]  # same first pixels, other clips
    first0, first2 = hash_of[c0.position], hash_of[c2.position]
    add_comparison(engine, "e", c0, c2, "ann", "a")
    add_comparison(engine, "e", c1, c2, "bob", "b")  # another pair of clips
    add_comparison(engine, "e", first0, first2, "carl", "b")  # two frames, not clips

    report = preference_agreement(engine, "e")
    assert (report.n_pairs, report.n_shared) == (3, 0)
    assert report.percent_agreement is None and report.disagreements.empty

    add_comparison(engine, "e", c2, c0, "dan", "a")  # dan prefers c2, ann c0: they differ
    report = preference_agreement(engine, "e")
    assert (report.n_pairs, report.n_shared, report.percent_agreement) == (3, 1, 0.0)
    [row] = report.disagreements.to_dict("records")
    assert {row["item_a"], row["item_b"]} == {c0.key, c2.key}
    assert row["length"] == 2
    assert {row["position_a"], row["position_b"]} == {c0.position, c2.position}
    first_of = {c0.key: first0, c2.key: first2}
    assert (row["frame_a"], row["frame_b"]) == (first_of[row["item_a"]], first_of[row["item_b"]])
    said_of_c0 = {who: said for who, said in row["answers"].items()}
    if row["item_a"] != c0.key:  # the answers are said of side a: flip to speak of c0
        said_of_c0 = {who: {"a": "b", "b": "a"}[said] for who, said in said_of_c0.items()}
    assert said_of_c0 == {"ann": "a", "dan": "b"}


def test_a_judge_on_frames_is_not_compared_with_people_on_clips(episodes) -> None:
    engine, at, hash_of = episodes
    c0, c2 = Clip(at[(0, 0)], 2), Clip(at[(2, 0)], 2)
    first0, first2 = hash_of[c0.position], hash_of[c2.position]
    add_comparison(engine, "e", first0, first2, JUDGE, "a", machine=True)
    add_comparison(engine, "e", c0, c2, "ann", "b")  # clips with those first frames
    assert judge_agreement(engine, "e", JUDGE).n_pairs == 0

    add_comparison(engine, "e", first2, first0, "bob", "b")  # the judge's pair of frames
    found = judge_agreement(engine, "e", JUDGE)
    assert (found.n_pairs, found.n_answers, found.percent_agreement) == (1, 1, 1.0)
    assert set(found.per_person) == {"bob"}
    assert found.per_person["bob"].n_pairs == 1


def test_informative_order_scores_clips_by_their_summed_rewards(episodes) -> None:
    engine, at, _hash_of = episodes
    # Five clips of two frames with frames of their own (episode 1's first clip would share
    # episode 0's first frame), in reward order.
    clips = [Clip(at[start], 2) for start in ((0, 0), (0, 2), (1, 2), (2, 0), (2, 2))]
    members = clip_frames(engine, "e", clips)
    hashes = [h for clip in clips for h in members[clip]]  # clip n: rows 2n and 2n + 1
    a_rewards = np.arange(10.0)  # clip sums 1, 5, 9, 13, 17
    b_rewards = a_rewards.copy()
    b_rewards[7] = 12.0  # clip 3 sums to 18 > 17 here: the sources differ only by the sums
    c0, c1, c2, c3, c4 = clips
    pairs = [(c0, c4), (c0, c2), (c3, c4), (c1, c2)]
    # (By first frames alone the two sources would agree everywhere: 6 < 8 in both.)

    def order(**extra: object) -> list[tuple[Clip, Clip]]:
        rewards = [a_rewards, b_rewards]
        return informative_pairs(pairs, hashes, np.eye(10), rewards, clip_members=members, **extra)

    ordered = order()
    assert ordered[0] == (c3, c4) and sorted(ordered) == sorted(pairs)
    # Two frames (the clips' first frames) compared: another question, no use of the clips.
    add_comparison(engine, "e", members[c3][0], members[c4][0], "ann", "a")
    assert order(comparisons=current_comparisons(engine, "e"))[0] == (c3, c4)
    # The clips compared: they count as used, so a pair showing neither comes first (the
    # sources agree about both: an equal score, and the uses decide).
    add_comparison(engine, "e", c4, c3, "ann", "b")
    again = order(comparisons=current_comparisons(engine, "e"))
    assert again[0] in {(c0, c2), (c1, c2)} and sorted(again) == sorted(pairs)


def test_informative_order_puts_clips_without_embeddings_last_and_refuses_a_mix(episodes) -> None:
    from vlmrm_core.errors import VlmrmError

    engine, at, hash_of = episodes
    c0, c2, c5 = Clip(at[(0, 0)], 2), Clip(at[(1, 2)], 2), Clip(at[(2, 2)], 2)
    members = clip_frames(engine, "e", [c0, c2, c5])
    hashes = [*members[c0], *members[c2]]  # c5's frames have no embedding
    pairs = [(c0, c5), (c0, c2)]
    ordered = informative_pairs(pairs, hashes, np.eye(4), [np.arange(4.0)], clip_members=members)
    assert ordered == [(c0, c2), (c0, c5)]
    with pytest.raises(VlmrmError, match="not a mix"):
        informative_pairs([(c0, c2), (hashes[0], hashes[1])], hashes, np.eye(4), [])
    with pytest.raises(VlmrmError, match="clip_members"):
        informative_pairs(pairs, hashes, np.eye(4), [np.arange(4.0)])


def test_a_judge_on_clips_suggests_nothing_for_their_first_frames(episodes) -> None:
    from vlmrm_core.services.preferences import machine_suggestions

    engine, at, hash_of = episodes
    c0, c2 = Clip(at[(0, 0)], 2), Clip(at[(2, 0)], 2)
    add_comparison(engine, "e", c0, c2, JUDGE, "a", machine=True)
    frames = (hash_of[c0.position], hash_of[c2.position])
    assert machine_suggestions(engine, "e", frames) == {}
    add_comparison(engine, "e", frames[1], frames[0], JUDGE, "a", machine=True)
    assert machine_suggestions(engine, "e", frames) == {JUDGE: "b"}
