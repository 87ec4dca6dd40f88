"""The Reward interface and ``as_frames``: every accepted frame input, and errors that name it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import vlmrm_core
from tests.reward._brightness import BrightnessReward
from vlmrm_core.errors import VlmrmError
from vlmrm_core.reward.base import FrameInputError, Reward, as_frames


def pixels(n: int = 2) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, 5, 7, 3), dtype=np.uint8)


def test_every_accepted_input_gives_the_same_uint8_frames():
    f = pixels()
    rgba = np.concatenate([f, np.full((2, 5, 7, 1), 9, np.uint8)], axis=-1)
    inputs = {
        "uint8": f,
        "float64 in [0, 1]": f / 255.0,
        "float32 RGBA": rgba.astype(np.float32) / 255.0,
        "torch": torch.from_numpy(f),
        "PIL list": [Image.fromarray(x) for x in f],
        "PIL RGBA list": [Image.fromarray(x, "RGBA") for x in rgba],
        "list of arrays": list(f),
    }
    for name, value in inputs.items():
        out = as_frames(value)
        assert out.dtype == np.uint8 and out.flags.c_contiguous, name
        np.testing.assert_array_equal(out, f, err_msg=name)
    np.testing.assert_array_equal(as_frames(Image.fromarray(f[0])), f[:1])  # one image: N = 1
    assert as_frames([]).shape == (0, 1, 1, 3)


@pytest.mark.parametrize(
    ("frames", "message"),
    [
        (np.zeros((2, 5, 7), np.uint8), r"frames of shape \(2, 5, 7\) \(uint8\): give N×H×W×3"),
        (np.zeros((2, 3, 5, 7), np.uint8), r"frames of shape \(2, 3, 5, 7\)"),
        (np.zeros((1, 5, 7, 3), np.int16), r"\(int16\): give N×H×W×3 uint8 frames"),
        (np.full((1, 5, 7, 3), np.nan), "contain NaN"),
        (np.full((1, 5, 7, 3), 2.0), r"values in \[2, 2\]: float frames must lie in \[0, 1\]"),
        ([np.zeros((5, 7, 3)), np.zeros((4, 7, 3))], "frames of different sizes"),
    ],
    ids=["no-channels", "channels-first", "int16", "nan", "above-1", "ragged"],
)
def test_wrong_frames_are_a_one_line_user_error_naming_them(frames, message):
    with pytest.raises(FrameInputError, match=message) as info:
        as_frames(frames)
    assert isinstance(info.value, VlmrmError) and "\n" not in str(info.value)


def test_a_reward_scores_episodes_frame_by_frame_unless_it_says_otherwise():
    reward = BrightnessReward(scale=2.0)
    f = np.zeros((3, 4, 4, 3), np.uint8)
    f[2] = 255
    assert reward.score_episode(f).tolist() == [0.0, 0.0, 2.0]
    assert reward(f / 255.0).tolist() == [0.0, 0.0, 2.0]
    assert repr(reward) == "BrightnessReward(mean pixel brightness × 2)"
    with pytest.raises(TypeError, match="abstract"):
        Reward()  # type: ignore[abstract]


def test_the_package_exports_the_reward_interface():
    assert vlmrm_core.Reward is Reward and vlmrm_core.as_frames is as_frames
    assert issubclass(vlmrm_core.RewardModel, vlmrm_core.Reward)
