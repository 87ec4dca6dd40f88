"""The Evaluate page under Streamlit's AppTest, with labels created through the store API."""

from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.studio._pages import TINY, open_with_random_model, page_test
from vlmrm_core.metrics import evaluate_epic
from vlmrm_core.reward.model import score_embeddings
from vlmrm_core.reward.spec import ModelRef, RewardSpec
from vlmrm_core.services.evaluation import labelled_frames, search_row_spec
from vlmrm_core.services.landscape import embed_hashes
from vlmrm_core.store import (
    PromptSet,
    add_label,
    dataset_frames,
    get_prompt_set,
    ingest_frames,
    init_db,
    list_prompt_sets,
    save_prompt_set,
)

GOAL = "pole vertically upright on top of the cart"
BASELINE = "pole and cart"


@pytest.fixture
def db(cartpole_db):
    """A 9-point CartPole sweep, labelled success near upright by two labelers, and the paper's
    prompt set."""
    engine = cartpole_db
    for frame in dataset_frames(engine, "cp9"):
        upright = abs(frame.param_value) < 0.5
        add_label(engine, "cp9", frame.hash, "ann", float(upright))
        # bob disagrees at the edge of the upright zone: a graded consensus there
        add_label(engine, "cp9", frame.hash, "bob", float(abs(frame.param_value) < 0.8))
    save_prompt_set(
        engine,
        builtin=True,
        prompt_set=PromptSet(
            name="paper: cartpole",
            model=ModelRef(TINY, None),
            reward=RewardSpec((GOAL,), (BASELINE,), alpha=0.5),
        ),
    )
    return engine


def _open() -> AppTest:
    return open_with_random_model("evaluate", "eval", reselect=True)


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
    # undefinable metrics are text ("–" when missing), shown to 3 decimals
    low, high = float(table.loc[0, "EPIC 95% CI low"]), float(table.loc[0, "EPIC 95% CI high"])
    assert low - 5e-4 <= expected <= high + 5e-4
    assert 0.0 <= float(table.loc[0, "ROC AUC"]) <= 1.0

    # A second model for the scaling plot: one more row, no errors.
    at.multiselect(key="eval-extra-models").set_value([f"random init · {TINY}"]).run()
    assert not at.exception


def test_prompt_search_ranks_and_saves_the_best(db, tiny_clip):
    at = _open()
    at.text_area(key="eval-search-goals").input(f"{GOAL}\na pole standing up\na fallen pole").run()
    at.text_area(key="eval-search-baselines").input(f"{BASELINE}\na cart").run()
    at.text_input(key="eval-search-alphas").input("0, 0.5, 1").run()
    at.button(key="eval-search-run").click().run()
    assert not at.exception and not at.error
    table = at.dataframe[1].value
    assert len(table) == 3 + 3 * 2 * 2
    best = table.iloc[0]
    expected = _direct_epic(db, tiny_clip, search_row_spec(best))
    metrics = {m.label: m.value for m in at.metric}
    # The page encodes the candidate prompts in one batch, the direct path one at a time: the
    # text embeddings may differ in the last float32 bits, hence a tolerance.
    assert float(metrics["Best search EPIC distance"]) == pytest.approx(expected, abs=6e-4)
    assert best["epic"] == pytest.approx(expected, abs=1e-4)

    at.text_input(key="eval-search-save-name").input("search winner").run()
    at.button(key="eval-search-save").click().run()
    assert not at.exception
    assert any("search winner" in s.value for s in at.success)
    # offered at once by the prompt-set picker above the search (drawn before the click)
    assert "search winner" in at.multiselect(key="eval-prompt-sets").options
    stored = get_prompt_set(db, "search winner")
    assert stored.reward.goal_prompts == (best["goal"],) and stored.reward.alpha == best["alpha"]
    assert stored.model.architecture == TINY and stored.model.pretrained is None

    # any row can be saved, not only the best
    row = table[table["rank"] == 7].iloc[0]
    at.selectbox(key="eval-search-save-rank").set_value(7).run()
    at.text_input(key="eval-search-save-name").input("rank seven").run()
    at.button(key="eval-search-save").click().run()
    assert not at.exception
    assert get_prompt_set(db, "rank seven").reward == search_row_spec(row)

    # rows without an interval say "–", never "None"
    below_top = table[table["rank"] > 5]
    assert set(below_top["ci_low"]) == {"–"} and set(below_top["average_precision"]) == {"–"}
    assert all(v != "–" for v in table[table["rank"] == 1]["ci_low"])


