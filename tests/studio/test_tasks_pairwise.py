"""Tasks → a pairwise task (AppTest, no sign-in): created from the form, listed with its kind,
asked as pairs on the Label page, and Review shows agreement on the pairs (percentage and
Krippendorff's α) with the pairs answered differently, by frame name."""

from __future__ import annotations

from pathlib import Path

from tests.studio._pages import page_test
from tests.studio.test_tasks_without_sign_in import _cars
from vlmrm_core.metrics.pairs import pair_agreement
from vlmrm_core.store import init_db
from vlmrm_core.store.comparisons import add_comparison, current_comparisons
from vlmrm_core.store.tasks import list_tasks


def test_a_pairwise_task_from_the_form_is_asked_as_pairs(data_dir: Path) -> None:
    _cars()
    at = page_test("tasks").run()
    at.text_input(key="tasks-new-name").input("which")
    at.selectbox(key="tasks-new-dataset").select("cars")
    at.radio(key="tasks-new-kind").set_value("Pairwise")
    at.text_input(key="tasks-new-typed").input("alice")
    at.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    (task,) = list_tasks(init_db())
    assert task.pairwise and task.kind == "pairwise"
    assert at.dataframe[0].value["kind"].iloc[0] == "pairwise"

    label = page_test("label").run()
    label.text_input(key="label-name").input("alice").run()
    assert not label.exception, [e.value for e in label.exception]
    label.button(key="label-pair-a").click().run()  # ← on the keyboard
    stored = current_comparisons(init_db(), "cars")
    assert (stored["task"].tolist(), stored["choice"].tolist()) == (["which"], ["a"])


def test_review_shows_pair_agreement_and_disagreements(data_dir: Path) -> None:
    frames = _cars()
    db = init_db()
    add_comparison(db, "cars", frames[0], frames[1], "ann", "a")  # agreed
    add_comparison(db, "cars", frames[1], frames[0], "bob", "b")  # same answer, other sides
    add_comparison(db, "cars", frames[1], frames[2], "ann", "a")  # disputed
    add_comparison(db, "cars", frames[1], frames[2], "bob", "equal")
    expected = pair_agreement(current_comparisons(db, "cars"))
    # A judge's suggestion: shown apart, against people, and not counted in their agreement.
    add_comparison(db, "cars", frames[0], frames[1], "judge:tiny#00000000", "b", machine=True)
    at = page_test("tasks").run()
    at.selectbox(key="tasks-review-dataset").select("cars").run()
    assert not at.exception, [e.value for e in at.exception]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Pairs compared"] == "2"
    assert metrics["Agreement"] == f"{100 * expected.percent_agreement:.0f}%" == "50%"
    alpha = expected.alpha
    assert metrics["Krippendorff's α"] == ("—" if alpha is None else f"{alpha:.3f}")
    table = next(d.value for d in at.dataframe if "answers" in d.value.columns)
    assert len(table) == 1
    assert {table["first"].iloc[0], table["second"].iloc[0]} == {"car1.png", "car2.png"}
    assert table["answers"].iloc[0] in ("ann: a, bob: equal", "ann: b, bob: equal")
    assert table["image_a"].iloc[0].startswith("data:image/png")
    machine = next(d.value for d in at.dataframe if "judge" in d.value.columns)
    assert machine["judge"].tolist() == ["judge:tiny#00000000"]
    assert machine["pairs with people"].tolist() == [1] and machine["agreement"].tolist() == [0]


def test_review_names_the_clips_of_a_disputed_clip_pair(data_dir: Path) -> None:
    """Two episodes that start from the same pixels: the disputed pair of clips is the one
    starting in episode 1, named by where it starts, not by its first frame's pixels."""
    from tests.store.conftest import _make_frame
    from vlmrm_core.store import dataset_frames, ingest_frames
    from vlmrm_core.store.comparisons import Clip

    db = init_db()
    frames = [
        _make_frame(10 * (e if (e, s) != (1, 0) else 0) + s, source="rollout", episode=e, step=s)
        for e in range(3)
        for s in range(3)
    ]
    ingest_frames(db, "runs", frames)
    at_step = {(m.episode, m.step): m.position for m in dataset_frames(db, "runs")}
    c0, c1, c2 = (Clip(at_step[(e, 0)], 3) for e in range(3))
    add_comparison(db, "runs", c0, c2, "ann", "a")  # agreed
    add_comparison(db, "runs", c0, c2, "bob", "a")
    add_comparison(db, "runs", c1, c2, "ann", "a")  # disputed
    add_comparison(db, "runs", c1, c2, "bob", "b")
    at = page_test("tasks").run()
    at.selectbox(key="tasks-review-dataset").select("runs").run()
    assert not at.exception, [e.value for e in at.exception]
    assert {m.label: m.value for m in at.metric}["Pairs compared"] == "2"
    table = next(d.value for d in at.dataframe if "answers" in d.value.columns)
    assert len(table) == 1
    assert {table["first"].iloc[0], table["second"].iloc[0]} == {
        "clip of 3 frames from frame0.png · episode 1, step 0",
        "clip of 3 frames from frame20.png · episode 2, step 0",
    }
