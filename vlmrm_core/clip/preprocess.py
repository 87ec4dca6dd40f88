"""Batched image preprocessing as tensor ops: uint8 frames in, normalised model input out.

Aspect policies:

- ``squash`` (default): resize the whole frame to the model's square input, distorting the aspect
  ratio but keeping every part of the scene, as the VLM-RM paper's code does.
- ``center-crop``: open_clip's stock transform: resize the shorter side to the input size, then
  cut the centre square (edges of wide frames are lost).

Resize (resampling) policies:

- ``antialias`` (default): bicubic with antialiasing on the uint8 frame, rounded back to uint8
  (as PIL does in open_clip's stock transform), then the model's own mean/std. On a GPU the resize
  runs on floats and is then clamped and rounded to whole levels, so both devices agree to one level.
- ``paper``: the official VLM-RM code's transform, exactly: the frame as a float tensor in 0..1,
  bicubic (a = -0.75, half-pixel centres) to the target size *without* antialiasing and without
  clamping or rounding (what the torchvision it pins does on float tensors), then the OpenAI CLIP
  mean/std whatever the model. Use it with ``squash`` to reproduce the paper's figures.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from vlmrm_core.enums import Aspect, Resize, choices

ASPECTS = choices(Aspect)
RESIZES = choices(Resize)
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


def preprocess_batch(
    frames: np.ndarray | torch.Tensor,
    *,
    image_size: tuple[int, int],
    mean: tuple[float, float, float],
    std: tuple[float, float, float],
    aspect: str = "squash",
    resize: str = "antialias",
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
        resize: ``antialias`` or ``paper`` (see module docstring); ``paper`` ignores mean/std
            and uses OpenAI's, as the official VLM-RM code does.
        device: where to run the resize.
        dtype: dtype of the returned tensor (the model's weight dtype).

    Returns:
        Tensor of shape N×3×image_size, ready for ``model.encode_image``.
    """
    if aspect not in ASPECTS:
        raise ValueError(f"unknown aspect policy {aspect!r}: use one of {', '.join(ASPECTS)}")
    if resize not in RESIZES:
        raise ValueError(f"unknown resize policy {resize!r}: use one of {', '.join(RESIZES)}")
    pixels = torch.as_tensor(frames, device=device)
    if pixels.ndim != 4 or pixels.shape[-1] != 3 or pixels.dtype != torch.uint8:
        raise ValueError(f"expected N×H×W×3 uint8 frames, got {tuple(pixels.shape)} {pixels.dtype}")
    # Resample while still uint8 where the CPU kernel supports it: it is ~10× faster than on floats
    # for large frames, and rounds to uint8 exactly as PIL (open_clip's stock transform) does.
    x = pixels.permute(0, 3, 1, 2)
    paper = resize == "paper"
    if paper:
        x = x.to(torch.float32, memory_format=torch.contiguous_format).div_(255.0)
    elif _resample_on_floats(x.device):
        x = x.float()
    antialias = not paper
    target_h, target_w = image_size
    if aspect == "squash":
        x = _resize(x, (target_h, target_w), antialias=antialias)
    else:
        height, width = x.shape[-2:]
        short = min(height, width)
        # torchvision's Resize(int) rule: the shorter side becomes the size, the longer is truncated
        new_h = target_h if height == short else int(target_h * height / short)
        new_w = target_h if width == short else int(target_h * width / short)
        x = _resize(x, (new_h, new_w), antialias=antialias)
        top = int(round((new_h - target_h) / 2.0))
        left = int(round((new_w - target_w) / 2.0))
        x = x[..., top : top + target_h, left : left + target_w]
    if paper:
        mean_t = torch.tensor(OPENAI_MEAN, device=x.device).view(1, 3, 1, 1)
        std_t = torch.tensor(OPENAI_STD, device=x.device).view(1, 3, 1, 1)
        return ((x.contiguous() - mean_t) / std_t).to(dtype)
    # Contiguous NCHW float in one pass (the uint8 resize leaves a channels-last view, which the
    # patch embedding reads slowly), then (x / 255 - mean) / std as one scale and one shift.
    if x.dtype == torch.uint8:
        x = x.to(torch.float32, memory_format=torch.contiguous_format)
    else:
        # float frames were resampled as the uint8 kernel does (see _resize), already whole levels
        x = x.contiguous()
    mean_t = torch.tensor(mean, device=x.device).view(1, 3, 1, 1)
    std_t = torch.tensor(std, device=x.device).view(1, 3, 1, 1)
    return x.mul_(1.0 / (255.0 * std_t)).add_(-mean_t / std_t).to(dtype)


def _resample_on_floats(device: torch.device) -> bool:
    """Whether the antialiased resize must run on floats (only the CPU kernel takes uint8)."""
    return device.type != "cpu"


def _resize(x: torch.Tensor, size: tuple[int, int], *, antialias: bool = True) -> torch.Tensor:
    if tuple(x.shape[-2:]) == size:
        return x
    if antialias and x.is_floating_point():
        # The GPU stand-in for the CPU uint8 kernel, which resamples the width first, then the
        # height, writing whole 0..255 levels after each pass: the same here, so a GPU and a CPU
        # embed the same frame to within one level on a few pixels.
        height = x.shape[-2]
        x = F.interpolate(x, size=(height, size[1]), mode="bicubic", antialias=True)
        x = x.clamp_(0.0, 255.0).round_()
        x = F.interpolate(x, size=size, mode="bicubic", antialias=True)
        return x.clamp_(0.0, 255.0).round_()
    if not antialias:
        # F.interpolate's float32 kernels compute the source positions in float32, which is
        # off by up to ~2e-4 (normalised) on noisy frames; the same resampling as two matmuls
        # with weights computed in float64 stays within ~1e-6 of the exact transform.
        rows = _bicubic_matrix(x.shape[-2], size[0]).to(x.device, x.dtype)
        cols = _bicubic_matrix(x.shape[-1], size[1]).to(x.device, x.dtype)
        return rows @ x @ cols.T
    return F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=antialias)


@functools.lru_cache(maxsize=32)
def _bicubic_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """n_out×n_in float64 weights of torch/torchvision's bicubic resize without antialiasing.

    Keys' cubic with a = -0.75, half-pixel centres (``align_corners=False``), taps outside the
    image clamped to the border pixel.
    """
    a = -0.75
    src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    base = np.floor(src)
    t = src - base
    d = np.stack([t + 1, t, 1 - t, 2 - t], -1)
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    weights = np.where(d <= 1, near, far)
    taps = np.clip(base[:, None].astype(np.int64) + np.arange(-1, 3), 0, n_in - 1)
    matrix = np.zeros((n_out, n_in))
    np.add.at(matrix, (np.repeat(np.arange(n_out), 4), taps.ravel()), weights.ravel())
    return torch.from_numpy(matrix)
