"""Fill the embedding cache for many frames, locally or on a Ray cluster.

Both engines skip frames whose embedding is already cached first, then embed only the rest and
write the embeddings to the cache batch by batch as they are produced, so a run that is killed
half-way resumes where it stopped.

The Ray engine is a Ray Data pipeline: the driver reads each frame's PNG bytes from the store
and ships them inside the dataset (so workers need no shared filesystem), and ``map_batches``
runs :class:`ClipEmbedActor` in an actor pool (the model is loaded once per actor; one GPU per
actor where the cluster has GPUs, CPU actors otherwise). The driver iterates the output and
writes each batch to the cache.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vlmrm_core.errors import InvalidInputError

FrameBytes = bytes | Callable[[], bytes]
"""A frame's PNG (or any PIL-readable) bytes, or a function that reads them when needed."""

ProgressFn = Callable[[int, int], None]
"""``progress(done, total)``: frames embedded so far in this run, frames to embed."""


LOOKUP_CHUNK = 5000
"""Hashes looked up in the cache at a time."""


@dataclass(frozen=True)
class EmbedReport:
    """What an embed job did."""

    new: int
    """Frames embedded and written to the cache by this run."""
    cached: int
    """Distinct frames that were already cached (skipped)."""
    encoder_key: str
    """Cache key the embeddings went under, e.g. ``ViT-B-32/laion2b_s34b_b79k|squash``."""
    seconds: float
    """Wall time of the embedding (cache look-up included, cluster start-up excluded)."""

    @property
    def summary(self) -> str:
        return f"embedded {self.new} new, {self.cached} already cached"


@dataclass(frozen=True)
class EmbedModel:
    """Which model embeds, as plain values a remote worker can receive."""

    architecture: str
    pretrained: str | None = None
    aspect: str = "squash"
    precision: str = "fp32"
    resize: str = "antialias"
    """Resampling of frames to the model input (``paper``: the official transform)."""

    @property
    def identity(self) -> str:
        """The ``ClipModel.identity`` this model will have, computed without loading it."""
        return model_identity(self.architecture, self.pretrained)

    @property
    def encoder_key(self) -> str:
        # The embedding cache's key (vlmrm_core.store.embedding_cache.encoder_key's rule).
        key = f"{self.identity}|{self.aspect}"
        return key if str(self.resize) == "antialias" else f"{key}|{self.resize}"


def model_identity(architecture: str, pretrained: str | None) -> str:
    """``ClipModel.identity`` without loading the model (see ``vlmrm_core.clip.models``)."""
    from vlmrm_core.clip.models import RANDOM_INIT_NAMES, file_sha256, is_checkpoint_path

    tag = (pretrained or "").strip()
    if tag.lower() in RANDOM_INIT_NAMES:
        return f"{architecture}/random-init"
    if is_checkpoint_path(tag):
        path = Path(tag).expanduser()
        if not path.is_file():
            raise InvalidInputError(f"checkpoint not found: {tag}: give the path of a model file")
        return f"{architecture}/sha256:{file_sha256(path)[:16]}"
    return f"{architecture}/{tag}"


def unique_uncached(engine: Any, encoder_key: str, hashes: Iterable[str]) -> tuple[list[str], int]:
    """Split frame hashes into those still to embed (in first-seen order) and a cached count."""
    from vlmrm_core.store import get_embeddings

    ordered = list(dict.fromkeys(hashes))
    todo: list[str] = []
    cached = 0
    for start in range(0, len(ordered), LOOKUP_CHUNK):
        part = ordered[start : start + LOOKUP_CHUNK]
        found = get_embeddings(engine, encoder_key, part)
        cached += len(found)
        todo.extend(h for h in part if h not in found)
    return todo, cached


def stored_frame_bytes(frame_hash: str) -> FrameBytes:
    """A reader of a stored frame's image bytes (read by the driver, shipped to the workers):
    its PNG, or a PNG of a video-backed frame decoded by the driver (workers need no copy of the
    data dir)."""
    from vlmrm_core.store import stored_image_bytes

    return lambda: stored_image_bytes(frame_hash)


