"""The Bradley–Terry reward: fitted to comparisons, pulled toward the prompt, honestly held out."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vlmrm_core.metrics.pairs import clip_sums, pair_accuracy
from vlmrm_core.reward.adaptation import (
    AdaptationError,
    cross_validate_preferences,
    fit_preference,
    pair_folds,
)


def _synthetic(n: int = 300, dim: int = 32, n_pairs: int = 1500, flip: float = 0.03, seed: int = 0):
    """Unit embeddings, a known linear reward, random pairs answered by it (a few answers flipped)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    w = rng.normal(size=dim)
    w /= np.linalg.norm(w)
    pairs = rng.integers(0, n, (2 * n_pairs, 2))
    pairs = pairs[pairs[:, 0] != pairs[:, 1]][:n_pairs]
    r = x @ w
    y = (r[pairs[:, 0]] > r[pairs[:, 1]]).astype(np.float64)
    flipped = rng.random(n_pairs) < flip
    y[flipped] = 1.0 - y[flipped]
    return rng, x, w, pairs, y


def test_recovers_a_known_linear_reward() -> None:
    rng, x, w, pairs, y = _synthetic()
    r = x @ w
    generating = pair_accuracy(r[pairs[:, 0]], r[pairs[:, 1]], y, n_boot=0).accuracy
    assert generating is not None and generating >= 0.95
    prior = w + 0.3 * rng.normal(size=w.size)  # the prompt points roughly the right way
    groups = np.arange(len(x)) // 3
    report = cross_validate_preferences(x, pairs, y, groups, prior, x @ prior, n_boot=200)
    assert report.adapted.accuracy is not None and report.adapted.accuracy >= 0.9
    assert report.adapted.ci_low is not None and report.adapted.ci_low < report.adapted.accuracy
    assert report.adapted.accuracy > report.zero_shot.accuracy  # type: ignore[operator]
    assert report.n_held_out == report.adapted.n_pairs > 100
    fitted = report.fit.weights / np.linalg.norm(report.fit.weights)
    assert fitted @ w > 0.95
    assert report.fit.bias == 0.0 and report.fit.n_labels == len(y)
    data = report.to_dict()
    assert data["n_pairs"] == len(y) and set(data["zero_shot"]) >= {"accuracy", "ci_low"}


def test_few_comparisons_keep_the_prompt_and_infinite_lambda_only_rescales_it() -> None:
    rng, x, w, pairs, y = _synthetic(n_pairs=200)
    prior = rng.normal(size=w.size)
    few = fit_preference(x, pairs[:3], y[:3], prior)
    assert few.scale == 1.0 and "kept the prompt" in few.note
    assert few.weights == pytest.approx(prior / np.linalg.norm(prior))
    assert not fit_preference(x, pairs[:3], y[:3], None).weights.any()
    rescaled = fit_preference(x, pairs, y, w, lam=math.inf)
    assert rescaled.scale > 0
    assert rescaled.weights == pytest.approx(rescaled.scale * w)


def test_a_prompt_that_is_right_is_kept_when_comparisons_are_few() -> None:
    rng, x, w, pairs, y = _synthetic(n_pairs=24, flip=0.0, seed=3)
    pulled = fit_preference(x, pairs, y, w, seed=0)
    free = fit_preference(x, pairs, y, None, seed=0)
    cos = lambda v: float(v @ w / np.linalg.norm(v))  # noqa: E731
    assert cos(pulled.weights) > cos(free.weights)
    assert cos(pulled.weights) > 0.9


def test_equal_answers_count_as_half_a_win_each() -> None:
    # Two frames answered "equal" in both orders: the fit must not order them either way.
    x = np.eye(4)
    pairs = np.array([[0, 1], [1, 0], [2, 3], [2, 3], [2, 3], [2, 3], [0, 3], [1, 3]])
    y = np.array([0.5, 0.5, 1, 1, 1, 1, 1, 1], dtype=np.float64)
    fit = fit_preference(x, pairs, y, None, lam=1e-3)
    r = fit.predict(x)
    assert r[0] == pytest.approx(r[1], abs=1e-6)
    assert r[2] > r[3] and r[0] > r[3]
    with pytest.raises(AdaptationError, match="'equal'"):
        cross_validate_preferences(x, pairs[:2], y[:2], None, None, np.zeros(4))


