"""Image and text embeddings, batched and bounded in memory, with an optional persistent cache.

All embeddings returned here are L2-normalised float32 NumPy arrays, one row per input.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Protocol

import numpy as np
import torch

from vlmrm_core.clip.models import ClipModel
from vlmrm_core.clip.preprocess import preprocess_batch
from vlmrm_core.errors import InvalidInputError
from vlmrm_core.frames import ProgressCallback
from vlmrm_core.reward.spec import PromptError


class PromptTooLongWarning(UserWarning):
    """A prompt exceeds the model's context and was truncated."""


def encode_images(
    clip: ClipModel,
    frames: np.ndarray | Iterable[np.ndarray],
    *,
    aspect: str = "squash",
    resize: str = "antialias",
    batch_size: int = 32,
    total: int | None = None,
    progress: ProgressCallback | None = None,
) -> np.ndarray:
    """Embed RGB frames of any size.

    Args:
        clip: the loaded model.
        frames: N×H×W×3 uint8 array, or an iterable of H×W×3 uint8 arrays (sizes may differ;
            frames are consumed lazily, so memory stays bounded by ``batch_size``).
        aspect: ``squash`` (whole frame, default) or ``center-crop`` (open_clip's stock).
        resize: ``antialias`` (default) or ``paper`` (the official VLM-RM resampling).
        batch_size: frames per forward pass.
        total: number of frames, for progress reporting when ``frames`` is an iterator.
        progress: called as ``progress(done, total, message)`` after each batch.

    Returns:
        N×D float32 array of L2-normalised embeddings (0×D for no frames).
    """
    if isinstance(frames, np.ndarray):
        total = len(frames)
    outputs: list[np.ndarray] = []
    done = 0
    for batch in _same_shape_batches(iter(frames), batch_size):
        outputs.append(_encode_image_batch(clip, batch, aspect, batch_size, resize))
        done += len(batch)
        if progress is not None:
            progress(done, total, f"embedded {done} frame{'s' if done != 1 else ''}")
    if not outputs:
        return np.zeros((0, embedding_dim(clip)), dtype=np.float32)
    return np.concatenate(outputs)


def encode_texts(clip: ClipModel, prompts: Sequence[str]) -> np.ndarray:
    """Embed prompts, remembering each prompt's embedding on the model object.

    Args:
        clip: the loaded model.
        prompts: non-empty strings. Prompts longer than the model's context (77 tokens for most
            models) are truncated with a ``PromptTooLongWarning``.

    Returns:
        P×D float32 array of L2-normalised embeddings.

    Raises:
        PromptError: an empty or whitespace-only prompt, or no prompts at all.
    """
    if isinstance(prompts, str):
        prompts = [prompts]
    if not prompts:
        raise PromptError("no prompts given: enter at least one prompt")
    cleaned = []
    for i, prompt in enumerate(prompts):
        if not isinstance(prompt, str) or not prompt.strip():
            raise PromptError(
                f"prompt {i + 1} is empty: every prompt needs some text (remove blank lines)"
            )
        cleaned.append(prompt.strip())
    missing = [p for p in dict.fromkeys(cleaned) if p not in clip.text_cache]
    if missing:
        for prompt in missing:
            n_tokens = prompt_token_count(clip, prompt)
            if n_tokens > clip.context_length:
                warnings.warn(
                    f"prompt {prompt[:40]!r}… has {n_tokens} tokens, more than the model's "
                    f"context of {clip.context_length}; it was truncated",
                    PromptTooLongWarning,
                    stacklevel=2,
                )
        tokens = clip.tokenizer(missing).to(clip.device)
        with clip.lock, torch.inference_mode():
            features = clip.model.encode_text(tokens).float()
        features = torch.nn.functional.normalize(features, dim=-1).cpu().numpy()
        clip.text_cache.update(zip(missing, features, strict=True))
    return np.stack([clip.text_cache[p] for p in cleaned]).astype(np.float32)


def prompt_token_count(clip: ClipModel, prompt: str) -> int:
    """Tokens the prompt takes, start and end tokens included."""
    encode = getattr(clip.tokenizer, "encode", None)
    if encode is None:  # Hugging Face tokenizers wrap the real one
        inner = getattr(clip.tokenizer, "tokenizer", None)
        return len(inner(prompt)["input_ids"]) if inner is not None else 0
    return len(encode(prompt)) + 2


