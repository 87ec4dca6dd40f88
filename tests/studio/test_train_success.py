"""Train page → Success rate: labelled success per evaluation next to the returns, the
reward-hacking flag, and one click that points the Label page at the run's evaluations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.studio._pages import STUDIO, page_path
from tests.studio.test_train_page import make_run
from vlmrm_core.frames import FrameRecord
from vlmrm_core.store import add_label, add_run_metrics, ingest_frames, init_db
from vlmrm_core.training.success import wilson_interval
from vlmrm_studio.widgets.frames import CURRENT_DATASET

PAGE = page_path("train")
pytestmark = pytest.mark.slow


@pytest.fixture
def app(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("VLMRM_HEARTBEAT_S", "600")
    monkeypatch.setenv("VLMRM_MAX_RUNS", "1")
    return AppTest.from_file(str(PAGE), default_timeout=60)


def _evaluations(run_id: int, successes: dict[int, int]) -> None:
    """Three evaluations of 2 episodes × 4 frames; ``successes[step]`` of the 8 labelled
    success; the CLIP return rises while the ground-truth return falls."""
    engine = init_db()
    rng = np.random.default_rng(run_id)
    for i, (step, k) in enumerate(sorted(successes.items())):
        records = [
            FrameRecord(
                pixels=rng.integers(0, 255, (8, 8, 3), dtype=np.uint8),
                source="training-eval",
                episode=j // 4,
                step=j % 4,
            )
            for j in range(8)
        ]
        ingest_frames(engine, f"run-{run_id}-eval-{step}", records, kind="training-eval")
        if k is not None:
            for j, record in enumerate(records):
                add_label(engine, f"run-{run_id}-eval-{step}", record.hash, "ann", float(j < k))
        add_run_metrics(
            engine,
            run_id,
            [{"step": step, "eval/clip_return": 10.0 + 5 * i, "eval/gt_return": 100.0 - 30 * i}],
        )


def test_success_rate_per_checkpoint_flags_hacking_and_opens_labelling(app: AppTest) -> None:
    run_id = make_run("finished", "hacked")
    _evaluations(run_id, {1000: 7, 2000: 4, 3000: None})
    app.run()
    assert not app.exception
    table = next(d.value for d in app.dataframe if "success rate" in d.value.columns)
    assert list(table["step"]) == [1000, 2000, 3000]
    assert list(table["success rate"]) == ["0.88", "0.50", "–"]
    low, high = wilson_interval(7, 8)
    assert table["95% CI"].iloc[0] == f"{low:.2f}–{high:.2f}"
    assert list(table["labelled"]) == ["8 / 8", "8 / 8", "0 / 8"]
    assert list(table["CLIP return"]) == ["10.000", "15.000", "20.000"]
    assert any("Likely reward hacking" in e.value for e in app.error)

    # bootstrap over episodes instead of Wilson: another interval, same rates
    app.radio(key="train-success-method").set_value("bootstrap").run()
    assert not app.exception
    table = next(d.value for d in app.dataframe if "success rate" in d.value.columns)
    assert list(table["success rate"]) == ["0.88", "0.50", "–"]

    # one click: the Label page is pointed at the evaluation that needs labels most
    app.button(key="train-success-label").click().run()
    assert not app.exception
    assert app.session_state[CURRENT_DATASET] == f"run-{run_id}-eval-3000"
    assert app.session_state["label-show-evals"] is True
    shown = [s.value.replace("\\", "") for s in app.success]  # md-escaped dataset name
    assert any(f"run-{run_id}-eval-3000 is selected on the Label page" in s for s in shown)


def test_learning_run_is_not_flagged(app: AppTest) -> None:
    run_id = make_run("finished", "learning")
    engine = init_db()
    _evaluations(run_id, {1000: 1, 2000: 4, 3000: 8})
    add_run_metrics(engine, run_id, [{"step": 3000, "eval/gt_return": 500.0}])
    app.run()
    assert not app.exception
    assert not any("Likely reward hacking" in e.value for e in app.error)
    assert any("no sign of reward hacking" in c.value for c in app.caption)


def test_the_label_button_opens_the_label_page_on_that_evaluation(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the app's navigation: the click lands on Label with the evaluation picked."""
    monkeypatch.setenv("VLMRM_HEARTBEAT_S", "600")
    run_id = make_run("finished", "to label")
    _evaluations(run_id, {1000: None, 2000: 3})
    main = STUDIO / "streamlit_app.py"
    at = AppTest.from_file(str(main), default_timeout=60)
    at.session_state["demo_checked"] = True  # no first-run demo: this project has data
    at.run()
    at.switch_page("views/train/page.py").run()
    assert not at.exception
    at.button(key="train-success-label").click().run()
    assert not at.exception
    assert at.title[0].value.endswith("Label")
    assert at.selectbox(key="label-dataset").value == f"run-{run_id}-eval-1000"


def test_label_page_names_the_run_and_moves_to_the_next_evaluation(data_dir: Path) -> None:
    from tests.studio._pages import page_test

    run_id = make_run("finished", "evals")
    _evaluations(run_id, {1000: 8, 2000: None, 3000: None})  # step 1000 fully labelled
    at = page_test("label")
    at.session_state["label-show-evals"] = True
    at.session_state[CURRENT_DATASET] = f"run-{run_id}-eval-2000"
    at.run()
    assert not at.exception
    assert any(f"training run {run_id} at step 2,000" in c.value for c in at.caption)
    at.button(key="label-next-eval").click().run()
    assert not at.exception
    assert at.selectbox(key="label-dataset").value == f"run-{run_id}-eval-3000"
    # step 1000 is fully labelled: only step 2000 is offered next
    assert any("1 other evaluation(s)" in c.value for c in at.caption)
    assert at.button(key="label-next-eval").label == "Next: step 2,000"
