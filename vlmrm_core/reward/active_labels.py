"""Labels where they matter most: a "most informative first" labelling order.

A label is worth most where the candidate rewards disagree (it decides between them), where a
reward is unsure (its value is near the success/failure boundary), and where nothing similar
has been labelled yet. :func:`informativeness` scores the first two from reward vectors alone
(no labels needed), and :func:`informative_order` walks the cached embeddings k-center greedy
style, trading that score against the distance to everything already chosen or labelled, so
the order covers the embedding space instead of piling up near-duplicates.

:func:`simulate_active_order` replays the Label page's loop (label a batch, refit the adapted
reward, re-rank) against known labels, for tests and ``bench/bench_active_labels.py``;
:func:`separation_estimate` tells the Evaluate page whether two prompt sets' EPIC intervals still
overlap and roughly how many labels would separate them.

The same for comparisons (which of two frames is closer to the goal): :func:`random_pairs`
draws candidate pairs, :func:`pair_informativeness` scores them (the reward sources clearly
disagree about their order, :func:`source_disagreement`, or an answer would tell the fitted
Bradley–Terry reward much under its posterior, :func:`pair_information`),
:func:`informative_pair_order` orders them without piling up on the same frames (optionally
mixing in a share of random pairs), and :func:`simulate_pair_order` /
:func:`pair_held_out_curve` are the replay and the held-out learning curve of
``bench/bench_pair_order.py``.

Pure functions on numpy arrays.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from vlmrm_core.metrics import ConstantRewardError, evaluate_epic
from vlmrm_core.metrics.pairs import clip_sums
from vlmrm_core.reward.adaptation import (
    MIN_LABELS,
    MIN_PAIRS,
    AdaptationError,
    AdaptedFit,
    fit_adapted,
    fit_preference,
    preference_covariance,
)

__all__ = [
    "SeparationEstimate",
    "boundary_closeness",
    "informative_order",
    "informative_queue",
    "informativeness",
    "labels_to_reach",
    "normalised_ranks",
    "rank_disagreement",
    "separation_estimate",
    "simulate_active_order",
    "held_out_curve",
    "informative_pair_order",
    "pair_held_out_curve",
    "pair_informativeness",
    "random_pairs",
    "simulate_pair_order",
    "PAIR_EXPLORE",
    "explored_slots",
    "fitted_pair_uncertainty",
    "pair_information",
    "source_disagreement",
]

PAIR_EXPLORE = 0.0
"""Share of random pairs mixed into the "most informative first" order (ε-greedy)."""


def normalised_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks scaled to [0, 1] (ties get their average rank); 0.5 everywhere for N = 1."""
    v = np.asarray(values, dtype=np.float64)
    n = v.shape[-1]
    if n <= 1:
        return np.full(v.shape, 0.5)
    order = np.argsort(v, kind="stable")
    ranks = np.empty(n)
    ranks[order] = np.arange(n, dtype=np.float64)
    # Average ranks over ties so equal rewards count as equal.
    sorted_v = v[order]
    starts = np.flatnonzero(np.r_[True, sorted_v[1:] != sorted_v[:-1]])
    ends = np.r_[starts[1:], n]
    for s, e in zip(starts, ends, strict=True):
        if e - s > 1:
            ranks[order[s:e]] = (s + e - 1) / 2.0
    return ranks / (n - 1)


def rank_disagreement(reward_sets: Sequence[np.ndarray]) -> np.ndarray:
    """How much several rewards disagree about each frame's rank, in [0, 1].

    Args:
        reward_sets: K ≥ 2 reward vectors over the same N frames.

    Returns:
        N values: twice the standard deviation of the frame's normalised ranks (1 when half
        the rewards put it first and half last, 0 when all agree).
    """
    if len(reward_sets) < 2:
        raise ValueError("rank disagreement needs at least two rewards")
    ranks = np.stack([normalised_ranks(r) for r in reward_sets])
    return np.clip(2.0 * ranks.std(axis=0), 0.0, 1.0)


