"""The Frames page's LeRobot tab, suggested goal prompts and reversed copies under AppTest,
with the small LeRobot datasets of tests/_lerobot_data.py on disk."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests._lerobot_data import CAMERAS, LENGTHS, TASKS, write_lerobot_dataset
from tests.studio._pages import TINY, page_test
from vlmrm_core.services.episodes import REVERSED_KEY
from vlmrm_core.store import add_label, dataset_frames, get_dataset, init_db, list_datasets
from vlmrm_studio.widgets.common import RANDOM_LABEL


@pytest.fixture
def app(data_dir: Path) -> AppTest:
    at = page_test("frames")
    at.run()
    assert not at.exception
    return at


def _import(at: AppTest, folder: Path, *, camera: str | None = None, episodes: str = "",
            name: str = "robot") -> AppTest:  # fmt: skip
    at.text_input(key="frames-lerobot-path").input(str(folder)).run()
    assert not at.exception
    if camera is not None:
        at.selectbox(key="frames-lerobot-camera").set_value(camera).run()
    at.text_input(key="frames-lerobot-episodes").input(episodes).run()
    at.text_input(key="frames-lerobot-name").input(name).run()
    return at


def _errors(at: AppTest) -> list[str]:
    return [e.value.replace("\\", "") for e in at.error]


def test_lerobot_import_keeps_episodes_and_offers_the_tasks(app, tmp_path):
    folder = write_lerobot_dataset(tmp_path / "so100", "v3.0")
    _import(app, folder, camera=CAMERAS[1], episodes="1:3")
    # the dataset is described before importing; the camera list is the dataset's
    assert app.selectbox(key="frames-lerobot-camera").options == list(CAMERAS)
    assert any("2 episode(s), 16 frames to import" in c.value for c in app.caption)
    app.button(key="frames-lerobot-import").click().run()
    assert not app.exception and not _errors(app)

    engine = init_db()
    frames = dataset_frames(engine, "robot")
    assert sorted({f.episode for f in frames}) == [1, 2]
    for episode in (1, 2):
        steps = sorted(f.step for f in frames if f.episode == episode)
        assert steps == list(range(LENGTHS[episode]))
    meta = get_dataset(engine, "robot").meta["lerobot"]
    assert meta["camera"] == CAMERAS[1]
    # the report, then the tasks as goal prompts, each opening Prompt Lab
    assert {m.label: m.value for m in app.metric}["Added to dataset"] == "16"
    shown = [m.value for m in app.markdown]
    assert all(task in shown for task in TASKS)
    app.button(key="frames-goal-import-1").click().run()
    assert not app.exception
    state = app.session_state
    assert state["lab-goal"] == TASKS[1] and state["lab-view"] == "Episode"
    assert state["current-dataset"] == "robot"

    # Prompt Lab opens on that dataset with the task as its goal, in the Episode view (a new
    # AppTest with the state the button left: AppTest can't follow st.switch_page between
    # pages that only the app's st.navigation registers)
    lab = page_test("prompt_lab")
    for key in ("lab-goal", "lab-baseline", "lab-alpha", "lab-kind", "lab-view", "current-dataset"):
        lab.session_state[key] = state[key]
    lab.session_state["lab-model"] = RANDOM_LABEL
    lab.session_state["lab-arch"] = TINY
    lab.run()
    assert not lab.exception and not lab.error
    assert lab.selectbox(key="lab-dataset").value == "robot"
    assert lab.text_area(key="lab-goal").value == TASKS[1]
    assert lab.radio(key="lab-view").value == "Episode"
    assert lab.selectbox(key="lab-episode-robot").options == [
        "episode 1 (9 steps)",
        "episode 2 (7 steps)",
    ]


@pytest.mark.parametrize(
    ("camera_in_info", "episodes", "expected"),
    [
        (True, "2:9", "out of range"),
        (True, "two", "is not a range"),
        (False, "", "is not in"),  # a camera the folder's videos don't have
    ],
)
def test_bad_lerobot_input_is_one_line_and_imports_nothing(
    app, tmp_path, camera_in_info, episodes, expected
):
    folder = write_lerobot_dataset(tmp_path / "ds", "v2.1")
    if not camera_in_info:
        # the camera is listed in info.json but its videos are gone: the import must refuse
        # and leave no dataset behind
        import shutil

        for video in folder.glob("videos/**/observation.images.wrist"):
            shutil.rmtree(video)
        _import(app, folder, camera=CAMERAS[1])
        app.button(key="frames-lerobot-import").click().run()
        expected = "wrist"
    else:
        _import(app, folder, episodes=episodes)
        assert not [b for b in app.button if b.key == "frames-lerobot-import"]  # no button
    assert not app.exception
    errors = _errors(app)
    assert len(errors) == 1 and "\n" not in errors[0]
    assert expected in errors[0]
    assert "robot" not in {d.name for d in list_datasets(init_db())}


def test_a_folder_that_is_not_a_lerobot_dataset(app, tmp_path):
    app.text_input(key="frames-lerobot-path").input(str(tmp_path)).run()
    assert not app.exception
    assert any("no meta/info.json" in e for e in _errors(app))
    assert not [b for b in app.button if b.key == "frames-lerobot-import"]


def test_reversed_copies_of_the_successful_episodes(app, tmp_path):
    engine = init_db()
    folder = write_lerobot_dataset(tmp_path / "ds", "v3.0")
    from vlmrm_core.services.dataset_import import import_lerobot

    import_lerobot(engine, folder, "robot")
    app.run()
    # no episode labelled successful: a one-line error, no dataset
    app.checkbox(key="frames-reverse-all-robot").uncheck().run()
    app.button(key="frames-reverse").click().run()
    assert not app.exception
    assert any("labelled successful" in e for e in _errors(app))
    assert "robot-reversed" not in {d.name for d in list_datasets(engine)}

    last = max(
        (f for f in dataset_frames(engine, "robot") if f.episode == 2), key=lambda f: f.step or 0
    )
    add_label(engine, "robot", last.hash, "ann", 1.0)
    app.button(key="frames-reverse").click().run()
    assert not app.exception and not _errors(app)
    assert any("robot-reversed" in s.value.replace("\\", "") for s in app.success)
    copy = dataset_frames(engine, "robot-reversed")
    assert {f.episode for f in copy} == {2}
    assert [f.hash for f in copy] == [
        f.hash
        for f in sorted(
            (f for f in dataset_frames(engine, "robot") if f.episode == 2),
            key=lambda f: -(f.step or 0),
        )
    ]
    assert get_dataset(engine, "robot-reversed").meta[REVERSED_KEY]["episodes"] == [2]
    assert app.selectbox(key="frames-dataset").value == "robot-reversed"  # opened at once
