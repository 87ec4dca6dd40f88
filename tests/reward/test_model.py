import numpy as np
import pytest

from vlmrm_core.clip.embedding import PromptError, encode_images, encode_texts
from vlmrm_core.clip.models import ModelError
from vlmrm_core.reward import math as rewards
from vlmrm_core.reward.model import RewardModel, score_embeddings
from vlmrm_core.reward.spec import ModelRef, RewardSpec, SpecError


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
    spec = RewardSpec(
        ("pole vertically upright on top of the cart",), ("pole and cart",), alpha=0.3
    )
    rm = RewardModel(tiny_clip, spec, chunk_size=2)  # 3 frames: two forward passes
    f = frames(3, seed=5)
    out = rm.reward(f)
    assert out.shape == (3,) and out.dtype == np.float32
    np.testing.assert_allclose(
        out, rm.score_embeddings(encode_images(tiny_clip, f)).rewards, atol=1e-5
    )
    np.testing.assert_array_equal(rm(f), out)  # calling it is the same as .reward
    assert rm.reward(f[0]).shape == (1,)  # a single H×W×3 frame


def test_reward_model_rejects_what_is_not_a_frame_batch(tiny_clip):
    rm = RewardModel(tiny_clip, RewardSpec(("a goal",)))
    with pytest.raises(SpecError, match="uint8"):
        rm.reward(np.zeros((2, 8, 8, 3), np.float32))
    with pytest.raises(TypeError, match="RewardSpec"):
        RewardModel(tiny_clip, {"goal_prompts": ["a goal"]})  # type: ignore[arg-type]


def test_adapted_reward_is_the_linear_score(tiny_clip):
    x = encode_images(tiny_clip, frames(5, seed=2))
    w = np.random.default_rng(0).normal(size=x.shape[1])
    spec = RewardSpec(kind="adapted", weights=tuple(w), bias=0.25)
    got = score_embeddings(tiny_clip, x, spec).rewards
    np.testing.assert_allclose(got, x @ w + 0.25, rtol=1e-5, atol=1e-6)
    with pytest.raises(SpecError, match="fitted on 3-dimensional"):
        RewardModel(tiny_clip, RewardSpec(kind="adapted", weights=(1.0, 2.0, 3.0)))


def test_from_spec_loads_the_named_model(tiny_checkpoint):
    spec = RewardSpec(("a humanoid robot kneeling",), ("a humanoid robot",))
    rm = RewardModel.from_spec(
        spec,
        model="ViT-S-32-alt",
        pretrained=str(tiny_checkpoint),
        aspect="center-crop",
        device="cpu",
    )
    assert not rm.clip.untrained and rm.aspect == "center-crop"
    assert rm(frames(2)).shape == (2,)
    ref = rm.model_ref
    assert ref.architecture == "ViT-S-32-alt" and ref.aspect == "center-crop"
    assert ref.sha256 is not None and len(ref.sha256) == 64


def test_from_ref_refuses_a_checkpoint_with_another_hash(tiny_checkpoint):
    ref = ModelRef("ViT-S-32-alt", str(tiny_checkpoint), sha256="0" * 64)
    with pytest.raises(ModelError, match="SHA-256"):
        RewardModel.from_ref(ref, RewardSpec(("a goal",)), device="cpu")
