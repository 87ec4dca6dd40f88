"""Prompt Lab's Episode view under Streamlit's AppTest: a LeRobot import (three episodes of
5, 9 and 7 frames), the reward on screen and a saved prompt set along one episode, the
scrubber, the labelled frames and the episode's VOC."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests._lerobot_data import LENGTHS, write_lerobot_dataset
from tests.studio._judges import QUESTION, judge_in_models_dir, tiny_judge_source
from tests.studio._pages import TINY, open_with_random_model
from vlmrm_core.metrics.correlation import spearman
from vlmrm_core.reward.model import score_embeddings
from vlmrm_core.reward.spec import ModelRef, RewardSpec
from vlmrm_core.services.dataset_import import import_lerobot
from vlmrm_core.services.episodes import episode_rows
from vlmrm_core.services.landscape import embed_dataset
from vlmrm_core.store import PromptSet, add_label, init_db, save_prompt_set
from vlmrm_studio.views.prompt_lab.episodes import CHART_KEY, step_key

GOAL = "a robot arm holding a red cube"
BASELINE = "a robot arm"
SAVED = "cube <b>v1</b>"  # markup in a name must show as typed
__all__ = ["judge_in_models_dir", "tiny_judge_source"]  # fixtures used by the tests below


@pytest.fixture
def robot_db(data_dir: Path, tmp_path: Path):
    """A project with the LeRobot test dataset imported as ``robot``, frame 8 of episode 1
    labelled a success and frame 0 of episode 1 a failure, and one saved prompt set."""
    engine = init_db()
    folder = write_lerobot_dataset(tmp_path / "lerobot", "v3.0")
    import_lerobot(engine, folder, "robot")
    frames = embed_dataset_frames(engine)
    first = [f for f in frames if f.episode == 1]
    add_label(engine, "robot", next(f.hash for f in first if f.step == 8), "ann", 1.0)
    add_label(engine, "robot", next(f.hash for f in first if f.step == 0), "ann", 0.0)
    save_prompt_set(
        engine,
        PromptSet(
            name=SAVED,
            model=ModelRef(TINY, ""),
            reward=RewardSpec(("an open drawer",), (BASELINE,), 0.5),
        ),
    )
    return engine


def embed_dataset_frames(engine):
    from vlmrm_core.store import dataset_frames

    return dataset_frames(engine, "robot")


def _decoded(value):
    """Plotly sends numpy arrays as ``{"dtype", "bdata"}`` (base64): back to a plain list."""
    if isinstance(value, dict) and "bdata" in value:
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).tolist()
    return value


def _figure(at: AppTest) -> dict:
    chart = next(c for c in at.get("plotly_chart") if CHART_KEY in c.proto.id)
    figure = json.loads(chart.proto.spec)
    for trace in figure["data"]:
        for axis in ("x", "y", "customdata"):
            if axis in trace:
                trace[axis] = _decoded(trace[axis])
    return figure


def _curves(at: AppTest) -> dict[str, list[float]]:
    return {
        t["name"]: t["y"]
        for t in _figure(at)["data"]
        if t.get("name") and not t["name"].startswith(("labelled", "scrubber"))
    }


def _open_episode_view(alpha: float = 0.5) -> AppTest:
    at = open_with_random_model("prompt_lab", "lab", reselect=True)
    at.text_area(key="lab-goal").input(GOAL).run()
    at.text_area(key="lab-baseline").input(BASELINE).run()
    at.slider(key="lab-alpha").set_value(alpha).run()
    at.radio(key="lab-view").set_value("Episode").run()
    assert not at.exception and not at.error
    return at


def _expected(engine, clip, episode: int, spec: RewardSpec) -> tuple[np.ndarray, np.ndarray]:
    """The rewards and steps of one episode, scored outside the app."""
    embedded = embed_dataset(engine, clip, "robot")
    rows = next(
        r for r in episode_rows(embedded.frames)[0] if embedded.frames[r[0]].episode == episode
    )
    steps = np.array([embedded.frames[r].step for r in rows])
    return score_embeddings(clip, embedded.embeddings[rows], spec).rewards, steps


def test_episode_view_draws_the_reward_along_an_episode(robot_db, tiny_clip):
    at = _open_episode_view()
    picker = at.selectbox(key="lab-episode-robot")
    assert picker.options == [f"episode {e} ({n} steps)" for e, n in enumerate(LENGTHS)]
    picker.set_value(1).run()
    assert not at.exception

    curves = _curves(at)
    assert list(curves) == ["on screen (α = 0.5)"]
    rewards, steps = _expected(robot_db, tiny_clip, 1, RewardSpec((GOAL,), (BASELINE,), 0.5))
    assert _figure(at)["data"][0]["x"] == [float(s) for s in range(LENGTHS[1])]
    np.testing.assert_allclose(curves["on screen (α = 0.5)"], rewards, rtol=1e-5, atol=1e-6)
    voc = spearman(rewards, steps)
    markdown = "\n".join(m.value for m in at.markdown)
    assert f"**{voc:+.3f}**" in markdown

    # the labelled frames: a success at step 8, a failure at step 0
    marks = {t["name"]: t["x"] for t in _figure(at)["data"] if t["name"].startswith("labelled")}
    assert marks == {"labelled success": [8.0], "labelled failure": [0.0]}

    # the α slider redraws the curve with the new α (and its VOC)
    at.slider(key="lab-alpha").set_value(0.0).run()
    rewards0, _ = _expected(robot_db, tiny_clip, 1, RewardSpec((GOAL,), (BASELINE,), 0.0))
    np.testing.assert_allclose(_curves(at)["on screen (α = 0)"], rewards0, rtol=1e-5, atol=1e-6)
    assert not np.allclose(rewards0, rewards)


def test_scrubber_moves_the_marker_and_the_frame(robot_db):
    at = _open_episode_view()
    at.selectbox(key="lab-episode-robot").set_value(2).run()
    assert _figure(at)["layout"]["shapes"][0]["x0"] == 0  # starts at the first step
    at.select_slider(key=step_key("robot", 2)).set_value(4).run()
    assert not at.exception
    figure = _figure(at)
    assert figure["layout"]["shapes"][0]["x0"] == 4
    ring = next(t for t in figure["data"] if t["name"] == "scrubber")
    assert ring["x"] == [4.0]
    assert any(c.startswith("step 4 · ") for image in at.image for c in image.captions)
    # each episode keeps its own step
    at.selectbox(key="lab-episode-robot").set_value(0).run()
    assert _figure(at)["layout"]["shapes"][0]["x0"] == 0


def test_saved_prompt_sets_are_drawn_beside_the_editor_reward(robot_db, tiny_clip):
    at = _open_episode_view()
    at.multiselect(key="lab-episode-sets").set_value([SAVED]).run()
    assert not at.exception and not at.error
    curves = _curves(at)
    escaped = "cube &lt;b&gt;v1&lt;/b&gt;"  # Plotly renders HTML: the name is escaped in the legend
    assert list(curves) == ["on screen (α = 0.5)", escaped]
    saved, _ = _expected(robot_db, tiny_clip, 0, RewardSpec(("an open drawer",), (BASELINE,), 0.5))
    np.testing.assert_allclose(curves[escaped], saved, rtol=1e-5, atol=1e-6)
    at.checkbox(key="lab-episode-normalize").check().run()
    for values in _curves(at).values():
        assert min(values) == pytest.approx(0.0) and max(values) == pytest.approx(1.0)
    # without prompts in the editor the saved set is still drawn
    at.text_area(key="lab-goal").input("").run()
    assert not at.exception
    assert list(_curves(at)) == [escaped]


def test_a_dataset_without_episodes_says_so(cartpole_db):
    at = open_with_random_model("prompt_lab", "lab", reselect=True)
    at.text_area(key="lab-goal").input(GOAL).run()
    at.radio(key="lab-view").set_value("Episode").run()
    assert not at.exception
    assert any("has no episodes" in i.value for i in at.info)
    assert not [c for c in at.get("plotly_chart") if CHART_KEY in c.proto.id]


def test_a_saved_judge_of_two_frames_is_drawn_along_the_episode_when_asked(
    robot_db, judge_in_models_dir
):
    from vlmrm_core.services.judge_scores import JudgeRequest, load_judge_reward
    from vlmrm_core.services.saved_judges import save_judge
    from vlmrm_core.store import dataset_frames, load_pixels

    request = JudgeRequest(str(judge_in_models_dir), QUESTION, frames=2)
    judge = load_judge_reward(request, device="cpu")
    save_judge("two <i>frames</i>", judge, environment="robot")
    at = _open_episode_view()
    at.selectbox(key="lab-episode-robot").set_value(2).run()
    at.multiselect(key="lab-episode-judges").set_value(["two <i>frames</i>"]).run()
    assert not at.exception and not at.error
    # slow on a CPU: nothing is judged until asked
    assert list(_curves(at)) == ["on screen (α = 0.5)"]
    assert any("Not judged yet" in c.value for c in at.caption)
    at.button(key="lab-episode-judge-run").click().run()
    assert not at.exception and not at.error
    curves = _curves(at)
    name = "two &lt;i&gt;frames&lt;/i&gt; (judge)"
    assert list(curves) == ["on screen (α = 0.5)", name]
    # the judge sees frames t-1 and t at step t: the episode scored in time order
    episode = sorted(
        (f for f in dataset_frames(robot_db, "robot") if f.episode == 2), key=lambda f: f.step
    )
    pixels = np.stack([load_pixels(f.hash) for f in episode])
    expected = judge.score_episode(pixels)
    np.testing.assert_allclose(curves[name], expected, rtol=1e-4, atol=1e-4)
    assert not np.allclose(expected, judge(pixels), rtol=1e-4, atol=1e-4)
    # kept for the session: another rerun draws it without the button
    at.slider(key="lab-alpha").set_value(0.2).run()
    assert name in _curves(at)
    assert not [b for b in at.button if b.key == "lab-episode-judge-run"]


def test_a_windowed_prompt_set_looks_back_along_the_episode(robot_db, tiny_clip):
    windowed = RewardSpec((GOAL,), (BASELINE,), 0.5, window=3)
    save_prompt_set(robot_db, PromptSet(name="windowed", model=ModelRef(TINY, ""), reward=windowed))
    at = _open_episode_view()
    at.selectbox(key="lab-episode-robot").set_value(1).run()
    at.multiselect(key="lab-episode-sets").set_value(["windowed"]).run()
    assert not at.exception and not at.error
    embedded = embed_dataset(robot_db, tiny_clip, "robot")
    rows = next(r for r in episode_rows(embedded.frames)[0] if embedded.frames[r[0]].episode == 1)
    from vlmrm_core.reward.model import score_episode_embeddings

    expected = score_episode_embeddings(tiny_clip, embedded.embeddings[rows], windowed).rewards
    curves = _curves(at)
    np.testing.assert_allclose(curves["windowed"], expected, rtol=1e-5, atol=1e-6)
    # frame by frame (the old drawing) is another curve: the on-screen set has no window
    np.testing.assert_allclose(
        curves["on screen (α = 0.5)"],
        score_embeddings(tiny_clip, embedded.embeddings[rows], windowed).rewards,
        rtol=1e-5,
        atol=1e-6,
    )
    assert not np.allclose(curves["windowed"], curves["on screen (α = 0.5)"])
