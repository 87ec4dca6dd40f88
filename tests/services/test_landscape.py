"""The Prompt Lab's library: dataset embedding through the cache, x axes, α curves, top-k."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import frame_info, unit_rows
from vlmrm_core.clip.embedding import PromptError, embedding_dim, encode_texts
from vlmrm_core.frames import FrameRecord
from vlmrm_core.reward import math as rewards
from vlmrm_core.reward.model import score_embeddings
from vlmrm_core.reward.spec import RewardSpec
from vlmrm_core.services import landscape
from vlmrm_core.store import ingest_frames, init_db
from vlmrm_core.store.embedding_cache import EmbeddingCache

GOAL = "pole vertically upright on top of the cart"
BASELINE = "pole and cart"


def test_embed_dataset_fills_the_cache_and_reuses_it(cartpole_db, tiny_clip, monkeypatch):
    first = landscape.embed_dataset(cartpole_db, tiny_clip, "cp9")
    assert len(first) == 9 and first.embeddings.shape == (9, first.embeddings.shape[1])
    np.testing.assert_allclose(np.linalg.norm(first.embeddings, axis=1), 1.0, rtol=1e-5)
    cached = EmbeddingCache.for_model(cartpole_db, tiny_clip).get_many(
        [f.hash for f in first.frames]
    )
    assert len(cached) == 9

    def no_reads(*args: object, **kwargs: object) -> np.ndarray:
        raise AssertionError("a cached frame's image was read")

    monkeypatch.setattr(landscape, "load_pixels", no_reads)
    seen: list[tuple[int, int | None]] = []
    second = landscape.embed_dataset(
        cartpole_db, tiny_clip, "cp9", progress=lambda d, t, m: seen.append((d, t))
    )
    np.testing.assert_array_equal(first.embeddings, second.embeddings)
    assert seen[-1] == (9, 9)
    assert second.encoder_key == f"{tiny_clip.identity}|squash"


def test_sweep_axis_is_the_swept_parameter(cartpole_db, tiny_clip):
    embedded = landscape.embed_dataset(cartpole_db, tiny_clip, "cp9")
    assert landscape.available_axes(embedded.frames) == ["parameter", "rank"]
    points, x_title = landscape.landscape_points(embedded.frames, "parameter")
    assert x_title == "pole_angle"
    assert list(points["x"]) == sorted(f.param_value for f in embedded.frames)
    assert points["x"].iloc[0] == pytest.approx(-np.pi / 2)
    assert set(points["group"]) == {"pole_angle"}
    with pytest.raises(ValueError, match="no step"):
        landscape.landscape_points(embedded.frames, "step")


def test_rollout_axis_is_the_step_with_one_group_per_episode():
    frames = [frame_info(i, episode=i % 2, step=i // 2, source="rollout") for i in range(6)]
    assert landscape.available_axes(frames) == ["step", "rank"]
    points, x_title = landscape.landscape_points(frames, "step")
    assert x_title == "step"
    assert list(points["group"]) == ["episode 0"] * 3 + ["episode 1"] * 3
    assert list(points["x"]) == [0, 1, 2, 0, 1, 2]
    assert list(points["frame"]) == [0, 2, 4, 1, 3, 5]


def test_upload_axis_is_the_rank_by_reward():
    frames = [frame_info(i) for i in range(4)]
    assert landscape.available_axes(frames) == ["rank"]
    values = np.array([0.1, 0.9, 0.5, 0.7])
    points, x_title = landscape.landscape_points(frames, "rank", order_by=values)
    assert "rank" in x_title
    assert list(points["frame"]) == [1, 3, 2, 0]  # highest reward first
    assert list(points["x"]) == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="rank"):
        landscape.landscape_points(frames, "rank")


def test_alpha_curves_equal_the_regularized_reward_at_each_alpha(tiny_clip):
    x = unit_rows(20, embedding_dim(tiny_clip))
    spec = RewardSpec((GOAL,), (BASELINE,), alpha=0.5)
    alphas = [0.0, 0.25, 0.5, 0.75, 1.0]
    curves = landscape.alpha_curves(tiny_clip, x, spec, alphas)
    assert list(curves) == alphas
    goal = rewards.mean_embedding(encode_texts(tiny_clip, [GOAL]))
    baseline = rewards.mean_embedding(encode_texts(tiny_clip, [BASELINE]))
    for alpha in alphas:
        expected = rewards.regularized_reward(x, goal, baseline, alpha)
        np.testing.assert_allclose(curves[alpha], expected, rtol=1e-6)
    # The spec's own α matches the standard scoring path.
    np.testing.assert_allclose(curves[0.5], score_embeddings(tiny_clip, x, spec).rewards, rtol=1e-6)


def test_alpha_curves_refuse_what_they_cannot_draw(tiny_clip):
    x = unit_rows(3, embedding_dim(tiny_clip))
    with pytest.raises(PromptError, match="baseline"):
        landscape.alpha_curves(tiny_clip, x, RewardSpec((GOAL,)), [0.0, 0.5])
    contrastive = RewardSpec((GOAL,), kind="contrastive", negatives=("a cart",))
    with pytest.raises(ValueError, match="regularized"):
        landscape.alpha_curves(tiny_clip, x, contrastive, [0.0])
    only_zero = landscape.alpha_curves(tiny_clip, x, RewardSpec((GOAL,)), [0.0, 0.0])
    assert list(only_zero) == [0.0]


def test_top_k_and_bottom_k_order():
    values = np.array([0.3, 0.9, 0.1, 0.9, 0.5, 0.1])
    assert list(landscape.top_k(values, 3)) == [1, 3, 4]  # ties keep index order
    assert list(landscape.bottom_k(values, 3)) == [2, 5, 0]
    assert list(landscape.top_k(values, 100)) == [1, 3, 4, 0, 2, 5]
    assert len(landscape.top_k(values, 0)) == 0


def test_reward_agreement():
    a = np.array([0.1, 0.4, 0.2, 0.8])
    same = landscape.reward_agreement(a, 3 * a + 1)
    assert same.pearson == pytest.approx(1.0) and same.spearman == pytest.approx(1.0)
    opposite = landscape.reward_agreement(a, -a)
    assert opposite.pearson == pytest.approx(-1.0)
    monotone = landscape.reward_agreement(a, np.exp(10 * a))
    assert monotone.spearman == pytest.approx(1.0) and monotone.pearson < 1.0
    constant = landscape.reward_agreement(a, np.ones(4))
    assert constant.pearson is None and constant.spearman is None
    # frames where a reward is not finite are left out of both correlations
    gappy = landscape.reward_agreement(np.array([0.1, np.nan, 0.4, 0.2]), np.array([1, 9, 3, 2.0]))
    assert gappy.pearson == pytest.approx(np.corrcoef([0.1, 0.4, 0.2], [1, 3, 2.0])[0, 1])
    assert gappy.spearman == pytest.approx(1.0)
    single = landscape.reward_agreement(np.array([0.5]), np.array([0.7]))
    assert single.pearson is None and single.spearman is None


def test_parse_prompts():
    assert landscape.parse_prompts("  a \n\n b\n   \n") == ["a", "b"]
    assert landscape.parse_prompts("") == [] and landscape.parse_prompts(None) == []


def test_score_reports_long_prompts_every_time(tiny_clip):
    x = unit_rows(4, embedding_dim(tiny_clip))
    long_prompt = "a very long description of the pole " * 20
    spec = RewardSpec((long_prompt,))
    with pytest.warns(UserWarning):
        _, first = landscape.score(tiny_clip, x, spec)
    _, again = landscape.score(tiny_clip, x, spec)  # text embedding now cached
    assert len(first) == 1 and "truncated" in first[0]
    assert again == first
    assert landscape.score(tiny_clip, x, RewardSpec((GOAL,)))[1] == []


def test_reward_values_of_the_contrastive_kind_are_probabilities(tiny_clip):
    x = unit_rows(5, embedding_dim(tiny_clip))
    spec = RewardSpec((GOAL,), kind="contrastive", negatives=("a cart",), beta=0.5)
    scores, _ = landscape.score(tiny_clip, x, spec)
    values = landscape.reward_values(scores)
    assert scores.probability is not None
    np.testing.assert_allclose(values, scores.probability)
    assert ((values > 0) & (values < 1)).all()


def test_embed_hashes_keeps_order_and_repeats(data_dir, tiny_clip):
    engine = init_db()
    pixels = [
        np.random.default_rng(i).integers(0, 256, (20, 30, 3), dtype=np.uint8) for i in range(3)
    ]
    ingest_frames(
        engine, "up", (FrameRecord(p, "upload", name=f"{i}.png") for i, p in enumerate(pixels))
    )
    frames = landscape.embed_dataset(engine, tiny_clip, "up").frames
    hashes = [frames[2].hash, frames[0].hash, frames[2].hash]
    x = landscape.embed_hashes(engine, tiny_clip, hashes)
    assert x.shape[0] == 3
    np.testing.assert_array_equal(x[0], x[2])
    assert not np.allclose(x[0], x[1])
