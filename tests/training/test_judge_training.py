"""Training on a VLM judge's reward file: `vlmrm train start --reward JUDGE_FILE` queues it, a
real worker trains a short DQN run on it, and sweeps take judge files as trial groups."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.judge._tiny_judges import write_idefics3
from tests.judge.test_reward import QUESTION
from vlmrm_core.cli.main import main
from vlmrm_core.training.config import ConfigError, TrainConfig, validate, with_reward_file


@pytest.fixture(scope="module")
def judge_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_idefics3(tmp_path_factory.mktemp("train-judge") / "idefics3")


@pytest.fixture
def judge_file(judge_dir: Path, data_dir: Path, tmp_path: Path) -> Path:
    path = tmp_path / "upright-judge.json"
    argv = ["reward", "export", "--judge", str(judge_dir), "--question", QUESTION]
    assert main([*argv, "--out", str(path)]) == 0
    return path


@pytest.mark.usefixtures("workers")
def test_a_judge_reward_file_trains_a_short_dqn_run(
    judge_file: Path, judge_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import vlmrm_core
    from vlmrm_core.store import dataset_frames, get_run, init_db, load_pixels, run_metrics

    capsys.readouterr()
    argv = ["train", "start", "--reward", str(judge_file), "--env", "CartPole-v1",
            "--algo", "dqn", "--steps", "40", "--n-envs", "2", "--learning-starts", "10",
            "--buffer-size", "100", "--net-arch", "16,16", "--checkpoint-every", "40",
            "--eval-every", "40", "--eval-episodes", "1", "--eval-steps", "5",
            "--log-every", "10", "--device", "cpu", "--no-launch"]  # fmt: skip
    assert main(argv) == 0
    run_id = int(capsys.readouterr().out.strip())
    engine = init_db()
    stored = get_run(engine, run_id).config
    assert stored["reward"] is None and stored["reward_data"]["source"] == "judge"
    assert stored["reward_file"] == str(judge_file.resolve())

    assert main(["train", "run", str(run_id)]) == 0
    assert capsys.readouterr().out.strip() == f"run {run_id}: finished"
    run = get_run(engine, run_id)
    assert run.status == "finished" and run.steps_done == 40, run.error
    metrics = run_metrics(engine, run_id)
    assert np.isfinite(metrics["clip_reward_mean"].dropna()).all()
    assert len(metrics["clip_reward_mean"].dropna()) >= 1

    # The evaluation frames were scored by the judge of the reward file.
    frames = dataset_frames(engine, f"run-{run_id}-eval-40")
    assert frames
    reward = vlmrm_core.load_reward(judge_file, device="cpu")
    expected = reward(np.stack([load_pixels(f.hash) for f in frames]))
    got = np.array([f.extra["clip_reward"] for f in frames])
    assert got == pytest.approx(expected, abs=1e-4)


def test_judge_files_beside_clip_options_are_refused(
    judge_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["train", "start", "--reward", str(judge_file), "--env", "CartPole-v1",
            "--algo", "dqn", "--steps", "40", "--no-launch"]  # fmt: skip
    assert main([*argv, "--alpha", "0.5"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("vlmrm: error: ") and len(err.splitlines()) == 1
    assert "(a judge reward) and --alpha conflict" in err
    sweep = ["train", "sweep", "--reward", str(judge_file), "--env", "CartPole-v1",
             "--algo", "dqn", "--steps", "40", "--alpha", "0", "--alpha", "0.5"]  # fmt: skip
    assert main(sweep) == 1
    assert "and --alpha conflict" in capsys.readouterr().err


def test_sweep_points_take_judge_files_next_to_clip_rewards(
    judge_file: Path, tiny_run_config: TrainConfig
) -> None:
    from vlmrm_core.errors import InvalidInputError
    from vlmrm_core.training.grids import sweep_points

    base = tiny_run_config.replace(total_steps=40)
    points = sweep_points(base, reward_files=[str(judge_file)], rewards=[("inline", base)], seeds=2)
    keys = [p["key"] for p in points]
    assert keys == [
        "inline|alpha=0.5|seed=0",
        "inline|alpha=0.5|seed=1",
        "upright-judge|seed=0",
        "upright-judge|seed=1",
    ]
    judge_config = TrainConfig.from_dict(points[2]["config"])
    assert judge_config.reward is None and judge_config.reward_data is not None
    assert judge_config.reward_data["judge"]["question"] == QUESTION
    with pytest.raises(InvalidInputError, match="upright-judge is a judge reward"):
        sweep_points(base, reward_files=[str(judge_file)], alphas=[0.0, 0.5])


def test_configs_with_and_without_a_reward_file(
    judge_file: Path, tiny_run_config: TrainConfig
) -> None:
    # A stored run from before reward files of other sources: no reward_data key at all.
    old_row = tiny_run_config.to_dict()
    del old_row["reward_data"], old_row["reward_file"]
    old = TrainConfig.from_dict(old_row)
    assert old.reward_data is None and old.reward == tiny_run_config.reward

    judged = with_reward_file(tiny_run_config, judge_file)
    assert judged.reward is None and judged.prompt_set is None
    assert TrainConfig.from_dict(judged.to_dict()) == judged
    validate(judged, check_env=False)
    with pytest.raises(ConfigError, match="two rewards"):
        validate(judged.replace(reward=tiny_run_config.reward), check_env=False)
    broken = dict(judged.reward_data or {}, judge=None)
    broken.pop("judge")
    with pytest.raises(ConfigError, match='no "judge" key'):
        validate(judged.replace(reward_data=broken), check_env=False)
    # Back to a CLIP reward: the judge's content is dropped.
    from vlmrm_core.training.config import with_reward

    clip_again = with_reward(judged, tiny_run_config.model, tiny_run_config.reward)
    assert clip_again.reward_data is None and clip_again.reward_file is None
