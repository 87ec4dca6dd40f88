"""A judge's two halves run apart: vision features once per frame, the language model per question.

A judge's forward pass is (1) the vision tower and its connector, turning each image into the
image tokens the language model consumes, and (2) the language model over the prompt with those
tokens in place of the image placeholders. Part (1) depends only on the frame, the model and the
preprocessing, so it is cached (:class:`FeatureCache`); a question edit re-runs only part (2).

Both halves use hooks that transformers gives every image-text-to-text model:
``model.get_image_features(pixel_values, ...)`` returns the image tokens after the connector
(``pooler_output``, one tensor per image; Qwen3-VL adds ``deepstack_features``, the image
tokens it injects into early language-model layers, also cached), and ``model(...,
mm_encoder_outputs={"image": ...})`` runs the language model over precomputed image tokens
exactly as the full forward pass does after computing them itself.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vlmrm_core._torchvision_compat import install as _install_torchvision_compat
from vlmrm_core.clip.models import ModelError
from vlmrm_core.judge.models import JudgeModel

_install_torchvision_compat()  # transformers imports torchvision: the workaround must come first

# isort: split
from transformers.modeling_outputs import BaseModelOutputWithPooling  # noqa: E402

DEFAULT_CACHE_BYTES = 512 * 1024 * 1024
"""Default bound of the in-memory feature cache (about 3,500 SmolVLM-256M frames in fp32)."""

PIXEL_KEYS = ("pixel_values", "pixel_attention_mask")
"""Processor outputs replaced by cached features; everything else (token ids, masks, image grid
sizes for Qwen's position ids) goes to the language model."""


@dataclass
class ImageFeatures:
    """One frame's image tokens after the connector, on the CPU in the model's dtype."""

    tokens: torch.Tensor
    """n×D: what replaces the frame's n image placeholder tokens."""
    frame_shape: tuple[int, int]
    """The frame's height and width: the prompt's image tokens depend on it (and only on it)."""
    deepstack: tuple[torch.Tensor, ...] = ()
    """Qwen3-VL only: n×D tokens per deepstack layer (empty for other architectures)."""

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.tokens, *self.deepstack))


@dataclass
class _CachedImageOutputs(BaseModelOutputWithPooling):
    """Precomputed image outputs in the shape ``mm_encoder_outputs["image"]`` expects: one
    tensor of image tokens per image (``get_image_features`` returns them so too)."""

    pooler_output: list[torch.Tensor] | None = None
    deepstack_features: list[list[torch.Tensor]] | None = None


class FeatureCache:
    """Image features per (feature key, frame hash): a bounded in-memory LRU, optionally on disk.

    Args:
        max_bytes: the in-memory bound; the least recently used frames are dropped beyond it.
        directory: where features persist as ``.npz`` files (one folder per feature key);
            None keeps them in memory only.
    """

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES, directory: Path | None = None):
        self.max_bytes = max_bytes
        self.directory = directory
        self._items: OrderedDict[tuple[str, str], ImageFeatures] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: str, frame_hash: str) -> ImageFeatures | None:
        """The cached features of a frame, or None."""
        with self._lock:
            found = self._items.get((key, frame_hash))
            if found is not None:
                self._items.move_to_end((key, frame_hash))
                return found
        if self.directory is None:
            return None
        loaded = self._load(key, frame_hash)
        if loaded is not None:
            self._remember(key, frame_hash, loaded)
        return loaded

    def put(self, key: str, frame_hash: str, features: ImageFeatures) -> None:
        """Store a frame's features (in memory, and on disk when the cache has a directory)."""
        self._remember(key, frame_hash, features)
        if self.directory is not None:
            self._save(key, frame_hash, features)

    def _remember(self, key: str, frame_hash: str, features: ImageFeatures) -> None:
        with self._lock:
            old = self._items.pop((key, frame_hash), None)
            if old is not None:
                self._bytes -= old.nbytes
            self._items[(key, frame_hash)] = features
            self._bytes += features.nbytes
            while self._bytes > self.max_bytes and len(self._items) > 1:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= dropped.nbytes

    def _path(self, key: str, frame_hash: str) -> Path:
        assert self.directory is not None
        folder = self.directory / hashlib.sha256(key.encode()).hexdigest()[:24]
        return folder / f"{frame_hash}.npz"

    def _save(self, key: str, frame_hash: str, features: ImageFeatures) -> None:
        path = self._path(key, frame_hash)
        path.parent.mkdir(parents=True, exist_ok=True)
        label = path.parent / "key.txt"
        if not label.exists():  # which model and preprocessing the folder belongs to, for people
            label.write_text(key + "\n", encoding="utf-8")
        stacked = torch.stack([features.tokens, *features.deepstack])
        if stacked.dtype == torch.bfloat16:  # NumPy has no bfloat16: keep the raw bits
            array = stacked.view(torch.int16).numpy()
        else:
            array = stacked.numpy()
        partial = path.with_suffix(f".{threading.get_ident()}.tmp")
        with partial.open("wb") as fh:
            np.savez(fh, features=array, frame_shape=np.asarray(features.frame_shape, np.int64))
        partial.replace(path)  # atomic: readers never see half a file

    def _load(self, key: str, frame_hash: str) -> ImageFeatures | None:
        path = self._path(key, frame_hash)
        try:
            with np.load(path) as data:
                array, shape = data["features"], data["frame_shape"]
        except (OSError, ValueError, KeyError):  # missing, or a torn or foreign file: recompute
            return None
        stacked = torch.from_numpy(array)
        if stacked.dtype == torch.int16:
            stacked = stacked.view(torch.bfloat16)
        return ImageFeatures(stacked[0], (int(shape[0]), int(shape[1])), tuple(stacked[1:]))


