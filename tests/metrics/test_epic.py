"""EPIC distance: known values, invariances, validation, bootstrap and transition rewards."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import pearsonr

from vlmrm_core.metrics import (
    ConstantRewardError,
    EpicResult,
    bootstrap_ci,
    canonicalize,
    epic_distance,
    epic_distance_transitions,
    evaluate_epic,
    pearson_distance,
)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


# ---------------------------------------------------------------- known values


def test_identical_rewards_have_distance_zero(rng: np.random.Generator) -> None:
    rewards = rng.standard_normal(1000)
    assert epic_distance(rewards, rewards) == 0.0


def test_negated_rewards_have_distance_one(rng: np.random.Generator) -> None:
    rewards = rng.standard_normal(1000)
    assert epic_distance(rewards, -rewards) == pytest.approx(1.0, abs=1e-12)


def test_independent_rewards_are_near_one_over_root_two(rng: np.random.Generator) -> None:
    n = 200_000
    distance = epic_distance(rng.standard_normal(n), rng.standard_normal(n))
    # ρ has standard error 1/√n ≈ 0.0022; dD/dρ = −1/(4D) ≈ −0.35, so D's is ≈ 0.0008.
    assert distance == pytest.approx(1 / math.sqrt(2), abs=0.004)


def test_correlation_one_half_gives_distance_one_half() -> None:
    # Orthonormal centred u, v: x = u and y = ½u + (√3/2)v have ρ = ½ exactly,
    # and sqrt((1 − ½)/2) = ½.
    u = np.array([1.0, -1.0, 1.0, -1.0]) / 2.0
    v = np.array([1.0, 1.0, -1.0, -1.0]) / 2.0
    y = 0.5 * u + math.sqrt(3) / 2 * v
    assert pearson_distance(u, y) == pytest.approx(0.5, abs=1e-12)


def test_binary_labels_give_point_biserial_distance() -> None:
    rewards = np.array([0.1, 0.4, 0.35, 0.8])
    labels = np.array([0, 0, 1, 1])
    rho = pearsonr(rewards, labels).statistic
    assert epic_distance(rewards, labels) == pytest.approx(math.sqrt((1 - rho) / 2), rel=1e-12)


@pytest.mark.parametrize("n", [2, 3, 10, 1000])
def test_matches_scipy_pearson_reference(rng: np.random.Generator, n: int) -> None:
    rewards = rng.standard_normal(n)
    labels = 0.3 * rewards + rng.standard_normal(n)
    rho = pearsonr(rewards, labels).statistic
    expected = math.sqrt((1 - rho) / 2)
    assert epic_distance(rewards, labels) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_graded_labels_are_accepted(rng: np.random.Generator) -> None:
    labels = rng.choice([0.0, 0.5, 1.0], size=500)
    rewards = labels + 0.5 * rng.standard_normal(500)
    rho = pearsonr(rewards, labels).statistic
    assert epic_distance(rewards, labels) == pytest.approx(math.sqrt((1 - rho) / 2), rel=1e-9)


def test_distance_stays_in_unit_interval_and_finite(rng: np.random.Generator) -> None:
    for _ in range(50):
        n = int(rng.integers(2, 20))
        distance = epic_distance(rng.standard_normal(n), rng.standard_normal(n))
        assert 0.0 <= distance <= 1.0


# ---------------------------------------------------------------- invariances


@pytest.mark.parametrize(("scale", "shift"), [(3.0, 0.0), (1e-6, 5.0), (250.0, -1e6)])
def test_invariant_to_positive_scaling_and_shifting(
    rng: np.random.Generator, scale: float, shift: float
) -> None:
    rewards = rng.standard_normal(2000)
    labels = (rewards + rng.standard_normal(2000) > 0).astype(float)
    base = epic_distance(rewards, labels)
    assert epic_distance(scale * rewards + shift, labels) == pytest.approx(base, abs=1e-9)
    assert epic_distance(rewards, scale * labels + shift) == pytest.approx(base, abs=1e-9)


def test_negative_scaling_reflects_distance(rng: np.random.Generator) -> None:
    rewards = rng.standard_normal(500)
    labels = rewards + rng.standard_normal(500)
    d = epic_distance(rewards, labels)
    d_negated = epic_distance(-2.0 * rewards, labels)
    # ρ → −ρ, so D² + D_negated² = 1.
    assert d**2 + d_negated**2 == pytest.approx(1.0, abs=1e-12)


def test_small_spread_on_large_offset_keeps_precision() -> None:
    rewards = np.array([1e10, 1e10 + 1e-5, 1e10, 1e10 + 1e-5])
    labels = np.array([0.0, 1.0, 0.0, 1.0])
    assert epic_distance(rewards, labels) == pytest.approx(0.0, abs=1e-6)


def test_extreme_magnitudes_do_not_overflow_or_underflow() -> None:
    labels = np.array([0.0, 1.0, 1.0])
    assert epic_distance(np.array([-1e308, 1e308, 1e308]), labels) == pytest.approx(0.0, abs=1e-7)
    assert epic_distance(np.array([0.0, 1e-300, 1e-300]), labels) == pytest.approx(0.0, abs=1e-7)


# ---------------------------------------------------------------- weights


def test_integer_weights_equal_repeating_states(rng: np.random.Generator) -> None:
    rewards = rng.standard_normal(50)
    labels = (rng.random(50) < 0.4).astype(float)
    counts = rng.integers(0, 5, size=50)
    counts[:2] = [1, 1]
    labels[:2] = [0.0, 1.0]  # both classes keep positive weight
    repeated = epic_distance(np.repeat(rewards, counts), np.repeat(labels, counts))
    assert epic_distance(rewards, labels, weights=counts) == pytest.approx(repeated, rel=1e-12)


def test_uniform_weights_change_nothing(rng: np.random.Generator) -> None:
    rewards, labels = rng.standard_normal(100), rng.standard_normal(100)
    expected = epic_distance(rewards, labels)
    assert epic_distance(rewards, labels, weights=np.full(100, 7.5)) == pytest.approx(expected)


def test_zero_weight_states_cannot_hide_constant_labels() -> None:
    with pytest.raises(ConstantRewardError, match="labels"):
        epic_distance([0.1, 0.2, 0.3], [1.0, 1.0, 0.0], weights=[1.0, 1.0, 0.0])


def test_bad_weights_raise() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        epic_distance([0.1, 0.2, 0.3], [0, 1, 0], weights=[1.0, -1.0, 1.0])
    with pytest.raises(ValueError, match="all zero"):
        epic_distance([0.1, 0.2, 0.3], [0, 1, 0], weights=[0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="shape"):
        epic_distance([0.1, 0.2, 0.3], [0, 1, 0], weights=[1.0, 1.0])
    with pytest.raises(ValueError, match="weights.*NaN"):
        epic_distance([0.1, 0.2, 0.3], [0, 1, 0], weights=[1.0, np.nan, 1.0])


# ---------------------------------------------------------------- validation


def test_constant_labels_raise_with_an_explanation() -> None:
    with pytest.raises(ConstantRewardError) as info:
        epic_distance([0.1, 0.5, 0.9], [1, 1, 1])
    message = str(info.value)
    assert "labels are all the same value (1.0)" in message
    assert "undefined" in message
    assert "at least one success and one failure" in message
    assert info.value.side == "labels"
    assert info.value.value == 1.0
    assert isinstance(info.value, ValueError)


def test_constant_rewards_raise_naming_the_rewards() -> None:
    with pytest.raises(ConstantRewardError, match=r"rewards are all the same value \(0\.25\)"):
        epic_distance([0.25, 0.25, 0.25], [0, 1, 0])


def test_constant_side_of_pearson_distance_is_named() -> None:
    with pytest.raises(ConstantRewardError, match=r"y is constant.*3\.0"):
        pearson_distance([1.0, 2.0], [3.0, 3.0])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_raise(bad: float) -> None:
    with pytest.raises(ValueError, match="rewards.*index 1"):
        epic_distance([0.1, bad, 0.3], [0, 1, 0])
    with pytest.raises(ValueError, match="labels"):
        epic_distance([0.1, 0.2, 0.3], [0, bad, 0])


def test_shape_errors() -> None:
    with pytest.raises(ValueError, match="same length"):
        epic_distance([0.1, 0.2, 0.3], [0, 1])
    with pytest.raises(ValueError, match="1-D"):
        epic_distance(np.zeros((2, 2)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="at least 2"):
        epic_distance([0.1], [1.0])


def test_one_million_states_agree_with_float64_reference(rng: np.random.Generator) -> None:
    # Speed is measured by bench/bench_epic.py (target < 100 ms); here: correctness at that size.
    rewards = rng.standard_normal(1_000_000)
    labels = (rewards + 2 * rng.standard_normal(1_000_000) > 0).astype(np.float64)
    rho = np.corrcoef(rewards, labels)[0, 1]
    assert epic_distance(rewards, labels) == pytest.approx(np.sqrt((1 - rho) / 2), abs=1e-12)


# ---------------------------------------------------------------- bootstrap


def test_bootstrap_ci_contains_estimate_and_is_deterministic(rng: np.random.Generator) -> None:
    rewards = rng.standard_normal(400)
    labels = (rewards + rng.standard_normal(400) > 0).astype(float)
    low, high = bootstrap_ci(rewards, labels, n_boot=500, seed=3)
    assert 0.0 <= low < epic_distance(rewards, labels) < high <= 1.0
    assert bootstrap_ci(rewards, labels, n_boot=500, seed=3) == (low, high)
    assert bootstrap_ci(rewards, labels, n_boot=500, seed=4) != (low, high)


def test_bootstrap_ci_narrows_with_more_states(rng: np.random.Generator) -> None:
    widths = []
    for n in (100, 1600):
        rewards = rng.standard_normal(n)
        labels = (rewards + rng.standard_normal(n) > 0).astype(float)
        low, high = bootstrap_ci(rewards, labels, n_boot=400, seed=0)
        widths.append(high - low)
    # Width scales like 1/√n: 16× the states, about a quarter of the width.
    assert widths[1] < 0.5 * widths[0]


def test_bootstrap_ci_widens_with_level(rng: np.random.Generator) -> None:
    rewards = rng.standard_normal(300)
    labels = rewards + rng.standard_normal(300)
    low_90, high_90 = bootstrap_ci(rewards, labels, n_boot=400, level=0.9)
    low_99, high_99 = bootstrap_ci(rewards, labels, n_boot=400, level=0.99)
    assert low_99 <= low_90 and high_90 <= high_99


def test_bootstrap_blocks_do_not_change_the_result(
    rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vlmrm_core.metrics import epic

    rewards = rng.standard_normal(200)
    labels = rewards + rng.standard_normal(200)
    whole = bootstrap_ci(rewards, labels, n_boot=100, seed=1)
    # Blocks of 1 resample draw the same random stream row by row.
    monkeypatch.setattr(epic, "_BOOTSTRAP_BLOCK_ELEMENTS", 200)
    assert bootstrap_ci(rewards, labels, n_boot=100, seed=1) == pytest.approx(whole)


def test_bootstrap_with_weights_matches_repeated_states_on_average(
    rng: np.random.Generator,
) -> None:
    rewards = rng.standard_normal(300)
    labels = (rewards + rng.standard_normal(300) > 0).astype(float)
    weights = rng.integers(1, 4, size=300)
    low, high = bootstrap_ci(rewards, labels, n_boot=300, weights=weights)
    assert low < epic_distance(rewards, labels, weights=weights) < high


def test_bootstrap_drops_constant_resamples_but_refuses_when_too_many() -> None:
    rewards = np.arange(20, dtype=float)
    rare = np.zeros(20)
    rare[-1] = 1.0  # P(resample has no success) = 0.95²⁰ ≈ 36 %
    with pytest.raises(ConstantRewardError, match="bootstrap resamples had constant"):
        bootstrap_ci(rewards, rare, n_boot=200)
    low, high = bootstrap_ci(rewards, rare, n_boot=200, max_dropped_fraction=0.6)
    assert 0.0 <= low <= high <= 1.0


def test_bootstrap_validates_like_epic() -> None:
    with pytest.raises(ConstantRewardError, match="labels"):
        bootstrap_ci([0.1, 0.2, 0.3], [0, 0, 0])
    with pytest.raises(ValueError, match="level"):
        bootstrap_ci([0.1, 0.2, 0.3], [0, 1, 0], level=1.5)
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_ci([0.1, 0.2, 0.3], [0, 1, 0], n_boot=1)


def test_evaluate_epic_bundles_estimate_and_interval(rng: np.random.Generator) -> None:
    rewards = rng.standard_normal(200)
    labels = (rewards > 0).astype(float)
    result = evaluate_epic(rewards, labels, n_boot=200, seed=5)
    assert isinstance(result, EpicResult)
    assert result.n == 200
    assert result.epic_distance == epic_distance(rewards, labels)
    assert (result.ci_low, result.ci_high) == bootstrap_ci(rewards, labels, n_boot=200, seed=5)
    without_ci = evaluate_epic(rewards, labels, n_boot=0)
    assert without_ci.ci_low is None and without_ci.ci_high is None


def test_evaluate_epic_counts_only_weighted_states() -> None:
    result = evaluate_epic([0.1, 0.9, 0.5, 0.2], [0, 1, 1, 0], weights=[1, 1, 0, 1], n_boot=0)
    assert result.n == 3


# ---------------------------------------------------------------- transition rewards

N_STATES, N_ACTIONS = 12, 4


def _transitions(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Continuous 2-D states and 1-D actions."""
    states = rng.uniform(-1, 1, size=(n, 2))
    actions = rng.uniform(-1, 1, size=(n, 1))
    next_states = np.clip(states + 0.3 * actions + 0.1 * rng.standard_normal((n, 2)), -1, 1)
    return states, actions, next_states


