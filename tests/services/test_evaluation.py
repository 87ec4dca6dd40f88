"""Evaluation against labels: metrics, reward–label mismatches and the vectorised prompt search."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import unit_rows
from vlmrm_core.clip.embedding import PromptError, embedding_dim, encode_texts
from vlmrm_core.metrics import ConstantRewardError, evaluate_epic, roc_auc
from vlmrm_core.reward.model import score_embeddings
from vlmrm_core.reward.spec import ModelRef, RewardSpec
from vlmrm_core.services import evaluation
from vlmrm_core.services.landscape import embed_hashes
from vlmrm_core.store import (
    PromptSet,
    add_label,
    dataset_frames,
    get_prompt_set,
    ingest_frames,
    init_db,
    save_prompt_set,
)

GOALS = [
    "pole vertically upright on top of the cart",
    "a pole standing straight up",
    "a fallen pole",
    "a cart on a track",
]
BASELINES = ["pole and cart", "a cart"]


@pytest.fixture
def sweep_data(tiny_clip):
    """Random unit 'image' embeddings with labels that follow one of the goal prompts."""
    x = unit_rows(60, embedding_dim(tiny_clip), seed=3)
    # Tilt the frames towards or away from prompt 2 so that some prompts predict the labels.
    direction = encode_texts(tiny_clip, [GOALS[2]])[0]
    signs = np.where(np.arange(60) % 3 == 0, 1.0, -1.0)
    x = x + 0.2 * signs[:, None] * direction[None, :]
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    labels = (signs > 0).astype(np.float64)
    labels[:5] = 0.5  # some graded labels: EPIC takes them as they are
    return x, labels


def test_labelled_frames_are_the_consensus_of_current_labels(data_dir: Path):
    from vlmrm_core.sources.state_sweeps import cartpole_sweep

    engine = init_db()
    ingest_frames(engine, "cp5", cartpole_sweep(points=5), kind="sweep")
    frames = dataset_frames(engine, "cp5")
    add_label(engine, "cp5", frames[0].hash, "ann", 1.0)
    add_label(engine, "cp5", frames[0].hash, "bob", 0.0)
    add_label(engine, "cp5", frames[1].hash, "ann", 0.0)
    add_label(engine, "cp5", frames[1].hash, "ann", 1.0)  # supersedes ann's 0
    labelled = evaluation.labelled_frames(engine, "cp5")
    assert labelled.n == 2 and list(labelled.hashes) == sorted([frames[0].hash, frames[1].hash])
    by_hash = dict(zip(labelled.hashes, labelled.labels, strict=True))
    assert by_hash[frames[0].hash] == 0.5 and by_hash[frames[1].hash] == 1.0
    assert labelled.n_success == 2  # 0.5 counts as a success


def test_constant_labels_give_a_clear_error_never_nan():
    with pytest.raises(ConstantRewardError, match="label at least one success and one failure"):
        evaluation.check_labels(np.ones(5))
    with pytest.raises(ConstantRewardError, match="failures"):
        evaluation.reward_metrics(np.arange(4.0), np.zeros(4))
    with pytest.raises(ValueError, match="at least two"):
        evaluation.check_labels(np.ones(1))


def test_constant_rewards_are_a_note_not_nan():
    m = evaluation.reward_metrics(np.ones(6), np.array([0, 1, 0, 1, 1, 0.0]), n_boot=50)
    assert m.epic_distance is None and "rewards are all the same" in m.note
    assert m.roc_auc == pytest.approx(0.5)


def test_metrics_of_a_perfect_reward():
    labels = np.array([0, 0, 1, 1, 0, 1.0])
    m = evaluation.reward_metrics(labels * 2 + 3, labels, n_boot=100)
    assert m.epic_distance == pytest.approx(0.0, abs=1e-7)
    assert m.average_precision == pytest.approx(1.0) and m.roc_auc == pytest.approx(1.0)
    assert m.ci_low is not None and m.ci_high is not None and m.n == 6


def test_evaluate_reward_equals_a_direct_epic_computation(tiny_clip, sweep_data):
    x, labels = sweep_data
    spec = RewardSpec((GOALS[0],), (BASELINES[0],), alpha=0.5)
    result = evaluation.evaluate_reward(tiny_clip, x, labels, spec, prompt_set="p", n_boot=200)
    direct = evaluate_epic(score_embeddings(tiny_clip, x, spec).rewards, labels, n_boot=200)
    assert result.metrics.epic_distance == pytest.approx(direct.epic_distance, abs=1e-12)
    assert result.metrics.ci_low == pytest.approx(direct.ci_low)
    assert result.n_params == evaluation.model_parameter_count(tiny_clip) > 1_000_000
    table = evaluation.evaluation_table([result])
    assert list(table.columns) == list(evaluation.EVALUATION_COLUMNS)
    assert table.loc[0, "epic"] == pytest.approx(direct.epic_distance)
    assert table.loc[0, "n_labelled"] == 60


def test_best_evaluation_and_pr_curves(tiny_clip, sweep_data):
    x, labels = sweep_data
    evals = [
        evaluation.evaluate_reward(tiny_clip, x, labels, RewardSpec((g,)), prompt_set=g, n_boot=0)
        for g in GOALS[:3]
    ]
    best = evaluation.best_evaluation(evals)
    assert best is not None
    assert best.metrics.epic_distance == min(e.metrics.epic_distance for e in evals)
    curves = evaluation.pr_curves(evals, evaluation.binarize(labels))
    assert len(curves) == 3 and curves[0].name == f"{GOALS[0]} · {tiny_clip.identity}"


def test_reward_label_mismatches_are_shares_of_one_minus_rho():
    rng = np.random.default_rng(0)
    labels = (rng.random(40) > 0.5).astype(float)
    rewards = labels + rng.normal(0, 0.7, 40)
    worst = evaluation.reward_label_mismatches(rewards, labels, k=40)
    rho = np.corrcoef(rewards, labels)[0, 1]
    assert worst["share"].sum() == pytest.approx(1 - rho)
    assert list(worst["share"]) == sorted(worst["share"], reverse=True)
    top = int(worst["frame"].iloc[0])
    assert worst["reward"].iloc[0] == rewards[top] and worst["label"].iloc[0] == labels[top]
    with pytest.raises(ConstantRewardError):
        evaluation.reward_label_mismatches(np.ones(40), labels)


@pytest.mark.slow
def test_prompt_search_ranks_every_combination_by_epic(tiny_clip, sweep_data):
    x, labels = sweep_data
    alphas = [0.0, 0.5, 1.0]
    progress: list[tuple[int, int | None]] = []
    result = evaluation.prompt_search(
        tiny_clip,
        x,
        labels,
        GOALS,
        BASELINES,
        alphas,
        detail_top=0,
        progress=lambda d, t, m: progress.append((d, t)),
        batch_size=4,
    )
    table = result.table
    # α = 0 ignores the baseline: one row per goal; α > 0: every goal × baseline.
    assert len(table) == len(GOALS) + len(GOALS) * len(BASELINES) * 2
    assert result.n_prompts == 6 and progress[-1] == (6, 6)
    assert list(table["rank"]) == list(range(1, len(table) + 1))
    assert list(table["epic"]) == sorted(table["epic"])
    assert table["epic"].notna().all()
    binary = evaluation.binarize(labels)
    for _, row in table.iterrows():
        rewards = score_embeddings(tiny_clip, x, evaluation.search_row_spec(row)).rewards
        direct = evaluate_epic(rewards, labels, n_boot=0).epic_distance
        assert row["epic"] == pytest.approx(direct, abs=1e-5)
        assert row["roc_auc"] == pytest.approx(roc_auc(rewards, binary), abs=1e-9)


def test_prompt_search_best_row_is_the_direct_computation(tiny_clip, sweep_data):
    x, labels = sweep_data
    result = evaluation.prompt_search(
        tiny_clip, x, labels, GOALS, BASELINES, [0.0, 0.5, 1.0], detail_top=2, n_boot=200
    )
    best = result.best()
    assert best is not None
    spec = evaluation.search_row_spec(best)
    direct = evaluate_epic(score_embeddings(tiny_clip, x, spec).rewards, labels, n_boot=200)
    assert best["epic"] == pytest.approx(direct.epic_distance, abs=1e-12)
    assert best["ci_low"] == pytest.approx(direct.ci_low)
    assert best["ci_high"] == pytest.approx(direct.ci_high)
    assert not np.isnan(best["average_precision"])
    assert result.table["ci_low"].iloc[2:].isna().all()  # only the top rows are detailed


def test_prompt_search_without_baselines_scores_alpha_zero_only(tiny_clip, sweep_data):
    x, labels = sweep_data
    result = evaluation.prompt_search(tiny_clip, x, labels, GOALS[:2], [], [0.5, 1.0], detail_top=0)
    assert list(result.table["alpha"]) == [0.0, 0.0]
    assert any("baseline" in w for w in result.warnings)


def test_prompt_search_same_goal_and_baseline_is_ranked_last(tiny_clip, sweep_data):
    x, labels = sweep_data
    result = evaluation.prompt_search(
        tiny_clip, x, labels, [GOALS[0], GOALS[1]], [GOALS[0]], [1.0], detail_top=0
    )
    last = result.table.iloc[-1]
    assert last["goal"] == last["baseline"] == GOALS[0]
    assert np.isnan(last["epic"]) and "same prompt" in last["note"]
    assert not np.isnan(result.table["epic"].iloc[0])


def test_prompt_search_rejects_bad_input(tiny_clip, sweep_data):
    x, labels = sweep_data
    with pytest.raises(PromptError):
        evaluation.prompt_search(tiny_clip, x, labels, [], BASELINES, [0.0])
    with pytest.raises(PromptError, match="empty"):
        evaluation.prompt_search(tiny_clip, x, labels, ["ok", " "], BASELINES, [0.0])
    with pytest.raises(ConstantRewardError):
        evaluation.prompt_search(tiny_clip, x, np.ones(len(x)), GOALS, BASELINES, [0.0])


def test_parse_alphas():
    assert evaluation.parse_alphas("0, 0.25;0.5 1 0.5") == [0.0, 0.25, 0.5, 1.0]
    with pytest.raises(ValueError, match="not a number"):
        evaluation.parse_alphas("0, half")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        evaluation.parse_alphas("1.5")
    with pytest.raises(ValueError, match="at least one"):
        evaluation.parse_alphas(" ")


def test_search_row_saves_as_a_prompt_set(data_dir, tiny_clip, sweep_data):
    x, labels = sweep_data
    result = evaluation.prompt_search(tiny_clip, x, labels, GOALS, BASELINES, [0.5], detail_top=0)
    best = result.best()
    engine = init_db()
    reward = evaluation.search_row_spec(best)
    save_prompt_set(engine, PromptSet("best", ModelRef("ViT-S-32-alt"), reward))
    stored = get_prompt_set(engine, "best").reward
    assert stored.goal_prompts == (best["goal"],) and stored.baseline_prompts == (best["baseline"],)
    assert stored.alpha == 0.5 and stored.kind == "regularized"
    # The saved reward scores the frames as the prompt search did.
    alone = evaluation.evaluate_reward(tiny_clip, x, labels, stored, prompt_set="best", n_boot=0)
    assert alone.metrics.epic_distance == pytest.approx(best["epic"], abs=1e-6)


@pytest.mark.slow
def test_labelled_frames_embed_through_the_cache(data_dir, tiny_clip):
    from vlmrm_core.sources.state_sweeps import cartpole_sweep

    engine = init_db()
    ingest_frames(engine, "cp5", cartpole_sweep(points=5), kind="sweep")
    frames = dataset_frames(engine, "cp5")
    for i, f in enumerate(frames):
        add_label(engine, "cp5", f.hash, "ann", float(i == 2))
    labelled = evaluation.labelled_frames(engine, "cp5")
    x = embed_hashes(engine, tiny_clip, labelled.hashes)
    result = evaluation.prompt_search(
        tiny_clip, x, labelled.labels, GOALS[:2], BASELINES[:1], [0.0, 1.0], n_boot=100
    )
    assert len(result.table) == 4 and result.n_frames == 5


def test_prompt_search_gives_the_same_table_in_small_chunks(tiny_clip, sweep_data, monkeypatch):
    x, labels = sweep_data
    whole = evaluation.prompt_search(
        tiny_clip, x, labels, GOALS, BASELINES, [0.0, 0.5, 1.0], detail_top=0
    )
    monkeypatch.setattr(evaluation, "_CHUNK_ELEMENTS", 3 * len(x))  # 3 combinations at a time
    chunked = evaluation.prompt_search(
        tiny_clip, x, labels, GOALS, BASELINES, [0.0, 0.5, 1.0], detail_top=0
    )
    keys = ["goal", "baseline", "alpha"]
    assert chunked.table[keys].equals(whole.table[keys])
    np.testing.assert_allclose(chunked.table["epic"], whole.table["epic"], rtol=1e-12)
    np.testing.assert_allclose(chunked.table["roc_auc"], whole.table["roc_auc"], rtol=1e-12)


def test_vectorised_prompt_search_equals_scoring_each_combination_alone(tiny_clip, sweep_data):
    """Every row of the grid equals the standard path on its own spec: ``evaluate_reward``
    (score_embeddings → EPIC, ROC AUC), including the undefined combination."""
    x, labels = sweep_data
    goals, baselines = [*GOALS[:3], BASELINES[0]], BASELINES
    result = evaluation.prompt_search(
        tiny_clip, x, labels, goals, baselines, [0.0, 0.4, 1.0], detail_top=0
    )
    table = result.table
    assert len(table) == 4 + 4 * 2 * 2
    combos = set()
    for _, row in table.iterrows():
        combos.add((row["goal"], row["baseline"], row["alpha"]))
        if row["goal"] == row["baseline"]:
            assert np.isnan(row["epic"]) and np.isnan(row["roc_auc"])
            with pytest.raises(ValueError, match="same embedding"):
                score_embeddings(tiny_clip, x, evaluation.search_row_spec(row))
            continue
        alone = evaluation.evaluate_reward(
            tiny_clip, x, labels, evaluation.search_row_spec(row), prompt_set="alone", n_boot=0
        ).metrics
        assert row["epic"] == pytest.approx(alone.epic_distance, abs=1e-6)
        assert row["roc_auc"] == pytest.approx(alone.roc_auc, abs=1e-9)
    assert len(combos) == len(table)  # no combination twice


def test_prompt_search_adds_each_top_rows_voc_over_the_episodes(tiny_clip, sweep_data):
    from vlmrm_core.services.episodes import dataset_voc
    from vlmrm_core.store import FrameInfo

    x, labels = sweep_data
    # 60 frames: 6 episodes of 8 steps, then 12 loose frames (uploads: no episode, no VOC).
    frames = [
        FrameInfo(
            f"h{i}", i, None, "rollout", None, i // 8 if i < 48 else None,
            i % 8 if i < 48 else None, None, None, None, 4, 4,
        )
        for i in range(60)
    ]  # fmt: skip
    by_hash = {f"h{i}": float(i % 8 == 7 and i // 8 < 4) for i in range(48)}  # 4 successes
    episodes = evaluation.SearchEpisodes(frames, x, labels=by_hash, top=7)
    result = evaluation.prompt_search(
        tiny_clip, x, labels, GOALS, BASELINES, [0.0, 0.5], detail_top=1, n_boot=50,
        episodes=episodes,
    )  # fmt: skip
    table = result.table
    plain = evaluation.prompt_search(
        tiny_clip, x, labels, GOALS, BASELINES, [0.0, 0.5], detail_top=1, n_boot=50
    ).table
    assert table["goal"].tolist() == plain["goal"].tolist()  # ranked by EPIC all the same
    assert table["voc"].iloc[:7].notna().all() and table["voc"].iloc[7:].isna().all()
    for i in range(7):
        row = table.iloc[i]
        rewards = score_embeddings(tiny_clip, x, evaluation.search_row_spec(row)).rewards
        direct = dataset_voc(frames, rewards, labels=by_hash, n_boot=50)
        assert direct.n_episodes == 4 == row["voc_episodes"]
        assert row["voc"] == pytest.approx(direct.voc, abs=1e-9)
        assert row["voc_ci_low"] == pytest.approx(direct.ci_low, abs=1e-9)
        assert row["voc_ci_high"] == pytest.approx(direct.ci_high, abs=1e-9)
    every = evaluation.prompt_search(
        tiny_clip, x, labels, GOALS, BASELINES, [0.0], detail_top=0, n_boot=50,
        episodes=evaluation.SearchEpisodes(frames, x, demonstrations=True),
    )  # fmt: skip
    assert (every.table["voc_episodes"] == 6).all()
    with pytest.raises(evaluation.InvalidInputError, match="embeddings for 60 frames"):
        evaluation.prompt_search(
            tiny_clip, x, labels, GOALS, [], [0.0],
            episodes=evaluation.SearchEpisodes(frames, x[:5], demonstrations=True),
        )  # fmt: skip
