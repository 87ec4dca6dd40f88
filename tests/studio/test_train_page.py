"""The Train page under Streamlit's AppTest, against a temporary data dir.

No worker process is started here: a fake "running" run owned by this test process holds the
only run slot (``VLMRM_MAX_RUNS=1``), so runs launched from the page stay queued.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.studio._pages import page_path
from vlmrm_core.enums import Precision
from vlmrm_core.frames import FrameRecord
from vlmrm_core.reward.spec import ModelRef, RewardSpec
from vlmrm_core.store import (
    PromptSet,
    add_run_metrics,
    create_run,
    get_dataset,
    get_run,
    ingest_frames,
    init_db,
    list_runs,
    save_prompt_set,
    update_run,
)
from vlmrm_core.store.schema import utcnow
from vlmrm_core.training.config import TrainConfig
from vlmrm_core.training.jobs import log_path, run_dir
from vlmrm_core.training.video import VideoWriter
from vlmrm_studio.widgets.common import RANDOM_LABEL

PAGE = page_path("train")


@pytest.fixture
def app(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("VLMRM_HEARTBEAT_S", "600")
    monkeypatch.setenv("VLMRM_MAX_RUNS", "1")
    return AppTest.from_file(str(PAGE), default_timeout=60)


def make_run(status: str, name: str = "run", **fields: object) -> int:
    engine = init_db()
    config = TrainConfig(reward=RewardSpec(goal_prompts=("pole upright",)), total_steps=1000)
    run = create_run(
        engine,
        name=name,
        env_id="CartPole-v1",
        algo="dqn",
        config=config.to_dict(),
        total_steps=1000,
        run_dir=f"runs/{name}",
    )
    update_run(engine, run.id, status=status, **fields)
    return run.id


def busy_slot() -> int:
    """A live-looking running run: this process's pid, a fresh heartbeat."""
    now = utcnow()
    return make_run(
        "running", "busy", pid=os.getpid(), heartbeat_at=now, started_at=now, steps_done=250
    )


def texts(elements: object) -> str:
    return " ".join(str(e.value) for e in elements)  # type: ignore[attr-defined]


def test_empty_page(app: AppTest) -> None:
    app.run()
    assert not app.exception
    assert "No training runs yet" in texts(app.info)
    assert app.button(key="train-start") is not None


def test_paper_defaults_then_start_queues_a_run(app: AppTest) -> None:
    busy = busy_slot()
    app.run()
    app.selectbox(key="train-env").set_value("MountainCarContinuous-v0")
    app.selectbox(key="train-algo").set_value("sac")
    app.run()
    app.button(key="train-paper").click().run()
    assert not app.exception
    assert app.text_input(key="train-hp-gamma").value == "0.9999"
    assert app.text_input(key="train-hp-net_arch").value == "64,64"
    assert "yellow flag" in app.text_area(key="train-goal").value
    assert app.checkbox(key="train-textured").value is True

    app.selectbox(key="train-model-model").set_value(RANDOM_LABEL)
    app.number_input(key="train-steps").set_value(5000)
    app.text_input(key="train-name").input("paper mountaincar")
    app.run()
    app.button(key="train-start").click().run()
    assert not app.exception, app.exception
    assert any("queued" in s.value for s in app.success)

    engine = init_db()
    (new,) = [r for r in list_runs(engine) if r.id != busy]
    assert (new.name, new.status, new.env_id, new.algo) == (
        "paper mountaincar",
        "queued",
        "MountainCarContinuous-v0",
        "sac",
    )
    config = TrainConfig.from_dict(new.config)
    assert (config.total_steps, config.gamma, config.ent_coef, config.net_arch) == (
        5000,
        0.9999,
        0.1,
        [64, 64],
    )
    assert config.model.pretrained is None and config.textured
    # The inline reward's model keeps the run's default precision, auto.
    assert config.model.precision is Precision.AUTO
    assert "yellow flag" in config.reward.goal_prompts[0]

    # The runs table lists both, with badges and progress.
    table = app.dataframe[0].value
    assert set(table["id"]) == {busy, new.id}
    statuses = dict(zip(table["id"], table["status"], strict=True))
    assert "running" in statuses[busy] and "queued" in statuses[new.id]
    assert "250 / 1,000" in set(table["steps"])


