import numpy as np
import pytest

from vlmrm_core.clip.embedding import PromptError, encode_images, encode_texts
from vlmrm_core.clip.models import ModelError
from vlmrm_core.reward import math as rewards
from vlmrm_core.reward.base import FrameInputError, Reward
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


def test_reward_model_takes_every_frame_input_and_names_a_wrong_shape(tiny_clip):
    import torch
    from PIL import Image

    rm = RewardModel(tiny_clip, RewardSpec(("a goal",)))
    f = frames(2, seed=3)
    expected = rm(f)
    np.testing.assert_allclose(rm(f / 255.0), expected, atol=1e-6)  # floats in [0, 1]
    rgba = np.concatenate([f, np.zeros((2, 60, 90, 1), np.uint8)], axis=-1)
    np.testing.assert_allclose(rm(rgba), expected, atol=1e-6)  # alpha is dropped
    np.testing.assert_allclose(rm([Image.fromarray(x) for x in f]), expected, atol=1e-6)
    np.testing.assert_allclose(rm(torch.from_numpy(f)), expected, atol=1e-6)
    with pytest.raises(FrameInputError, match=r"frames of shape \(2, 3, 60, 90\) \(uint8\)"):
        rm(f.transpose(0, 3, 1, 2))  # channels first
    with pytest.raises(FrameInputError, match=r"values in \[0, 255\]: float frames must lie in"):
        rm(f.astype(np.float32))
    with pytest.raises(TypeError, match="RewardSpec"):
        RewardModel(tiny_clip, {"goal_prompts": ["a goal"]})  # type: ignore[arg-type]


def test_a_reward_model_is_a_clip_reward_with_an_identity_of_what_sets_its_rewards(tiny_clip):
    spec = RewardSpec(("pole upright",), ("pole and cart",), alpha=0.5)
    rm = RewardModel(tiny_clip, spec)
    assert isinstance(rm, Reward) and rm.source == "clip"
    assert (
        rm.identity
        == RewardModel(
            tiny_clip, RewardSpec(("pole upright",), ("pole and cart",), alpha=0.5)
        ).identity
    )
    assert rm.identity.startswith("clip/ViT-S-32-alt/random-init/regularized:")
    others = [
        RewardModel(tiny_clip, spec.replace(alpha=0.25)),
        RewardModel(tiny_clip, spec.replace(goal_prompts=("pole down",))),
        RewardModel(tiny_clip, spec, aspect="center-crop"),
        RewardModel(tiny_clip, spec, resize="paper"),
    ]
    identities = {rm.identity, *(other.identity for other in others)}
    assert len(identities) == 5
    assert RewardModel(tiny_clip, spec, chunk_size=1).identity == rm.identity  # same rewards
    assert rm.description == (
        'CLIP regularized reward (α=0.5): goal "pole upright"; baseline "pole and cart" '
        "· ViT-S-32-alt · random weights"
    )
    contrastive = RewardModel(
        tiny_clip,
        RewardSpec(("open\nthe door",), kind="contrastive", negatives=("a", "b", "c", "d")),
    )
    assert contrastive.description == (
        'CLIP contrastive reward (β=0.5, τ=1/logit scale): goal "open the door" against '
        '"a"; "b"; "c"; 1 more · ViT-S-32-alt · random weights'
    )
    assert repr(contrastive) == f"RewardModel({contrastive.description})"


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
