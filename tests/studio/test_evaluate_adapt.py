"""Evaluate → "Adapt to labels" and the top-two separation note, under Streamlit's AppTest.

A stored dataset of rendered episodes where success is a visible red disc, labelled by truth;
the random-init model cannot read "a red disc" zero-shot, a probe on its embeddings can.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests._visible_object import render_visible_object
from tests.studio._pages import TINY, open_with_random_model
from vlmrm_core.enums import RewardKind
from vlmrm_core.frames import FrameRecord
from vlmrm_core.reward.file import reward_file_from_dict
from vlmrm_core.reward.spec import ModelRef, RewardSpec
from vlmrm_core.store import (
    PromptSet,
    add_label,
    get_prompt_set,
    ingest_frames,
    init_db,
    list_prompt_sets,
    save_prompt_set,
)

DATASET = "red-disc"

pytestmark = pytest.mark.slow


@pytest.fixture
def db(data_dir: Path):
    data = render_visible_object(episodes=16, steps=8, seed=0)
    records = [
        FrameRecord(
            pixels=pixels,
            source="rollout",
            name=f"Disc ep{int(ep)} t{t % 8}",
            env_id="Disc-v0",
            episode=int(ep),
            step=t % 8,
        )
        for t, (pixels, ep) in enumerate(zip(data.frames, data.episodes, strict=True))
    ]
    engine = init_db()
    ingest_frames(engine, DATASET, records, kind="rollout")
    from vlmrm_core.frames import pixel_hash

    for pixels, label in zip(data.frames, data.labels, strict=True):
        add_label(engine, DATASET, pixel_hash(pixels), "ann", float(label))
    for name, goal in (("red ball", "a red ball"), ("scene", "a photo of a scene")):
        save_prompt_set(engine, PromptSet(name, ModelRef(TINY, None), RewardSpec((goal,))))
    return engine


def _open() -> AppTest:
    return open_with_random_model("evaluate", "eval", timeout=240)


def _adapt_table(at: AppTest):
    return next(d.value for d in at.dataframe if "held-out EPIC" in d.value.columns)


def test_adapt_to_labels_beats_zero_shot_saves_and_downloads(db):
    at = _open()
    # two prompt sets evaluated: the separation note says whether their intervals overlap
    assert any("The top two" in i.value for i in at.info)

    at.selectbox(key="eval-adapt-start").set_value("red ball")
    at.number_input(key="eval-adapt-folds").set_value(3)  # default 5; 3 keeps the test short
    at.button(key="eval-adapt-run").click().run()
    assert not at.exception and not at.error
    table = _adapt_table(at).set_index("reward")
    assert list(table.index) == ["zero-shot", "adapted", "plain probe"]
    assert set(table["n labels"]) == {128} and set(table["folds"]) == {3}
    zero, adapted = table.loc["zero-shot", "held-out EPIC"], table.loc["adapted", "held-out EPIC"]
    assert adapted < zero - 0.15, (zero, adapted)  # the probe sees the disc; the prompt can't
    low, high = (float(v) for v in table.loc["adapted", "EPIC 95% CI"].split("–"))
    assert low <= adapted <= high

    # the reward file: an adapted reward with the cross-validated table as provenance
    assert any(e.proto.label == "Download reward file" for e in at.get("download_button"))
    # save as a prompt set: kind adapted, weights of the model's embedding size
    at.text_input(key="eval-adapt-name").input("disc adapted").run()
    at.button(key="eval-adapt-save").click().run()
    assert not at.exception
    stored = get_prompt_set(db, "disc adapted")
    assert stored.reward.kind is RewardKind.ADAPTED
    assert stored.reward.goal_prompts == ("a red ball",)
    assert len(stored.reward.weights) == 256  # ViT-S-32-alt embeddings
    assert stored.model == ModelRef(TINY, None)
    assert any("Saved the adapted reward" in s.value for s in at.success)

    # saving under the same name again asks first, never overwrites silently
    before = stored.reward
    at.selectbox(key="eval-adapt-start").set_value("scene")
    at.button(key="eval-adapt-run").click().run()
    at.text_input(key="eval-adapt-name").input("disc adapted").run()
    at.button(key="eval-adapt-save").click().run()
    assert not at.exception
    assert any("already exists" in w.value for w in at.warning)
    assert get_prompt_set(db, "disc adapted").reward == before
    at.button(key="eval-adapt-overwrite").click().run()
    assert not at.exception
    assert get_prompt_set(db, "disc adapted").reward.goal_prompts == ("a photo of a scene",)

    # a name that can't be saved is one line, not a traceback
    at.text_input(key="eval-adapt-name").input("x" * 300).run()
    at.button(key="eval-adapt-save").click().run()
    assert not at.exception
    assert any("at most 255 characters" in e.value for e in at.error)

    # the adapted set is a reward like any other in the Evaluate table
    at.multiselect(key="eval-prompt-sets").set_value(["disc adapted", "red ball"]).run()
    assert not at.exception and not at.error
    rows = at.dataframe[0].value
    assert set(rows["prompt set"]) == {"disc adapted", "red ball"}
    best = rows.iloc[0]
    assert best["prompt set"] == "disc adapted"  # fitted on these labels: in-sample, lower


def test_reward_file_text_of_the_report_round_trips(db, tiny_clip):
    """The download's content, built by the same helpers, is a valid adapted reward file."""
    from vlmrm_core.reward import adaptation
    from vlmrm_core.reward.adaptation import adaptation_provenance, adapted_spec
    from vlmrm_core.reward.file import reward_file_text
    from vlmrm_core.services.evaluation import labelled_frames
    from vlmrm_core.services.landscape import embed_hashes
    from vlmrm_core.store import dataset_frames

    labelled = labelled_frames(db, DATASET)
    x = embed_hashes(db, tiny_clip, list(labelled.hashes)).astype(np.float64)
    groups = adaptation.frame_groups(list(labelled.hashes), dataset_frames(db, DATASET))
    start = RewardSpec(("a red ball",))
    report = adaptation.cross_validate_adaptation(
        x, labelled.labels, groups, None, x[:, 0], folds=3, n_boot=50, curve=False
    )
    spec = adapted_spec(start, report.fit)
    provenance = adaptation_provenance(
        report,
        dataset=DATASET,
        labelers=["ann"],
        hashes=labelled.hashes,
        labels=labelled.labels,
        started_from="test",
        starting_reward=start,
    )
    parsed = reward_file_from_dict(json.loads(reward_file_text(ModelRef(TINY), spec, provenance)))
    assert parsed.reward == spec and parsed.reward.kind is RewardKind.ADAPTED
    table = parsed.provenance.extra["adaptation"]
    assert table["folds"] == 3 and table["n_labels"] == 128
    assert parsed.provenance.epic_distance == pytest.approx(report.adapted.epic_distance)


