import numpy as np
import pytest

from vlmrm_core import rewards
from vlmrm_core.embedding import PromptError, encode_images, encode_texts
from vlmrm_core.reward_model import RewardModel, RewardSpec, score_embeddings


def frames(n=4, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 60, 90, 3), dtype=np.uint8)


def test_spec_validation_messages():
    with pytest.raises(PromptError, match="no goal prompt"):
        RewardSpec(goal_prompts=())
    with pytest.raises(PromptError, match="goal prompt 2 is empty"):
        RewardSpec(goal_prompts=("ok", " "))
    with pytest.raises(PromptError, match="baseline"):
        RewardSpec(goal_prompts=("a",), alpha=0.5)
    with pytest.raises(PromptError, match="negative"):
        RewardSpec(goal_prompts=("a",), kind="contrastive")
    with pytest.raises(ValueError, match="unknown reward kind"):
        RewardSpec(goal_prompts=("a",), kind="magic")


def test_score_embeddings_is_the_pure_reward_on_prompt_means(tiny_clip):
    x = encode_images(tiny_clip, frames())
    spec = RewardSpec(("goal one", "goal two"), ("baseline",), alpha=0.5)
    got = score_embeddings(tiny_clip, x, spec)
    g = rewards.mean_embedding(encode_texts(tiny_clip, ["goal one", "goal two"]))
    b = rewards.mean_embedding(encode_texts(tiny_clip, ["baseline"]))
    np.testing.assert_allclose(got.rewards, rewards.regularized_reward(x, g, b, 0.5), atol=1e-7)
    assert got.probability is None


def test_contrastive_defaults_tau_to_inverse_logit_scale(tiny_clip):
    x = encode_images(tiny_clip, frames())
    spec = RewardSpec(
        ("open the door",), kind="contrastive", negatives=("close it", "jump"), beta=0.4
    )
    got = score_embeddings(tiny_clip, x, spec)
    g = encode_texts(tiny_clip, ["open the door"])[0]
    negs = encode_texts(tiny_clip, ["close it", "jump"])
    p = rewards.contrastive_probability(x, g, negs, 1 / tiny_clip.logit_scale)
    np.testing.assert_allclose(got.probability, p, atol=1e-7)
    np.testing.assert_array_equal(got.rewards, (p > 0.4).astype(np.float32))


def test_reward_model_on_frames_equals_scoring_embeddings(tiny_clip):
    rm = RewardModel(
        tiny_clip, ["pole vertically upright on top of the cart"], ["pole and cart"], alpha=0.3
    )
    f = frames(3, seed=5)
    out = rm(f)
    assert out.shape == (3,) and out.dtype == np.float32
    np.testing.assert_allclose(
        out, rm.score_embeddings(encode_images(tiny_clip, f)).rewards, atol=1e-5
    )


def test_from_prompt_set_loads_the_named_model(tiny_checkpoint):
    class PromptSet:
        model_name = "ViT-S-32-alt"
        pretrained = str(tiny_checkpoint)
        goal_prompts = ["a humanoid robot kneeling"]
        baseline_prompts = ["a humanoid robot"]
        alpha = 0.0
        reward_kind = "regularized"
        negatives: list = []
        tau = None
        beta = None
        aspect = "center-crop"

    rm = RewardModel.from_prompt_set(PromptSet(), device="cpu")
    assert not rm.clip.untrained and rm.aspect == "center-crop"
    assert rm(frames(2)).shape == (2,)
