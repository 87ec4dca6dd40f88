"""Value-order correlation, successful episodes, reversed steps and the VOC gap."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from vlmrm_core.errors import InvalidInputError
from vlmrm_core.metrics.progress import (
    episode_groups,
    reversed_steps,
    successful_episodes,
    value_order_correlation,
    voc_gap,
)


def random_episodes(seed: int, n_episodes: int = 12) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Episodes of random lengths, shuffled together, with noisy rising rewards and some ties."""
    rng = np.random.default_rng(seed)
    episodes, steps, rewards = [], [], []
    for episode in range(n_episodes):
        length = int(rng.integers(3, 30))
        t = np.arange(length)
        episodes += [episode * 7] * length  # ids need not be 0..n-1
        steps += list(t * 2)  # nor steps consecutive
        noisy = t * rng.uniform(-0.2, 1.0) + rng.normal(0, 3, length)
        rewards += list(np.round(noisy))  # rounding makes ties
    order = rng.permutation(len(episodes))
    return (
        np.array(rewards, np.float64)[order],
        np.array(episodes)[order],
        np.array(steps)[order],
    )


@pytest.mark.parametrize("seed", range(5))
def test_per_episode_rho_is_scipys_spearman(seed: int) -> None:
    rewards, episodes, steps = random_episodes(seed)
    result = value_order_correlation(rewards, episodes, steps, n_boot=100)
    expected = {}
    for episode in np.unique(episodes):
        mask = episodes == episode
        rho = spearmanr(rewards[mask], steps[mask]).statistic
        if np.isfinite(rho):
            expected[int(episode)] = float(rho)
    assert result.per_episode.keys() == expected.keys()
    for episode, rho in expected.items():
        assert result.per_episode[episode] == pytest.approx(rho, abs=1e-12)
    assert result.voc == pytest.approx(np.mean(list(expected.values())), abs=1e-12)
    assert result.n_episodes == len(expected)


def test_interval_brackets_the_mean_and_is_reproducible() -> None:
    rewards, episodes, steps = random_episodes(7, n_episodes=30)
    first = value_order_correlation(rewards, episodes, steps, seed=3)
    again = value_order_correlation(rewards, episodes, steps, seed=3)
    assert first == again
    assert first.ci_low is not None and first.ci_high is not None and first.voc is not None
    assert first.ci_low < first.voc < first.ci_high
    per = np.array(list(first.per_episode.values()))
    assert per.min() <= first.ci_low and first.ci_high <= per.max()
    # 30 episodes: the 95 % interval of a mean is roughly ± 2 standard errors
    half = (first.ci_high - first.ci_low) / 2
    assert half == pytest.approx(1.96 * per.std() / np.sqrt(per.size), rel=0.25)


def test_include_selects_episodes_and_reports_an_empty_selection() -> None:
    rewards = [1, 2, 3, 3, 2, 1]
    episodes = [0, 0, 0, 1, 1, 1]
    steps = [0, 1, 2, 0, 1, 2]
    assert value_order_correlation(rewards, episodes, steps).voc == pytest.approx(0.0)
    only_rising = value_order_correlation(rewards, episodes, steps, include={0})
    assert only_rising.voc == pytest.approx(1.0) and only_rising.per_episode.keys() == {0}
    none = value_order_correlation(rewards, episodes, steps, include=set())
    assert none.voc is None and none.n_episodes == 0 and "label successful" in none.note


def test_constant_and_single_frame_episodes_are_skipped_with_a_note() -> None:
    result = value_order_correlation(
        [1.0, 2.0, 5.0, 5.0, 9.0], [0, 0, 1, 1, 2], [0, 1, 0, 1, 0], n_boot=50
    )
    assert result.per_episode == pytest.approx({0: 1.0})
    assert result.skipped == (1, 2) and "left out" in result.note
    assert result.ci_low is None and result.ci_high is None
    assert result.to_dict()["per_episode"].keys() == {"0"}


def test_bad_shapes_and_parameters_are_user_errors() -> None:
    with pytest.raises(InvalidInputError, match="one reward per frame"):
        value_order_correlation([1.0, 2.0], [0, 0, 0], [0, 1, 2])
    with pytest.raises(InvalidInputError, match="n_boot"):
        value_order_correlation([1.0, 2.0], [0, 0], [0, 1], n_boot=1)


def test_successful_means_the_last_labelled_frame_is_a_success() -> None:
    nan = np.nan
    episodes = [0, 0, 0, 1, 1, 1, 2, 2, 3]
    steps = [0, 1, 2, 0, 1, 2, 0, 1, 0]
    labels = [0, 1, nan, 1, 1, 0, nan, nan, 0.7]
    # 0: last labelled (step 1) succeeds; 1: ends in failure; 2: unlabelled; 3: graded 0.7
    assert successful_episodes(episodes, steps, labels) == {0, 3}
    assert successful_episodes(episodes, steps, labels, threshold=0.8) == {0}


def test_reversed_steps_mirror_each_episode() -> None:
    episodes = np.array([5, 5, 5, 2, 2])
    steps = np.array([0, 1, 2, 10, 13])
    assert reversed_steps(episodes, steps).tolist() == [2, 1, 0, 13, 10]
    groups = episode_groups(episodes)
    assert {k: v.tolist() for k, v in groups.items()} == {2: [3, 4], 5: [0, 1, 2]}


def test_a_framewise_reward_has_the_negated_voc_on_reversed_copies() -> None:
    rewards, episodes, steps = random_episodes(11)
    forward = value_order_correlation(rewards, episodes, steps)
    backward = value_order_correlation(rewards, episodes, reversed_steps(episodes, steps))
    for episode, rho in forward.per_episode.items():
        assert backward.per_episode[episode] == pytest.approx(-rho)
    gap = voc_gap(forward, backward)
    assert forward.voc is not None and gap.gap == pytest.approx(2 * forward.voc)
    assert gap.n_pairs == forward.n_episodes
    assert gap.ci_low is not None and gap.ci_high is not None
    assert gap.ci_low < gap.gap < gap.ci_high  # type: ignore[operator]


def test_the_gap_pairs_only_episodes_defined_both_ways() -> None:
    forward = value_order_correlation([1, 2, 3, 1, 2, 3], [0, 0, 0, 1, 1, 1], [0, 1, 2] * 2)
    backward = value_order_correlation([3, 2, 1, 4, 4, 4], [0, 0, 0, 1, 1, 1], [0, 1, 2] * 2)
    gap = voc_gap(forward, backward, n_boot=10)
    assert gap.n_pairs == 1 and gap.gap == pytest.approx(2.0) and gap.ci_low is None
    assert gap.to_dict()["reversed"]["skipped"] == [1]


def test_no_frames_form_no_episodes() -> None:
    """A dataset without episodes (a sweep) has no groups, not a crash."""
    assert episode_groups(np.array([], dtype=np.int64)) == {}
