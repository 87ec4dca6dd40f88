"""The app loads policies only from the models folder (a picker, not a path box)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.studio._pages import page_path
from vlmrm_core.store import dataset_frames, init_db

FRAMES = page_path("frames")
SB3 = "Saved stable-baselines3 model (.zip)"


@pytest.mark.slow
def test_rollout_policy_comes_from_the_models_folder(data_dir: Path, tmp_path: Path) -> None:
    from stable_baselines3 import PPO

    policies = data_dir / "models" / "policies"
    policies.mkdir(parents=True)
    model = PPO("MlpPolicy", "CartPole-v1", n_steps=32, batch_size=32, seed=0, device="cpu")
    model.save(policies / "ppo-cartpole.zip")
    model.save(tmp_path / "outside.zip")  # a file elsewhere on the server: never offered

    at = AppTest.from_file(str(FRAMES), default_timeout=120)
    at.run()
    assert not [t for t in at.text_input if "path" in t.label.lower()]  # no path box
    at.radio(key="frames-rollout-policy").set_value(SB3).run()
    picker = at.selectbox(key="frames-rollout-policy-file")
    assert [Path(p).name for p in picker.options] == ["ppo-cartpole.zip"]
    at.number_input(key="frames-rollout-steps").set_value(3)
    at.text_input(key="frames-rollout-name").input("with-policy")
    at.button(key="frames-rollout-run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    frames = dataset_frames(init_db(), "with-policy")
    assert len(frames) >= 2