def test_pair_folds_never_share_a_frame_group() -> None:
    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(10), 5)
    pairs = rng.integers(0, 50, (400, 2))
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    folds = pair_folds(pairs, groups, 5, seed=2)
    assert len(folds) == 5
    tested = np.concatenate([test for _, test in folds])
    assert len(tested) == len(set(tested.tolist()))  # each pair tested at most once
    within = groups[pairs[:, 0]] == groups[pairs[:, 1]]
    assert set(np.flatnonzero(within).tolist()) <= set(tested.tolist())  # within-group: always
    for train, test in folds:
        test_groups = set(groups[pairs[test].ravel()].tolist())
        train_groups = set(groups[pairs[train].ravel()].tolist())
        assert not test_groups & train_groups
    with pytest.raises(AdaptationError, match="two episodes"):
        pair_folds(pairs, np.zeros(50, dtype=int), 5)


def test_bad_input_is_refused() -> None:
    x = np.eye(3)
    with pytest.raises(AdaptationError, match="outcomes must be"):
        fit_preference(x, [[0, 1]], [2.0], None)
    with pytest.raises(AdaptationError, match=r"\[0, 3\)"):
        fit_preference(x, [[0, 5]], [1.0], None)
    with pytest.raises(AdaptationError, match="P×2"):
        fit_preference(x, [0, 1], [1.0], None)


def test_recovers_a_known_linear_reward_from_clip_comparisons() -> None:
    # 60 episodes of 12 frames; clips of 4 consecutive frames compared by their summed reward.
    rng = np.random.default_rng(7)
    episodes, steps, length, dim = 60, 12, 4, 32
    x = rng.normal(size=(episodes * steps, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    w = rng.normal(size=dim)
    w /= np.linalg.norm(w)
    starts = [e * steps + s for e in range(episodes) for s in range(0, steps - length + 1, 2)]
    clips = [list(range(start, start + length)) for start in starts]
    pairs = rng.integers(0, len(clips), (1600, 2))
    pairs = pairs[pairs[:, 0] != pairs[:, 1]][:1200]
    clip_reward = clip_sums(x @ w, clips)
    y = (clip_reward[pairs[:, 0]] > clip_reward[pairs[:, 1]]).astype(np.float64)
    flipped = rng.random(len(y)) < 0.03
    y[flipped] = 1.0 - y[flipped]
    generating = pair_accuracy(clip_reward[pairs[:, 0]], clip_reward[pairs[:, 1]], y, n_boot=0)
    assert generating.accuracy is not None and generating.accuracy >= 0.95
    # Judged on their first frames alone, the same answers look far noisier: the sums matter.
    first = (x @ w)[[c[0] for c in clips]]
    first_only = pair_accuracy(first[pairs[:, 0]], first[pairs[:, 1]], y, n_boot=0).accuracy
    assert first_only is not None and first_only < 0.8

    prior = w + 0.3 * rng.normal(size=dim)
    groups = np.arange(len(x)) // steps  # a frame's episode
    report = cross_validate_preferences(
        x, pairs, y, groups, prior, x @ prior, clips=clips, n_boot=200
    )
    assert report.adapted.accuracy is not None and report.adapted.accuracy >= 0.9
    assert report.adapted.accuracy > report.zero_shot.accuracy  # type: ignore[operator]
    assert report.n_held_out > 100
    fitted = report.fit.weights / np.linalg.norm(report.fit.weights)
    assert fitted @ w > 0.9
    # The same fit straight from fit_preference, and the clips' rewards from the fitted weights.
    direct = fit_preference(x, pairs, y, prior, groups=groups, clips=clips)
    assert direct.weights == pytest.approx(report.fit.weights)
    with pytest.raises(AdaptationError, match="zero-shot rewards for"):
        cross_validate_preferences(x, pairs, y, groups, prior, x[:5] @ prior, clips=clips)