def test_invalid_config_is_reported(app: AppTest) -> None:
    app.run()
    app.selectbox(key="train-algo").set_value("sac")  # CartPole has discrete actions
    app.selectbox(key="train-model-model").set_value(RANDOM_LABEL)
    app.run()
    app.button(key="train-start").click().run()
    assert not app.exception
    assert "SAC needs a continuous" in texts(app.error)
    assert list_runs(init_db()) == []


def test_finished_run_details(app: AppTest) -> None:
    engine = init_db()
    run_id = make_run("finished", "done", steps_done=1000)
    run = get_run(engine, run_id)
    add_run_metrics(
        engine,
        run_id,
        [
            {"step": s, "episode_clip_return": 0.1 * s, "episode_gt_return": s, "train/loss": 1.0}
            for s in (100, 200, 300)
        ],
    )
    folder = run_dir(run)
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "checkpoints" / "model_1000.zip").write_bytes(b"zip")
    writer = VideoWriter(folder / "eval" / "eval_1000.mp4", fps=10)
    for i in range(3):
        writer.write(np.full((40, 60, 3), 80 * i, dtype=np.uint8))
    writer.close()
    frames = [
        FrameRecord(
            pixels=np.full((8, 8, 3), i, dtype=np.uint8),
            source="training-eval",
            step=i,
            extra={"clip_reward": 0.5},
        )
        for i in range(3)
    ]
    ingest_frames(engine, f"run-{run_id}-eval-1000", frames, kind="training-eval")
    update_run(engine, run_id, eval_dataset_id=get_dataset(engine, f"run-{run_id}-eval-1000").id)
    log_path(run).write_text("hello from the worker\nrun finished\n")

    app.run()
    assert not app.exception
    assert len(app.get("plotly_chart")) >= 1
    assert len(app.get("video")) == 1
    assert len(app.get("image")) == 3  # the stored evaluation frames
    assert "run finished" in texts(app.code)
    checkpoint_table = app.dataframe[1].value
    assert list(checkpoint_table["model"]) == ["model_1000.zip"]
    assert app.button(key="train-cancel").disabled
    assert app.button(key="train-resume").disabled


def test_cancel_and_resume_buttons(app: AppTest) -> None:
    busy = busy_slot()
    crashed = make_run("crashed", "crashed", error="worker process 1 is gone")
    app.run()
    # The newest run (crashed) is selected first: resume it (it queues behind the busy run).
    assert app.selectbox(key="train-selected").value == crashed
    assert "is gone" in texts(app.code)
    app.button(key="train-resume").click().run()
    assert not app.exception
    assert get_run(init_db(), crashed).status == "queued"

    app.selectbox(key="train-selected").set_value(busy).run()
    app.button(key="train-cancel").click().run()
    assert not app.exception
    assert get_run(init_db(), busy).cancel_requested
    assert "Cancellation requested" in texts(app.info)


