import numpy as np
import pytest

from vlmrm_core.reward import math as rewards


def reference_regularized(x, goal_embs, baseline_embs, alpha):
    """Def. 1 written literally in float64: explicit P matrix and norm."""
    x = np.asarray(x, np.float64)
    g = np.mean([e / np.linalg.norm(e) for e in np.asarray(goal_embs, np.float64)], axis=0)
    b = np.mean([e / np.linalg.norm(e) for e in np.asarray(baseline_embs, np.float64)], axis=0)
    d = g - b
    P = alpha * np.outer(d, d) / (d @ d) + (1 - alpha) * np.eye(len(d))
    return np.array([1 - 0.5 * np.sum(((xi - g) @ P) ** 2) for xi in x])


def unit_rows(rng, n, d, dtype=np.float64):
    v = rng.standard_normal((n, d))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(dtype)


@pytest.mark.parametrize("alpha", [0.0, 0.25, 0.5, 0.9, 1.0])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_regularized_matches_float64_reference(alpha, dtype):
    rng = np.random.default_rng(0)
    x = unit_rows(rng, 200, 64, dtype)
    goal_embs, base_embs = rng.standard_normal((3, 64)), rng.standard_normal((2, 64))
    g = rewards.mean_embedding(goal_embs)
    b = rewards.mean_embedding(base_embs)
    got = rewards.regularized_reward(x, g, b, alpha)
    want = reference_regularized(x, goal_embs, base_embs, alpha)
    np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)


def test_alpha_zero_single_prompt_is_cosine():
    rng = np.random.default_rng(1)
    x = unit_rows(rng, 50, 32)
    goal = unit_rows(rng, 1, 32)[0]
    base = unit_rows(rng, 1, 32)[0]
    np.testing.assert_allclose(rewards.regularized_reward(x, goal, base, 0.0), x @ goal, atol=1e-12)
    np.testing.assert_allclose(rewards.cosine_reward(x, 3 * goal), x @ goal, atol=1e-12)


def test_alpha_one_only_direction_counts():
    rng = np.random.default_rng(2)
    g, b = unit_rows(rng, 2, 16)
    d = (g - b) / np.linalg.norm(g - b)
    x = unit_rows(rng, 1, 16)[0]
    orth = rng.standard_normal(16)
    orth -= (orth @ d) * d
    moved = x + 0.1 * orth  # changes x only orthogonally to d
    r1 = rewards.regularized_reward(x[None], g, b, 1.0)
    r2 = rewards.regularized_reward(moved[None], g, b, 1.0)
    # R depends only on (x − g)·d̂ at α = 1 (we skip the normalisation of `moved` on purpose)
    np.testing.assert_allclose(r1, r2, atol=1e-12)


def test_goal_peak_and_projection_matrix():
    rng = np.random.default_rng(3)
    g, b = unit_rows(rng, 2, 8)
    P = rewards.projection_matrix(g, b, 0.3)
    np.testing.assert_allclose(P, P.T)
    np.testing.assert_allclose(rewards.regularized_reward(g[None], g, b, 0.3), [1.0])


def test_bad_alpha_and_degenerate_direction():
    g = np.ones(4) / 2
    with pytest.raises(ValueError, match="α must be in"):
        rewards.regularized_reward(g[None], g, g, 1.5)
    with pytest.raises(ValueError, match="same embedding"):
        rewards.regularized_reward(g[None], g, g, 0.5)
    np.testing.assert_allclose(rewards.regularized_reward(g[None], g, g, 0.0), [1.0])


def test_contrastive_probability_matches_reference():
    rng = np.random.default_rng(4)
    x = unit_rows(rng, 30, 16)
    goal, negs = rng.standard_normal(16), rng.standard_normal((3, 16))
    tau = 0.07
    texts = np.vstack([goal, negs])
    texts /= np.linalg.norm(texts, axis=1, keepdims=True)
    logits = x @ texts.T / tau
    want = np.exp(logits[:, 0]) / np.exp(logits).sum(axis=1)
    p = rewards.contrastive_probability(x, goal, negs, tau)
    np.testing.assert_allclose(p, want, atol=1e-9)
    np.testing.assert_array_equal(rewards.contrastive_reward(p, 0.5), (want > 0.5).astype(float))


def test_contrastive_is_stable_for_tiny_tau_and_validates():
    x = np.eye(3)[:2]
    p = rewards.contrastive_probability(x, np.eye(3)[0], np.eye(3)[1:], 1e-4)
    assert np.all(np.isfinite(p)) and p[0] == pytest.approx(1.0) and p[1] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="positive"):
        rewards.contrastive_probability(x, np.eye(3)[0], np.eye(3)[1:], 0.0)
    with pytest.raises(ValueError, match="negative prompt"):
        rewards.contrastive_probability(x, np.eye(3)[0], np.zeros((0, 3)), 0.1)
    with pytest.raises(ValueError, match="β"):
        rewards.contrastive_reward(np.array([0.5]), 2.0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_reward_grid_equals_the_scalar_reward_of_every_combination(dtype):
    rng = np.random.default_rng(5)
    x = unit_rows(rng, 120, 32, dtype)
    goals = np.stack([rewards.mean_embedding(rng.standard_normal((k, 32))) for k in (1, 2, 3)])
    baselines = np.stack([rewards.mean_embedding(rng.standard_normal((k, 32))) for k in (1, 2)])
    alphas = [0.0, 0.3, 1.0]
    grid = rewards.regularized_reward_grid(x, goals, baselines, alphas)
    assert grid.shape == (3, 3, 2, 120) and grid.dtype == np.float64
    tolerance = 1e-12 if dtype == np.float64 else 1e-6
    for k, alpha in enumerate(alphas):
        for i, g in enumerate(goals):
            for j, b in enumerate(baselines):
                scalar = rewards.regularized_reward(x, g, b, alpha)
                np.testing.assert_allclose(grid[k, i, j], scalar, atol=tolerance, rtol=0)


def test_reward_grid_marks_a_goal_equal_to_its_baseline():
    rng = np.random.default_rng(6)
    x = unit_rows(rng, 10, 8)
    goals = unit_rows(rng, 2, 8)
    grid = rewards.regularized_reward_grid(x, goals, goals, [0.0, 0.5])
    # α = 0 needs no direction; α > 0 with g = b has none, where the scalar reward raises.
    assert np.isfinite(grid[0]).all()
    assert np.isnan(grid[1, 0, 0]).all() and np.isnan(grid[1, 1, 1]).all()
    assert np.isfinite(grid[1, 0, 1]).all() and np.isfinite(grid[1, 1, 0]).all()
    with pytest.raises(ValueError, match="same embedding"):
        rewards.regularized_reward(x, goals[0], goals[0], 0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        rewards.regularized_reward_grid(x, goals, goals, [1.5])


def test_reward_grid_from_dots_is_the_grid_in_blocks():
    rng = np.random.default_rng(8)
    x = unit_rows(rng, 30, 16)
    goals, baselines = unit_rows(rng, 4, 16), unit_rows(rng, 3, 16)
    whole = rewards.regularized_reward_grid(x, goals, baselines, [0.5])
    dots_g, dots_b = goals @ x.T, baselines @ x.T
    block = rewards.regularized_reward_grid_from_dots(
        dots_g[1:3], dots_b[2:], goals[1:3], baselines[2:], [0.5]
    )
    np.testing.assert_allclose(block, whole[:, 1:3, 2:], atol=1e-12)
    with pytest.raises(ValueError, match="don't match"):
        rewards.regularized_reward_grid_from_dots(dots_g, dots_b, goals[:2], baselines, [0.5])
