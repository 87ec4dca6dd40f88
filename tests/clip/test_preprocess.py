import numpy as np
import pytest
import torch
from PIL import Image

from vlmrm_core.clip.preprocess import preprocess_batch

MEAN, STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)


def frames_with_edge_stripe(n=2, h=400, w=600):
    frames = np.full((n, h, w, 3), 128, np.uint8)
    frames[:, :, :40] = (255, 0, 0)  # a red stripe at the left edge of a wide frame
    return frames


def denormalise(x):
    return x * torch.tensor(STD).view(1, 3, 1, 1) + torch.tensor(MEAN).view(1, 3, 1, 1)


def test_squash_keeps_the_whole_scene_center_crop_cuts_the_edges():
    frames = frames_with_edge_stripe()
    squashed = denormalise(preprocess_batch(frames, image_size=(224, 224), mean=MEAN, std=STD))
    cropped = denormalise(
        preprocess_batch(frames, image_size=(224, 224), mean=MEAN, std=STD, aspect="center-crop")
    )
    assert squashed.shape == cropped.shape == (2, 3, 224, 224)
    assert squashed[0, 0, 112, 2] > 0.95 and squashed[0, 1, 112, 2] < 0.05  # stripe still there
    assert cropped[0, 0, 112, 2] == pytest.approx(128 / 255, abs=0.01)  # stripe cut off


def test_center_crop_matches_open_clips_pil_transform():
    import open_clip

    rng = np.random.default_rng(0)
    # a smooth image (random pixels would make any two resamplers disagree)
    yy, xx = np.mgrid[0:300, 0:500]
    frame = np.stack([(xx % 255), (yy % 255), ((xx + yy) // 3 % 255)], -1).astype(np.uint8)
    frame = (frame * 0.7 + rng.integers(0, 30, frame.shape)).astype(np.uint8)
    stock = open_clip.image_transform(224, is_train=False, mean=MEAN, std=STD)
    want = stock(Image.fromarray(frame))[None]
    got = preprocess_batch(
        frame[None], image_size=(224, 224), mean=MEAN, std=STD, aspect="center-crop"
    )
    assert got.shape == want.shape
    assert torch.mean(torch.abs(got - want)).item() < 0.02  # within PIL-vs-torch resampling noise


def test_exact_size_frames_are_only_normalised():
    frame = np.random.default_rng(1).integers(0, 256, (1, 224, 224, 3), dtype=np.uint8)
    x = preprocess_batch(frame, image_size=(224, 224), mean=MEAN, std=STD)
    want = (
        torch.from_numpy(frame).permute(0, 3, 1, 2).float() / 255
        - torch.tensor(MEAN).view(1, 3, 1, 1)
    ) / torch.tensor(STD).view(1, 3, 1, 1)
    torch.testing.assert_close(x, want)


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="uint8"):
        preprocess_batch(np.zeros((1, 8, 8, 3), np.float32), image_size=(4, 4), mean=MEAN, std=STD)
    with pytest.raises(ValueError, match="aspect"):
        preprocess_batch(
            np.zeros((1, 8, 8, 3), np.uint8), image_size=(4, 4), mean=MEAN, std=STD, aspect="zoom"
        )


def _paper_transform_float64(frames: np.ndarray, size: int = 224) -> np.ndarray:
    """The official VLM-RM transform re-implemented in float64: frame / 255, bicubic (Keys a=-0.75,
    half-pixel centres, border-clamped taps, no antialiasing, no clamping) to size×size, then the
    OpenAI mean/std."""

    def cubic_weights(t):
        a = -0.75

        def near(d):  # |d| <= 1
            return ((a + 2) * d - (a + 3)) * d * d + 1

        def far(d):  # 1 < |d| < 2
            return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a

        return np.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], -1)

    def resample_matrix(n_in, n_out):
        m = np.zeros((n_out, n_in))
        src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
        base = np.floor(src).astype(int)
        w = cubic_weights(src - base)
        for i in range(n_out):
            for k in range(4):
                m[i, min(max(base[i] - 1 + k, 0), n_in - 1)] += w[i, k]
        return m

    x = frames.astype(np.float64).transpose(0, 3, 1, 2) / 255.0
    rows = resample_matrix(x.shape[2], size)
    cols = resample_matrix(x.shape[3], size)
    y = rows @ x @ cols.T
    mean = np.array(MEAN).reshape(1, 3, 1, 1)
    std = np.array(STD).reshape(1, 3, 1, 1)
    return (y - mean) / std


