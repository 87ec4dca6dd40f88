import uuid

import numpy as np
import pytest

from tests.conftest import unit_rows
from vlmrm_core.clip import embedding
from vlmrm_core.reward import math as rewards
from vlmrm_core.reward import prompts
from vlmrm_core.reward.model import reward_direction, score_embeddings
from vlmrm_core.reward.prompts import PromptEmbeddings, clear_prompt_cache, prompt_embeddings
from vlmrm_core.reward.spec import RewardSpec
from vlmrm_core.services import landscape


class Counter:
    """Wraps a callable and counts its calls."""

    def __init__(self, function):
        self.function = function
        self.calls = 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.function(*args, **kwargs)


@pytest.fixture
def encode_counts(tiny_clip, monkeypatch):
    """(text encoder forward passes, encode_texts calls), counted from here on."""
    clear_prompt_cache()
    forward = Counter(tiny_clip.model.encode_text)
    monkeypatch.setattr(tiny_clip.model, "encode_text", forward)
    lists = Counter(embedding.encode_texts)
    monkeypatch.setattr(embedding, "encode_texts", lists)
    yield forward, lists
    clear_prompt_cache()


def fresh(text):
    """A prompt the session-wide model has never encoded (its per-prompt cache is shared)."""
    return f"{text} {uuid.uuid4().hex[:8]}"


def test_alpha_and_beta_changes_never_re_encode_prompts(tiny_clip, encode_counts):
    forward, lists = encode_counts
    x = unit_rows(6, embedding.embedding_dim(tiny_clip))
    regularized = RewardSpec((fresh("a pole upright"),), (fresh("a pole"),), alpha=0.5)
    for alpha in (0.0, 0.25, 0.5, 0.75, 1.0, 0.5):
        spec = regularized.replace(alpha=alpha)
        score_embeddings(tiny_clip, x, spec)
        landscape.score(tiny_clip, x, spec)
        landscape.alpha_curves(tiny_clip, x, spec, [0.0, alpha, 1.0])
        reward_direction(tiny_clip, spec, x)
    # one encode per distinct prompt list: the goal list and the baseline list
    assert (forward.calls, lists.calls) == (2, 2)

    # Same goal, new negatives: only the new list reaches the model.
    contrastive = RewardSpec(
        regularized.goal_prompts, kind="contrastive", negatives=(fresh("a cart"), fresh("a wall"))
    )
    for beta in (0.1, 0.5, 0.9):
        score_embeddings(tiny_clip, x, contrastive.replace(beta=beta))
        reward_direction(tiny_clip, contrastive.replace(beta=beta), x)
    assert forward.calls == 3

    # Back to the first prompts: nothing is encoded again.
    calls = lists.calls
    score_embeddings(tiny_clip, x, regularized.replace(alpha=0.3))
    assert (forward.calls, lists.calls) == (3, calls)


def test_the_cache_is_bounded_least_recently_used(tiny_clip, encode_counts, monkeypatch):
    _, lists = encode_counts
    monkeypatch.setattr(prompts, "PROMPT_CACHE_SIZE", 2)
    a, b, c = (RewardSpec((fresh(name),)) for name in ("a", "b", "c"))
    for spec in (a, b, a, c):  # c evicts b, the least recently used
        prompt_embeddings(tiny_clip, spec)
    assert lists.calls == 3
    prompt_embeddings(tiny_clip, a)
    assert lists.calls == 3
    prompt_embeddings(tiny_clip, b)
    assert lists.calls == 4


def test_vectors_are_the_prompt_means_and_read_only(tiny_clip):
    goals, baselines, negatives = ("goal one", "goal two"), ("baseline",), ("other", "else")
    vectors = prompt_embeddings(tiny_clip, goals, baselines, negatives)
    encode = embedding.encode_texts
    np.testing.assert_array_equal(
        vectors.goal, rewards.mean_embedding(encode(tiny_clip, list(goals)))
    )
    assert vectors.baseline is not None
    np.testing.assert_array_equal(
        vectors.baseline, rewards.mean_embedding(encode(tiny_clip, list(baselines)))
    )
    np.testing.assert_allclose(vectors.negatives, encode(tiny_clip, list(negatives)), rtol=1e-6)
    assert vectors.negatives_mean is not None
    np.testing.assert_allclose(vectors.negatives_mean, vectors.negatives.mean(axis=0))
    with pytest.raises(ValueError, match="read-only"):
        vectors.goal[0] = 1.0
    # a spec and its prompt lists share one entry
    spec = RewardSpec(goals, baselines, alpha=0.5, kind="contrastive", negatives=negatives)
    assert prompt_embeddings(tiny_clip, spec) is vectors


def test_without_baseline_or_negatives():
    vectors = PromptEmbeddings.from_vectors(np.array([[3.0, 4.0]]))
    np.testing.assert_allclose(vectors.goal, [0.6, 0.8])
    assert vectors.baseline is None and vectors.negatives_mean is None
    assert vectors.negatives.shape == (0, 2)
    assert vectors.baseline_or_goal() is vectors.goal
