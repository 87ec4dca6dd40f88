"""The Train page's sweep form and sweep view under Streamlit's AppTest, on a real SQLite store
(with a random-init tiny CLIP model for the EPIC column)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import TINY_MODEL


def _page() -> None:
    from vlmrm_studio.views.train.grids import sweeps_section
    from vlmrm_studio.widgets.common import engine

    sweeps_section(engine())


def test_sweep_view_shows_trials_curves_and_ranking(data_dir: Path) -> None:
    from vlmrm_core.store import add_run_metrics, create_run, init_db
    from vlmrm_core.store.sweeps import create_sweep, link_run

    db = init_db()
    sweep = create_sweep(db, name="cartpole grid", engine_kind="ray", spec={"points": []})
    finals = {("good", 0): 50.0, ("good", 1): 70.0, ("bad", 0): 10.0, ("bad", 1): 20.0}
    for (group, seed), final in finals.items():
        config = {"seed": seed, "_group": group, "reward": {"alpha": 0.5}}
        run = create_run(
            db, name=f"{group} {seed}", env_id="CartPole-v1", algo="dqn", config=config,
            total_steps=200,
        )  # fmt: skip
        link_run(db, run.id, sweep.id)
        add_run_metrics(
            db,
            run.id,
            [
                {"step": 100, "episode_gt_return": final / 2, "episode_clip_return": 1.0},
                {"step": 200, "episode_gt_return": final, "episode_clip_return": 2.0},
            ],
        )

    app = AppTest.from_function(_page, default_timeout=60).run()
    assert not app.exception
    assert [e.label for e in app.expander] == ["➕ New sweep", "Sweeps (1)"]
    trials, ranked = app.dataframe[0].value, app.dataframe[1].value
    assert len(trials) == 4 and set(trials["reward"]) == {"good", "bad"}
    assert set(trials["trial"]) == {f"{group} {seed}" for group, seed in finals}
    assert list(ranked["arm"]) == ["good α=0.5", "bad α=0.5"]
    assert list(ranked["final_mean"]) == [60.0, 15.0]
    assert len(app.get("plotly_chart")) == 2


GOALS = ("pole vertically upright on top of the cart", "a red square", "cart at the left edge")


@pytest.mark.slow
def test_ranking_shows_epic_per_reward_and_its_rank_correlation(data_dir: Path, tiny_clip) -> None:
    from scipy.stats import spearmanr

    from vlmrm_core.reward.spec import ModelRef, RewardSpec
    from vlmrm_core.services.evaluation import evaluate_reward, labelled_frames
    from vlmrm_core.services.landscape import embed_hashes
    from vlmrm_core.sources.state_sweeps import cartpole_sweep
    from vlmrm_core.store import (
        add_label,
        add_run_metrics,
        create_run,
        dataset_frames,
        ingest_frames,
        init_db,
    )
    from vlmrm_core.store.sweeps import create_sweep, link_run

    db = init_db()
    # an older labelled dataset of another environment: the default must skip it
    ingest_frames(db, "mountaincar-labels", cartpole_sweep(points=3), kind="sweep")
    ingest_frames(db, "cartpole-labels", cartpole_sweep(points=9), kind="sweep")
    for name in ("mountaincar-labels", "cartpole-labels"):
        for frame in dataset_frames(db, name):
            add_label(db, name, frame.hash, "ann", float(abs(frame.param_value) < 0.5))
    sweep = create_sweep(db, name="three rewards", engine_kind="local", spec={"points": []})
    specs = {f"set{i}": RewardSpec((goal,), ("a cart",), alpha=0.5) for i, goal in enumerate(GOALS)}
    finals = {"set0": 30.0, "set1": 20.0, "set2": 10.0}
    for group, spec in specs.items():
        config = {
            "seed": 0,
            "_group": group,
            "model": ModelRef(TINY_MODEL, None).to_dict(),
            "reward": spec.to_dict(),
        }
        run = create_run(
            db, name=group, env_id="CartPole-v1", algo="dqn", config=config, total_steps=100
        )
        link_run(db, run.id, sweep.id)
        add_run_metrics(db, run.id, [{"step": 100, "episode_gt_return": finals[group]}])

    app = AppTest.from_function(_page, default_timeout=120).run()
    assert not app.exception
    assert app.selectbox(key="train-sweep-epic-dataset").value == "cartpole-labels"
    ranked = app.dataframe[1].value
    assert list(ranked["group"]) == ["set0", "set1", "set2"]
    labelled = labelled_frames(db, "cartpole-labels")
    x = embed_hashes(db, tiny_clip, list(labelled.hashes))
    expected = [
        evaluate_reward(
            tiny_clip, x, labelled.labels, specs[g], prompt_set=g, n_boot=0
        ).metrics.epic_distance
        for g in ranked["group"]
    ]
    assert not app.warning, [w.value for w in app.warning]
    # The page may encode the prompts in another batch than the direct path (text embeddings
    # then differ in the last float32 bits, which a random-init model's tiny reward spread
    # magnifies): a tolerance well below any difference that would change the ranking.
    assert list(ranked["epic"]) == pytest.approx(expected, abs=5e-4)
    rho = spearmanr(expected, [finals[g] for g in ranked["group"]]).statistic
    [metric] = app.metric
    assert metric.value == f"{rho:+.2f}"

    # another dataset: EPIC against its labels instead
    app.selectbox(key="train-sweep-epic-dataset").set_value("mountaincar-labels").run()
    assert not app.exception
    other = labelled_frames(db, "mountaincar-labels")
    x = embed_hashes(db, tiny_clip, list(other.hashes))
    assert app.dataframe[1].value["epic"].iloc[0] == pytest.approx(
        evaluate_reward(
            tiny_clip, x, other.labels, specs["set0"], prompt_set="s", n_boot=0
        ).metrics.epic_distance,
        abs=5e-4,
    )


def _prompt_sets(db) -> None:
    from vlmrm_core.reward.spec import ModelRef, RewardSpec
    from vlmrm_core.store import PromptSet, save_prompt_set

    for name, env, goal in (
        ("cp-a", "CartPole", GOALS[0]),
        ("cp-b", "CartPole", GOALS[1]),
        ("mc", "MountainCar", "a car at the top of the hill"),
    ):
        save_prompt_set(
            db,
            PromptSet(
                name=name,
                model=ModelRef(TINY_MODEL, None),
                reward=RewardSpec((goal,), ("a scene",), alpha=0.25),
                environment=env,
            ),
        )


def _fill_form(app: AppTest) -> AppTest:
    options = app.multiselect(key="train-sweep-prompt-sets").options
    assert "cp-a" in options and "cp-b" in options and "mc" not in options  # by environment
    app.multiselect(key="train-sweep-prompt-sets").set_value(["cp-a", "cp-b"])
    app.number_input(key="train-sweep-steps").set_value(200)
    app.text_input(key="train-sweep-alphas").set_value("0, 0.5")
    return app


@pytest.mark.slow
def test_launch_form_queues_a_local_sweep(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.studio.test_train_page import busy_slot
    from vlmrm_core.store import get_run, init_db
    from vlmrm_core.store.sweeps import list_sweeps, sweep_run_ids

    monkeypatch.setenv("VLMRM_HEARTBEAT_S", "600")
    monkeypatch.setenv("VLMRM_MAX_RUNS", "1")
    monkeypatch.delenv("VLMRM_RAY_ADDRESS", raising=False)
    db = init_db()
    _prompt_sets(db)
    busy_slot()  # holds the only run slot: the trials stay queued, no worker starts

    app = AppTest.from_function(_page, default_timeout=60).run()
    assert not app.exception
    assert app.selectbox(key="train-sweep-engine").options == ["local"]  # no Ray address
    _fill_form(app).button(key="train-sweep-start").click().run()
    assert not app.exception and not app.error
    [sweep] = list_sweeps(db)
    assert "4 trials" in app.success[0].value and f"Sweep {sweep.id}" in app.success[0].value
    runs = [get_run(db, r) for r in sweep_run_ids(db, sweep.id)]
    assert sorted((r.config["_group"], r.config["reward"]["alpha"]) for r in runs) == [
        ("cp-a", 0.0), ("cp-a", 0.5), ("cp-b", 0.0), ("cp-b", 0.5),
    ]  # fmt: skip
    assert {r.status for r in runs} == {"queued"} and {r.total_steps for r in runs} == {200}
    # The sets are saved in fp32 (ModelRef's default); trials train in auto precision.
    assert {r.config["model"]["precision"] for r in runs} == {"auto"}
    trials = app.dataframe[0].value  # the new sweep is selected in the view
    assert len(trials) == 4 and set(trials["status"]) == {"queued"}


@pytest.mark.slow
def test_launch_form_applies_the_per_user_quota(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vlmrm_core.store import init_db, list_runs
    from vlmrm_core.store.sweeps import list_sweeps
    from vlmrm_studio.auth import IDENTITY, Identity

    monkeypatch.setenv("VLMRM_MAX_RUNS_PER_USER", "3")
    monkeypatch.setenv("VLMRM_MAX_RUNS", "1")
    from vlmrm_core.store.users import ensure_admins, set_user_role

    db = init_db()
    _prompt_sets(db)
    # Sign-in on: the service layer checks the role in the store, not only the page's identity.
    ensure_admins(db, ["admin@example.org"])
    set_user_role(db, "ann@example.org", "researcher", actor="admin@example.org")
    app = AppTest.from_function(_page, default_timeout=60)
    app.session_state[IDENTITY] = Identity(email="ann@example.org", role="researcher")
    app.run()
    _fill_form(app).button(key="train-sweep-start").click().run()
    assert not app.exception
    assert "VLMRM_MAX_RUNS_PER_USER" in app.error[0].value.replace("\\", "")
    assert list_sweeps(db) == [] and list_runs(db) == []  # nothing half-started


def test_sweep_view_shows_long_trial_names_whole(data_dir: Path) -> None:
    import json

    from vlmrm_core.store import create_run, init_db
    from vlmrm_core.store.sweeps import create_sweep, link_run

    db = init_db()
    sweep = create_sweep(db, name="long names", engine_kind="local", spec={"points": []})
    group = "paper: cartpole, pole vertically upright on top of the cart"
    name = f"CartPole-v1 DQN · {group} α=0.5 seed 0"
    config = {"seed": 0, "_group": group, "reward": {"alpha": 0.5}}
    run = create_run(
        db, name=name, env_id="CartPole-v1", algo="dqn", config=config, total_steps=200
    )
    link_run(db, run.id, sweep.id)

    app = AppTest.from_function(_page, default_timeout=60).run()
    assert not app.exception
    table = app.dataframe[0]
    assert list(table.value["trial"]) == [name] and list(table.value["reward"]) == [group]
    # Columns wide enough for the whole text (the grid's default cuts it off at a few hundred
    # pixels, with an ellipsis): about 7 px per character of the grid's font.
    columns = json.loads(table.proto.columns)
    assert columns["trial"]["width"] >= 7 * len(name)
    assert columns["reward"]["width"] >= 7 * len(group)
