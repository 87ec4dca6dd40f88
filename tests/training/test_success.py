"""Success rate per evaluation checkpoint (with intervals) and the reward-hacking flag, plus the
store queries that read a run's evaluation datasets and labels (real SQLite)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vlmrm_core.training.success import (
    CheckpointSuccess,
    episode_bootstrap_interval,
    reward_hacking_flag,
    success_by_checkpoint,
    wilson_interval,
)


def test_wilson_interval_matches_known_values_and_stays_in_range() -> None:
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    low, high = wilson_interval(5, 10)
    assert (low, high) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    low, high = wilson_interval(10, 10)
    assert high == 1.0 and low == pytest.approx(0.7225, abs=1e-4)
    with pytest.raises(ValueError):
        wilson_interval(3, 0)


def test_episode_bootstrap_is_wider_when_episodes_differ() -> None:
    # two episodes of 50 frames: one all successes, one all failures. Frames are not
    # independent trials: resampling episodes gives a far wider interval than Wilson.
    hits = np.r_[np.ones(50), np.zeros(50)]
    episodes = np.r_[np.zeros(50), np.ones(50)]
    boot = episode_bootstrap_interval(hits, episodes, n_boot=2000, seed=0)
    wilson = wilson_interval(50, 100)
    assert boot[0] <= 0.05 and boot[1] >= 0.95
    assert wilson[1] - wilson[0] < 0.25
    # episodes that agree: the bootstrap interval is tight
    mixed = np.tile([1.0, 0.0], 50)
    tight = episode_bootstrap_interval(mixed, np.repeat(np.arange(10), 10), n_boot=500)
    assert tight == pytest.approx((0.5, 0.5))


def test_success_by_checkpoint_joins_labels_returns_and_frame_counts() -> None:
    labels = pd.DataFrame(
        {
            "step": [100, 100, 100, 200, 200],
            "label": [1.0, 0.0, 0.5, 0.0, 0.0],  # 0.5 counts as a success
            "episode": [0, 0, 1, 0, 1],
        }
    )
    returns = pd.DataFrame(
        {"step": [100, 200, 300], "clip_return": [1.0, 2.0, 3.0], "gt_return": [5, 4, np.nan]}
    )
    points = success_by_checkpoint(
        labels, returns, frames={100: 40, 200: 40, 300: 40}, datasets={300: "run-1-eval-300"}
    )
    assert [p.step for p in points] == [100, 200, 300]
    first, second, third = points
    assert (first.n_labelled, first.n_success, first.n_episodes) == (3, 2, 2)
    assert first.rate == pytest.approx(2 / 3)
    assert (first.ci_low, first.ci_high) == pytest.approx(wilson_interval(2, 3))
    assert second.rate == 0.0 and second.ci_low == 0.0
    assert third.rate is None and third.ci_low is None and third.n_frames == 40
    assert third.dataset == "run-1-eval-300"
    assert third.clip_return == 3.0 and third.gt_return is None  # NaN is "not known"
    boot = success_by_checkpoint(labels, returns, method="bootstrap", n_boot=200)
    assert boot[0].ci_low <= boot[0].rate <= boot[0].ci_high
    with pytest.raises(ValueError, match="wilson"):
        success_by_checkpoint(labels, method="exact")  # type: ignore[arg-type]


def _points(clip, rate, gt) -> list[CheckpointSuccess]:
    return [
        CheckpointSuccess(
            step=1000 * (i + 1),
            dataset=None,
            n_frames=10,
            n_labelled=10 if r is not None else 0,
            n_success=0,
            n_episodes=1,
            rate=r,
            ci_low=None,
            ci_high=None,
            clip_return=c,
            gt_return=g,
        )
        for i, (c, r, g) in enumerate(zip(clip, rate, gt, strict=True))
    ]


def test_hacking_flag_clip_up_while_success_or_ground_truth_down() -> None:
    flag = reward_hacking_flag(
        _points([1, 2, 3, 4, 5], [0.1, 0.6, 0.7, 0.5, 0.3], [10, 20, 30, 30, 30])
    )
    assert flag.flagged and "success rate fell" in flag.reason
    assert flag.window == (3000, 4000, 5000)
    assert flag.clip_change > 0 and flag.success_change < 0

    # no labels at all: the ground-truth return alone can raise the flag
    flag = reward_hacking_flag(_points([1, 2, 3, 4], [None] * 4, [50, 60, 40, 20]))
    assert flag.flagged and "ground-truth return fell" in flag.reason

    # both rising together: learning, not hacking
    flag = reward_hacking_flag(_points([1, 2, 3, 4], [0.1, 0.3, 0.5, 0.7], [1, 2, 3, 4]))
    assert not flag.flagged and "no sign" in flag.reason

    # CLIP return flat, success falling: the reward is not being gamed harder
    flag = reward_hacking_flag(_points([2, 2, 2, 2], [0.9, 0.7, 0.5, 0.3], [3, 3, 3, 3]))
    assert not flag.flagged

    # nothing to compare with
    flag = reward_hacking_flag(_points([1, 2, 3], [None] * 3, [None] * 3))
    assert not flag.flagged and "label evaluation frames" in flag.reason
    with pytest.raises(ValueError):
        reward_hacking_flag(_points([1, 2], [0.1, 0.2], [1, 2]), last=1)


def test_store_finds_a_runs_evaluations_and_their_labels(data_dir) -> None:
    from vlmrm_core.frames import FrameRecord
    from vlmrm_core.store import add_label, ingest_frames, init_db
    from vlmrm_core.store.run_evals import run_eval_datasets, run_eval_labels

    engine = init_db()
    rng = np.random.default_rng(0)

    def frames(n: int):
        return [
            FrameRecord(
                pixels=rng.integers(0, 255, (8, 8, 3), dtype=np.uint8),
                source="training-eval",
                episode=i % 2,
                step=i // 2,
            )
            for i in range(n)
        ]

    made = {}
    for name, kind in (
        ("run-3-eval-100", "training-eval"),
        ("run-3-eval-200", "training-eval"),
        ("run-3-eval-200-2", "training-eval"),  # resumed, evaluated at 200 again: the latest
        ("run-4-eval-100", "training-eval"),  # another run
        ("run-3-eval-300", "upload"),  # not an evaluation dataset
        ("run-33-eval-100", "training-eval"),
    ):
        made[name] = frames(4)
        ingest_frames(engine, name, made[name], kind=kind)
    evals = run_eval_datasets(engine, 3)
    assert [(d.name, d.step, d.n_frames) for d in evals] == [
        ("run-3-eval-100", 100, 4),
        ("run-3-eval-200-2", 200, 4),
    ]
    assert run_eval_labels(engine, 3).empty

    first = made["run-3-eval-100"]
    add_label(engine, "run-3-eval-100", first[0].hash, "ann", 1.0)
    add_label(engine, "run-3-eval-100", first[0].hash, "bob", 0.0)
    add_label(engine, "run-3-eval-100", first[1].hash, "ann", 1.0)
    add_label(engine, "run-3-eval-200-2", made["run-3-eval-200-2"][3].hash, "ann", 0.0)
    add_label(engine, "run-3-eval-200", made["run-3-eval-200"][3].hash, "ann", 1.0)  # stale
    table = run_eval_labels(engine, 3).sort_values(["step", "label"], ignore_index=True)
    assert list(table["step"]) == [100, 100, 200]
    assert list(table["label"]) == [0.5, 1.0, 0.0]  # consensus of ann and bob
    assert list(table["episode"]) == [0, 1, 1]
    points = success_by_checkpoint(table, frames={d.step: d.n_frames for d in evals})
    assert [(p.step, p.n_labelled, p.n_success) for p in points] == [(100, 2, 2), (200, 1, 0)]
