"""Which comparisons to ask first: random pairs, informativeness, the spread-out order, and the
replay and held-out learning curve of the benchmark."""

from __future__ import annotations

import numpy as np
import pytest

from vlmrm_core.reward.active_labels import (
    informative_pair_order,
    pair_held_out_curve,
    pair_informativeness,
    random_pairs,
    simulate_pair_order,
)


def test_random_pairs_are_distinct_and_reproducible() -> None:
    for n, count in ((5, 10), (5, 50), (200, 300)):
        pairs = random_pairs(n, count, seed=3)
        keys = {(min(a, b), max(a, b)) for a, b in pairs.tolist()}
        assert len(keys) == len(pairs) == min(count, n * (n - 1) // 2)
        assert (pairs[:, 0] != pairs[:, 1]).all() and pairs.max() < n
        assert np.array_equal(pairs, random_pairs(n, count, seed=3))
    assert random_pairs(1, 5).shape == (0, 2)


def test_informativeness_of_pairs() -> None:
    a = np.array([0.0, 1.0, 2.0, 3.0])
    b = np.array([0.0, 1.0, 3.0, 2.0])  # disagrees with a about frames 2 and 3 only
    pairs = np.array([[0, 3], [2, 3], [1, 2]])
    scores = pair_informativeness(pairs, [a, b])
    assert scores.argmax() == 1 and scores.argmin() == 0
    fitted = np.array([0.0, 0.0, 10.0, 10.0])  # sure about (0, 3), unsure about (2, 3)
    sure = pair_informativeness(pairs, [], fitted=fitted)
    assert sure.tolist()[1] == 1.0 and sure[0] < 0.01
    assert pair_informativeness(pairs, []).tolist() == [0.5] * 3


def test_the_order_spreads_over_frames() -> None:
    pairs = np.array([[0, 1], [0, 2], [0, 3], [4, 5]])
    scores = np.array([0.9, 0.9, 0.9, 0.5])
    order = informative_pair_order(pairs, scores)
    assert order[0] == 0 and order[1] == 3  # frame 0 was just asked about: (4, 5) next
    assert sorted(order.tolist()) == [0, 1, 2, 3]
    assert informative_pair_order(pairs, scores, spread=0.0).tolist()[:3] == [0, 1, 2]
    asked = np.array([True, False, False, False])
    assert 0 not in informative_pair_order(pairs, scores, asked=asked).tolist()


def test_replay_and_learning_curve_on_a_known_reward() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 16))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    w = rng.normal(size=16)
    r = x @ w
    train_frames, test_frames = np.arange(80), np.arange(80, 120)
    pairs = train_frames[random_pairs(80, 400, seed=1)]
    answers = (r[pairs[:, 0]] > r[pairs[:, 1]]).astype(float)
    test = test_frames[random_pairs(40, 300, seed=2)]
    test_answers = (r[test[:, 0]] > r[test[:, 1]]).astype(float)
    order = simulate_pair_order(
        x, pairs, answers, [x @ rng.normal(size=16)], batch_size=20, budget=120
    )
    assert len(order) == len(set(order.tolist())) == 120
    curve = pair_held_out_curve(x, pairs, answers, None, None, order, [8, 120], test, test_answers)
    assert curve[0] is not None and curve[1] is not None
    assert curve[1] > 0.85 and curve[1] > curve[0]


def test_an_exact_share_of_the_order_is_random_and_no_pair_comes_twice() -> None:
    from vlmrm_core.reward.active_labels import explored_slots

    assert explored_slots(8, 0.25).tolist() == [False, False, False, True] * 2
    assert not explored_slots(5, 0.0).any() and explored_slots(5, 1.0).all()
    pairs = random_pairs(30, 200, seed=0)
    scores = np.linspace(1.0, 0.0, len(pairs))  # greedy alone would follow the pair index
    greedy = informative_pair_order(pairs, scores, spread=0.0)
    mixed = informative_pair_order(pairs, scores, spread=0.0, explore=0.25, seed=1)
    assert sorted(mixed.tolist()) == list(range(len(pairs)))  # every pair once
    assert greedy[:40].tolist() == list(range(40))
    off_greedy = [i for k, i in enumerate(mixed[:40].tolist()) if (k + 1) % 4 == 0]
    assert mixed[:40].tolist() != greedy[:40].tolist() and max(off_greedy) > 40
    assert np.array_equal(
        mixed, informative_pair_order(pairs, scores, spread=0.0, explore=0.25, seed=1)
    )


def test_information_needs_an_unsure_posterior_not_just_a_close_pair() -> None:
    from vlmrm_core.reward.active_labels import pair_information, source_disagreement

    gaps = np.array([0.0, 0.0, 6.0])
    info = pair_information(gaps, np.array([0.0, 25.0, 0.0]))
    # A coin flip the fit is sure of (noise) tells it nothing; one it knows nothing about does.
    assert info[0] < 1e-6 and info[1] > 0.3 and info[2] < 1e-6
    assert pair_information(gaps)[0] == 1.0  # without a posterior: the answer's entropy
    # Tiny gaps of opposite sign are no disagreement; clear opposite preferences are.
    a = np.array([0.0, 0.001, 5.0, -5.0])
    b = np.array([0.001, 0.0, -5.0, 5.0])
    d = source_disagreement(np.array([[0, 1], [2, 3]]), [a, b])
    assert d[0] < 0.01 and d[1] > 0.9


def test_the_posterior_narrows_along_compared_directions() -> None:
    from vlmrm_core.reward.active_labels import fitted_pair_uncertainty
    from vlmrm_core.reward.adaptation import fit_preference

    rng = np.random.default_rng(0)
    x = np.zeros((40, 4))
    x[:20, 0] = rng.normal(size=20)  # compared frames vary only along axis 0
    x[20:, 1] = rng.normal(size=20)  # the others only along axis 1, never compared
    pairs = random_pairs(20, 60, seed=0)
    gap = x[pairs[:, 0], 0] - x[pairs[:, 1], 0]
    answers = (rng.random(len(pairs)) < 1.0 / (1.0 + np.exp(-2.0 * gap))).astype(float)  # noisy
    fit = fit_preference(x, pairs, answers, None, lam=1.0)
    candidates = np.array([[0, 1], [20, 21]])
    _reward, variances = fitted_pair_uncertainty(x, candidates, pairs, fit)
    unit = np.array([x[0, 0] - x[1, 0], x[20, 1] - x[21, 1]]) ** 2
    # Never compared along axis 1: the prior's variance 1 / (2λ) per unit of gap, as it was.
    assert variances[1] / unit[1] == pytest.approx(0.5)
    assert variances[0] / unit[0] < 0.5 * variances[1] / unit[1]
