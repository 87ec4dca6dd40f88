"""The Evaluate page under Streamlit's AppTest, with labels created through the store API."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.ui import RANDOM_LABEL
from vlmrm_core.evaluation import labelled_frames, sweep_spec
from vlmrm_core.landscape import embed_hashes
from vlmrm_core.metrics import evaluate_epic
from vlmrm_core.reward_model import RewardSpec, score_embeddings
from vlmrm_core.store import (
    PromptSetSpec,
    add_label,
    dataset_frames,
    get_prompt_set,
    ingest_frames,
    init_db,
    list_prompt_sets,
    save_prompt_set,
)

PAGE = Path(__file__).resolve().parents[2] / "app" / "views" / "evaluate.py"
TINY = "ViT-S-32-alt"
GOAL = "pole vertically upright on top of the cart"
BASELINE = "pole and cart"


@pytest.fixture
def db(data_dir: Path):
    """A 9-point CartPole sweep, labelled success near upright by two labelers, and the paper's
    prompt set."""
    from vlmrm_core.sources.sweeps import cartpole_sweep

    engine = init_db()
    ingest_frames(engine, "cp9", cartpole_sweep(points=9), kind="sweep")
    for frame in dataset_frames(engine, "cp9"):
        upright = abs(frame.param_value) < 0.5
        add_label(engine, "cp9", frame.hash, "ann", float(upright))
        # bob disagrees at the edge of the upright zone: a graded consensus there
        add_label(engine, "cp9", frame.hash, "bob", float(abs(frame.param_value) < 0.8))
    save_prompt_set(
        engine,
        PromptSetSpec(
            name="paper: cartpole",
            goal_prompts=[GOAL],
            baseline_prompts=[BASELINE],
            model_name=TINY,
            pretrained="",
            alpha=0.5,
        ),
    )
    return engine


def _open() -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=120)
    at.session_state["eval-model"] = RANDOM_LABEL
    at.session_state["eval-arch"] = TINY
    at.run()
    at.selectbox(key="eval-model").select(RANDOM_LABEL).run()
    assert not at.exception
    return at


def _direct_epic(db, tiny_clip, spec: RewardSpec) -> float:
    labelled = labelled_frames(db, "cp9")
    x = embed_hashes(db, tiny_clip, labelled.hashes)
    rewards = score_embeddings(tiny_clip, x, spec).rewards
    return evaluate_epic(rewards, labelled.labels, n_boot=0).epic_distance


def test_epic_metric_equals_a_direct_computation(db, tiny_clip):
    at = _open()
    assert any("Untrained weights" in w.value for w in at.warning)
    assert not at.error
    metrics = {m.label: m.value for m in at.metric}
    expected = _direct_epic(db, tiny_clip, RewardSpec((GOAL,), (BASELINE,), 0.5))
    assert metrics["EPIC distance"] == f"{expected:.3f}"
    assert metrics["Labelled frames"] == "9"
    table = at.dataframe[0].value
    assert table.loc[0, "prompt set"] == "paper: cartpole"
    assert table.loc[0, "EPIC distance"] == pytest.approx(expected)
    assert table.loc[0, "EPIC 95% CI low"] <= expected <= table.loc[0, "EPIC 95% CI high"]
    assert 0.0 <= table.loc[0, "ROC AUC"] <= 1.0

    # A second model for the scaling plot: one more row, no errors.
    at.multiselect(key="eval-extra-models").set_value([f"random init · {TINY}"]).run()
    assert not at.exception


def test_prompt_sweep_ranks_and_saves_the_best(db, tiny_clip):
    at = _open()
    at.text_area(key="eval-sweep-goals").input(f"{GOAL}\na pole standing up\na fallen pole").run()
    at.text_area(key="eval-sweep-baselines").input(f"{BASELINE}\na cart").run()
    at.text_input(key="eval-sweep-alphas").input("0, 0.5, 1").run()
    at.button(key="eval-sweep-run").click().run()
    assert not at.exception and not at.error
    table = at.dataframe[1].value
    assert len(table) == 3 + 3 * 2 * 2
    best = table.iloc[0]
    expected = _direct_epic(db, tiny_clip, sweep_spec(best))
    metrics = {m.label: m.value for m in at.metric}
    # The page encodes the candidate prompts in one batch, the direct path one at a time: the
    # text embeddings may differ in the last float32 bits, hence a tolerance.
    assert float(metrics["Best sweep EPIC distance"]) == pytest.approx(expected, abs=6e-4)
    assert best["epic"] == pytest.approx(expected, abs=1e-4)

    at.text_input(key="eval-sweep-save-name").input("sweep winner").run()
    at.button(key="eval-sweep-save").click().run()
    assert not at.exception
    stored = get_prompt_set(db, "sweep winner")
    assert stored.goal_prompts == [best["goal"]] and stored.alpha == best["alpha"]
    assert stored.model_name == TINY and stored.pretrained == ""


def test_sweep_input_errors_are_messages(db):
    at = _open()
    at.button(key="eval-sweep-run").click().run()
    assert not at.exception
    assert any("goal prompt" in e.value for e in at.error)
    at.text_area(key="eval-sweep-goals").input(GOAL).run()
    at.text_input(key="eval-sweep-alphas").input("0, 2").run()
    at.button(key="eval-sweep-run").click().run()
    assert not at.exception
    assert any("[0, 1]" in e.value for e in at.error)


def test_constant_labels_are_a_clear_message(data_dir):
    from vlmrm_core.sources.sweeps import cartpole_sweep

    engine = init_db()
    ingest_frames(engine, "cp3", cartpole_sweep(points=3), kind="sweep")
    for frame in dataset_frames(engine, "cp3"):
        add_label(engine, "cp3", frame.hash, "ann", 1.0)
    at = _open()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any("label at least one success and one failure" in e for e in errors)
    assert not any("nan" in m.value.lower() for m in at.metric)


def test_no_labels_is_a_message(data_dir):
    init_db()
    at = AppTest.from_file(str(PAGE), default_timeout=60).run()
    assert not at.exception
    assert any("No labelled frames yet" in i.value for i in at.info)
    assert list_prompt_sets(init_db()) == []


def test_prompt_sets_with_the_same_prompts_keep_their_names(db):
    save_prompt_set(
        db,
        PromptSetSpec(
            name="copy of paper",
            goal_prompts=[GOAL],
            baseline_prompts=[BASELINE],
            model_name=TINY,
            pretrained="",
            alpha=0.5,
        ),
    )
    at = _open()
    at.multiselect(key="eval-prompt-sets").set_value(["copy of paper", "paper: cartpole"]).run()
    assert not at.exception
    table = at.dataframe[0].value
    assert sorted(table["prompt set"]) == ["copy of paper", "paper: cartpole"]
    assert table["EPIC distance"].nunique() == 1
