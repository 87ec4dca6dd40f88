"""Label page → Pairs with a saved VLM judge (issue 20, machine preferences): "Ask a judge for
suggestions" has a tiny random-init judge answer the next pairs with a progress bar, stored under
its machine labeller apart from people's answers; "Show judge suggestions" (off by default) shows
its answer under the pair; Tasks → Review then shows its agreement with people."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.judge._tiny_judges import write_qwen2_5_vl
from tests.studio._judges import QUESTION
from tests.studio._pages import page_test
from tests.studio.test_label_page import make_dataset
from tests.studio.test_label_pairs import open_pairs, progress, shown_pair
from vlmrm_core.services.preferences import machine_suggestions
from vlmrm_core.store import init_db
from vlmrm_core.store.comparisons import current_comparisons, is_machine_labeler
from vlmrm_studio.widgets.text import md_escape

JUDGE = "pairs <b>judge</b>"  # markup in a name must show as typed


@pytest.fixture(scope="module")
def qwen_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Qwen2.5-VL judge: its byte-level tokenizer has the answers 1 and 2 as tokens."""
    return write_qwen2_5_vl(tmp_path_factory.mktemp("pair-judge") / "tiny-qwen")


@pytest.fixture
def saved_judge(data_dir: Path, qwen_source: Path) -> str:
    """The tiny judge saved under ``JUDGE`` for the dataset ``ds``."""
    from vlmrm_core.services.judge_scores import JudgeRequest, load_judge_reward
    from vlmrm_core.services.saved_judges import save_judge

    reward = load_judge_reward(JudgeRequest(str(qwen_source), QUESTION), device="cpu")
    save_judge(JUDGE, reward, environment="ds")
    return JUDGE


def ask_judge(at: AppTest, pairs: int) -> AppTest:
    at.selectbox(key="label-pair-judge").set_value(JUDGE)
    at.number_input(key="label-pair-judge-count").set_value(pairs)
    # a random-weight judge is barely decided: take any preference as its answer
    at.number_input(key="label-pair-judge-margin").set_value(0.0)
    at.button(key="label-pair-judge-run").click().run()
    assert not at.exception and not at.error, (at.exception, at.error)
    return at


def suggestion_captions(at: AppTest) -> list[str]:
    return [c.value for c in at.caption if "suggest" in c.value]


def test_judge_suggestions_are_stored_apart_and_shown_only_when_asked(saved_judge) -> None:
    make_dataset(5)
    at = open_pairs(page_test("label"), count=6)
    assert suggestion_captions(at) == []
    ask_judge(at, 3)
    assert any(md_escape(f"{JUDGE} judged 3 pairs") in s.value for s in at.success)
    db = init_db()
    stored = current_comparisons(db, "ds")
    machines = set(stored["labeler"])
    assert len(machines) == 1 and is_machine_labeler(machine := machines.pop())
    # people's queue is untouched: the judge's answers are not alice's
    assert progress(at) == "Pairs done: 0/6"
    # off by default: seeing the machine's answer biases people
    assert suggestion_captions(at) == []
    at.button(key="label-pair-suggest-button").click().run()  # Show judge suggestions
    pair = shown_pair(at)
    found = machine_suggestions(db, "ds", pair)
    side = {"a": "Left", "b": "Right", "equal": "equally close"}
    if found:  # an undecided judge stores nothing for the pair
        assert suggestion_captions(at) == [md_escape(f"{machine} suggests {side[found[machine]]}")]
    else:
        assert suggestion_captions(at) == ["No judge suggestion for this pair."]
    # asking again leaves out the pairs it answered
    ask_judge(at, 3)
    assert any(md_escape("(3 answered before)") in s.value for s in at.success)


def test_machine_agreement_shows_on_review_after_suggestions(saved_judge) -> None:
    make_dataset(4)
    at = open_pairs(page_test("label"), count=6)
    ask_judge(at, 3)  # suggestions for the next three pairs, which alice then answers
    for _ in range(3):
        at.button(key="label-pair-a").click().run()
    db = init_db()
    stored = current_comparisons(db, "ds")
    machine = next(name for name in stored["labeler"] if is_machine_labeler(name))
    decided = len(stored[stored["labeler"] == machine])
    tasks = page_test("tasks")
    tasks.run()
    tasks.selectbox(key="tasks-review-dataset").set_value("ds").run()
    assert not tasks.exception
    assert any("Judges' suggestions against people" in m.value for m in tasks.markdown)
    table = next(d.value for d in tasks.dataframe if "judge" in d.value.columns)
    assert table["judge"].tolist() == [machine]
    assert table["pairs with people"].tolist() == [decided]