def test_start_from_a_saved_prompt_set(app: AppTest) -> None:
    busy_slot()
    app.run()
    app.radio(key="train-source").set_value("Saved prompt set").run()
    assert "No saved prompt sets" in texts(app.warning)
    goal = ("pole vertically upright on top of the cart",)
    saved = ModelRef("ViT-S-32-alt", None, precision=Precision.FP32)
    save_prompt_set(init_db(), PromptSet("upright", saved, RewardSpec(goal), "CartPole"))
    save_prompt_set(  # written for another environment: not offered for CartPole by default
        init_db(),
        PromptSet(
            "flag",
            ModelRef("ViT-B-32", None),
            RewardSpec(("a car at the peak of the mountain",)),
            "MountainCar",
        ),
    )
    app.run()
    assert app.selectbox(key="train-prompt-set").options == ["upright"]
    assert app.selectbox(key="train-prompt-set").value == "upright"
    # which model the set uses, and how fast that is
    captions = texts(app.caption).replace("\\", "")  # captions are Markdown-escaped
    assert "Reward model: ViT-S-32-alt" in captions
    assert "≈1.7 steps/s for ViT-S-32-alt" in captions and "Rough guess" in captions
    app.checkbox(key="train-all-sets").check().run()
    assert set(app.selectbox(key="train-prompt-set").options) == {"upright", "flag"}
    app.selectbox(key="train-prompt-set").set_value("upright").run()
    app.button(key="train-start").click().run()
    assert not app.exception
    (run,) = [r for r in list_runs(init_db()) if r.status == "queued"]
    config = TrainConfig.from_dict(run.config)
    assert (config.prompt_set, config.model.architecture, config.reward.goal_prompts) == (
        "upright",
        "ViT-S-32-alt",
        goal,
    )
    # Trained in auto precision (bf16/fp16 on a GPU), not the fp32 the set was saved with.
    assert config.model.precision is Precision.AUTO


def test_short_run_warns_about_long_intervals_and_scales_them(app: AppTest) -> None:
    busy_slot()
    app.run()
    app.button(key="train-paper").click().run()  # DQN on CartPole: learning_starts 75,000
    app.number_input(key="train-steps").set_value(2000).run()
    warning = texts(app.warning)
    assert "learning starts after 75,000 steps" in warning
    assert "checkpoint every 10,000" in warning and "evaluation every 10,000" in warning
    app.button(key="train-scale").click().run()
    assert not app.exception
    assert "too short" not in texts(app.warning)
    assert app.text_input(key="train-hp-learning_starts").value == "200"
    assert app.number_input(key="train-ckpt").value == 400
    assert app.number_input(key="train-eval").value == 400

    app.selectbox(key="train-model-model").set_value(RANDOM_LABEL).run()
    app.button(key="train-start").click().run()
    assert not app.exception
    (run,) = [r for r in list_runs(init_db()) if r.status == "queued"]
    config = TrainConfig.from_dict(run.config)
    # metrics every min(1000, 2000 / 20) steps: a short run gets live curves
    assert (config.learning_starts, config.checkpoint_every, config.log_every) == (200, 400, 100)


def test_steps_per_second_and_eta_come_from_the_heartbeat_before_any_metrics(
    app: AppTest,
) -> None:
    from datetime import timedelta

    now = utcnow()
    make_run(
        "running",
        "young",
        pid=os.getpid(),
        started_at=now - timedelta(seconds=100),
        heartbeat_at=now,
        steps_done=250,
    )
    app.run()
    assert not app.exception
    table = app.dataframe[0].value
    assert list(table["steps/s"]) == [2.5]  # 250 steps in 100 s, no metrics row yet
    assert list(table["ETA"]) == ["5m 00s"]  # 750 steps left


def test_the_form_offers_only_the_algorithms_hyperparameters(app: AppTest) -> None:
    app.run()
    shown = {t.key for t in app.text_input if t.key.startswith("train-hp-")}
    assert app.selectbox(key="train-algo").value == "dqn"
    assert "train-hp-buffer_size" in shown
    assert not shown & {"train-hp-n_steps", "train-hp-n_epochs", "train-hp-ent_coef"}  # PPO's
    app.selectbox(key="train-algo").set_value("ppo").run()
    shown = {t.key for t in app.text_input if t.key.startswith("train-hp-")}
    assert {"train-hp-n_steps", "train-hp-n_epochs"} <= shown
    assert "train-hp-buffer_size" not in shown


def _expander(app: AppTest, label: str):  # noqa: ANN202 (AppTest's Expander block)
    """The expander whose label starts with ``label``."""
    (found,) = [e for e in app.expander if e.label.startswith(label)]
    return found


