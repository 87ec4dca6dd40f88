"""The pre-packed CPU image pass must give open_clip's own features, for any batch size."""

import dataclasses

import numpy as np
import open_clip
import pytest
import torch
import torch.nn.functional as F

from tests.conftest import TINY_MODEL
from vlmrm_core.clip.embedding import encode_images
from vlmrm_core.clip.models import bf16_supported, load_model
from vlmrm_core.clip.packed_vit import PackedImageEncoder, unsupported_reason


def images(n: int, seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 224, 224, generator=generator).to(dtype)


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (F.normalize(a.float(), dim=-1) * F.normalize(b.float(), dim=-1)).sum(-1)


@pytest.fixture(scope="module")
def tiny_model() -> torch.nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        model = open_clip.create_model(TINY_MODEL, pretrained=None, pretrained_text=False)
    return model.eval().requires_grad_(False)


def test_stock_vit_is_supported(tiny_model):
    assert unsupported_reason(tiny_model.visual) is None


@pytest.mark.parametrize("batch", [1, 3, 8])
def test_fp32_features_match_open_clip_for_any_batch_size(tiny_model, batch):
    encoder = PackedImageEncoder(tiny_model.visual, batch_size=8)
    x = images(batch, seed=batch)
    with torch.inference_mode():
        expected = tiny_model.encode_image(x)
        got = encoder(x)
    assert got.shape == expected.shape and got.dtype == torch.float32
    torch.testing.assert_close(got, expected, atol=2e-4, rtol=2e-4)


def test_quick_gelu_towers_match_too():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        model = open_clip.create_model(TINY_MODEL, pretrained=None, force_quick_gelu=True)
    model.eval()
    x = images(2)
    with torch.inference_mode():
        torch.testing.assert_close(
            PackedImageEncoder(model.visual)(x), model.encode_image(x), atol=2e-4, rtol=2e-4
        )


@pytest.mark.skipif(
    not bf16_supported("cpu"),
    reason="needs a CPU with native bf16 (AVX512-BF16 or AMX), as the CI and dev machines have",
)
def test_bf16_agrees_with_fp32_as_closely_as_open_clips_own_bf16_pass(tiny_model):
    model_bf16 = open_clip.create_model(TINY_MODEL, pretrained=None, pretrained_text=False)
    model_bf16.load_state_dict(tiny_model.state_dict())
    model_bf16 = model_bf16.eval().to(torch.bfloat16)
    x = images(4, seed=11)
    with torch.inference_mode():
        reference = tiny_model.encode_image(x)
        stock = model_bf16.encode_image(x.bfloat16())
        packed = PackedImageEncoder(model_bf16.visual)(x.bfloat16())
    assert packed.dtype == torch.bfloat16
    assert cosine(packed, reference).min() > 0.999
    # rounding differs (the fused GELU rounds once), but no more than bf16 rounding itself does
    assert (1 - cosine(packed, reference)).max() < 3 * (1 - cosine(stock, reference)).max() + 1e-4


def test_new_weights_are_repacked_on_the_next_call(tiny_model):
    model = open_clip.create_model(TINY_MODEL, pretrained=None, pretrained_text=False).eval()
    model.load_state_dict(tiny_model.state_dict())
    encoder = PackedImageEncoder(model.visual)
    x = images(2, seed=5)
    with torch.inference_mode():
        before = encoder(x)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(99)
            donor = open_clip.create_model(TINY_MODEL, pretrained=None, pretrained_text=False)
        model.load_state_dict(donor.state_dict())
        after = encoder(x)
        expected = model.encode_image(x)
    assert not torch.allclose(before, after, atol=1e-2)
    torch.testing.assert_close(after, expected, atol=2e-4, rtol=2e-4)


def test_unsupported_towers_are_named_and_fall_back_to_open_clip(tiny_clip):
    assert "not open_clip's VisionTransformer" in unsupported_reason(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="not supported"):
        PackedImageEncoder(torch.nn.Linear(2, 2))

    # a ClipModel whose tower can't be packed still encodes, through open_clip's forward
    model = open_clip.create_model(TINY_MODEL, pretrained=None, pretrained_text=False).eval()
    model.visual.transformer.resblocks[0].mlp.gelu = torch.nn.SiLU()
    assert unsupported_reason(model.visual) == "SiLU activation"
    clip = dataclasses.replace(tiny_clip, model=model)
    x = images(1)
    with torch.inference_mode():
        assert torch.equal(clip.encode_image(x), model.encode_image(x))
    assert clip._packed_encoder is None


def test_encode_images_uses_the_packed_pass_and_matches_the_unpacked_one(tiny_checkpoint):
    clip = load_model(TINY_MODEL, str(tiny_checkpoint), device="cpu")
    unpacked = dataclasses.replace(clip, packed_inference=False)
    frames = np.random.default_rng(0).integers(0, 256, (5, 60, 90, 3), dtype=np.uint8)
    packed_embeddings = encode_images(clip, frames, batch_size=2)
    assert clip._packed_encoder is not None  # the fast pass really ran
    assert unpacked._packed_encoder is None
    np.testing.assert_allclose(packed_embeddings, encode_images(unpacked, frames), atol=1e-4)
    assert unpacked._packed_encoder is None