def compute_features(judge: JudgeModel, frames: Sequence[np.ndarray]) -> list[ImageFeatures]:
    """Image features of frames of one size, in one vision-tower pass.

    Args:
        judge: the loaded judge.
        frames: H×W×3 uint8 frames, all of one size.

    Returns:
        One :class:`ImageFeatures` per frame, on the CPU.

    Raises:
        ModelError: an architecture whose ``get_image_features`` does not return one tensor of
            image tokens per image.
    """
    if not frames:
        return []
    inputs = judge.processor.image_processor(images=[[f] for f in frames], return_tensors="pt")
    tensors = {k: v.to(judge.device) for k, v in inputs.items() if isinstance(v, torch.Tensor)}
    with judge.lock, torch.inference_mode():
        output = judge.model.get_image_features(**tensors, return_dict=True)
    pooled = list(output.pooler_output)
    if len(pooled) != len(frames):
        raise ModelError(
            f"{judge.label}: cached vision features are not supported for the architecture "
            f"{judge.model.config.model_type!r} (its image features do not come one per image)"
        )
    deep = getattr(output, "deepstack_features", None) or []
    return [
        ImageFeatures(
            pooled[i].detach().to("cpu").contiguous(),
            (int(frames[i].shape[0]), int(frames[i].shape[1])),
            tuple(layer[i].detach().to("cpu").contiguous() for layer in deep),
        )
        for i in range(len(frames))
    ]


def prompt_layout(
    judge: JudgeModel, prompt: str, frame_shapes: Sequence[tuple[int, int]]
) -> dict[str, Any]:
    """The language model's inputs for a prompt with images of these sizes, pixels left out.

    The processor expands each image placeholder into as many image tokens as the image's size
    calls for; the result depends on the frames' sizes only (so blank frames of those sizes
    stand in for the real ones), is computed once per prompt and sizes, and is shared by every
    window of frames of those sizes.
    """
    blanks = [np.zeros((h, w, 3), np.uint8) for h, w in frame_shapes]
    inputs = judge.processor(text=[prompt], images=[blanks], return_tensors="pt")
    return {k: v for k, v in inputs.items() if k not in PIXEL_KEYS and isinstance(v, torch.Tensor)}


def next_token_log_probs(
    judge: JudgeModel, layout: dict[str, Any], windows: Sequence[Sequence[ImageFeatures]]
) -> torch.Tensor:
    """The language model over cached image tokens: B×V float32 log-softmax at the answer
    position (the prompt's last token), one row per window.

    Args:
        judge: the loaded judge.
        layout: :func:`prompt_layout` of the prompt for windows of these frame sizes.
        windows: B windows, each the features of its k frames in prompt order.
    """
    batch = len(windows)
    inputs = {k: torch.cat([v] * batch).to(judge.device) for k, v in layout.items()}
    images = [f for window in windows for f in window]
    n_deep = len(images[0].deepstack)
    outputs = _CachedImageOutputs(
        pooler_output=[f.tokens.to(judge.device) for f in images],
        deepstack_features=[
            [f.deepstack[i].to(judge.device) for f in images] for i in range(n_deep)
        ]
        if n_deep
        else None,
    )
    with judge.lock, torch.inference_mode():
        logits = judge.model(
            **inputs,
            mm_encoder_outputs={"image": outputs},
            use_cache=False,
            logits_to_keep=1,  # the answer position only: skips the vocabulary head elsewhere
        ).logits[:, -1, :]
        return torch.log_softmax(logits.float(), dim=-1)


def answer_log_probs(
    judge: JudgeModel,
    layout: dict[str, Any],
    windows: Sequence[Sequence[ImageFeatures]],
    token_ids: tuple[int, int],
) -> np.ndarray:
    """B×2 float64 log-probabilities of the two answer tokens at the answer position, one row
    per window (see :func:`next_token_log_probs`)."""
    if not windows:
        return np.zeros((0, 2), np.float64)
    log_probs = next_token_log_probs(judge, layout, windows)[:, list(token_ids)]
    return log_probs.double().cpu().numpy()