def _reward(s: np.ndarray, a: np.ndarray, s_next: np.ndarray) -> np.ndarray:
    return np.sin(3 * s_next[:, 0]) - s_next[:, 1] ** 2 + 0.5 * a[:, 0] * s[:, 1]


def _potential(s: np.ndarray) -> np.ndarray:
    return 2.0 * np.cos(s[:, 0]) + s[:, 1] ** 3


def test_transition_epic_is_invariant_to_potential_shaping(rng: np.random.Generator) -> None:
    gamma = 0.9
    s, a, s_next = _transitions(rng, 300)

    def shaped(s: np.ndarray, a: np.ndarray, s_next: np.ndarray) -> np.ndarray:
        return _reward(s, a, s_next) + gamma * _potential(s_next) - _potential(s)

    # Shaping changes the raw rewards a lot ...
    raw = pearson_distance(_reward(s, a, s_next), shaped(s, a, s_next))
    assert raw > 0.1
    # ... but not the canonicalized ones.
    distance = epic_distance_transitions(_reward, shaped, s, a, s_next, gamma, n_samples=16)
    assert distance == pytest.approx(0.0, abs=1e-6)


def test_transition_epic_is_invariant_to_positive_scaling(rng: np.random.Generator) -> None:
    s, a, s_next = _transitions(rng, 200)

    def scaled(s: np.ndarray, a: np.ndarray, s_next: np.ndarray) -> np.ndarray:
        return 4.0 * _reward(s, a, s_next) + 3.0

    assert epic_distance_transitions(_reward, scaled, s, a, s_next, 0.99) == pytest.approx(
        0.0, abs=1e-6
    )


