"""Label page → "most informative first": the queue follows active_labels' ranking over the
saved prompt sets' rewards on the cached embeddings (real tiny random-init model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.studio._pages import TINY, page_test
from vlmrm_core.reward.active_labels import informative_order, informativeness
from vlmrm_core.reward.model import score_embeddings
from vlmrm_core.reward.spec import ModelRef, RewardSpec
from vlmrm_core.services.landscape import embed_dataset, reward_values
from vlmrm_core.store import PromptSet, ingest_frames, init_db, save_prompt_set

pytestmark = pytest.mark.slow
SPECS = {
    "upright": RewardSpec(("pole vertically upright on top of the cart",)),
    "fallen": RewardSpec(("a pole lying flat",), ("pole and cart",), alpha=0.5),
}


@pytest.fixture
def app(data_dir: Path) -> AppTest:
    from vlmrm_core.sources.state_sweeps import cartpole_sweep

    engine = init_db()
    ingest_frames(engine, "cp9", cartpole_sweep(points=9), kind="sweep")
    for name, spec in SPECS.items():
        save_prompt_set(engine, PromptSet(name, ModelRef(TINY, None), spec))
    return page_test("label", timeout=120)


def _expected_first(tiny_clip, labelled: set[str] = frozenset()) -> list[str]:
    embedded = embed_dataset(init_db(), tiny_clip, "cp9")
    x = np.asarray(embedded.embeddings)
    hashes = [f.hash for f in embedded.frames]
    rewards = [reward_values(score_embeddings(tiny_clip, x, s)) for s in SPECS.values()]
    mask = np.array([h in labelled for h in hashes])
    order = informative_order(x, informativeness(rewards), labelled=mask)
    return [hashes[i] for i in order]


def test_most_informative_first_follows_the_ranking(app: AppTest, tiny_clip) -> None:
    app.run()
    app.text_input(key="label-name").set_value("alice").run()
    assert not app.exception
    app.button(key="label-order-2").click().run()  # most informative first
    assert not app.exception and not app.error
    session = app.session_state["label-sessions"][("cp9", "alice")]
    expected = _expected_first(tiny_clip)
    assert list(session.ranking) == expected
    assert session.queue(init_db())[0] == expected[0]
    assert any("Ranked with" in c.value for c in app.caption)

    # label the first frame: the next one is the ranking's second; re-rank uses the labels
    app.button(key="label-success").click().run()
    assert session.queue(init_db())[0] == expected[1]
    app.button(key="label-rerank").click().run()
    assert not app.exception
    session = app.session_state["label-sessions"][("cp9", "alice")]
    assert list(session.ranking) == _expected_first(tiny_clip, {expected[0]})

    # back to sequential: dataset order
    app.button(key="label-order-1").click().run()  # sequential
    assert not app.exception
    from vlmrm_core.store import dataset_frames

    in_order = [f.hash for f in dataset_frames(init_db(), "cp9") if f.hash != expected[0]]
    assert session.queue(init_db())[0] == in_order[0]


def test_without_prompt_sets_it_says_so_and_stays_random(data_dir: Path) -> None:
    from vlmrm_core.sources.state_sweeps import cartpole_sweep

    ingest_frames(init_db(), "cp3", cartpole_sweep(points=3), kind="sweep")
    at = page_test("label")
    at.run()
    at.text_input(key="label-name").set_value("bob").run()
    at.button(key="label-order-2").click().run()  # most informative first
    assert not at.exception
    assert any("needs a saved prompt set" in i.value for i in at.info)
    assert at.session_state["label-sessions"][("cp3", "bob")].order == "random"
