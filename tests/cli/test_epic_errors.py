"""Bad input to `vlmrm` commands is one line naming the row or option and the fix, never a
traceback: NaN or infinite numbers, a CSV that is not UTF-8, counts below their minimum; and
`vlmrm epic` says why it has no confidence interval."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vlmrm_core.cli.main import main


def _one_line_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run ``vlmrm argv``, expecting exit status 1 and one error line on stderr."""
    capsys.readouterr()
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("vlmrm: error: "), err
    assert "Traceback" not in err
    return err


def _usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run ``vlmrm argv``, expecting argparse's usage error (exit 2) naming the option."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


def _epic_files(tmp_path: Path, rewards: list[str], labels: list[str]) -> list[str]:
    frames = [f"f{i}.png" for i in range(len(rewards))]
    reward_file, label_file = tmp_path / "r.csv", tmp_path / "l.csv"
    reward_file.write_text(
        "frame,reward\n" + "".join(f"{f},{r}\n" for f, r in zip(frames, rewards, strict=True))
    )
    label_file.write_text(
        "frame,label\n" + "".join(f"{f},{y}\n" for f, y in zip(frames, labels, strict=True))
    )
    return ["epic", "--rewards", str(reward_file), "--labels", str(label_file)]


GOOD_REWARDS = ["0.1", "0.9", "0.2", "0.8", "0.3", "0.7"]
GOOD_LABELS = ["0", "1", "0", "1", "0", "1"]