def png_bytes(pixels: np.ndarray) -> bytes:
    """Losslessly encode an H×W×3 uint8 frame (fast compression: it only travels)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def decode_frames(images: Sequence[bytes]) -> list[np.ndarray]:
    """PNG/JPEG bytes → H×W×3 uint8 RGB arrays."""
    from PIL import Image

    frames = []
    for data in images:
        with Image.open(io.BytesIO(bytes(data))) as image:
            frames.append(np.asarray(image.convert("RGB"), dtype=np.uint8))
    return frames


# --------------------------------------------------------------------------- local engine


def embed_local(
    engine: Any,
    items: Iterable[tuple[str, FrameBytes]],
    model: EmbedModel,
    *,
    device: str | None = None,
    batch_size: int = 32,
    chunk_size: int = 256,
    progress: ProgressFn | None = None,
    clip: Any = None,
) -> EmbedReport:
    """Embed the uncached frames in this process and write them to the cache chunk by chunk.

    Args:
        engine: the project database.
        items: ``(pixel_hash, png_bytes_or_reader)`` pairs; readers of cached frames are never
            called.
        model: which model and preprocessing.
        device: ``cuda``/``cpu`` (default: cuda when available).
        batch_size: frames per forward pass.
        chunk_size: frames written to the cache at a time.
        progress: ``progress(done, total)`` after each chunk.
        clip: an already loaded model (must match ``model``); loaded here when None.

    Returns:
        Counts of new and already cached frames.
    """
    from vlmrm_core.clip.embedding import encode_images
    from vlmrm_core.store import put_embeddings

    start = time.perf_counter()
    sources = dict(items)
    todo, cached = unique_uncached(engine, model.encoder_key, sources)
    if todo:
        clip = clip or _load(model, device)
        _check_identity(clip, model)
        for begin in range(0, len(todo), chunk_size):
            part = todo[begin : begin + chunk_size]
            frames = decode_frames([_read(sources[h]) for h in part])
            vectors = encode_images(
                clip, frames, aspect=model.aspect, resize=model.resize, batch_size=batch_size
            )
            put_embeddings(engine, model.encoder_key, part, vectors)
            if progress is not None:
                progress(begin + len(part), len(todo))
    return EmbedReport(len(todo), cached, model.encoder_key, time.perf_counter() - start)


def embed_frames(
    engine: Any,
    items: Iterable[tuple[str, FrameBytes]],
    model: EmbedModel,
    *,
    engine_kind: str = "local",
    device: str | None = None,
    batch_size: int = 32,
    chunk_size: int = 256,
    num_actors: int | None = None,
    progress: ProgressFn | None = None,
) -> EmbedReport:
    """Embed the uncached frames with the chosen engine: what ``vlmrm embed`` runs.

    Args:
        engine: the project database.
        items: ``(pixel_hash, png_bytes_or_reader)`` pairs.
        model: which model and preprocessing.
        engine_kind: ``local`` (:func:`embed_local`) or ``ray`` (:func:`embed_with_ray`, on the
            cluster this process is connected to: see ``cluster.ray_session``).
        device: local engine: ``cuda``/``cpu`` (default: cuda when available).
        batch_size: frames per forward pass (and per Ray actor call).
        chunk_size: local engine: frames written to the cache at a time.
        num_actors: Ray engine: actor pool size (default: automatic).
        progress: ``progress(done, total)`` as frames are written.

    Returns:
        Counts of new and already cached frames.
    """
    if engine_kind == "ray":
        return embed_with_ray(
            engine, items, model, batch_size=batch_size, num_actors=num_actors, progress=progress
        )
    if engine_kind != "local":
        raise InvalidInputError(f"engine must be local or ray, not {engine_kind!r}")
    return embed_local(
        engine,
        items,
        model,
        device=device,
        batch_size=batch_size,
        chunk_size=chunk_size,
        progress=progress,
    )


# --------------------------------------------------------------------------- ray engine


class ClipEmbedActor:
    """A Ray Data actor: loads the CLIP model once, then embeds batches of encoded frames.

    Input batches have columns ``hash`` and ``image`` (encoded bytes); output batches have
    ``hash`` and ``embedding`` (N×D float32, L2-normalised).
    """

    def __init__(
        self, model: EmbedModel, device: str, batch_size: int, torch_threads: int | None
    ) -> None:
        from vlmrm_core.headless import use_headless_rendering

        use_headless_rendering()  # a Ray actor is an entry point
        import torch

        if torch_threads:
            torch.set_num_threads(torch_threads)
        self.model = model
        self.batch_size = batch_size
        self.clip = _load(model, device)
        _check_identity(self.clip, model)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from vlmrm_core.clip.embedding import encode_images

        frames = decode_frames(list(batch["image"]))
        vectors = encode_images(
            self.clip,
            frames,
            aspect=self.model.aspect,
            resize=self.model.resize,
            batch_size=self.batch_size,
        )
        return {"hash": np.asarray(batch["hash"]), "embedding": vectors}


def embed_with_ray(
    engine: Any,
    items: Iterable[tuple[str, FrameBytes]],
    model: EmbedModel,
    *,
    batch_size: int = 32,
    num_actors: int | None = None,
    cpus_per_actor: float | None = None,
    use_gpus: bool | None = None,
    progress: ProgressFn | None = None,
) -> EmbedReport:
    """Embed the uncached frames on the connected Ray cluster (see ``cluster.ray_session``).

    Args:
        engine: the project database (only the driver touches it).
        items: ``(pixel_hash, png_bytes_or_reader)`` pairs; readers of cached frames are never
            called.
        model: which model and preprocessing.
        batch_size: frames per actor call (and per forward pass).
        num_actors: actor pool size (default: one per GPU, or one per ``cpus_per_actor`` CPUs).
        cpus_per_actor: CPUs each CPU actor reserves (default: half the cluster's, 1 to 4).
        use_gpus: one GPU per actor (default: when the cluster has GPUs).
        progress: ``progress(done, total)`` after each batch written.

    Returns:
        Counts of new and already cached frames.
    """
    from vlmrm_core.scale.cluster import cluster_resources, import_ray
    from vlmrm_core.store import put_embeddings

    ray = import_ray()
    start = time.perf_counter()
    sources = dict(items)
    todo, cached = unique_uncached(engine, model.encoder_key, sources)
    if not todo:
        return EmbedReport(0, cached, model.encoder_key, time.perf_counter() - start)
    if batch_size < 1:
        raise InvalidInputError("--batch-size must be at least 1")

    resources = cluster_resources()
    gpus = resources.gpus >= 1 if use_gpus is None else use_gpus
    if gpus:
        pool = num_actors or max(1, int(resources.gpus))
        remote_args: dict[str, Any] = {"num_gpus": 1, "num_cpus": 1}
        device, threads = "cuda", None
    else:
        # At least two actors where there are two CPUs: two single-threaded processes embed
        # ~10% faster than one with two threads (decoding and the forward pass overlap), and
        # beyond four threads an actor gains little.
        per_actor = cpus_per_actor or max(1.0, min(4.0, resources.cpus // 2))
        pool = num_actors or max(1, int(resources.cpus // per_actor))
        remote_args = {"num_cpus": per_actor}
        device, threads = "cpu", max(1, int(per_actor))
    pool = min(pool, max(1, -(-len(todo) // batch_size)))

    _quiet_ray_data(ray)
    # One block per batch: each actor call then yields one output block, which reaches the
    # driver (and the cache) as soon as it is done.
    dataset = ray.data.from_arrow_refs(_ship_blocks(ray, todo, sources, batch_size))
    embedded = dataset.map_batches(
        ClipEmbedActor,
        fn_constructor_kwargs={
            "model": model,
            "device": device,
            "batch_size": batch_size,
            "torch_threads": threads,
        },
        batch_size=batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=pool),
        **remote_args,
    )
    done = 0
    for out in embedded.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=2):
        hashes = [str(h) for h in out["hash"]]
        put_embeddings(engine, model.encoder_key, hashes, np.asarray(out["embedding"]))
        done += len(hashes)
        if progress is not None:
            progress(done, len(todo))
    return EmbedReport(done, cached, model.encoder_key, time.perf_counter() - start)


def _ship_blocks(
    ray: Any, todo: Sequence[str], sources: dict[str, FrameBytes], rows: int
) -> list[Any]:
    """Read frames' bytes in the driver and put them in the object store, one block at a time.

    Only object refs stay in driver memory; the object store spills to disk past its size.
    """
    import pyarrow as pa

    refs = []
    for begin in range(0, len(todo), rows):
        part = list(todo[begin : begin + rows])
        table = pa.table(
            {
                "hash": pa.array(part, pa.string()),
                "image": pa.array([_read(sources[h]) for h in part], pa.binary()),
            }
        )
        refs.append(ray.put(table))
    return refs


def _quiet_ray_data(ray: Any) -> None:
    """No Ray Data progress bars or execution banners: the caller reports progress."""
    import logging

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)


def _read(source: FrameBytes) -> bytes:
    return source() if callable(source) else source


def _load(model: EmbedModel, device: str | None) -> Any:
    from vlmrm_core.clip.models import load_model

    return load_model(
        model.architecture, model.pretrained, device=device, precision=model.precision
    )


def _check_identity(clip: Any, model: EmbedModel) -> None:
    if clip.identity != model.identity:
        raise InvalidInputError(
            f"the loaded model is {clip.identity}, expected {model.identity}: the checkpoint "
            "differs between machines; give every node the same file"
        )


def iter_stored_items(engine: Any, dataset: str) -> Iterator[tuple[str, FrameBytes]]:
    """``(hash, bytes_reader)`` for every distinct frame of a stored dataset."""
    from vlmrm_core.store import dataset_frames

    seen: set[str] = set()
    for info in dataset_frames(engine, dataset):
        if info.hash not in seen:
            seen.add(info.hash)
            yield info.hash, stored_frame_bytes(info.hash)
