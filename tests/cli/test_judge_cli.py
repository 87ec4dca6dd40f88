"""VLM judges on the command line: `vlmrm score --judge`, `reward export --judge`, `models`.

The judges are tiny random-init models written with ``save_pretrained`` (tests/judge), loaded
through the same ``from_pretrained`` path a user's model folder takes.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

import vlmrm_core
from tests.judge._tiny_judges import write_idefics3, write_qwen2_5_vl
from tests.judge.test_reward import OTHER_QUESTION, QUESTION, plain_log_probs
from vlmrm_core.cli.main import main


@pytest.fixture(scope="module")
def judge_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli-judges")
    return {
        "idefics3": write_idefics3(root / "idefics3"),
        "qwen2_5_vl": write_qwen2_5_vl(root / "qwen2_5_vl"),
    }


def read_rewards(path: Path) -> tuple[list[str], np.ndarray]:
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    assert rows and list(rows[0]) == ["frame", "reward"]
    return [r["frame"] for r in rows], np.array([float(r["reward"]) for r in rows])


def stored_frames(engine, dataset: str) -> tuple[list, np.ndarray]:
    from vlmrm_core.store import dataset_frames, load_pixels

    frames = dataset_frames(engine, dataset)
    return frames, np.stack([load_pixels(f.hash) for f in frames])


def run_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 1, err
    lines = [line for line in err.splitlines() if line.startswith("vlmrm: error: ")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("arch", ["idefics3", "qwen2_5_vl"])
def test_score_dataset_with_a_judge_equals_load_reward_and_a_plain_forward_pass(
    arch, judge_dirs, data_dir, cartpole_db, tmp_path, capsys
):
    """The issue's done-when check: finite rewards equal (≤ 1e-5) to the library's
    load_reward(...) on the same frames and to a plain transformers forward pass."""
    folder = judge_dirs[arch]
    out = tmp_path / "judge.csv"
    argv = ["score", "--judge", str(folder), "--question", QUESTION, "--dataset", "cp9"]
    assert main([*argv, "--device", "cpu", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "rewards are meaningless" in err  # random weights say so
    names, got = read_rewards(out)
    assert len(got) == 9 and np.isfinite(got).all() and np.ptp(got) > 0

    reward_file = tmp_path / "judge-reward.json"
    export = ["reward", "export", "--judge", str(folder), "--question", QUESTION]
    assert main([*export, "--out", str(reward_file)]) == 0
    frames, pixels = stored_frames(cartpole_db, "cp9")
    assert names == [f.name or f.hash for f in frames]
    loaded = vlmrm_core.load_reward(reward_file, device="cpu")
    assert loaded.source == "judge"
    np.testing.assert_allclose(got, loaded(pixels), atol=1e-5)
    yes, no = loaded.tokens.positive, loaded.tokens.negative  # type: ignore[attr-defined]
    for frame, value in zip(pixels, got, strict=True):
        plain = plain_log_probs(folder, QUESTION, [frame])
        assert value == pytest.approx(float(plain[yes] - plain[no]), abs=1e-5)

    # The same judge through its reward file, and the vision features now on disk.
    again = tmp_path / "again.csv"
    assert main(["score", "--reward", str(reward_file), "--dataset", "cp9", "--device", "cpu",
                 "--out", str(again)]) == 0  # fmt: skip
    np.testing.assert_allclose(read_rewards(again)[1], got, atol=1e-5)
    assert len(list((data_dir / "judge_features").glob("*/*.npz"))) == 9


def test_answers_mode_and_windows_of_episode_frames(judge_dirs, data_dir, tmp_path):
    from vlmrm_core.store import init_db

    folder = judge_dirs["qwen2_5_vl"]
    assert main(["frames", "rollout", "CartPole-v1", "--episodes", "1", "--steps", "4",
                 "--dataset", "ro"]) == 0  # fmt: skip
    out = tmp_path / "w.csv"
    argv = ["score", "--judge", str(folder), "--question", OTHER_QUESTION, "--answers", "no,yes",
            "--mode", "probability", "--frames", "2", "--dataset", "ro", "--device", "cpu"]  # fmt: skip
    assert main([*argv, "--out", str(out)]) == 0
    _, got = read_rewards(out)
    frames, pixels = stored_frames(init_db(), "ro")
    assert [f.step for f in frames] == list(range(len(frames))) and len(frames) >= 3
    reward = vlmrm_core.judge.JudgeReward.load(folder, OTHER_QUESTION, ("no", "yes"), device="cpu")
    positive = reward.tokens.positive
    for t in (0, 2):  # frame 0 alone; frame 2 with frame 1 before it
        window = [pixels[i] for i in range(max(0, t - 1), t + 1)]
        plain = plain_log_probs(folder, OTHER_QUESTION, window)
        assert got[t] == pytest.approx(float(plain[positive].exp()), abs=1e-5)


def test_score_image_files_with_a_judge(judge_dirs, data_dir, tmp_path):
    from PIL import Image

    rng = np.random.default_rng(5)
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"f{i}.png")
        Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(paths[-1])
    out = tmp_path / "files.csv"
    folder = judge_dirs["idefics3"]
    argv = ["score", *map(str, paths), "--judge", str(folder), "--question", QUESTION]
    assert main([*argv, "--device", "cpu", "--batch-size", "2", "--out", str(out)]) == 0
    names, got = read_rewards(out)
    assert names == [p.name for p in paths]
    reward = vlmrm_core.judge.JudgeReward.load(folder, QUESTION, device="cpu")
    expected = reward(np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths]))
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_judge_option_mistakes_are_one_line(judge_dirs, cartpole_db, tmp_path, capsys, monkeypatch):
    import vlmrm_core.judge.models as judge_models

    monkeypatch.setattr(judge_models, "hub_reachable", lambda *a, **k: False)  # offline
    folder = str(judge_dirs["idefics3"])
    base = ["score", "--dataset", "cp9", "--judge", folder, "--question", QUESTION]
    for clip_option in (["--goal", "upright"], ["--alpha", "0.5"], ["--prompt-set", "x"],
                        ["--pretrained", "random"]):  # fmt: skip
        err = run_error([*base, *clip_option], capsys)
        assert f"--judge {folder} and {clip_option[0]} conflict" in err
    assert "needs --judge MODEL" in run_error(
        ["score", "--dataset", "cp9", "--question", QUESTION], capsys
    )
    assert "--judge needs --question" in run_error(
        ["score", "--dataset", "cp9", "--judge", folder], capsys
    )
    assert "two answers separated by a comma" in run_error([*base, "--answers", "yes"], capsys)
    err = run_error([*base, "--answers", "maybe,perhaps"], capsys)
    assert "'perhaps' is not in this model's vocabulary" in err
    err = run_error(["score", "--dataset", "cp9", "--judge", "nobody/no-such-judge-model",
                     "--question", QUESTION], capsys)  # fmt: skip
    assert "`vlmrm models download nobody/no-such-judge-model`" in err

    reward_file = tmp_path / "j.json"
    assert main(["reward", "export", "--judge", folder, "--question", QUESTION,
                 "--out", str(reward_file)]) == 0  # fmt: skip
    err = run_error(["score", "--dataset", "cp9", "--reward", str(reward_file), "--alpha", "0.5"],
                    capsys)  # fmt: skip
    assert "(a judge reward) and --alpha conflict" in err
    err = run_error(["reward", "import", str(reward_file)], capsys)
    assert "holds a 'judge' reward, not a CLIP one" in err


def test_reward_show_of_a_judge_file(judge_dirs, data_dir, tmp_path, capsys):
    reward_file = tmp_path / "j.json"
    argv = ["reward", "export", "--judge", str(judge_dirs["idefics3"]), "--question", QUESTION,
            "--answers", "no,yes", "--frames", "3", "--out", str(reward_file)]  # fmt: skip
    assert main(argv) == 0
    assert "random weights" in capsys.readouterr().out
    assert main(["reward", "show", str(reward_file)]) == 0
    shown = capsys.readouterr().out
    assert QUESTION in shown and "no/yes" in shown and "3 per question" in shown


def test_models_lists_cached_judges_and_download_decides_by_the_id(
    judge_dirs, data_dir, capsys, monkeypatch
):
    import shutil

    shutil.copytree(judge_dirs["idefics3"], data_dir / "models" / "my-judge")
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if "my-judge" in line)
    assert line.split("\t")[1:] == ["judge:idefics3", "folder"]

    import vlmrm_core.judge.models as judge_models

    monkeypatch.setattr(judge_models, "hub_reachable", lambda *a, **k: False)
    err = run_error(["models", "download", "someone/some-vlm"], capsys)
    assert "cannot download someone/some-vlm" in err  # the judge path: a HF id, no tag
    err = run_error(["models", "download", "ViT-B-32"], capsys)
    assert "neither a Hugging Face judge id" in err and "ARCHITECTURE TAG" in err
