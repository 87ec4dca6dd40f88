"""The one Pearson implementation: row-wise over a matrix, and the scalar case of it."""

from __future__ import annotations

import numpy as np
import pytest

from vlmrm_core.metrics import epic_distance, pearson, standardize


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


def test_rows_equal_numpy_corrcoef_row_by_row(rng: np.random.Generator) -> None:
    labels = rng.random(50)
    rewards = rng.standard_normal((6, 50)) + np.linspace(-2, 2, 6)[:, None] * labels
    result = pearson(rewards, labels)
    assert result.rho.shape == (6,) and result.defined.all()
    for k in range(6):
        expected = np.corrcoef(rewards[k], labels)[0, 1]
        assert result.rho[k] == pytest.approx(expected, abs=1e-12)
        assert result.distance[k] == pytest.approx(np.sqrt((1 - expected) / 2), abs=1e-12)
        # The scalar case is the same function on one row.
        assert float(pearson(rewards[k], labels).distance) == result.distance[k]
        assert epic_distance(rewards[k], labels) == result.distance[k]


def test_paired_rows_with_weights_equal_repeated_elements(rng: np.random.Generator) -> None:
    x, y = rng.standard_normal((3, 20)), rng.standard_normal((3, 20))
    counts = rng.integers(1, 4, size=(3, 20))
    weighted = pearson(x, y, counts)
    for k in range(3):
        repeated = pearson(np.repeat(x[k], counts[k]), np.repeat(y[k], counts[k]))
        assert weighted.rho[k] == pytest.approx(float(repeated.rho), abs=1e-12)


def test_constant_rows_are_flagged_not_nan_silently(rng: np.random.Generator) -> None:
    labels = rng.random(10)
    rewards = np.vstack([rng.random(10), np.full(10, 3.0), 5.0 + 1e-15 * rng.random(10)])
    exact = pearson(rewards, labels)
    assert list(exact.defined) == [True, False, True]
    assert list(exact.x_constant) == [False, True, False] and not exact.y_constant.any()
    assert np.isnan(exact.rho[1]) and np.isnan(exact.distance[1])
    # A spread at rounding level counts as constant when asked to.
    assert list(pearson(rewards, labels, constant_rtol=1e-12).defined) == [True, False, False]
    assert not pearson(rewards, np.ones(10)).defined.any()


def test_distance_has_no_cancellation_near_one(rng: np.random.Generator) -> None:
    x = rng.standard_normal(1000)
    y = x + 1e-9 * rng.standard_normal(1000)
    distance = float(pearson(x, y).distance)
    # sqrt((1 − ρ)/2) would be rounding noise of order 1e-8; ‖u − v‖/2 resolves ~1e-10.
    assert 0 < distance < 1e-9
    assert float(pearson(x, x).distance) == 0.0


def test_standardize_gives_unit_norm_zero_mean_rows(rng: np.random.Generator) -> None:
    values = rng.random((4, 30))
    u, constant = standardize(values)
    assert not constant.any()
    np.testing.assert_allclose(u.sum(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose((u * u).sum(axis=1), 1, rtol=1e-12)
    centred = values - values.mean(axis=1, keepdims=True)
    reference = centred / np.linalg.norm(centred, axis=1, keepdims=True)
    np.testing.assert_allclose(u, reference, atol=1e-12)
    # A large offset loses nothing: the midpoint is subtracted exactly before centring.
    shifted, _ = standardize(1e10 + values)
    np.testing.assert_allclose(shifted, reference, atol=1e-5)


# --------------------------------------------------------------------------- Spearman


def test_spearman_equals_scipy_with_ties_and_many_sizes(rng: np.random.Generator) -> None:
    from scipy.stats import rankdata, spearmanr

    from vlmrm_core.metrics.correlation import average_ranks, spearman

    for n in (2, 3, 5, 17, 200):
        x = rng.integers(0, 4, n).astype(float)  # many ties
        y = x + rng.standard_normal(n)
        np.testing.assert_array_equal(average_ranks(x), rankdata(x))
        if np.ptp(x) == 0:
            continue
        assert spearman(x, y) == pytest.approx(spearmanr(x, y).statistic, abs=1e-12)
    matrix = rng.integers(0, 3, (4, 9)).astype(float)
    np.testing.assert_array_equal(average_ranks(matrix), rankdata(matrix, axis=-1))


def test_spearman_drops_missing_pairs_then_needs_two_non_constant_sides() -> None:
    from scipy.stats import spearmanr

    from vlmrm_core.metrics.correlation import spearman

    x = [0.1, None, 0.3, float("nan"), 0.6, 0.2, float("inf")]
    y = [9.0, 4.0, 7.0, 5.0, 1.0, 3.0, 2.0]
    kept = [0, 2, 4, 5]
    expected = spearmanr([x[i] for i in kept], [y[i] for i in kept]).statistic
    assert spearman(x, y) == pytest.approx(expected)
    assert spearman(np.array([1.0, 2.0]), np.array([5.0, 3.0])) == pytest.approx(-1.0)
    assert spearman([1.0], [2.0]) is None  # fewer than 2 pairs
    assert spearman([1.0, None, 2.0], [None, 1.0, 3.0]) is None  # one pair left
    assert spearman([1.0, 2.0, 3.0], [4.0, 4.0, 4.0]) is None  # constant side
    assert spearman([], []) is None
    with pytest.raises(ValueError, match="paired"):
        spearman([1.0, 2.0], [1.0, 2.0, 3.0])