def test_prompt_search_input_errors_are_messages(db):
    at = _open()
    at.button(key="eval-search-run").click().run()
    assert not at.exception
    assert any("goal prompt" in e.value for e in at.error)
    at.text_area(key="eval-search-goals").input(GOAL).run()
    at.text_input(key="eval-search-alphas").input("0, 2").run()
    at.button(key="eval-search-run").click().run()
    assert not at.exception
    # the message is escaped Markdown (it quotes the user's input): it renders as "[0, 1]"
    assert any("[0, 1]" in e.value.replace("\\", "") for e in at.error)


def test_constant_labels_are_a_clear_message(data_dir):
    from vlmrm_core.sources.state_sweeps import cartpole_sweep

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
    at = page_test("evaluate", timeout=60).run()
    assert not at.exception
    assert any("No labelled frames yet" in i.value for i in at.info)
    assert list_prompt_sets(init_db()) == []


def test_prompt_sets_with_the_same_prompts_keep_their_names(db):
    save_prompt_set(
        db,
        PromptSet(
            name="copy of paper",
            model=ModelRef(TINY, None),
            reward=RewardSpec((GOAL,), (BASELINE,), alpha=0.5),
        ),
    )
    at = _open()
    at.multiselect(key="eval-prompt-sets").set_value(["copy of paper", "paper: cartpole"]).run()
    assert not at.exception
    table = at.dataframe[0].value
    assert sorted(table["prompt set"]) == ["copy of paper", "paper: cartpole"]
    assert table["EPIC distance"].nunique() == 1


def test_rows_are_ranked_by_epic_and_inspect_follows_the_best(db):
    for name, goal in (("a wheel", "a wheel"), ("b sky", "a blue sky"), ("c upright", GOAL)):
        save_prompt_set(db, PromptSet(name, ModelRef(TINY, None), RewardSpec((goal,))))
    at = _open()
    at.multiselect(key="eval-prompt-sets").set_value(["a wheel", "b sky", "c upright"]).run()
    assert not at.exception
    table = at.dataframe[0].value
    epic = list(table["EPIC distance"])
    assert epic == sorted(epic)  # ranked, not in name order
    best = table["prompt set"].iloc[0]
    assert at.selectbox(key="eval-inspect").value.startswith(best)
    assert "None" not in set(table["EPIC 95% CI low"]) | set(table["average precision"])

    # inspect another row, then change the rows: Inspect jumps back to the (new) best
    at.selectbox(key="eval-inspect").set_value(at.selectbox(key="eval-inspect").options[-1]).run()
    assert not at.selectbox(key="eval-inspect").value.startswith(best)
    remaining = [n for n in table["prompt set"] if n != best]
    at.multiselect(key="eval-prompt-sets").set_value(remaining).run()
    new_table = at.dataframe[0].value
    assert at.selectbox(key="eval-inspect").value.startswith(new_table["prompt set"].iloc[0])


def test_default_prompt_sets_are_those_written_for_the_dataset(db):
    save_prompt_set(
        db,
        PromptSet("flag", ModelRef(TINY, None), RewardSpec(("a car at the flag",)), "MountainCar"),
    )
    save_prompt_set(
        db, PromptSet("cp9 mine", ModelRef(TINY, None), RewardSpec((GOAL,)), environment="cp9")
    )
    at = _open()
    assert not at.exception
    assert at.multiselect(key="eval-prompt-sets").value == ["cp9 mine"]
    assert at.multiselect(key="eval-prompt-sets").options[0] == "cp9 mine"


