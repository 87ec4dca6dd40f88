import warnings

import numpy as np
import pytest

from vlmrm_core.clip.embedding import (
    PromptError,
    PromptTooLongWarning,
    embed_frames,
    encode_images,
    encode_texts,
)
from vlmrm_core.frames import pixel_hash
from vlmrm_core.store.embedding_cache import EmbeddingCache, encoder_key


def random_frames(n, h=96, w=128, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def test_image_embeddings_are_normalised_and_batch_invariant(tiny_clip):
    frames = random_frames(5)
    one_by_one = encode_images(tiny_clip, frames, batch_size=1)
    batched = encode_images(tiny_clip, frames, batch_size=4)
    assert batched.shape == (5, 256) and batched.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(one_by_one, batched, atol=1e-4)
    assert encode_images(tiny_clip, frames[:0]).shape == (0, 256)


def test_mixed_sizes_are_consumed_lazily_with_progress(tiny_clip):
    pulled = []

    def stream():
        for i, (h, w) in enumerate([(64, 64), (64, 64), (80, 120), (64, 64), (64, 64)]):
            pulled.append(i)
            yield random_frames(1, h, w, seed=i)[0]

    calls = []
    out = encode_images(
        tiny_clip, stream(), batch_size=2, total=5, progress=lambda d, t, m: calls.append((d, t))
    )
    assert out.shape == (5, 256)
    assert calls[-1] == (5, 5) and [d for d, _ in calls] == sorted(d for d, _ in calls)
    # same-shape frames are batched; a shape change starts a new batch: 2 + 1 + 2
    assert [d for d, _ in calls] == [2, 3, 5]


def test_text_embeddings_validation_cache_and_truncation(tiny_clip):
    a = encode_texts(tiny_clip, ["a pole upright", "a pole and a cart"])
    assert a.shape == (2, 256)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert "a pole upright" in tiny_clip.text_cache
    np.testing.assert_array_equal(encode_texts(tiny_clip, ["a pole upright"])[0], a[0])
    with pytest.raises(PromptError, match="prompt 2 is empty"):
        encode_texts(tiny_clip, ["fine", "   "])
    with pytest.raises(PromptError, match="no prompts"):
        encode_texts(tiny_clip, [])
    with pytest.warns(PromptTooLongWarning, match="truncated"):
        encode_texts(tiny_clip, ["word " * 100])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        encode_texts(tiny_clip, ["short and sweet"])


def test_cache_embeds_each_frame_once_ever(tiny_clip, data_dir):
    from vlmrm_core.store import dispose_engine, init_db

    frames = random_frames(6, seed=3)
    hashes = [pixel_hash(f) for f in frames]
    engine = init_db()
    cache = EmbeddingCache.for_model(engine, tiny_clip, "squash")
    assert cache.key == encoder_key(tiny_clip, "squash") == f"{tiny_clip.identity}|squash"
    first = embed_frames(tiny_clip, zip(hashes[:4], frames[:4], strict=True), cache=cache)

    def must_not_load():
        raise AssertionError("a cached frame was loaded again")

    # a restart: a new engine on the same database file
    dispose_engine()
    engine = init_db()
    cache = EmbeddingCache.for_model(engine, tiny_clip, "squash")
    loads = []

    def loader(i):
        def load():
            loads.append(i)
            return frames[i]

        return load

    items = [(h, must_not_load) for h in hashes[:4]] + [(hashes[i], loader(i)) for i in (4, 5)]
    again = embed_frames(tiny_clip, items, cache=cache, chunk_size=3)
    np.testing.assert_array_equal(again[:4], first)
    assert loads == [4, 5]
    np.testing.assert_allclose(again[4:], encode_images(tiny_clip, frames[4:]), atol=1e-5)
    # another aspect policy is another cache entry
    other = EmbeddingCache.for_model(engine, tiny_clip, "center-crop")
    assert other.get_many(hashes) == {}
