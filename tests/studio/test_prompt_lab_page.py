"""The Prompt Lab page under Streamlit's AppTest, with the tiny random-init model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.studio._pages import (
    TINY,
    download_bytes,
    open_with_random_model,
    page_test,
    record_downloads,
)
from vlmrm_core.reward.file import reward_file_from_dict
from vlmrm_core.reward.model import score_embeddings
from vlmrm_core.reward.spec import ModelRef, RewardSpec
from vlmrm_core.services.landscape import embed_dataset
from vlmrm_core.store import (
    PromptSet,
    get_prompt_set,
    ingest_frames,
    init_db,
    list_prompt_sets,
    save_prompt_set,
)
from vlmrm_studio.widgets.text import md_escape

GOAL = "pole vertically upright on top of the cart"
BASELINE = "pole and cart"


@pytest.fixture
def db(cartpole_db):
    """A project database with a 9-point CartPole sweep named ``cp9``."""
    return cartpole_db


def _open(db) -> AppTest:
    return open_with_random_model("prompt_lab", "lab", reselect=True)


def _values(at: AppTest, what) -> list[str]:
    return [e.value for e in what]


def _summary(at: AppTest) -> str:
    """The one-line figures under the landscape (frames, highest, lowest, ...)."""
    lines = [m for m in _values(at, at.markdown) if "** · highest " in m]
    assert len(lines) == 1, _values(at, at.markdown)
    return lines[0]


def test_prompts_give_a_landscape_with_the_untrained_warning(db, tiny_clip):
    at = _open(db)
    assert any("Untrained weights" in w for w in _values(at, at.warning))
    assert any("goal prompt" in i for i in _values(at, at.info))  # nothing to score yet
    at.text_area(key="lab-goal").input(GOAL).run()
    at.text_area(key="lab-baseline").input(BASELINE).run()
    at.slider(key="lab-alpha").set_value(0.25).run()
    assert not at.exception and not at.error
    summary = _summary(at)
    assert summary.startswith("**9 frames**")

    embedded = embed_dataset(db, tiny_clip, "cp9")
    expected = score_embeddings(
        tiny_clip, embedded.embeddings, RewardSpec((GOAL,), (BASELINE,), 0.25)
    )
    assert f"highest reward **{expected.rewards.max():.4f}**" in summary
    assert f"lowest **{expected.rewards.min():.4f}**" in summary
    best = embedded.frames[int(np.argmax(expected.rewards))].name
    assert best in summary.replace("\\", "")  # md-escaped

    at.multiselect(key="lab-alphas").set_value([0.0, 0.5, 1.0]).run()
    assert not at.exception and not at.error
    at.radio(key="lab-axis-parameter-rank").set_value("rank").run()
    assert not at.exception


# the page shows the truncation itself; the library's Python warning only goes to the server log
@pytest.mark.filterwarnings("ignore::vlmrm_core.clip.embedding.PromptTooLongWarning")
def test_bad_prompts_are_messages_not_tracebacks(db):
    at = _open(db)
    at.text_area(key="lab-goal").input(GOAL).run()
    at.text_area(key="lab-baseline").input("").run()
    at.slider(key="lab-alpha").set_value(0.5).run()
    assert not at.exception
    assert any("baseline" in e for e in _values(at, at.error))
    at.text_area(key="lab-goal").input("   \n  ").run()
    assert not at.exception
    assert any("Enter at least one goal prompt" in i for i in _values(at, at.info))
    at.slider(key="lab-alpha").set_value(0.0).run()
    at.text_area(key="lab-goal").input("a pole " * 60).run()
    assert not at.exception
    assert any("truncated" in w for w in _values(at, at.warning))


def test_contrastive_reward(db):
    at = _open(db)
    at.text_area(key="lab-goal").input(GOAL).run()
    at.radio(key="lab-kind").set_value("contrastive").run()
    assert any("negative" in e for e in _values(at, at.error))
    at.text_area(key="lab-negatives").input("a cart\na fallen pole").run()
    at.slider(key="lab-beta").set_value(0.2).run()
    assert not at.exception and not at.error
    summary = _summary(at)
    assert "rewarded (p > β): **9** frames" in summary  # p ≈ 1/3 > 0.2 everywhere
    assert "highest p\\(goal\\)" in summary  # as Markdown source: escaped


def test_save_load_and_compare_prompt_sets(db):
    at = _open(db)
    at.text_area(key="lab-goal").input(f"{GOAL}\na pole standing up").run()
    at.text_area(key="lab-baseline").input(BASELINE).run()
    at.slider(key="lab-alpha").set_value(0.75).run()
    at.text_input(key="lab-save-name").input("upright v1").run()
    at.button(key="lab-save").click().run()
    assert not at.exception
    assert any("upright v1" in s for s in _values(at, at.success))
    stored = get_prompt_set(db, "upright v1")
    assert stored.reward.goal_prompts == (GOAL, "a pole standing up")
    assert stored.reward.baseline_prompts == (BASELINE,)
    assert stored.reward.alpha == 0.75 and stored.reward.kind == "regularized"
    assert stored.model.architecture == TINY and stored.model.pretrained is None

    save_prompt_set(db, PromptSet("other", ModelRef(TINY, None), RewardSpec(("a cart",))))
    at.run()
    at.selectbox(key="lab-load-name").select("other").run()
    at.button(key="lab-load").click().run()
    assert not at.exception
    assert at.text_area(key="lab-goal").value == "a cart"
    assert at.slider(key="lab-alpha").value == 0.0
    assert at.text_input(key="lab-arch").value == TINY

    at.selectbox(key="lab-compare-a").select("upright v1").run()
    at.selectbox(key="lab-compare-b").select("other").run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert -1.0 <= float(metrics["Pearson r (A, B)"]) <= 1.0
    assert "Spearman ρ (A, B)" in metrics


def test_no_datasets_is_a_message(data_dir):
    init_db()
    at = page_test("prompt_lab", timeout=60).run()
    assert not at.exception
    assert any("No datasets yet" in i for i in _values(at, at.info))


def test_an_upload_dataset_is_ranked_even_with_one_frame(data_dir):
    from vlmrm_core.frames import FrameRecord

    engine = init_db()
    pixels = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    ingest_frames(engine, "one upload", [FrameRecord(pixels, "upload", name="<b>x</b>.png")])
    at = _open(engine)
    at.text_area(key="lab-goal").input(GOAL).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.radio(key="lab-axis-rank").value == "rank"
    assert _summary(at).startswith("**1 frame**")


def test_saving_never_overwrites_silently(db):
    save_prompt_set(db, PromptSet("mine", ModelRef(TINY, None), RewardSpec(("a cart",))))
    at = _open(db)
    at.selectbox(key="lab-load-name").select("mine").run()
    at.button(key="lab-load").click().run()
    assert not at.exception
    assert at.text_input(key="lab-save-name").value == ""  # the loaded name is not pre-filled
    at.text_area(key="lab-goal").input(GOAL).run()

    # saving under the taken name asks first and changes nothing
    at.text_input(key="lab-save-name").input("mine").run()
    at.button(key="lab-save").click().run()
    assert not at.exception
    assert any("already exists" in w for w in _values(at, at.warning))
    assert get_prompt_set(db, "mine").reward.goal_prompts == ("a cart",)

    # "save as new" keeps the old one and stores a copy under a free name
    at.button(key="lab-save-new").click().run()
    assert not at.exception
    assert get_prompt_set(db, "mine").reward.goal_prompts == ("a cart",)
    assert get_prompt_set(db, "mine (2)").reward.goal_prompts == (GOAL,)

    # overwriting only after confirming
    at.text_input(key="lab-save-name").input("mine").run()
    at.button(key="lab-save").click().run()
    at.button(key="lab-overwrite").click().run()
    assert not at.exception
    assert get_prompt_set(db, "mine").reward.goal_prompts == (GOAL,)

    # built-in sets are read-only: an error, and a copy offered instead
    at.text_input(key="lab-save-name").input("paper: cartpole").run()
    at.button(key="lab-save").click().run()
    assert not at.exception
    assert any("built-in" in e.replace("\\", "") for e in _values(at, at.error))
    assert "paper: cartpole" not in {p.name for p in list_prompt_sets(db)}
    at.button(key="lab-save-new").click().run()
    assert get_prompt_set(db, "cartpole (copy)").reward.goal_prompts == (GOAL,)


def _landscape_figure(at: AppTest) -> dict:
    import json

    chart = next(c for c in at.get("plotly_chart") if "lab-landscape" in c.proto.id)
    return json.loads(chart.proto.spec)


def test_chart_drags_a_box_and_keeps_the_slider_alpha_with_an_overlay(db):
    at = _open(db)
    at.text_area(key="lab-goal").input(GOAL).run()
    at.text_area(key="lab-baseline").input(BASELINE).run()
    at.slider(key="lab-alpha").set_value(0.3).run()
    figure = _landscape_figure(at)
    assert figure["layout"]["dragmode"] == "select"  # the caption says "drag a box"
    # without an overlay the per-curve scaling means nothing: no checked-but-disabled box
    assert not [c for c in at.checkbox if c.key == "lab-normalize"]

    at.multiselect(key="lab-alphas").set_value([0.0, 1.0]).run()
    names = [t["name"] for t in _landscape_figure(at)["data"] if t.get("name")]
    assert any("α = 0.3" in n for n in names)  # the slider's α is still drawn
    assert any("α = 0" in n for n in names) and any("α = 1" in n for n in names)
    assert at.checkbox(key="lab-normalize").disabled is False
    at.slider(key="lab-alpha").set_value(0.6).run()
    names = [t["name"] for t in _landscape_figure(at)["data"] if t.get("name")]
    assert any("α = 0.6" in n for n in names) and not any("α = 0.3" in n for n in names)


def test_the_view_is_kept_in_the_url_and_restored_from_it(db):
    at = _open(db)
    at.text_area(key="lab-goal").input(GOAL).run()
    at.text_area(key="lab-baseline").input(BASELINE).run()
    at.slider(key="lab-alpha").set_value(0.25).run()
    at.multiselect(key="lab-alphas").set_value([0.0, 1.0]).run()
    assert not at.exception
    params = {k: at.query_params[k] for k in at.query_params}
    flat = {k: v[0] if isinstance(v, list) else v for k, v in params.items()}
    assert flat["dataset"] == "cp9" and flat["goal"] == GOAL and flat["baseline"] == BASELINE
    assert flat["alpha"] == "0.25" and flat["alphas"] == "0,1"

    # a fresh session (a browser refresh, a shared link) opened on that URL shows the same view
    from vlmrm_studio.widgets.common import RANDOM_LABEL

    fresh = page_test("prompt_lab", timeout=120)
    fresh.session_state["lab-model"] = RANDOM_LABEL
    fresh.session_state["lab-arch"] = TINY
    for key, value in flat.items():
        fresh.query_params[key] = value
    fresh.run()
    assert not fresh.exception
    assert fresh.text_area(key="lab-goal").value == GOAL
    assert fresh.text_area(key="lab-baseline").value == BASELINE
    assert fresh.slider(key="lab-alpha").value == 0.25
    assert fresh.multiselect(key="lab-alphas").value == [0.0, 1.0]


def test_the_editor_reward_downloads_as_a_reward_file(db):
    at = _open(db)
    at.text_area(key="lab-goal").input(GOAL).run()
    labels = [str(b.proto) for b in at.get("download_button")]
    assert sum("Download reward file" in label for label in labels) == 1
    at.text_area(key="lab-goal").input("  ").run()  # no valid reward: nothing to download
    assert not any("Download reward file" in str(b.proto) for b in at.get("download_button"))


def test_downloaded_reward_file_is_the_reward_on_screen(db, monkeypatch):
    """The file holds the slider's α / β, the prompts and the model shown: its bytes are made in
    the script run (a click-time callable can't read the session and wrote α = 0)."""
    files = record_downloads(monkeypatch)
    at = _open(db)
    at.text_area(key="lab-goal").input(GOAL).run()
    at.text_area(key="lab-baseline").input(BASELINE).run()
    at.slider(key="lab-alpha").set_value(0.75).run()
    saved = reward_file_from_dict(json.loads(download_bytes(at, files, "lab-download-reward")))
    assert saved.reward == RewardSpec((GOAL,), (BASELINE,), alpha=0.75)
    assert (saved.model.architecture, saved.model.pretrained) == (TINY, None)

    at.radio(key="lab-kind").set_value("contrastive").run()
    at.text_area(key="lab-negatives").input("a cart").run()
    at.slider(key="lab-beta").set_value(0.2).run()
    saved = reward_file_from_dict(json.loads(download_bytes(at, files, "lab-download-reward")))
    assert saved.reward.kind == "contrastive" and saved.reward.beta == 0.2
    assert saved.reward.negatives == ("a cart",)


def test_random_init_notice_shows_the_typed_architecture_as_typed(db):
    at = _open(db)
    at.text_input(key="lab-arch").input("**ViT** [x](http://e.org)").run()  # an unknown name
    labels = [b.proto.popover.label for b in at.get("popover")]
    assert labels == [md_escape("**ViT** [x](http://e.org), untrained; no CLIP weights here")]
    assert any("ViT" in e for e in _values(at, at.error))  # the load error names it