def test_transition_epic_of_negation_is_one(rng: np.random.Generator) -> None:
    s, a, s_next = _transitions(rng, 200)

    def negated(s: np.ndarray, a: np.ndarray, s_next: np.ndarray) -> np.ndarray:
        return -_reward(s, a, s_next)

    distance = epic_distance_transitions(_reward, negated, s, a, s_next, 0.9, n_samples=8)
    assert distance == pytest.approx(1.0, abs=1e-9)


def test_transition_epic_of_independent_random_rewards(rng: np.random.Generator) -> None:
    table_a = rng.standard_normal((N_STATES, N_ACTIONS, N_STATES))
    table_b = rng.standard_normal((N_STATES, N_ACTIONS, N_STATES))
    n = 4000
    s = rng.integers(0, N_STATES, size=n)
    a = rng.integers(0, N_ACTIONS, size=n)
    s_next = rng.integers(0, N_STATES, size=n)

    def reward_a(s: np.ndarray, a: np.ndarray, s_next: np.ndarray) -> np.ndarray:
        return table_a[s, a, s_next]

    def reward_b(s: np.ndarray, a: np.ndarray, s_next: np.ndarray) -> np.ndarray:
        return table_b[s, a, s_next]

    distance = epic_distance_transitions(reward_a, reward_b, s, a, s_next, 0.9, n_samples=12)
    # 576 distinct transitions: ρ has standard error ≈ 1/√576 ≈ 0.04, D's ≈ 0.015.
    assert distance == pytest.approx(1 / math.sqrt(2), abs=0.06)


