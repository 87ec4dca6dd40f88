"""Labels where they matter most: rank disagreement, boundary closeness, coverage order,
interval separation, and the measured saving over random order on rendered frames."""

from __future__ import annotations

import numpy as np
import pytest

from tests._visible_object import embedded_visible_object
from vlmrm_core.reward.active_labels import (
    boundary_closeness,
    held_out_curve,
    informative_order,
    informativeness,
    labels_to_reach,
    normalised_ranks,
    rank_disagreement,
    separation_estimate,
    simulate_active_order,
)
from vlmrm_core.reward.adaptation import prior_direction


def test_normalised_ranks_average_ties() -> None:
    assert normalised_ranks(np.array([3.0, 1.0, 2.0])).tolist() == [1.0, 0.0, 0.5]
    assert normalised_ranks(np.array([1.0, 1.0, 5.0])).tolist() == [0.25, 0.25, 1.0]


def test_rank_disagreement_is_zero_when_rewards_agree_and_high_at_swapped_ends() -> None:
    r = np.arange(10.0)
    assert np.allclose(rank_disagreement([r, 2 * r + 1]), 0.0)
    swapped = rank_disagreement([r, -r])
    assert swapped[0] == pytest.approx(1.0) and swapped[-1] == pytest.approx(1.0)
    assert swapped.argmin() in (4, 5)


def test_boundary_closeness_peaks_at_the_threshold() -> None:
    r = np.linspace(0, 1, 11)
    assert boundary_closeness(r).argmax() == 5
    near = boundary_closeness(r, threshold=0.8)
    assert near.argmax() == 8 and near[0] == pytest.approx(0.0)


def test_order_covers_clusters_before_repeating_and_skips_labelled_frames() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 16))
    x = np.repeat(centres, 5, axis=0) + 0.01 * rng.normal(size=(20, 16))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    scores = np.zeros(20)
    scores[:5] = 1.0  # cluster 0 is the most informative...
    labelled = np.zeros(20, bool)
    labelled[10] = True  # ...and cluster 2 already has a label
    order = informative_order(x, scores, labelled=labelled)
    assert 10 not in order and len(order) == 19
    first_clusters = [i // 5 for i in order[:3]]
    assert first_clusters[0] == 0  # informativeness breaks the tie between far clusters
    assert sorted(first_clusters) == [0, 1, 3]  # each unlabelled cluster before any repeat


def test_exact_duplicates_come_last() -> None:
    x = np.eye(4)[[0, 0, 0, 1, 2, 3]].astype(float)
    order = informative_order(x, np.array([1.0, 1.0, 1.0, 0.0, 0.0, 0.0]))
    assert set(order[:4].tolist()) >= {3, 4, 5}
    assert order[0] in (0, 1, 2) and not {1, 2} <= set(order[:4].tolist())


def test_informativeness_combines_what_is_known() -> None:
    a, b = np.arange(8.0), np.arange(8.0)[::-1]
    assert informativeness([a]).shape == (8,)
    with_adapted = informativeness([a, b], adapted=np.linspace(0, 1, 8))
    assert np.all((with_adapted >= 0) & (with_adapted <= 1))
    with pytest.raises(ValueError):
        informativeness([])


def test_separation_estimate() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(200) < 0.5).astype(float)
    good = y + rng.normal(0, 0.5, 200)
    slightly_worse = y + rng.normal(0, 0.6, 200)
    bad = rng.normal(size=200)
    apart = separation_estimate(good, bad, y, n_boot=300)
    assert not apart.overlap and apart.more_labels == 0
    close = separation_estimate(good, slightly_worse, y, n_boot=300)
    assert close.overlap and close.labels_needed > 200 and close.more_labels > 0
    same = separation_estimate(good, good, y, n_boot=300)
    assert same.overlap and same.labels_needed is None


def test_labels_to_reach() -> None:
    assert labels_to_reach([8, 16, 32], [0.6, None, 0.3], 0.35) == 32
    assert labels_to_reach([8, 16], [0.6, 0.5], 0.1) is None


@pytest.mark.slow
def test_informative_first_needs_no_more_labels_than_random(tiny_clip) -> None:
    """On the red-disc frames, "most informative first" reaches a held-out EPIC within 0.05 of
    the all-labels value with no more labels than random order, averaged over splits."""
    data, images, texts = embedded_visible_object(tiny_clip)
    prior = prior_direction(texts[0])
    sizes = [4, 8, 12, 16, 24, 32, 48, 64, 96, 140]
    needed = {"random": [], "informative": []}
    for seed in range(4):
        rng = np.random.default_rng(seed)
        test_eps = rng.permutation(20)[:6]
        test = np.flatnonzero(np.isin(data.episodes, test_eps))
        pool = np.flatnonzero(~np.isin(data.episodes, test_eps))

        def curve(order, pool=pool, test=test, seed=seed):
            return held_out_curve(
                images, data.labels, data.episodes, prior, pool[order], sizes, test, seed=seed
            )

        sets = [images[pool] @ t for t in texts]
        active = simulate_active_order(
            images[pool],
            data.labels[pool],
            sets,
            groups=data.episodes[pool],
            prior=prior,
            batch_size=8,
            seed=seed,
        )
        assert sorted(active.tolist()) == list(range(len(pool)))
        random_curve = curve(rng.permutation(len(pool)))
        active_curve = curve(active)
        target = random_curve[-1] + 0.05
        needed["random"].append(labels_to_reach(sizes, random_curve, target) or sizes[-1])
        needed["informative"].append(labels_to_reach(sizes, active_curve, target) or sizes[-1])
    assert np.mean(needed["informative"]) <= np.mean(needed["random"])


def test_informative_queue_reorders_only_the_pending_frames() -> None:
    from vlmrm_core.reward.active_labels import informative_queue

    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 8))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    hashes = [f"h{i}" for i in range(30)]
    y = (x[:, 0] > 0).astype(float)
    labels = {hashes[i]: y[i] for i in range(6)}
    queue = [*hashes[10:], "not-embedded"]
    sets = [x @ rng.normal(size=8), x @ rng.normal(size=8)]
    ordered = informative_queue(queue, hashes, x, sets, labels=labels)
    assert sorted(ordered) == sorted(queue)
    assert ordered[-1] == "not-embedded"
    # Without rewards or labels it still spreads over the embedding space.
    assert sorted(informative_queue(queue, hashes, x, [])) == sorted(queue)