@pytest.mark.parametrize("shape", [(400, 600), (480, 480), (100, 150)])
def test_paper_resize_matches_the_official_float_transform(shape):
    # noise-heavy frames are where antialiasing differs most from the paper's resampling
    frames = np.random.default_rng(2).integers(0, 256, (2, *shape, 3), dtype=np.uint8)
    want = _paper_transform_float64(frames)
    got = preprocess_batch(
        frames, image_size=(224, 224), mean=(0.5,) * 3, std=(0.5,) * 3, resize="paper"
    )
    assert got.dtype == torch.float32 and got.shape == (2, 3, 224, 224)
    assert np.max(np.abs(got.numpy().astype(np.float64) - want)) <= 1e-5
    # and the default (antialiased) resize is measurably different on the same frames
    default = preprocess_batch(frames, image_size=(224, 224), mean=MEAN, std=STD)
    assert np.max(np.abs(default.numpy() - want)) > 1e-2


def test_unknown_resize_policy_is_rejected():
    with pytest.raises(ValueError, match="resize policy"):
        preprocess_batch(
            np.zeros((1, 8, 8, 3), np.uint8), image_size=(4, 4), mean=MEAN, std=STD, resize="x"
        )


def test_float_resample_path_for_gpus_agrees_with_the_uint8_cpu_path(monkeypatch):
    import vlmrm_core.clip.preprocess as preprocess

    frames = np.random.default_rng(3).integers(0, 256, (2, 400, 600, 3), dtype=np.uint8)
    on_uint8 = preprocess_batch(frames, image_size=(224, 224), mean=MEAN, std=STD)
    monkeypatch.setattr(preprocess, "_resample_on_floats", lambda device: True)
    on_floats = preprocess_batch(frames, image_size=(224, 224), mean=MEAN, std=STD)
    # both are whole uint8 levels: at most one level apart (fixed-point vs float weights), and
    # almost always identical
    one_level = 1 / 255 / min(STD) + 1e-6
    diff = (on_uint8 - on_floats).abs()
    assert diff.max().item() <= one_level
    assert (diff > 1e-6).float().mean().item() < 0.01


def test_the_embedding_cache_key_names_the_resize_policy():
    from types import SimpleNamespace

    from vlmrm_core.store.embedding_cache import encoder_key

    clip = SimpleNamespace(identity="ViT-B-32/laion2b_s34b_b79k")
    assert encoder_key(clip, "squash") == "ViT-B-32/laion2b_s34b_b79k|squash"  # unchanged key
    assert encoder_key(clip, "squash", "antialias") == encoder_key(clip, "squash")
    assert encoder_key(clip, "squash", "paper") == "ViT-B-32/laion2b_s34b_b79k|squash|paper"


@pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU (runs on a machine with one)"
)
@pytest.mark.parametrize("resize", ["antialias", "paper"])
def test_gpu_and_cpu_preprocess_agree(resize):
    frames = np.random.default_rng(4).integers(0, 256, (2, 400, 600, 3), dtype=np.uint8)
    kwargs = dict(image_size=(224, 224), mean=MEAN, std=STD, resize=resize)
    on_cpu = preprocess_batch(frames, **kwargs)
    on_gpu = preprocess_batch(frames, device="cuda", **kwargs).cpu()
    diff = (on_cpu - on_gpu).abs()
    if resize == "paper":
        assert diff.max().item() <= 1e-5
    else:
        assert diff.max().item() <= 1 / 255 / min(STD) + 1e-6
        assert (diff > 1e-6).float().mean().item() < 0.01
