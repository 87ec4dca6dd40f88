"""Pair sessions (answer, skip, undo), agreement on pairs, pair accuracy of rewards, and the
pairs to ask, on a real SQLite store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.store.conftest import _make_frame
from vlmrm_core.frames import pixel_hash
from vlmrm_core.reward.base import Reward, as_frames
from vlmrm_core.services.preferences import (
    PairSession,
    candidate_pairs,
    comparison_data,
    informative_pairs,
    pair_accuracy_of,
    preference_agreement,
    reward_pair_accuracy,
)
from vlmrm_core.store import Engine, ingest_frames, init_db
from vlmrm_core.store.comparisons import add_comparison, current_comparisons


@pytest.fixture
def store(data_dir: Path) -> tuple[Engine, list[str]]:
    engine = init_db()
    frames = [_make_frame(i) for i in range(6)]
    ingest_frames(engine, "d", frames)
    return engine, [pixel_hash(f.pixels) for f in frames]


def test_session_answers_skips_and_undoes_its_own(store) -> None:
    engine, h = store
    pairs = candidate_pairs(engine, "d", 5, seed=1)
    assert len(set(pairs)) == 5 and pairs == candidate_pairs(engine, "d", 5, seed=1)
    session = PairSession("d", "ann", pairs=list(pairs))
    first, second = session.queue(engine)[:2]
    session.compare(engine, first, "a")
    session.skip(second)
    queue = session.queue(engine)
    assert first not in queue and queue[-1] == second
    # Someone else answering the same pair, the other way round, changes nothing for ann.
    other = PairSession("d", "bob", pairs=list(pairs))
    other.compare(engine, (second[1], second[0]), "b")
    assert session.queue(engine)[-1] == second
    assert other.undo(engine) is not None
    undone = session.undo(engine)
    assert undone is not None and (undone.frame_a, undone.frame_b) == first
    assert session.queue(engine)[0] == first  # asked again first
    assert session.undo(engine) is None  # nothing of this session's is left
    assert current_comparisons(engine, "d").empty


def test_agreement_and_pair_accuracy_of_rewards(store) -> None:
    engine, h = store
    add_comparison(engine, "d", h[0], h[1], "ann", "a")
    add_comparison(engine, "d", h[1], h[0], "bob", "b")  # agrees: h0 preferred
    add_comparison(engine, "d", h[2], h[3], "ann", "a")
    add_comparison(engine, "d", h[2], h[3], "bob", "b")  # disagrees
    add_comparison(engine, "d", h[4], h[5], "ann", "equal")
    report = preference_agreement(engine, "d")
    assert (report.n_pairs, report.n_shared, report.percent_agreement) == (3, 2, 0.5)
    assert report.disagreements["n_labelers"].tolist() == [2]

    data = comparison_data(engine, "d")
    assert data.n_pairs == 5 and data.labelers == ("ann", "bob")
    rewards = np.array([5.0, 1.0, 3.0, 2.0, 0.0, 0.0])  # prefers h0 over h1, h2 over h3
    acc = pair_accuracy_of(data, h, rewards, n_boot=0)
    # ann and bob on (0, 1): right twice; (2, 3): ann right, bob wrong; the equal pair left out.
    assert (acc.accuracy, acc.n_pairs, acc.n_equal) == (0.75, 4, 1)
    only_ann = pair_accuracy_of(
        comparison_data(engine, "d", labelers=["ann"]), h, rewards, n_boot=0
    )
    assert only_ann.accuracy == 1.0
    # Frames without a reward leave their pairs out.
    partial = pair_accuracy_of(data, h[:2], rewards[:2], n_boot=0)
    assert partial.n_pairs == 2


class _Brightness(Reward):
    source = "example"

    @property
    def identity(self) -> str:
        return "example/brightness"

    @property
    def description(self) -> str:
        return "mean pixel value"

    def reward(self, frames: object) -> np.ndarray:
        return as_frames(frames).mean(axis=(1, 2, 3)).astype(np.float32)


def test_any_reward_is_scored_against_comparisons(store) -> None:
    engine, h = store
    brightness = {x: float(_make_frame(i).pixels.mean()) for i, x in enumerate(h)}
    ordered = sorted(h, key=brightness.__getitem__)
    add_comparison(engine, "d", ordered[-1], ordered[0], "ann", "a")  # the brighter wins
    add_comparison(engine, "d", ordered[1], ordered[-2], "ann", "b")
    add_comparison(engine, "d", ordered[2], ordered[3], "ann", "a")  # the darker wins
    acc = reward_pair_accuracy(engine, "d", _Brightness(), n_boot=0)
    assert acc.accuracy == pytest.approx(2 / 3) and acc.n_pairs == 3


def test_informative_pairs_put_contested_pairs_first(store) -> None:
    engine, h = store
    x = np.eye(6)
    agree = np.arange(6.0)
    reverse = agree.copy()
    reverse[[4, 5]] = reverse[[5, 4]]  # the two sources disagree only about h4 vs h5
    pairs = [(h[0], h[5]), (h[1], h[3]), (h[4], h[5]), ("unknown", h[0])]
    ordered = informative_pairs(pairs, h, x, [agree, reverse])
    assert ordered[0] == (h[4], h[5])
    assert ordered[-1] == ("unknown", h[0]) and sorted(ordered) == sorted(pairs)
    add_comparison(engine, "d", h[4], h[5], "ann", "a")
    again = informative_pairs(
        pairs, h, x, [agree, reverse], comparisons=current_comparisons(engine, "d")
    )
    assert sorted(again) == sorted(pairs)


@pytest.fixture
def episodes(data_dir: Path) -> tuple[Engine, list[list[str]]]:
    """Dataset "e": three episodes of 4 steps (hashes by episode, in step order)."""
    engine = init_db()
    frames = [
        _make_frame(10 * e + s, source="rollout", episode=e, step=s)
        for e in range(3)
        for s in range(4)
    ]
    ingest_frames(engine, "e", frames)
    return engine, [[pixel_hash(f.pixels) for f in frames[4 * e : 4 * e + 4]] for e in range(3)]


def test_clip_pairs_sessions_and_summed_pair_accuracy(episodes) -> None:
    from vlmrm_core.services.preferences import candidate_clip_pairs, episode_clips
    from vlmrm_core.store import dataset_frames
    from vlmrm_core.store.comparisons import Clip

    engine, h = episodes
    clips = episode_clips(dataset_frames(engine, "e"), 2)
    assert [c.position for c in clips] == [0, 2, 4, 6, 8, 10]  # tiles, no overlap
    assert episode_clips(dataset_frames(engine, "e"), 3, within=h[0] + h[1][:2]) == [Clip(0, 3)]
    pairs = candidate_clip_pairs(engine, "e", 4, 2, seed=3)
    assert len(pairs) == 4 and all(isinstance(c, Clip) for p in pairs for c in p)

    session = PairSession("e", "ann", pairs=list(pairs))
    first = session.queue(engine)[0]
    session.compare(engine, first, "a")
    assert first not in session.queue(engine)
    undone = session.undo(engine)
    assert undone is not None and undone.items == first and session.queue(engine)[0] == first

    # Clip (0, 2) = steps 0–1 of episode 0 against clip (4, 2) = steps 0–1 of episode 1.
    add_comparison(engine, "e", Clip(0, 2), Clip(4, 2), "ann", "a")
    add_comparison(engine, "e", h[2][0], h[2][1], "ann", "b")  # and two frames
    data = comparison_data(engine, "e")
    assert data.n_pairs == 2 and data.clips is not None
    rewards = {h[0][0]: 0.0, h[0][1]: 3.0, h[1][0]: 2.0, h[1][1]: 0.5, h[2][0]: 0.0, h[2][1]: 1.0}
    known = list(rewards)
    # Sums 3.0 > 2.5: clip a wins, as ann said; on first frames alone (0 < 2) it would lose.
    acc = pair_accuracy_of(data, known, np.array([rewards[k] for k in known]), n_boot=0)
    assert (acc.accuracy, acc.n_pairs) == (1.0, 2)
    rewards[h[0][1]] = 2.0  # now 2.0 < 2.5: the clip pair is ordered wrongly
    acc = pair_accuracy_of(data, known, np.array([rewards[k] for k in known]), n_boot=0)
    assert acc.accuracy == 0.5
    # A clip with a frame without a reward is not scored.
    partial = pair_accuracy_of(data, known[1:], np.array([rewards[k] for k in known[1:]]))
    assert partial.n_pairs == 1