def test_start_closes_the_form_and_confirms_outside_it(app: AppTest) -> None:
    busy_slot()
    app.run()
    assert not _expander(app, "➕ New training run").proto.expanded  # runs exist: closed
    app.session_state["train-form"] = True  # the user opens it
    app.run()
    assert _expander(app, "➕ New training run").proto.expanded
    app.selectbox(key="train-model-model").set_value(RANDOM_LABEL).run()
    app.button(key="train-start").click().run()
    assert not app.exception
    (new,) = [r for r in list_runs(init_db()) if r.status == "queued"]
    # Closed after Start, so the new run's live view is in sight; the confirmation is outside the
    # closed form (inside it nobody would see it) and the new run is the one shown.
    form = _expander(app, "➕ New training run")
    assert not form.proto.expanded
    assert not form.success
    assert f"Run {new.id} started (queued)" in texts(app.success)
    assert app.selectbox(key="train-selected").value == new.id
    app.run()  # the confirmation is shown once
    assert "started" not in texts(app.success)


def test_scaling_keeps_the_panel_with_the_new_values_open(app: AppTest) -> None:
    busy_slot()
    app.session_state["train-form"] = True
    app.run()
    app.button(key="train-paper").click().run()
    app.number_input(key="train-steps").set_value(2000).run()
    assert not _expander(app, "Checkpoints, evaluation").proto.expanded
    app.button(key="train-scale").click().run()
    assert not app.exception
    # The panel holding learning_starts, checkpoint and evaluation intervals opens on them, and
    # stays open while the user goes on editing.
    assert _expander(app, "Checkpoints, evaluation").proto.expanded
    assert _expander(app, "➕ New training run").proto.expanded
    app.number_input(key="train-steps").set_value(3000).run()
    assert _expander(app, "Checkpoints, evaluation").proto.expanded


def test_long_run_names_are_shown_whole(app: AppTest) -> None:
    import json

    name = "CartPole-v1 DQN · a very long prompt set name for the upright pole α=0.5 seed 3"
    make_run("finished", name, steps_done=1000)
    app.run()
    assert not app.exception
    columns = json.loads(app.dataframe[0].proto.columns)
    assert columns["name"]["width"] >= 7 * len(name)  # wider than the few hundred px default


def _finished_run(
    seconds: float,
    *,
    steps: int = 1000,
    architecture: str = "ViT-S-32-alt",
    env_id: str = "CartPole-v1",
    resumed: bool = False,
) -> int:
    """A finished DQN run that did ``steps`` steps in ``seconds``."""
    from datetime import timedelta

    from vlmrm_core.reward.spec import ModelRef as Model

    engine = init_db()
    config = TrainConfig(
        env_id=env_id, model=Model(architecture, None), total_steps=steps
    ).to_dict() | ({"_resume": True} if resumed else {})
    run = create_run(
        engine, name="done", env_id=env_id, algo="dqn", config=config, total_steps=steps
    )
    end = utcnow()
    update_run(
        engine,
        run.id,
        status="finished",
        steps_done=steps,
        started_at=end - timedelta(seconds=seconds),
        finished_at=end,
    )
    return run.id


def test_speed_estimate_uses_finished_runs_of_the_same_kind(app: AppTest) -> None:
    saved = ModelRef("ViT-S-32-alt", None)
    save_prompt_set(init_db(), PromptSet("upright", saved, RewardSpec(("pole upright",))))
    app.run()
    app.radio(key="train-source").set_value("Saved prompt set").run()
    captions = texts(app.caption).replace("\\", "")
    assert "Rough guess" in captions and "≈1.7 steps/s" in captions  # nothing measured yet

    _finished_run(250)  # 4 steps/s
    _finished_run(200)  # 5 steps/s
    _finished_run(2000, resumed=True)  # resumed: its start is the first attempt's
    _finished_run(10, architecture="ViT-B-32")  # another model
    _finished_run(10, env_id="Acrobot-v1")  # another environment
    app.run()
    captions = texts(app.caption).replace("\\", "")
    assert "Rough guess" not in captions
    assert "≈4.5 steps/s, measured on the finished 2 runs (median) of CartPole-v1 / DQN" in captions
    assert "100,000 steps take about 6h 10m" in captions
