"""JudgeReward against a plain transformers forward pass, on two architectures."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from vlmrm_core.errors import VlmrmError
from vlmrm_core.judge import AnswerError, FeatureCache, JudgeReward, score_frames
from vlmrm_core.judge import features as judge_features

QUESTION = "Is the pole balanced upright on the cart ? Answer yes or no ."
OTHER_QUESTION = "Is the robot kneeling ? Answer yes or no ."


def frames(n: int = 5, seed: int = 0, shape: tuple[int, int] = (40, 60)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, *shape, 3), dtype=np.uint8)


@functools.cache
def plain_model(folder: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(folder)
    return processor, AutoModelForImageTextToText.from_pretrained(folder).eval()


def plain_log_probs(folder: Path, question: str, images: list[np.ndarray]) -> torch.Tensor:
    """The full-vocabulary log-softmax at the last prompt position, computed the textbook way:
    processor → model → logits (no code of ours)."""
    processor, model = plain_model(folder)
    content: list[dict[str, Any]] = [{"type": "image"} for _ in images]
    content.append({"type": "text", "text": question})
    text = processor.apply_chat_template(
        [{"role": "user", "content": content}], add_generation_prompt=True
    )
    inputs = processor(text=[text], images=[images], return_tensors="pt")
    with torch.no_grad():
        return torch.log_softmax(model(**inputs).logits[0, -1].double(), dim=-1)


def test_rewards_equal_a_plain_transformers_forward_pass(arch, judge_folders, loaded_judges):
    reward = JudgeReward(loaded_judges[arch], QUESTION)
    batch = frames()
    got = reward(batch)
    assert got.dtype == np.float32 and got.shape == (5,)
    yes, no = reward.tokens.positive, reward.tokens.negative
    for frame, value in zip(batch, got, strict=True):
        expected = plain_log_probs(judge_folders[arch], QUESTION, [frame])
        assert value == pytest.approx(float(expected[yes] - expected[no]), abs=1e-5)
    assert np.ptp(got) > 0  # different frames, different rewards: the images reach the model


def test_probability_mode_is_the_full_vocabulary_probability(arch, judge_folders, loaded_judges):
    reward = JudgeReward(loaded_judges[arch], QUESTION, mode="probability")
    frame = frames(1, seed=3)
    expected = plain_log_probs(judge_folders[arch], QUESTION, [frame[0]])
    assert reward(frame)[0] == pytest.approx(
        float(expected[reward.tokens.positive].exp()), abs=1e-6
    )


def test_a_question_edit_reuses_cached_vision_features_and_equals_a_full_pass(
    arch, judge_folders, loaded_judges, monkeypatch
):
    reward = JudgeReward(loaded_judges[arch], QUESTION)
    batch = frames(4, seed=1)
    reward(batch)
    assert len(reward.cache) == 4

    def vision_tower_must_not_run(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the vision tower ran although the features were cached")

    monkeypatch.setattr(judge_features, "compute_features", vision_tower_must_not_run)
    from vlmrm_core.judge import reward as judge_reward

    monkeypatch.setattr(judge_reward, "compute_features", vision_tower_must_not_run)
    edited = reward.with_question(OTHER_QUESTION)
    assert edited.cache is reward.cache
    got = edited(batch)
    yes, no = edited.tokens.positive, edited.tokens.negative
    for frame, value in zip(batch, got, strict=True):
        expected = plain_log_probs(judge_folders[arch], OTHER_QUESTION, [frame])
        assert value == pytest.approx(float(expected[yes] - expected[no]), abs=1e-5)


def test_cached_features_give_the_full_pass_logits(arch, judge_folders, loaded_judges):
    """All logits, not just two: the language model over cached image tokens is the full pass."""
    judge = loaded_judges[arch]
    reward = JudgeReward(judge, QUESTION)
    frame = frames(1, seed=7)[0]
    from vlmrm_core.frames import pixel_hash
    from vlmrm_core.judge.prompt import render_prompt

    feats = reward.features([frame], [pixel_hash(frame)])
    layout = judge_features.prompt_layout(
        judge, render_prompt(judge.processor, QUESTION, 1), [frame.shape[:2]]
    )
    got = judge_features.next_token_log_probs(judge, layout, [feats])[0].double().numpy()
    expected = plain_log_probs(judge_folders[arch], QUESTION, [frame]).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_episode_windows_show_the_last_k_frames(arch, judge_folders, loaded_judges):
    reward = JudgeReward(loaded_judges[arch], QUESTION, frames=3)
    episode = frames(6, seed=2)
    got = reward.score_episode(episode)
    assert got.shape == (6,) and got.dtype == np.float32 and np.isfinite(got).all()
    yes, no = reward.tokens.positive, reward.tokens.negative
    for t, window in ((0, [episode[0]]), (4, list(episode[2:5]))):
        expected = plain_log_probs(judge_folders[arch], QUESTION, window)
        assert got[t] == pytest.approx(float(expected[yes] - expected[no]), abs=1e-5)
    # reward() judges each frame alone, as the first window of an episode does
    assert reward(episode[:1])[0] == pytest.approx(got[0], abs=1e-6)
    assert reward.score_episode(episode[:0]).shape == (0,)


def test_frames_of_several_sizes_are_scored_in_input_order(loaded_judges):
    reward = JudgeReward(loaded_judges["qwen2_5_vl"], QUESTION, batch_size=2)
    small, large = frames(3, seed=4), frames(2, seed=5, shape=(64, 48))
    mixed = [small[0], large[0], small[1], large[1], small[2]]
    got = np.array([reward(frame)[0] for frame in mixed])
    np.testing.assert_allclose(
        np.concatenate([reward(small), reward(large)])[[0, 3, 1, 4, 2]], got, atol=1e-5
    )
    together = JudgeReward(loaded_judges["qwen2_5_vl"], QUESTION, batch_size=2)
    batched = [
        together.score_features([[f]])[0]
        for f in together.features(mixed, [str(i) for i in range(5)])
    ]
    np.testing.assert_allclose(batched, got, atol=1e-5)


def test_multi_token_unknown_and_duplicate_answers_are_refused(loaded_judges):
    qwen, idefics = loaded_judges["qwen2_5_vl"], loaded_judges["idefics3"]
    with pytest.raises(AnswerError, match="'absolutely' is [0-9]+ tokens.*one-token"):
        JudgeReward(qwen, QUESTION, ("absolutely", "no"))
    with pytest.raises(AnswerError, match="'Yes' is not in this model's vocabulary"):
        JudgeReward(idefics, QUESTION, ("Yes", "no"))
    with pytest.raises(AnswerError, match="same token"):
        JudgeReward(qwen, QUESTION, ("yes", "yes"))
    with pytest.raises(AnswerError, match="exactly two answers"):
        JudgeReward(qwen, QUESTION, ("yes",))
    with pytest.raises(AnswerError, match="question is empty"):
        JudgeReward(qwen, "   ")
    with pytest.raises(VlmrmError, match="unknown judge mode"):
        JudgeReward(qwen, QUESTION, mode="logits")


def test_the_answer_token_is_the_one_the_template_would_generate(loaded_judges):
    """SmolVLM's template writes ``Assistant: yes`` (a space before the answer), Qwen's puts the
    answer right after a newline: with a byte-level vocabulary the two are different tokens."""
    from tests.judge._tiny_judges import SMOLVLM_TEMPLATE
    from vlmrm_core.judge.prompt import answer_tokens

    qwen = loaded_judges["qwen2_5_vl"]
    bare = answer_tokens(qwen.processor, QUESTION, ("yes", "no"))
    assert (bare.positive_token, bare.negative_token) == ("yes", "no")
    original = qwen.processor.chat_template
    try:
        qwen.processor.chat_template = SMOLVLM_TEMPLATE.replace("<image>", "<|image_pad|>")
        spaced = answer_tokens(qwen.processor, QUESTION, ("yes", "no"))
    finally:
        qwen.processor.chat_template = original
    assert (spaced.positive_token, spaced.negative_token) == ("Ġyes", "Ġno")


def test_identity_and_description(loaded_judges):
    judge = loaded_judges["idefics3"]
    reward = JudgeReward(judge, QUESTION)
    assert reward.identity == JudgeReward(judge, QUESTION).identity
    variants = [
        reward.with_question(OTHER_QUESTION),
        reward.with_question(QUESTION, ("no", "yes")),
        reward.with_question(QUESTION, mode="probability"),
        reward.with_question(QUESTION, frames=2),
    ]
    identities = {reward.identity, *(v.identity for v in variants)}
    assert len(identities) == 5
    assert judge.identity in reward.identity and "fp32" in reward.identity
    assert reward.source == "judge"
    assert "\n" not in reward.description and QUESTION in reward.description
    assert reward.untrained and "rewards are meaningless" in reward.description


def test_to_dict_round_trip_gives_the_same_rewards(judge_folders, loaded_judges, tmp_path):
    import json
    import shutil

    reward = JudgeReward(loaded_judges["qwen2_5_vl"], QUESTION, frames=2, mode="probability")
    data = json.loads(json.dumps(reward.to_dict()))
    assert data["source"] == "judge" and data["judge"]["frames"] == 2
    again = JudgeReward.from_dict(data, device="cpu")
    assert again.identity == reward.identity
    batch = frames(3, seed=6)
    np.testing.assert_array_equal(again.score_episode(batch), reward.score_episode(batch))

    copy = tmp_path / judge_folders["qwen2_5_vl"].name  # a copied folder keeps its identity
    shutil.copytree(judge_folders["qwen2_5_vl"], copy)
    data["model"]["path"] = str(copy)
    assert JudgeReward.from_dict(data, device="cpu").identity == reward.identity
    (copy / "generation_config.json").write_text("{}")
    with pytest.raises(VlmrmError, match="changed since the reward was made"):
        JudgeReward.from_dict(data, device="cpu")
    with pytest.raises(VlmrmError, match="not a judge reward"):
        JudgeReward.from_dict({"source": "clip", "model": {}, "judge": {}})


def test_score_frames_reads_cached_frames_from_disk_without_loading_them(loaded_judges, tmp_path):
    judge = loaded_judges["idefics3"]
    batch = frames(4, seed=8)
    hashes = [f"frame{i}" for i in range(4)]
    first = JudgeReward(judge, QUESTION, cache=FeatureCache(directory=tmp_path / "features"))
    expected = first(batch)
    stored = score_frames(first, zip(hashes, batch, strict=True), total=4)
    np.testing.assert_allclose(stored, expected, atol=1e-6)

    def must_not_load() -> np.ndarray:
        raise AssertionError("a cached frame was loaded")

    fresh_process = FeatureCache(directory=tmp_path / "features")  # empty memory, same folder
    edited = JudgeReward(judge, OTHER_QUESTION, cache=fresh_process)
    calls: list[int] = []
    got = score_frames(
        edited,
        ((h, must_not_load) for h in hashes),
        progress=lambda done, total, message: calls.append(done),
    )
    np.testing.assert_allclose(got, edited(batch), atol=1e-6)
    assert calls == [4]
    assert score_frames(edited, []).shape == (0,)
