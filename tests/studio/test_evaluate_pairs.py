"""Evaluate with pairwise comparisons, under Streamlit's AppTest: each reward's pair accuracy
beside its EPIC, and "Fit to comparisons" (Bradley–Terry reward, held-out pair accuracy next
to the zero-shot reward's, saved as an adapted prompt set, offered as a reward file).

The dataset is rendered episodes where success is a visible red disc; comparisons prefer the
frame with the disc, as a person would. The random-init model cannot read "a red disc"
zero-shot; a fit on its embeddings can.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests._visible_object import render_visible_object
from tests.studio._pages import TINY, open_with_random_model
from vlmrm_core.enums import RewardKind
from vlmrm_core.frames import FrameRecord, pixel_hash
from vlmrm_core.reward.model import score_embeddings
from vlmrm_core.reward.spec import ModelRef, RewardSpec
from vlmrm_core.services.evaluation import labelled_frames
from vlmrm_core.services.landscape import embed_hashes, reward_values
from vlmrm_core.services.preferences import comparison_data, pair_accuracy_of
from vlmrm_core.store import (
    PromptSet,
    add_label,
    get_prompt_set,
    ingest_frames,
    init_db,
    save_prompt_set,
)
from vlmrm_core.store.comparisons import add_comparison
from vlmrm_studio.views.evaluate.pairs import PAIR_COLUMN, pair_accuracy_text

DATASET = "red-disc"
GOAL = "a red ball"

pytestmark = pytest.mark.slow


@pytest.fixture
def db(data_dir: Path):
    data = render_visible_object(episodes=12, steps=8, seed=1)
    records = [
        FrameRecord(
            pixels=pixels, source="rollout", name=f"Disc ep{int(ep)} t{t % 8}",
            env_id="Disc-v0", episode=int(ep), step=t % 8,
        )
        for t, (pixels, ep) in enumerate(zip(data.frames, data.episodes, strict=True))
    ]  # fmt: skip
    engine = init_db()
    ingest_frames(engine, DATASET, records, kind="rollout")
    hashes = [pixel_hash(p) for p in data.frames]
    for h, label in zip(hashes, data.labels, strict=True):
        add_label(engine, DATASET, h, "ann", float(label))
    rng = np.random.default_rng(0)
    success = [h for h, y in zip(hashes, data.labels, strict=True) if y]
    failure = [h for h, y in zip(hashes, data.labels, strict=True) if not y]
    for _ in range(80):  # the disc wins, shown on either side
        win, lose = str(rng.choice(success)), str(rng.choice(failure))
        if rng.random() < 0.5:
            add_comparison(engine, DATASET, win, lose, "pat", "a")
        else:
            add_comparison(engine, DATASET, lose, win, "pat", "b")
    save_prompt_set(engine, PromptSet("red ball", ModelRef(TINY, None), RewardSpec((GOAL,))))
    return engine


def test_pair_accuracy_column_and_fit_to_comparisons(db, tiny_clip) -> None:
    at = open_with_random_model("evaluate", "eval", reselect=True)
    assert not at.error
    table = at.dataframe[0].value
    assert PAIR_COLUMN in table.columns
    labelled = labelled_frames(db, DATASET)
    x = embed_hashes(db, tiny_clip, labelled.hashes)
    rewards = reward_values(score_embeddings(tiny_clip, x, RewardSpec((GOAL,))))
    expected = pair_accuracy_of(comparison_data(db, DATASET), labelled.hashes, rewards)
    row = table.set_index("prompt set").loc["red ball"]
    assert row[PAIR_COLUMN] == pair_accuracy_text(expected)
    assert expected.n_pairs > 0

    at.number_input(key="eval-prefs-folds").set_value(3)
    at.button(key="eval-prefs-run").click().run()
    assert not at.exception and not at.error
    fit = next(d.value for d in at.dataframe if "held-out pair accuracy" in d.value.columns)
    fit = fit.set_index("reward")
    zero = float(fit.loc["zero-shot (the prompt set)", "held-out pair accuracy"])
    fitted = float(fit.loc["Bradley–Terry (prompt prior)", "held-out pair accuracy"])
    assert fitted >= 0.8 and fitted > zero, (zero, fitted)  # the fit sees the disc
    low, high = (float(v) for v in fit.loc["Bradley–Terry (prompt prior)", "95% CI"].split("–"))
    assert low <= fitted <= high
    downloads = [e.proto.label for e in at.get("download_button")]
    assert "Download reward file" in downloads

    at.text_input(key="eval-prefs-name").input("disc prefs").run()
    at.button(key="eval-prefs-save").click().run()
    assert not at.exception
    stored = get_prompt_set(db, "disc prefs")
    assert stored.reward.kind is RewardKind.ADAPTED
    assert stored.reward.goal_prompts == (GOAL,)
    assert stored.model == ModelRef(TINY, None) and stored.environment == DATASET


def test_without_comparisons_there_is_no_column_and_the_fit_says_so(db) -> None:
    from vlmrm_core.store.comparisons import undo_last_comparison

    while undo_last_comparison(db, DATASET, "pat") is not None:
        pass
    at = open_with_random_model("evaluate", "eval", reselect=True)
    assert PAIR_COLUMN not in at.dataframe[0].value.columns
    assert any("No comparisons in this dataset yet" in i.value for i in at.info)
