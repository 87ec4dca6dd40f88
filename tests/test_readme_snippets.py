"""The README's "Use the reward in your own training code" snippets run, as written.

Each fenced Python block of that section is executed in a fresh namespace, in a folder holding a
``reward.json`` of a tiny random-init model, with its step counts made small. A README edit that
breaks a snippet, or changes it so that the substitutions below no longer apply, fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "## Use the reward in your own training code"
TINY_MODEL = "ViT-S-32-alt"

SHORTER = {
    # gymnasium loop: 2 envs, 3 steps
    "num_envs=8": "num_envs=2",
    "range(1000)": "range(3)",
    # SB3: 2 envs, one PPO update on 2×8 steps
    "n_envs=8": "n_envs=2",
    "n_steps=128": "n_steps=8, batch_size=16",
    "total_timesteps=100_000": "total_timesteps=16",
    "verbose=1": "verbose=0",
}
"""Substitutions that make the snippets quick; each snippet must use those of its kind."""


def readme_snippets() -> list[str]:
    """The ```python blocks of the README section, in order."""
    text = README.read_text(encoding="utf-8")
    assert SECTION in text, f"README.md has no section {SECTION!r}"
    section = text.split(SECTION, 1)[1]
    section = re.split(r"^## ", section, maxsplit=1, flags=re.MULTILINE)[0]
    return re.findall(r"^```python\n(.*?)^```", section, flags=re.MULTILINE | re.DOTALL)


def shortened(snippet: str, required: list[str]) -> str:
    for key in required:
        assert key in snippet, f"README snippet no longer contains {key!r}; update SHORTER"
    for key, value in SHORTER.items():
        snippet = snippet.replace(key, value)
    return snippet


@pytest.fixture(scope="module")
def reward_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with ``reward.json``: a random-init ViT-S-32-alt rewarding an upright pole."""
    import vlmrm_core

    spec = vlmrm_core.RewardSpec(
        goal_prompts=("pole vertically upright on top of the cart",),
        baseline_prompts=("pole and cart",),
        alpha=0.5,
    )
    reward_model = vlmrm_core.RewardModel.from_spec(
        spec, model=TINY_MODEL, pretrained=None, device="cpu"
    )
    folder = tmp_path_factory.mktemp("readme")
    vlmrm_core.save_reward(folder / "reward.json", reward_model)
    return folder


def test_the_section_has_a_gymnasium_and_an_sb3_snippet_of_at_most_about_ten_lines() -> None:
    snippets = readme_snippets()
    assert len(snippets) == 2
    assert "CLIPRewardVector" in snippets[0] and "make_clip_vec_env" in snippets[1]
    for snippet in snippets:
        assert 'vlmrm_core.load_reward("reward.json")' in snippet
        code_lines = [line for line in snippet.splitlines() if line.strip()]
        assert len(code_lines) <= 12


def run_snippet(snippet: str, folder: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    monkeypatch.chdir(folder)
    namespace: dict = {"__name__": "__readme__"}
    exec(compile(snippet, f"{README.name} snippet", "exec"), namespace)  # noqa: S102
    return namespace


@pytest.mark.slow
def test_gymnasium_loop_snippet_runs(reward_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    snippet = shortened(readme_snippets()[0], ["num_envs=8", "range(1000)"])
    ns = run_snippet(snippet, reward_dir, monkeypatch)
    from vlmrm_core.wrappers import CLIPRewardVector

    envs, rewards = ns["envs"], ns["rewards"]
    assert isinstance(envs, CLIPRewardVector) and ns["step"] == 2
    # The rewards are the reward model's on the frames reached (no episode can end in 3 steps).
    expected = ns["reward_model"](np.stack(envs.render()))
    np.testing.assert_allclose(rewards, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(ns["infos"]["original_reward"], [1.0, 1.0])
    envs.close()


@pytest.mark.slow
def test_sb3_snippet_runs(reward_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    snippet = shortened(readme_snippets()[1], ["n_envs=8", "n_steps=128", "total_timesteps="])
    ns = run_snippet(snippet, reward_dir, monkeypatch)
    from vlmrm_core.wrappers import CLIPRewardVecEnv

    model = ns["model"]
    assert isinstance(ns["venv"], CLIPRewardVecEnv)
    assert model.num_timesteps >= 16
    assert (reward_dir / "ppo_cartpole_clip.zip").is_file()
    # The reward the policy was trained on is the reward file's, frame by frame.
    assert ns["venv"].reward_fn is ns["reward_model"]
    ns["venv"].close()
