import numpy as np
import pytest
import torch
from PIL import Image

from vlmrm_core.preprocess import preprocess_batch

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