@pytest.mark.parametrize("bad", ["nan", "NaN", "inf", "-Infinity"])
def test_epic_refuses_a_non_finite_reward_naming_its_line(
    bad: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _epic_files(tmp_path, [*GOOD_REWARDS[:3], bad, *GOOD_REWARDS[4:]], GOOD_LABELS)
    err = _one_line_error(argv, capsys)
    assert "r.csv line 5" in err and "reward" in err and "finite" in err


def test_epic_refuses_a_nan_label_naming_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _epic_files(tmp_path, GOOD_REWARDS, ["0", "nan", *GOOD_LABELS[2:]])
    err = _one_line_error(argv, capsys)
    assert "l.csv line 3" in err and "label" in err and "finite" in err


def test_epic_refuses_a_nan_in_the_label_pages_export(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _epic_files(tmp_path, GOOD_REWARDS, GOOD_LABELS)
    export = tmp_path / "export.csv"
    export.write_text(
        "frame_hash,frame_name,labeler,value\n" + "a" * 64 + ",f0.png,ann,1\n" + "b" * 64
        + ",f1.png,ann,nan\n"
    )  # fmt: skip
    err = _one_line_error([*argv[:-1], str(export)], capsys)
    assert "export.csv line 3" in err and "value" in err and "finite" in err


@pytest.mark.parametrize("bad", ["1", "-1"])
def test_epic_refuses_a_bootstrap_of_one_resample(
    bad: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _epic_files(tmp_path, GOOD_REWARDS, GOOD_LABELS)
    err = _usage_error([*argv, "--bootstrap", bad], capsys)
    assert "--bootstrap" in err and "0 (no interval) or at least 2" in err


def test_epic_refuses_a_csv_that_is_not_utf8_naming_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _epic_files(tmp_path, GOOD_REWARDS, GOOD_LABELS)
    latin1 = tmp_path / "r.csv"
    latin1.write_bytes("frame,reward\nf0.png,0.1\nf1.png,0.9\ncaf\u00e9.png,0.5\n".encode("cp1252"))
    err = _one_line_error(argv, capsys)
    assert "r.csv line 4" in err and "UTF-8" in err and "save it as UTF-8" in err


def test_epic_names_the_real_reason_for_no_interval(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two successes among 40 frames: too few for a bootstrap, and the output says so (not
    "--bootstrap 0", which was never given)."""
    rng = np.random.default_rng(0)
    labels = ["1", "1"] + ["0"] * 38
    rewards = [f"{r:.6f}" for r in rng.standard_normal(40)]
    argv = _epic_files(tmp_path, rewards, labels)
    capsys.readouterr()
    assert main(argv) == 0
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert "no CI" in first and "--bootstrap 0" not in first, out
    assert "only 2 of the 40 labels are successes" in first, out
    assert "at least 3 of each" in first, out
    assert main([*argv, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ci_low"] is None and "only 2 of the 40 labels" in report["notes"]
    assert main([*argv, "--bootstrap", "0"]) == 0
    assert "(no CI: --bootstrap 0, n=40)" in capsys.readouterr().out


# --------------------------------------------------------------------------- other commands


def _latin1_csv(path: Path, header: str, row: str) -> Path:
    path.write_bytes(f"{header}\n{row}\n".encode("cp1252"))
    return path


@pytest.mark.parametrize(
    "argv_of, needle",
    [
        pytest.param(
            lambda d: ["labels", "import", str(_latin1_csv(d / "l.csv", "frame,label",
                       "caf\u00e9.png,1")), "--dataset", "d", "--labeler", "ann"],
            "l.csv line 2",
            id="labels-import-not-utf8",
        ),
        pytest.param(
            lambda d: ["labels", "import", str(_latin1_csv(d / "l.csv", "frame,label",
                       "f.png,nan")), "--dataset", "d", "--labeler", "ann"],
            "l.csv line 2: label 'nan' is not a finite number",
            id="labels-import-nan",
        ),
        pytest.param(
            lambda d: ["prefs", "import", str(_latin1_csv(d / "p.csv", "frame_a,frame_b,choice",
                       "caf\u00e9.png,b.png,a")), "--dataset", "d", "--labeler", "ann"],
            "p.csv line 2",
            id="prefs-import-not-utf8",
        ),
        pytest.param(
            lambda d: ["epic", "--rewards", str(_latin1_csv(d / "r.csv", "frame,reward",
                       "a,inf")), "--labels", str(_latin1_csv(d / "l.csv", "frame,label", "a,1"))],
            "r.csv line 2: reward 'inf' is not a finite number",
            id="epic-inf-reward",
        ),
    ],
)  # fmt: skip
def test_bad_csv_input_is_one_line(
    argv_of, needle: str, data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from vlmrm_core.sources.state_sweeps import cartpole_sweep
    from vlmrm_core.store import ingest_frames, init_db

    ingest_frames(
        init_db(), "d", cartpole_sweep(points=2), kind="sweep"
    )  # the dataset the imports name
    err = _one_line_error(argv_of(tmp_path), capsys)
    assert needle in err


@pytest.mark.parametrize(
    "argv, option",
    [
        (["score", "a.png", "--goal", "x", "--batch-size", "0"], "--batch-size"),
        (["embed", "--dataset", "d", "--batch-size", "0"], "--batch-size"),
        (["frames", "import", "a.png", "--dataset", "d", "--every", "0"], "--every"),
        (["frames", "import", "a.png", "--dataset", "d", "--max-video-frames", "0"],
         "--max-video-frames"),
        (["frames", "rollout", "CartPole-v1", "--dataset", "d", "--steps", "0"], "--steps"),
        (["frames", "rollout", "CartPole-v1", "--dataset", "d", "--episodes", "-1"], "--episodes"),
        (["frames", "sweep", "cartpole", "--dataset", "d", "--points", "0"], "--points"),
        (["train", "start", "--env", "CartPole-v1", "--algo", "dqn", "--goal", "x",
          "--steps", "0"], "--steps"),
        (["train", "start", "--env", "CartPole-v1", "--algo", "ppo", "--goal", "x",
          "--steps", "100", "--n-envs", "0"], "--n-envs"),
        (["train", "start", "--env", "CartPole-v1", "--algo", "ppo", "--goal", "x",
          "--steps", "100", "--batch-size", "0"], "--batch-size"),
        (["train", "start", "--env", "CartPole-v1", "--algo", "ppo", "--goal", "x",
          "--steps", "100", "--n-steps", "-5"], "--n-steps"),
        (["train", "start", "--env", "CartPole-v1", "--algo", "dqn", "--goal", "x",
          "--steps", "100", "--eval-every", "-1"], "--eval-every"),
        (["adapt", "--dataset", "d", "--goal", "x", "--out", "a.json", "--folds", "1"], "--folds"),
        (["adapt", "--dataset", "d", "--goal", "x", "--out", "a.json", "--bootstrap", "1"],
         "--bootstrap"),
    ],
)  # fmt: skip
def test_counts_below_their_minimum_are_refused_naming_the_option(
    argv: list[str], option: str, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    try:
        status = main(argv)
    except SystemExit as exc:  # refused by the option's argparse type: a usage line
        status = exc.code
    err = capsys.readouterr().err.strip()
    assert status in (1, 2) and "Traceback" not in err
    line = err.splitlines()[-1]  # a usage error puts the usage first, then the one error line
    assert status == 2 or len(err.splitlines()) == 1, err
    assert option in line and ("at least" in line or "0 (no" in line), line