def test_inspected_row_offers_its_reward_file(db):
    at = _open()
    buttons = [b for b in at.get("download_button") if "Download reward file" in str(b.proto)]
    assert len(buttons) == 1


@pytest.mark.slow
def test_prompt_search_reports_the_pick_on_held_out_episodes(data_dir, tiny_clip):
    from vlmrm_core.frames import FrameRecord
    from vlmrm_core.reward.adaptation import frame_groups
    from vlmrm_core.services.evaluation import prompt_search, prompt_search_held_out

    engine = init_db()
    rng = np.random.default_rng(7)
    records = []
    for episode in range(8):
        for step in range(5):
            pixels = rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)
            records.append(
                FrameRecord(pixels, "rollout", env_id="CartPole-v1", episode=episode, step=step)
            )
    ingest_frames(engine, "episodes", records, kind="rollout")
    for frame in dataset_frames(engine, "episodes"):
        add_label(engine, "episodes", frame.hash, "ann", float(frame.step >= 3))
    at = open_with_random_model("evaluate", "eval", reselect=True)
    at.selectbox(key="eval-dataset").select("episodes").run()
    at.text_area(key="eval-search-goals").input(f"{GOAL}\na pole standing up\na fallen pole").run()
    at.text_area(key="eval-search-baselines").input(BASELINE).run()
    at.text_input(key="eval-search-alphas").input("0, 0.5").run()
    at.button(key="eval-search-run").click().run()
    assert not at.exception and not at.error
    metrics = {m.label: m.value for m in at.metric}

    labelled = labelled_frames(engine, "episodes")
    x = embed_hashes(engine, tiny_clip, labelled.hashes)
    goals = [GOAL, "a pole standing up", "a fallen pole"]
    result = prompt_search(tiny_clip, x, labelled.labels, goals, [BASELINE], [0.0, 0.5])
    groups = frame_groups(list(labelled.hashes), dataset_frames(engine, "episodes"))
    held = prompt_search_held_out(tiny_clip, x, labelled.labels, result, groups, n_boot=0)
    assert held is not None and held.held_out.epic_distance is not None
    assert float(metrics["Held-out EPIC of the pick"]) == pytest.approx(
        held.held_out.epic_distance, abs=2e-3
    )
    assert any("flatters the winner" in c.value for c in at.caption)


def test_metric_headers_are_short_with_their_meaning_as_help(db):
    import json

    from vlmrm_core.store.comparisons import add_comparison
    from vlmrm_studio.views.evaluate.pairs import PAIR_COLUMN

    frames = dataset_frames(db, "cp9")
    upright = [f.hash for f in frames if abs(f.param_value) < 0.5]
    fallen = [f.hash for f in frames if abs(f.param_value) >= 0.8]
    for win, lose in zip(upright, fallen, strict=False):  # a comparison or two: the pair column
        add_comparison(db, "cp9", win, lose, "ann", "a")
    at = _open()
    assert not at.exception
    table = at.dataframe[0]
    columns = json.loads(table.proto.columns)
    meanings = {
        "EPIC distance": "EPIC distance",
        "EPIC 95% CI low": "95% bootstrap interval",
        "EPIC 95% CI high": "95% bootstrap interval",
        "average precision": "Average precision",
        "ROC AUC": "ROC AUC",
        PAIR_COLUMN: "Pair accuracy",
        "VOC": "Value-order correlation",  # configured for datasets with episodes
        "VOC 95% CI": "VOC",
    }
    assert set(meanings) - {"VOC", "VOC 95% CI"} <= set(table.value.columns)
    for column, meaning in meanings.items():
        # a header short enough for a narrow column ("EPIC distanc…" was cut off), and the
        # full meaning in its tooltip
        assert len(columns[column]["label"]) <= 8, (column, columns[column])
        assert meaning in columns[column]["help"], column