def boundary_closeness(rewards: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """How close each frame is to the reward's success/failure boundary, in [0, 1].

    Measured in ranks, so it is the same for any monotone rescaling of the reward: 1 at the
    boundary, falling linearly to 0 at the farther end of the ranking.

    Args:
        rewards: N rewards.
        threshold: the reward value at the boundary (e.g. 0.5 for an adapted reward, which
            predicts the label); None puts it at the median.

    Returns:
        N closeness values.
    """
    r = np.asarray(rewards, dtype=np.float64)
    ranks = normalised_ranks(r)
    if threshold is None or r.size < 2:
        q = 0.5
    else:  # the threshold's rank on the same [0, 1] scale, interpolated between frames
        q = float(np.interp(threshold, np.sort(r), np.linspace(0.0, 1.0, r.size)))
    reach = max(q, 1.0 - q)
    return np.clip(1.0 - np.abs(ranks - q) / reach, 0.0, 1.0)


def informativeness(
    reward_sets: Sequence[np.ndarray],
    *,
    adapted: np.ndarray | None = None,
    adapted_threshold: float = 0.5,
    weights: tuple[float, float, float] = (1.0, 1.0, 2.0),
) -> np.ndarray:
    """How much a label of each frame would tell, from rewards alone, in [0, 1].

    The weighted mean of: the saved prompt sets' rank disagreement (when there are two or
    more), their mean closeness to the median boundary, and the adapted reward's closeness to
    its boundary (its rewards predict the label, so the boundary is ``adapted_threshold``).

    Args:
        reward_sets: rewards of the saved prompt sets (any number, each N values).
        adapted: rewards of the adapted reward fitted on the labels so far, if any.
        adapted_threshold: the adapted reward's boundary.
        weights: weights of (disagreement, prompt boundary, adapted boundary).

    Returns:
        N values; all 0.5 when nothing is known.
    """
    parts: list[tuple[float, np.ndarray]] = []
    if len(reward_sets) >= 2:
        parts.append((weights[0], rank_disagreement(reward_sets)))
    if len(reward_sets) >= 1:
        closeness = np.mean([boundary_closeness(r) for r in reward_sets], axis=0)
        parts.append((weights[1], closeness))
    if adapted is not None:
        parts.append((weights[2], boundary_closeness(adapted, adapted_threshold)))
    if not parts:
        raise ValueError("informativeness needs at least one reward vector")
    total = sum(w for w, _ in parts)
    return np.asarray(sum(w * p for w, p in parts) / total, dtype=np.float64)


def informative_order(
    embeddings: np.ndarray,
    scores: np.ndarray,
    *,
    labelled: np.ndarray | None = None,
    coverage: float = 1.0,
    greedy_limit: int = 2000,
) -> np.ndarray:
    """The unlabelled frames, most informative first, spread over the embedding space.

    k-center greedy weighted by informativeness: the next frame maximises
    ``(distance to the nearest chosen or labelled frame)^coverage × (0.25 + score)``, with the
    cosine distance between the normalised embeddings. Exact duplicates of a chosen frame
    (distance 0) therefore come last. After ``greedy_limit`` picks the rest follow by score.

    Args:
        embeddings: N×D L2-normalised embeddings.
        scores: N informativeness values in [0, 1] (:func:`informativeness`).
        labelled: N booleans, frames already labelled (they seed the coverage, and are left out).
        coverage: exponent of the distance term (0: by score only; larger: coverage first).
        greedy_limit: greedy picks before falling back to the score order (bounds the cost,
            O(greedy_limit · N · D)).

    Returns:
        Indices of the unlabelled frames, in the order to label them.
    """
    x = np.asarray(embeddings, dtype=np.float32)
    u = np.asarray(scores, dtype=np.float64)
    n = x.shape[0]
    if x.ndim != 2 or u.shape != (n,):
        raise ValueError(f"{x.shape[0]} embeddings for {u.size} scores")
    done = np.zeros(n, bool) if labelled is None else np.asarray(labelled, bool).copy()
    if done.shape != (n,):
        raise ValueError(f"labelled mask has {done.size} entries for {n} frames")
    nearest = np.full(n, 2.0)  # cosine distance lies in [0, 2]
    seeds = np.flatnonzero(done)
    for start in range(0, seeds.size, 1024):
        block = x[seeds[start : start + 1024]]
        nearest = np.minimum(nearest, (1.0 - x @ block.T).min(axis=1))
    nearest = np.maximum(nearest, 0.0)
    weight = 0.25 + u
    order: list[int] = []
    remaining = int((~done).sum())
    for _ in range(min(remaining, greedy_limit)):
        value = np.where(done, -np.inf, (nearest**coverage) * weight)
        i = int(np.argmax(value))
        if nearest[i] <= 0.0 and coverage > 0:
            break  # only duplicates of chosen frames are left
        order.append(i)
        done[i] = True
        nearest = np.minimum(nearest, np.maximum(1.0 - x @ x[i], 0.0))
    rest = np.flatnonzero(~done)
    rest = rest[np.argsort(-u[rest], kind="stable")]
    return np.concatenate([np.asarray(order, dtype=np.int64), rest.astype(np.int64)])


def simulate_active_order(
    embeddings: np.ndarray,
    labels: np.ndarray,
    reward_sets: Sequence[np.ndarray],
    *,
    groups: np.ndarray | None = None,
    prior: np.ndarray | None = None,
    batch_size: int = 8,
    budget: int | None = None,
    coverage: float = 1.0,
    seed: int = 0,
) -> np.ndarray:
    """Replay "most informative first" labelling against known labels.

    Each round takes the next ``batch_size`` frames of :func:`informative_order`, reveals their
    labels, refits the adapted reward on all labels so far (once there are enough of both
    kinds), and re-ranks the rest with its boundary as an extra signal — what the Label page
    does as labels arrive.

    Args:
        embeddings: N×D embeddings of the pool.
        labels: N labels (only revealed for chosen frames).
        reward_sets: the saved prompt sets' rewards on the pool.
        groups: N group ids for the refit's inner cross-validation.
        prior: the prompt's direction for the adapted reward (None: plain probe).
        batch_size: labels per round.
        budget: stop after this many labels (default: all frames).
        coverage: see :func:`informative_order`.
        seed: inner cross-validation seed.

    Returns:
        The frames in the order they were labelled.
    """
    x = np.asarray(embeddings, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    n = len(y)
    budget = n if budget is None else min(budget, n)
    labelled = np.zeros(n, bool)
    sequence: list[int] = []
    adapted: np.ndarray | None = None
    while len(sequence) < budget:
        scores = (
            informativeness(reward_sets, adapted=adapted)
            if reward_sets or adapted is not None
            else np.full(n, 0.5)
        )
        take = informative_order(x, scores, labelled=labelled, coverage=coverage)
        take = take[: min(batch_size, budget - len(sequence))]
        sequence.extend(int(i) for i in take)
        labelled[take] = True
        chosen = np.asarray(sequence)
        if len(chosen) >= MIN_LABELS and float(np.ptp(y[chosen])) > 0:
            try:
                fit = fit_adapted(
                    x[chosen],
                    y[chosen],
                    prior,
                    groups=None if groups is None else np.asarray(groups)[chosen],
                    seed=seed,
                )
                adapted = fit.predict(x)
            except AdaptationError:
                adapted = None
    return np.asarray(sequence, dtype=np.int64)


def held_out_curve(
    embeddings: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    prior: np.ndarray | None,
    order: np.ndarray,
    sizes: Sequence[int],
    test: np.ndarray,
    *,
    seed: int = 0,
) -> list[float | None]:
    """Held-out EPIC of the adapted reward fitted on the first ``n`` frames of ``order``, for each
    ``n`` in ``sizes``: how fast a labelling order pays off (``test`` frames are never fitted on).

    Args:
        embeddings: N×D normalised image embeddings.
        labels: N labels.
        groups: N group ids (episodes) for the inner cross-validation.
        prior: the prompt's direction, or None for the plain probe.
        order: indices into the N frames, in labelling order.
        sizes: label counts to evaluate at.
        test: indices of the held-out frames.
        seed: inner cross-validation seed.
    """
    from vlmrm_core.reward.adaptation import held_out_metrics

    out: list[float | None] = []
    for n in sizes:
        chosen = np.asarray(order)[:n]
        fit = fit_adapted(
            embeddings[chosen], labels[chosen], prior, groups=groups[chosen], seed=seed
        )
        out.append(
            held_out_metrics(fit.predict(embeddings[test]), labels[test], n_boot=0).epic_distance
        )
    return out


def labels_to_reach(
    sizes: Sequence[int], epics: Sequence[float | None], target: float
) -> int | None:
    """The smallest label count whose EPIC distance is at most ``target`` (None: never)."""
    for size, epic in zip(sizes, epics, strict=True):
        if epic is not None and epic <= target:
            return int(size)
    return None


@dataclass(frozen=True)
class SeparationEstimate:
    """Whether two rewards' EPIC intervals overlap, and how many labels would separate them."""

    epic_a: float
    ci_a: tuple[float, float]
    epic_b: float
    ci_b: tuple[float, float]
    n_labels: int
    overlap: bool
    labels_needed: int | None
    """Total labels at which the intervals would just stop overlapping (intervals shrink as
    1/√n); None when the two EPIC distances are equal. Equal to ``n_labels`` when they no
    longer overlap."""

    @property
    def more_labels(self) -> int | None:
        """Labels to add (0 when already separated)."""
        if self.labels_needed is None:
            return None
        return max(0, self.labels_needed - self.n_labels)


def separation_estimate(
    rewards_a: np.ndarray,
    rewards_b: np.ndarray,
    labels: np.ndarray,
    *,
    n_boot: int = 1000,
    seed: int = 0,
) -> SeparationEstimate:
    """Do two rewards' EPIC 95% intervals overlap, and roughly how many labels would part them?

    Each interval's half-widths shrink about as 1/√n, so with a gap Δ between the EPIC
    distances and the facing half-widths h_a, h_b at n labels, they stop overlapping near
    n·((h_a + h_b)/Δ)². A rough guide for planning labelling, not a test.

    Raises:
        ConstantRewardError: constant labels or rewards, or too few of one label kind.
    """
    a = evaluate_epic(rewards_a, labels, n_boot=n_boot, seed=seed)
    b = evaluate_epic(rewards_b, labels, n_boot=n_boot, seed=seed)
    if a.ci_low is None or b.ci_low is None or a.ci_high is None or b.ci_high is None:
        raise ConstantRewardError("no bootstrap interval", side="bootstrap")
    n = a.n
    low, high = (a, b) if a.epic_distance <= b.epic_distance else (b, a)
    overlap = low.ci_high >= high.ci_low  # type: ignore[operator]
    gap = high.epic_distance - low.epic_distance
    if gap <= 0:
        needed = None
    elif not overlap:
        needed = n
    else:
        widths = (low.ci_high - low.epic_distance) + (high.epic_distance - high.ci_low)  # type: ignore[operator]
        needed = int(math.ceil(n * (widths / gap) ** 2))
    return SeparationEstimate(
        a.epic_distance,
        (a.ci_low, a.ci_high),
        b.epic_distance,
        (b.ci_low, b.ci_high),
        n,
        overlap,
        needed,
    )


def informative_queue(
    queue: Sequence[str],
    hashes: Sequence[str],
    embeddings: np.ndarray,
    reward_sets: Sequence[np.ndarray],
    *,
    labels: Mapping[str, float] | None = None,
    prior: np.ndarray | None = None,
    coverage: float = 1.0,
    seed: int = 0,
) -> list[str]:
    """A labeler's queue reordered "most informative first" (the Label page's third order).

    Args:
        queue: the frames left for this labeler (from ``label_queue``), any order.
        hashes: the dataset's distinct frame hashes, row i of ``embeddings`` and of each reward.
        embeddings: len(hashes)×D cached embeddings.
        reward_sets: the saved prompt sets' rewards on those frames.
        labels: consensus labels so far (hash → value): labelled frames seed the coverage and,
            with both kinds present, fit the adapted reward whose boundary is used too.
        prior: the prompt's direction for that adapted reward (None: plain probe).
        coverage: see :func:`informative_order`.
        seed: inner cross-validation seed.

    Returns:
        The queue's frames, most informative first; frames without an embedding keep their
        order at the end.
    """
    row = {h: i for i, h in enumerate(hashes)}
    x = np.asarray(embeddings, dtype=np.float64)
    labels = dict(labels or {})
    labelled = np.zeros(len(hashes), bool)
    known = [(row[h], v) for h, v in labels.items() if h in row]
    adapted = None
    if known:
        idx = np.array([i for i, _ in known])
        values = np.array([v for _, v in known], dtype=np.float64)
        labelled[idx] = True
        if len(idx) >= MIN_LABELS and float(np.ptp(values)) > 0:
            adapted = fit_adapted(x[idx], values, prior, seed=seed).predict(x)
    pending = [h for h in queue if h in row]
    candidates = np.zeros(len(hashes), bool)
    candidates[[row[h] for h in pending]] = True
    # Frames neither pending nor labelled (e.g. enough labels from others) take no part.
    excluded = ~candidates & ~labelled
    if reward_sets or adapted is not None:
        scores = informativeness(reward_sets, adapted=adapted)
    else:
        scores = np.full(len(hashes), 0.5)
    order = informative_order(x, scores, labelled=labelled | excluded, coverage=coverage)
    ordered = [hashes[i] for i in order if candidates[i]]
    return ordered + [h for h in queue if h not in row]


# --------------------------------------------------------------------------------------------
# Pairs: which comparisons to ask first
# --------------------------------------------------------------------------------------------


def random_pairs(n_frames: int, count: int, *, seed: int = 0) -> np.ndarray:
    """``count`` distinct unordered pairs of different frames, in random order (fewer when
    there are not that many), each shown in a random order.

    Returns:
        count×2 int64 frame indices.
    """
    total = n_frames * (n_frames - 1) // 2
    count = max(0, min(int(count), total))
    rng = np.random.default_rng(seed)
    if count == 0:
        return np.zeros((0, 2), np.int64)
    if total <= 4 * count:  # dense: enumerate every pair and take a random subset
        i, j = np.triu_indices(n_frames, k=1)
        pick = rng.permutation(total)[:count]
        pairs = np.stack([i[pick], j[pick]], axis=1)
    else:  # sparse: draw, drop repeats, draw again
        seen: set[tuple[int, int]] = set()
        out: list[tuple[int, int]] = []
        while len(out) < count:
            for a, b in rng.integers(0, n_frames, (2 * (count - len(out)), 2)):
                key = (min(int(a), int(b)), max(int(a), int(b)))
                if a != b and key not in seen:
                    seen.add(key)
                    out.append(key)
                    if len(out) == count:
                        break
        pairs = np.asarray(out, dtype=np.int64)
    swap = rng.random(len(pairs)) < 0.5
    pairs[swap] = pairs[swap][:, ::-1]
    return pairs.astype(np.int64)


def source_disagreement(pairs: np.ndarray, reward_sets: Sequence[np.ndarray]) -> np.ndarray:
    """How confidently the reward sources contradict each other about each pair, in [0, 1].

    Each source's gap R(a) − R(b) is measured in its own unit (the spread of its gaps between
    random frames, √2 × its standard deviation) and squashed by tanh; the score is half the
    range of those values over the sources. So it is high only where some sources clearly
    prefer one frame and others clearly the other, not where every gap is tiny noise of mixed
    sign (near-duplicate frames, whose answer is almost always "equal" and tells little).

    Args:
        pairs: P×2 frame indices.
        reward_sets: K reward vectors over the same N frames (K < 2: all 0).

    Returns:
        P values.
    """
    p = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    if len(reward_sets) < 2:
        return np.zeros(len(p))
    leans = []
    for r in reward_sets:
        r = np.asarray(r, dtype=np.float64)
        unit = math.sqrt(2.0) * float(r.std())
        gap = r[p[:, 0]] - r[p[:, 1]]
        leans.append(np.tanh(gap / unit) if unit > 0 else np.zeros(len(p)))
    t = np.stack(leans)
    return np.asarray(np.clip(0.5 * (t.max(axis=0) - t.min(axis=0)), 0.0, 1.0))


_NODES, _NODE_WEIGHTS = np.polynomial.hermite_e.hermegauss(24)
"""Gauss–Hermite rule for expectations over a normal score gap."""


def _bits(q: np.ndarray) -> np.ndarray:
    """Binary entropy in bits."""
    q = np.clip(q, 1e-12, 1.0 - 1e-12)
    return np.asarray(-(q * np.log2(q) + (1.0 - q) * np.log2(1.0 - q)))


def pair_information(gaps: np.ndarray, variances: np.ndarray | None = None) -> np.ndarray:
    """What an answer about each pair would tell about the fitted Bradley–Terry reward, in bits.

    With the score gap Δ ~ N(``gaps``, ``variances``) (the fit and its posterior,
    :func:`~vlmrm_core.reward.adaptation.preference_covariance`), the mutual information
    between the answer and the reward (Houlsby et al. 2011, "BALD"): H(E[σ(Δ)]) − E[H(σ(Δ))].
    It is high where the fit is unsure because it knows little (a wide posterior around
    Δ ≈ 0), not merely because the two frames look alike to it. Without ``variances`` it is
    the answer's entropy H(σ(gap)), 1 at a coin flip.

    Returns:
        P values in [0, 1].
    """
    mu = np.asarray(gaps, dtype=np.float64)
    if variances is None:
        return _bits(0.5 * (1.0 + np.tanh(0.5 * mu)))
    sd = np.sqrt(np.maximum(np.asarray(variances, dtype=np.float64), 0.0))
    z = mu[:, None] + sd[:, None] * _NODES[None, :]
    q = 0.5 * (1.0 + np.tanh(0.5 * z))
    w = _NODE_WEIGHTS / _NODE_WEIGHTS.sum()
    return np.asarray(np.clip(_bits(q @ w) - _bits(q) @ w, 0.0, 1.0))


def pair_informativeness(
    pairs: np.ndarray,
    reward_sets: Sequence[np.ndarray],
    *,
    fitted: np.ndarray | None = None,
    fitted_variances: np.ndarray | None = None,
    source_weight: float = 0.5,
) -> np.ndarray:
    """How much an answer about each pair would tell, from rewards alone, in [0, 1].

    The weighted mean of the reward sources' disagreement about the pair
    (:func:`source_disagreement`, with two sources or more; weight ``source_weight``) and,
    once a Bradley–Terry reward has been fitted to answers, what the answer would tell it
    (:func:`pair_information`; weight 1).

    Args:
        pairs: P×2 frame indices.
        reward_sets: rewards of the reward sources on the frames (each N values).
        fitted: the Bradley–Terry reward fitted on the answers so far, on the N frames.
        fitted_variances: P posterior variances of its gap R(a) − R(b) (None: the answer's
            entropy stands in for the information).
        source_weight: weight of the sources' disagreement against the fit's information.

    Returns:
        P values; 0.5 everywhere when nothing is known.
    """
    p = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    parts: list[tuple[float, np.ndarray]] = []
    if len(reward_sets) >= 2:
        parts.append((source_weight, source_disagreement(p, reward_sets)))
    if fitted is not None:
        gaps = np.asarray(fitted, dtype=np.float64)[p[:, 0]] - np.asarray(fitted)[p[:, 1]]
        parts.append((1.0, pair_information(gaps, fitted_variances)))
    total = sum(w for w, _ in parts)
    if not parts or total <= 0:
        return np.full(len(p), 0.5)
    return np.asarray(sum(w * v for w, v in parts) / total, dtype=np.float64)


def explored_slots(count: int, explore: float) -> np.ndarray:
    """Which of the first ``count`` picks are random (ε-greedy with an exact share): pick k
    (from 1) is random when ⌊k·ε⌋ > ⌊(k − 1)·ε⌋, so any prefix of k picks holds ⌊k·ε⌋ of them."""
    if not 0.0 <= explore <= 1.0:
        raise ValueError(f"explore is a share in [0, 1], got {explore}")
    k = np.arange(1, count + 1, dtype=np.float64)
    return np.floor(k * explore + 1e-9) > np.floor((k - 1) * explore + 1e-9)


def informative_pair_order(
    pairs: np.ndarray,
    scores: np.ndarray,
    *,
    asked: np.ndarray | None = None,
    spread: float = 1.0,
    explore: float = 0.0,
    seed: int = 0,
    greedy_limit: int = 2000,
) -> np.ndarray:
    """The pairs not asked yet, most informative first, spread over the frames.

    Greedy: the next pair maximises ``(0.25 + score) / (1 + uses(a) + uses(b))^spread``, where
    ``uses`` counts the pairs already asked or chosen that show the frame, so no frame is asked
    about again and again while others wait. A share ``explore`` of the picks
    (:func:`explored_slots`) is instead a random pair not chosen yet: the answers then keep
    covering the whole pool, so a fit made on them is not only ever shown the pairs an earlier
    fit found hard. After ``greedy_limit`` picks the rest follow by score. No pair comes twice.

    Args:
        pairs: P×2 frame indices.
        scores: P informativeness values (:func:`pair_informativeness`).
        asked: P booleans, pairs already answered (they count as uses, and are left out).
        spread: exponent of the frame-use penalty (0: by score only).
        explore: share of random picks, in [0, 1].
        seed: seed of those random picks.
        greedy_limit: greedy picks before falling back to the score order.

    Returns:
        Indices of the pairs not asked yet, in the order to ask them.
    """
    p = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    u = np.asarray(scores, dtype=np.float64)
    if u.shape != (len(p),):
        raise ValueError(f"{len(p)} pairs for {u.size} scores")
    done = np.zeros(len(p), bool) if asked is None else np.asarray(asked, bool).copy()
    uses = np.bincount(p[done].ravel(), minlength=int(p.max()) + 1 if p.size else 0).astype(
        np.float64
    )
    weight = 0.25 + u
    picks = min(int((~done).sum()), greedy_limit)
    random_slot = explored_slots(picks, explore)
    rng = np.random.default_rng(seed)
    order: list[int] = []
    for slot in range(picks):
        if random_slot[slot]:
            i = int(rng.choice(np.flatnonzero(~done)))
        else:
            value = np.where(
                done, -np.inf, weight / (1.0 + uses[p[:, 0]] + uses[p[:, 1]]) ** spread
            )
            i = int(np.argmax(value))
        order.append(i)
        done[i] = True
        uses[p[i]] += 1.0
    rest = np.flatnonzero(~done)
    rest = rest[np.argsort(-u[rest], kind="stable")]
    return np.concatenate([np.asarray(order, dtype=np.int64), rest.astype(np.int64)])


def fitted_pair_uncertainty(
    embeddings: np.ndarray,
    pairs: np.ndarray,
    asked_pairs: np.ndarray,
    fit: AdaptedFit,
    *,
    clips: Sequence[Sequence[int]] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The fitted reward on the items, and the posterior variance of its gap on each pair.

    Args:
        embeddings: N×D frame embeddings (with ``clips``: the frames the clips are made of).
        pairs: P×2 candidate pairs (of frames, or of clips).
        asked_pairs: the pairs the fit was made on.
        fit: the Bradley–Terry fit (:func:`fit_preference`).
        clips: each clip's frame rows (None: the pairs are of frames).

    Returns:
        (the reward of each item, the P gap variances) for :func:`pair_informativeness`.
    """
    x = np.asarray(embeddings, dtype=np.float64)
    items = x if clips is None else clip_sums(x, clips)
    covariance = preference_covariance(x, asked_pairs, fit, clips=clips)
    p = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    d = items[p[:, 0]] - items[p[:, 1]]
    return fit.predict(items), np.einsum("ij,jk,ik->i", d, covariance, d)


def simulate_pair_order(
    embeddings: np.ndarray,
    pairs: np.ndarray,
    outcomes: np.ndarray,
    reward_sets: Sequence[np.ndarray],
    *,
    groups: np.ndarray | None = None,
    prior: np.ndarray | None = None,
    batch_size: int = 8,
    budget: int | None = None,
    spread: float = 1.0,
    explore: float = PAIR_EXPLORE,
    seed: int = 0,
) -> np.ndarray:
    """Replay "most informative first" comparing against known answers.

    Each round asks the next ``batch_size`` pairs of :func:`informative_pair_order`, reveals
    their answers, refits the Bradley–Terry reward (:func:`fit_preference`) on all answers so
    far (once :data:`MIN_PAIRS` are decided) and re-scores the rest with what an answer would
    tell that fit (:func:`pair_information` with its posterior, :func:`fitted_pair_uncertainty`).

    Args:
        embeddings: N×D embeddings of the frames.
        pairs: P×2 candidate pairs.
        outcomes: their P known outcomes (1, 0 or ½; only revealed once asked).
        reward_sets: the reward sources' rewards on the N frames.
        groups: a group id per frame for the refit's inner cross-validation.
        prior: the prompt's direction for the refit (None: plain Bradley–Terry).
        batch_size: pairs per round.
        budget: stop after this many pairs (default: all).
        spread: see :func:`informative_pair_order`.
        explore: share of random pairs in each round (see :func:`informative_pair_order`).
        seed: inner cross-validation seed, and the random picks' seed (each round its own).

    Returns:
        The candidate pairs' indices in the order they were asked.
    """
    x = np.asarray(embeddings, dtype=np.float64)
    p = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    y = np.asarray(outcomes, dtype=np.float64)
    budget = len(p) if budget is None else min(budget, len(p))
    asked = np.zeros(len(p), bool)
    sequence: list[int] = []
    fitted: tuple[np.ndarray, np.ndarray] | None = None
    while len(sequence) < budget:
        scores = pair_informativeness(
            p,
            reward_sets,
            fitted=None if fitted is None else fitted[0],
            fitted_variances=None if fitted is None else fitted[1],
        )
        take = informative_pair_order(
            p, scores, asked=asked, spread=spread, explore=explore, seed=seed + len(sequence)
        )
        take = take[: min(batch_size, budget - len(sequence))]
        sequence.extend(int(i) for i in take)
        asked[take] = True
        chosen = np.asarray(sequence)
        if int((y[chosen] != 0.5).sum()) >= MIN_PAIRS:
            try:
                fit = fit_preference(x, p[chosen], y[chosen], prior, groups=groups, seed=seed)
                fitted = fitted_pair_uncertainty(x, p, p[chosen], fit)
            except AdaptationError:
                fitted = None
    return np.asarray(sequence, dtype=np.int64)


def pair_held_out_curve(
    embeddings: np.ndarray,
    pairs: np.ndarray,
    outcomes: np.ndarray,
    groups: np.ndarray | None,
    prior: np.ndarray | None,
    order: np.ndarray,
    sizes: Sequence[int],
    test_pairs: np.ndarray,
    test_outcomes: np.ndarray,
    *,
    seed: int = 0,
) -> list[float | None]:
    """Held-out pair accuracy of the Bradley–Terry reward fitted on the first ``n`` pairs of
    ``order``, for each ``n`` in ``sizes`` (the pairs version of :func:`held_out_curve`).

    ``test_pairs`` should only show frames that no training pair shows (e.g. frames of held-out
    episodes), so the curve measures how the reward generalises to new frames.
    """
    from vlmrm_core.metrics.pairs import pair_accuracy

    x = np.asarray(embeddings, dtype=np.float64)
    p = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    t = np.asarray(test_pairs, dtype=np.int64).reshape(-1, 2)
    out: list[float | None] = []
    for n in sizes:
        chosen = np.asarray(order)[:n]
        fit = fit_preference(
            x, p[chosen], np.asarray(outcomes)[chosen], prior, groups=groups, seed=seed
        )
        r = fit.predict(x)
        out.append(pair_accuracy(r[t[:, 0]], r[t[:, 1]], test_outcomes, n_boot=0).accuracy)
    return out
