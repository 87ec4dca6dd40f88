"""Prompt Lab's Judge mode under AppTest: a tiny random-init judge found in the models dir."""

from __future__ import annotations

import json

import numpy as np
from streamlit.testing.v1 import AppTest

from tests.studio._judges import JUDGE_LABEL, QUESTION, judge_in_models_dir, tiny_judge_source
from tests.studio._pages import download_bytes, page_test, record_downloads
from vlmrm_core.services.judge_scores import JudgeRequest, load_judge_reward, score_dataset
from vlmrm_core.services.saved_judges import list_saved_judges

__all__ = ["judge_in_models_dir", "tiny_judge_source"]  # fixtures used by the tests below


def _values(elements) -> list[str]:
    return [str(e.value) for e in elements]


def _open_judge_mode() -> AppTest:
    at = page_test("prompt_lab", timeout=180)
    at.session_state["lab-source"] = "VLM judge"
    at.run()
    assert not at.exception
    return at


def test_judge_mode_scores_saves_and_downloads(cartpole_db, judge_in_models_dir, monkeypatch):
    files = record_downloads(monkeypatch)
    at = _open_judge_mode()
    assert at.selectbox(key="lab-judge").value == JUDGE_LABEL
    # random weights are said to be meaningless
    assert any("meaningless" in w for w in _values(at.warning))
    at.text_area(key="lab-question").input(QUESTION).run()
    assert not at.exception and not at.error
    # the landscape's figures are the library's rewards of the same frames
    direct = score_dataset(
        cartpole_db,
        "cp9",
        load_judge_reward(JudgeRequest(str(judge_in_models_dir), QUESTION), device="cpu"),
    ).rewards
    summary = next(m.value for m in at.markdown if "highest log\\-odds" in m.value)
    assert f"**{float(np.max(direct)):.4f}**" in summary
    assert any("question edit" in c.value and "only" in c.value for c in at.caption)

    # a question edit re-scores from the cached vision features: no frame is read again
    import vlmrm_core.store as store

    reads: list[str] = []
    load_pixels = store.load_pixels
    monkeypatch.setattr(store, "load_pixels", lambda h, *a: reads.append(h) or load_pixels(h, *a))
    at.text_area(key="lab-question").input("Is the cart on the pole? Answer yes or no.").run()
    assert not at.exception and not at.error
    assert reads == []
    assert any("highest log\\-odds" in m.value for m in at.markdown)
    at.text_area(key="lab-question").input(QUESTION).run()

    at.text_input(key="lab-judge-save-name").input("pole judge").run()
    at.button(key="lab-judge-save").click().run()
    assert not at.exception
    assert any("Saved judge" in s and "pole judge" in s for s in _values(at.success))
    (saved,) = list_saved_judges()
    assert saved.name == "pole judge" and saved.request.question == QUESTION
    assert saved.request.model == str(judge_in_models_dir)
    data = json.loads(download_bytes(at, files, "lab-judge-download"))
    assert data["source"] == "judge" and data["judge"]["question"] == QUESTION


def test_answers_that_are_not_one_token_are_a_message(cartpole_db, judge_in_models_dir):
    at = _open_judge_mode()
    at.text_input(key="lab-answer-pos").input("definitely yes").run()
    assert not at.exception
    assert at.error and "token" in at.error[0].value


def test_a_folder_that_is_not_a_judge_is_a_message(cartpole_db, tmp_path):
    at = _open_judge_mode()
    # no judge in the models dir: the picker says so, and a bad folder is one line
    assert any("no judge weights here" in c.value for c in at.caption)
    at.text_input(key="lab-judge-folder").input(str(tmp_path)).run()
    assert not at.exception
    assert at.error and "not a judge folder" in at.error[0].value


def _values_section_app(value_name: str) -> None:
    import numpy as np
    import streamlit as st

    from vlmrm_core.store import dataset_frames, init_db
    from vlmrm_studio.views.prompt_lab.landscape import values_section

    frames = dataset_frames(init_db(), "cp9")
    values = np.linspace(0.0, 1.0, len(frames))
    values_section(frames, values, value_name, ("cp9", "judge", len(frames)), st.container())


def test_the_name_of_the_values_is_escaped(cartpole_db):
    """A judge's answer word names the values ("P(yes)"): text a user typed, shown as text."""
    hostile = "P([x](http://evil.invalid))"
    at = AppTest.from_function(_values_section_app, args=(hostile,), default_timeout=60).run()
    assert not at.exception
    shown = [m.value for m in at.markdown if "evil" in m.value]
    assert len(shown) >= 4  # the line of figures, top-k, bottom-k, distribution
    assert all("](http" not in m for m in shown), shown
