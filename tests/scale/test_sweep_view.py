"""The Train page's sweep view under Streamlit's AppTest, on a real SQLite store."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest


def _page() -> None:
    from app.ui import engine
    from app.ui_sweeps import sweeps_section

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
    assert [e.label for e in app.expander] == ["Sweeps (1)"]
    trials, ranked = app.dataframe[0].value, app.dataframe[1].value
    assert len(trials) == 4 and set(trials["reward"]) == {"good", "bad"}
    assert list(ranked["arm"]) == ["good α=0.5", "bad α=0.5"]
    assert list(ranked["final_mean"]) == [60.0, 15.0]
    assert len(app.get("plotly_chart")) == 2
