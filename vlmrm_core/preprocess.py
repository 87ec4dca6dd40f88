"""Batched image preprocessing as tensor ops: uint8 frames in, normalised model input out.

Aspect policies:

- ``squash`` (default): resize the whole frame to the model's square input, distorting the aspect
  ratio but keeping every part of the scene, as the VLM-RM paper's code does.
- ``center-crop``: open_clip's stock transform: resize the shorter side to the input size, then
  cut the centre square (edges of wide frames are lost).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

ASPECTS = ("squash", "center-crop")


def preprocess_batch(
    frames: np.ndarray | torch.Tensor,
    *,
    image_size: tuple[int, int],
    mean: tuple[float, float, float],
    std: tuple[float, float, float],
    aspect: str = "squash",
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Turn N same-sized RGB frames into a normalised N×3×H×W model input.

    Args:
        frames: N×H×W×3 uint8 array or tensor (one shape for the whole batch).
        image_size: the model's (height, width) input size.
        mean: per-channel mean of the model's normalisation (0–1 scale).
        std: per-channel standard deviation.
        aspect: ``squash`` or ``center-crop`` (see module docstring).
        device: where to run the resize.
        dtype: dtype of the returned tensor (the model's weight dtype).

    Returns:
        Tensor of shape N×3×image_size, ready for ``model.encode_image``.
    """
    if aspect not in ASPECTS:
        raise ValueError(f"unknown aspect policy {aspect!r}: use one of {', '.join(ASPECTS)}")
    pixels = torch.as_tensor(frames, device=device)
    if pixels.ndim != 4 or pixels.shape[-1] != 3 or pixels.dtype != torch.uint8:
        raise ValueError(f"expected N×H×W×3 uint8 frames, got {tuple(pixels.shape)} {pixels.dtype}")
    # Resample while still uint8 where the CPU kernel supports it: it is ~10× faster than on floats
    # for large frames, and rounds to uint8 exactly as PIL (open_clip's stock transform) does.
    x = pixels.permute(0, 3, 1, 2)
    if x.device.type != "cpu":
        x = x.float()
    target_h, target_w = image_size
    if aspect == "squash":
        x = _resize(x, (target_h, target_w))
    else:
        height, width = x.shape[-2:]
        short = min(height, width)
        # torchvision's Resize(int) rule: the shorter side becomes the size, the longer is truncated
        new_h = target_h if height == short else int(target_h * height / short)
        new_w = target_h if width == short else int(target_h * width / short)
        x = _resize(x, (new_h, new_w))
        top = int(round((new_h - target_h) / 2.0))
        left = int(round((new_w - target_w) / 2.0))
        x = x[..., top : top + target_h, left : left + target_w]
    # Contiguous NCHW float in one pass (the uint8 resize leaves a channels-last view, which the
    # patch embedding reads slowly), then (x / 255 - mean) / std as one scale and one shift.
    if x.dtype == torch.uint8:
        x = x.to(torch.float32, memory_format=torch.contiguous_format)
    else:
        # bicubic overshoots on floats; PIL clamps to 0..255 when it writes uint8, so we do too
        x = x.clamp(0.0, 255.0).contiguous()
    mean_t = torch.tensor(mean, device=x.device).view(1, 3, 1, 1)
    std_t = torch.tensor(std, device=x.device).view(1, 3, 1, 1)
    return x.mul_(1.0 / (255.0 * std_t)).add_(-mean_t / std_t).to(dtype)


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == size:
        return x
    return F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True)
