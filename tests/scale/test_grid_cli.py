"""``vlmrm train sweep`` with the local engine: the options it shares with ``train start``
reach every trial's config (no worker starts: a busy run holds the only slot)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.studio.test_train_page import busy_slot


def test_sweep_takes_the_run_options_of_train_start(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from vlmrm_core.cli.main import main
    from vlmrm_core.store import get_run, init_db
    from vlmrm_core.store.sweeps import get_sweep, sweep_run_ids

    monkeypatch.setenv("VLMRM_HEARTBEAT_S", "600")
    monkeypatch.setenv("VLMRM_MAX_RUNS", "1")
    db = init_db()
    busy_slot()
    argv = [
        "train", "sweep", "--env", "CartPole-v1", "--algo", "dqn", "--steps", "300",
        "--model", "ViT-S-32-alt", "--pretrained", "random", "--goal", "pole upright",
        "--baseline", "pole and cart", "--alpha", "0", "--alpha", "0.5", "--seeds", "2",
        "--seed", "7",
        "--net-arch", "32,32", "--ent-coef", "0.01", "--learning-rate", "0.001",
        "--n-envs", "2", "--episode-length", "50", "--eval-every", "0",
    ]  # fmt: skip
    assert main(argv) == 0
    sweep_id = int(capsys.readouterr().out.split()[-1])
    assert get_sweep(db, sweep_id).engine == "local"
    configs = [get_run(db, r).config for r in sweep_run_ids(db, sweep_id)]
    assert sorted((c["reward"]["alpha"], c["seed"]) for c in configs) == [
        (0.0, 7), (0.0, 8), (0.5, 7), (0.5, 8),
    ]  # fmt: skip
    for config in configs:
        assert config["net_arch"] == [32, 32] and config["ent_coef"] == 0.01
        assert config["learning_rate"] == 0.001 and config["n_envs"] == 2
        assert config["episode_length"] == 50 and config["total_steps"] == 300
        assert config["reward"]["kind"] == "regularized"
        assert config["reward"]["baseline_prompts"] == ["pole and cart"]
        assert config["model"]["architecture"] == "ViT-S-32-alt"


@pytest.mark.parametrize(
    ("precision_args", "expected"), [((), "auto"), (("--precision", "bf16"), "bf16")]
)
def test_trials_from_fp32_prompt_sets_and_reward_files_take_the_chosen_precision(
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    precision_args: tuple[str, ...],
    expected: str,
) -> None:
    """Every trial scores in the sweep's precision (auto unless --precision is given), not the
    fp32 its prompt set or reward file was saved with; both stay as saved."""
    from vlmrm_core.cli.main import main
    from vlmrm_core.enums import Precision
    from vlmrm_core.reward.file import read_reward_file, write_reward_file
    from vlmrm_core.reward.spec import ModelRef, RewardSpec
    from vlmrm_core.store import PromptSet, get_prompt_set, get_run, init_db, save_prompt_set
    from vlmrm_core.store.sweeps import sweep_run_ids

    monkeypatch.setenv("VLMRM_HEARTBEAT_S", "600")
    monkeypatch.setenv("VLMRM_MAX_RUNS", "1")
    db = init_db()
    busy_slot()
    saved = ModelRef("ViT-S-32-alt", None, precision=Precision.FP32)
    save_prompt_set(db, PromptSet("upright", saved, RewardSpec(("pole upright",))))
    reward_file = data_dir / "balanced.json"
    write_reward_file(reward_file, saved, RewardSpec(("pole balanced",)))
    argv = [
        "train", "sweep", "--env", "CartPole-v1", "--algo", "dqn", "--steps", "300",
        "--prompt-set", "upright", "--reward", str(reward_file), "--eval-every", "0",
        *precision_args,
    ]  # fmt: skip
    assert main(argv) == 0
    sweep_id = int(capsys.readouterr().out.split()[-1])
    models = [get_run(db, r).config["model"] for r in sweep_run_ids(db, sweep_id)]
    assert len(models) == 2
    assert {(m["architecture"], m["precision"]) for m in models} == {("ViT-S-32-alt", expected)}
    assert get_prompt_set(db, "upright").model.precision is Precision.FP32
    assert read_reward_file(reward_file).model.precision is Precision.FP32


def test_start_and_sweep_share_one_definition_of_the_run_options() -> None:
    import argparse

    from vlmrm_core.cli.train import add_train_commands

    parser = argparse.ArgumentParser()
    train = add_train_commands(parser.add_subparsers())
    commands = train._subparsers._group_actions[0].choices  # type: ignore[union-attr]

    def options(name: str) -> set[str]:
        return {o for a in commands[name]._actions for o in a.option_strings}

    own = {"--no-launch", "--seeds"}
    start, sweep = options("start") - own, options("sweep") - own
    assert start <= sweep  # every run option of `train start` is a sweep option too
    assert {"--engine", "--address", "--max-concurrent", "--wait"} <= sweep - start


def _finished_sweep() -> tuple[int, dict[int, tuple[float, float | None]]]:
    """A local sweep of six finished trials with metrics written straight to the store (no
    training): arms ``good`` α=0 and α=0.5, ``bad`` α=0.5, two seeds each but one ``bad`` trial
    that never logged a ground-truth return. Returns the sweep id and each run's final
    (CLIP, ground-truth) return."""
    from vlmrm_core.store import add_run_metrics, create_run, init_db, update_run
    from vlmrm_core.store.sweeps import create_sweep, link_run

    db = init_db()
    points = [
        ("good", 0.0, 0, 40.0), ("good", 0.0, 1, 80.0), ("good", 0.5, 0, 90.0),
        ("good", 0.5, 1, 100.0), ("bad", 0.5, 0, 10.0), ("bad", 0.5, 1, None),
    ]  # fmt: skip
    # one spec point per trial, as a real local sweep has: ended trials settle it as finished
    sweep = create_sweep(
        db, name="cartpole\x1b[31m grid", engine_kind="local", spec={"points": [{}] * len(points)}
    )
    finals: dict[int, tuple[float, float | None]] = {}
    for group, alpha, seed, gt in points:
        config = {"seed": seed, "_group": group, "reward": {"alpha": alpha}}
        run = create_run(
            db, name=f"{group}\t{alpha} {seed}", env_id="CartPole-v1", algo="dqn",
            config=config, total_steps=200,
        )  # fmt: skip
        link_run(db, run.id, sweep.id)
        clip = 2.0 + seed
        rows: list[dict[str, float]] = [
            {"step": 100, "episode_clip_return": 1.0},
            {"step": 200, "episode_clip_return": clip},
        ]
        if gt is not None:
            rows[0]["episode_gt_return"], rows[1]["episode_gt_return"] = gt / 2, gt
        add_run_metrics(db, run.id, rows)
        update_run(db, run.id, status="finished", steps_done=200)
        finals[run.id] = (clip, gt)
    return sweep.id, finals


def test_sweep_show_prints_trials_and_the_ranking_of_the_sweep_view(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from vlmrm_core.cli.main import main
    from vlmrm_core.store import get_run, init_db, run_metrics
    from vlmrm_core.store.sweeps import sweep_run_ids
    from vlmrm_core.training.grid_stats import ranking, trial_infos

    sweep_id, finals = _finished_sweep()
    db = init_db()
    runs = [get_run(db, r) for r in sweep_run_ids(db, sweep_id)]
    expected = ranking(trial_infos(runs), {r.id: run_metrics(db, r.id) for r in runs})

    assert main(["train", "sweep", "show", str(sweep_id), "--json"]) == 0
    out = capsys.readouterr().out
    summary = json.loads(out)  # one strict JSON object: no NaN
    assert out.count("\n") == 1
    assert summary["id"] == sweep_id and summary["name"] == "cartpole\x1b[31m grid"
    assert summary["status"] == "finished"  # every trial ended: the local sweep settled
    assert {
        t["run"]: (t["final_clip_return"], t["final_gt_return"]) for t in summary["trials"]
    } == finals
    assert all(t["status"] == "finished" and t["steps_done"] == 200 for t in summary["trials"])
    assert summary["ranking"] == expected.to_dict(orient="records")
    assert [a["arm"] for a in summary["ranking"]] == ["good α=0.5", "good α=0", "bad α=0.5"]
    assert [a["seeds"] for a in summary["ranking"]] == [2, 2, 1]

    assert main(["train", "sweep", "show", str(sweep_id)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "\x1b" not in "".join(lines) and "\\x1b" in lines[0]  # names cannot drive the terminal
    assert lines[1].split("\t")[:3] == ["run", "status", "steps"]
    trial_lines = [line.split("\t") for line in lines[2 : 2 + len(finals)]]
    assert all(len(cells) == 9 for cells in trial_lines)  # the tab in trial names is escaped
    shown = {int(cells[0]): (cells[6], cells[7]) for cells in trial_lines}
    assert shown == {r: (f"{c:g}", "-" if g is None else f"{g:g}") for r, (c, g) in finals.items()}
    ranks = lines[lines.index("rank\tarm\tfinal_mean\tfinal_std\tseeds") + 1 :]
    assert [r.split("\t")[1] for r in ranks] == list(expected["arm"])
    assert [float(r.split("\t")[2]) for r in ranks] == list(expected["final_mean"])


def test_sweep_show_of_an_unknown_sweep_is_one_line_of_error(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from vlmrm_core.cli.main import main
    from vlmrm_core.store import init_db

    init_db()
    assert main(["train", "sweep", "show", "99"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert (
        captured.err.startswith("vlmrm: error: no sweep with id 99")
        and captured.err.count("\n") == 1
    )
    assert main(["train", "sweep", "cancel", "99", "--json"]) == 1
    assert "--json goes with" in capsys.readouterr().err