def embedding_dim(clip: ClipModel) -> int:
    """Width of the joint embedding space."""
    projection = getattr(clip.model, "text_projection", None)
    if isinstance(projection, torch.Tensor):
        return int(projection.shape[-1])
    if isinstance(projection, torch.nn.Linear):
        return int(projection.out_features)
    return int(encode_texts(clip, ["a photo"]).shape[1])


FrameSource = np.ndarray | Callable[[], np.ndarray]
"""Pixels, or a function that loads them (called only when the embedding isn't cached)."""


def embed_frames(
    clip: ClipModel,
    items: Iterable[tuple[str, FrameSource]],
    *,
    cache: EmbeddingCacheLike | None = None,
    aspect: str = "squash",
    resize: str = "antialias",
    batch_size: int = 32,
    total: int | None = None,
    progress: ProgressCallback | None = None,
    chunk_size: int = 512,
) -> np.ndarray:
    """Embed frames identified by pixel hash, computing each embedding once, ever.

    Args:
        clip: the loaded model.
        items: ``(pixel_hash, pixels_or_loader)`` pairs. Loaders of cached frames are never called,
            so re-embedding a stored dataset reads no images.
        cache: where embeddings persist (``EmbeddingCache``); None embeds everything.
        aspect: preprocessing aspect policy (part of the cache key).
        resize: resampling policy (part of the cache key: build ``cache`` with the same one).
        batch_size: frames per forward pass.
        total: number of items, for progress.
        progress: ``progress(done, total, message)``.
        chunk_size: items looked up in the cache at a time (bounds memory).

    Returns:
        N×D float32 embeddings in input order.
    """
    rows: list[np.ndarray] = []
    done = 0
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, chunk_size)):
        hashes = [h for h, _ in chunk]
        found = cache.get_many(hashes) if cache is not None else {}
        todo = {h: src for h, src in chunk if h not in found}
        if todo:
            pixels = (src() if callable(src) else src for src in todo.values())
            fresh = encode_images(clip, pixels, aspect=aspect, resize=resize, batch_size=batch_size)
            found.update(zip(todo, fresh, strict=True))
            if cache is not None:
                cache.put_many(list(todo), fresh)
        rows.append(np.stack([found[h] for h in hashes]))
        done += len(chunk)
        if progress is not None:
            progress(done, total, f"{done} frames embedded ({len(todo)} new in this chunk)")
    if not rows:
        return np.zeros((0, embedding_dim(clip)), dtype=np.float32)
    return np.concatenate(rows).astype(np.float32, copy=False)


class EmbeddingCacheLike(Protocol):
    """What ``embed_frames`` needs from a cache (see ``vlmrm_core.store.embedding_cache``)."""

    def get_many(self, hashes: Sequence[str]) -> dict[str, np.ndarray]: ...

    def put_many(self, hashes: Sequence[str], vectors: np.ndarray) -> None: ...


def _same_shape_batches(frames: Iterator[np.ndarray], batch_size: int) -> Iterator[np.ndarray]:
    if batch_size < 1:
        raise InvalidInputError("batch_size must be at least 1")
    batch: list[np.ndarray] = []
    for frame in frames:
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
            raise InvalidInputError(f"expected H×W×3 uint8 frames, got {frame.shape} {frame.dtype}")
        if batch and (frame.shape != batch[0].shape or len(batch) == batch_size):
            yield np.stack(batch)
            batch = []
        batch.append(frame)
    if batch:
        yield np.stack(batch)


def _encode_image_batch(
    clip: ClipModel, batch: np.ndarray, aspect: str, batch_size: int, resize: str = "antialias"
) -> np.ndarray:
    with clip.lock, torch.inference_mode():
        x = preprocess_batch(
            batch,
            image_size=clip.image_size,
            mean=clip.mean,
            std=clip.std,
            aspect=aspect,
            resize=resize,
            device=clip.device,
            dtype=clip.dtype,
        )
        features = clip.encode_image(x, batch_size=batch_size).float()
    return torch.nn.functional.normalize(features, dim=-1).cpu().numpy()