def test_canonicalize_matches_the_definition_on_a_tiny_case() -> None:
    table = np.arange(2 * 2 * 2, dtype=float).reshape(2, 2, 2) ** 1.5

    def reward(s: np.ndarray, a: np.ndarray, s_next: np.ndarray) -> np.ndarray:
        return table[s, a, s_next]

    gamma = 0.8
    samples_s, samples_a = np.array([0, 1]), np.array([0, 1])
    s, a, s_next = np.array([0, 1, 1]), np.array([1, 0, 1]), np.array([1, 1, 0])
    got = canonicalize(reward, s, a, s_next, gamma, samples_s, samples_a, batch_size=3)

    def mean_next(x: int) -> float:  # E_{A, S′}[R(x, A, S′)] over uniform samples
        return float(table[x].mean())

    constant = float(table.mean())  # E[R(S, A, S′)]
    expected = [
        table[si, ai, ni] + gamma * mean_next(ni) - mean_next(si) - gamma * constant
        for si, ai, ni in zip(s, a, s_next, strict=True)
    ]
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_canonicalize_checks_reward_function_output(rng: np.random.Generator) -> None:
    s, a, s_next = _transitions(rng, 5)

    def wrong_shape(s: np.ndarray, a: np.ndarray, s_next: np.ndarray) -> np.ndarray:
        return np.zeros((s.shape[0], 2))

    with pytest.raises(ValueError, match="wrong_shape.*shape"):
        canonicalize(wrong_shape, s, a, s_next, 0.9, s, a)
    with pytest.raises(ValueError, match="gamma"):
        canonicalize(_reward, s, a, s_next, 1.5, s, a)
    with pytest.raises(ValueError, match="samples_a"):
        canonicalize(_reward, s, a, s_next, 0.9, s, np.zeros((3, 2)))


def test_pure_shaping_reward_is_reported_as_constant(rng: np.random.Generator) -> None:
    s, a, s_next = _transitions(rng, 100)

    def shaping_only(s: np.ndarray, a: np.ndarray, s_next: np.ndarray) -> np.ndarray:
        return 0.9 * _potential(s_next) - _potential(s)

    with pytest.raises(ConstantRewardError, match="reward_fn_b"):
        epic_distance_transitions(_reward, shaping_only, s, a, s_next, 0.9, n_samples=8)