def test_adapted_set_is_only_scored_with_its_own_model(db):
    weights = tuple(float(v) for v in np.random.default_rng(0).normal(size=256))
    save_prompt_set(
        db,
        PromptSet(
            "other model adapted",
            ModelRef(TINY, "some-other-weights"),
            RewardSpec(("a red ball",), kind="adapted", weights=weights),
        ),
    )
    assert any(p.name == "other model adapted" for p in list_prompt_sets(db))
    at = _open()
    at.multiselect(key="eval-prompt-sets").set_value(["other model adapted", "red ball"]).run()
    assert not at.exception
    assert any("only scored with that model" in e.value for e in at.error)
    assert list(at.dataframe[0].value["prompt set"]) == ["red ball"]


def test_separation_text_reports_the_estimate() -> None:
    from vlmrm_core.metrics import RewardMetrics
    from vlmrm_core.reward.active_labels import separation_estimate
    from vlmrm_core.services.evaluation import Evaluation
    from vlmrm_studio.widgets.adapt import separation_text

    rng = np.random.default_rng(0)
    labels = (rng.random(60) < 0.5).astype(float)
    good = labels + rng.normal(0, 0.8, 60)
    close = labels + rng.normal(0, 0.9, 60)
    far = rng.normal(size=60)

    def row(name: str, rewards: np.ndarray) -> Evaluation:
        return Evaluation(name, "tiny", 1, rewards, RewardMetrics(60, 0.5))

    est = separation_estimate(good, close, labels, n_boot=1000)
    text = separation_text(row("good", good), row("close", close), labels)
    assert est.overlap and "still overlap" in text
    assert f"Roughly {est.more_labels:,} more labels" in text
    assert f"{est.epic_a:.3f} ({est.ci_a[0]:.3f}–{est.ci_a[1]:.3f})" in text
    apart = separation_text(row("good", good), row("noise", far), labels)
    assert "are separated by the labels" in apart


def test_one_episode_is_a_message_not_a_traceback(data_dir: Path) -> None:
    from vlmrm_core.sources.state_sweeps import cartpole_sweep
    from vlmrm_core.store import dataset_frames

    engine = init_db()
    ingest_frames(engine, "cp4", cartpole_sweep(points=4), kind="sweep")  # one sweep block
    for i, frame in enumerate(dataset_frames(engine, "cp4")):
        add_label(engine, "cp4", frame.hash, "ann", float(i % 2 == 0))
    save_prompt_set(engine, PromptSet("p", ModelRef(TINY, None), RewardSpec(("a pole",))))
    at = _open()
    at.button(key="eval-adapt-run").click().run()
    assert not at.exception
    assert any("at least two episodes" in e.value.replace("\\", "") for e in at.error)
