"""Episodes on the command line: LeRobot import, rewards parquet, reversed copies, VOC in epic."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from tests._lerobot_data import CAMERAS, LENGTHS, TASKS, write_lerobot_dataset
from vlmrm_core.cli.main import main


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def run_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    code, _, err = run(argv, capsys)
    assert code == 1
    assert len(err.strip().splitlines()) == 1 and err.startswith("vlmrm: error: "), err
    return err


def model_args(tiny_checkpoint: Path) -> list[str]:
    return ["--model", "ViT-S-32-alt", "--pretrained", str(tiny_checkpoint)]


def prompt_args(tiny_checkpoint: Path) -> list[str]:
    return [*model_args(tiny_checkpoint), "--goal", "a red cube in the gripper"]


@pytest.fixture
def lerobot(tmp_path: Path) -> Path:
    return write_lerobot_dataset(tmp_path / "lerobot", "v3.0")


@pytest.fixture
def imported(data_dir: Path, lerobot: Path, capsys: pytest.CaptureFixture[str]) -> str:
    code, _, _ = run(["frames", "import-lerobot", str(lerobot), "--dataset", "lr"], capsys)
    assert code == 0
    # Stored by reference to a copy of the MP4, not as one PNG per frame: every command below
    # (score, epic, reversed copies) reads the frames back by decoding the video.
    frames_dir = data_dir / "frames"
    assert not list(frames_dir.glob("??/*.png")) and list(frames_dir.glob("videos/*.mp4"))
    return "lr"


def frames_of(name: str):
    from vlmrm_core.store import dataset_frames, init_db

    return dataset_frames(init_db(), name)


def test_import_lerobot_prints_episodes_frames_and_goal_prompts(
    data_dir: Path, lerobot: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["frames", "import-lerobot", str(lerobot), "--dataset", "wrist"]
    code, out, _ = run([*argv, "--camera", CAMERAS[1], "--episodes", "1:3"], capsys)
    assert code == 0
    frames = LENGTHS[1] + LENGTHS[2]
    assert f"2 episode(s) (1-2), {frames} frames of camera {CAMERAS[1]}" in out
    assert "suggested goal prompts (meta/tasks):" in out
    assert all(f"  {task}" in out.splitlines() for task in TASKS)
    stored = frames_of("wrist")
    assert len(stored) == frames
    for episode in (1, 2):
        steps = sorted(f.step for f in stored if f.episode == episode)
        assert steps == list(range(LENGTHS[episode]))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--camera", "observation.images.side"], "observation.images.top"),
        (["--episodes", "2:9"], "out of range"),
        (["--episodes", "x"], "not a range"),
    ],
)
def test_import_lerobot_errors_are_one_line_and_import_nothing(
    data_dir: Path,
    lerobot: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    from vlmrm_core.store import init_db, list_datasets

    err = run_error(["frames", "import-lerobot", str(lerobot), "--dataset", "bad", *extra], capsys)
    assert message in err
    assert [d.name for d in list_datasets(init_db(), include_importing=True)] == []


def test_import_lerobot_of_a_missing_folder(data_dir: Path, capsys, tmp_path: Path) -> None:
    err = run_error(["frames", "import-lerobot", str(tmp_path / "nope"), "--dataset", "x"], capsys)
    assert "no such folder" in err


def test_score_writes_a_rewards_parquet_keyed_by_episode_and_frame(
    imported: str, tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from vlmrm_core.services.reward_export import read_rewards_parquet

    out, table = tmp_path / "rewards.parquet", tmp_path / "rewards.csv"
    for target in (out, table):
        argv = ["score", "--dataset", imported, *prompt_args(tiny_checkpoint), "--out", str(target)]
        assert run(argv, capsys)[0] == 0
    back = read_rewards_parquet(out)
    frames = frames_of(imported)
    assert set(back.rewards_by_key()) == {(f.episode, f.step) for f in frames}
    assert len(back.table) == sum(LENGTHS)
    assert back.identity is not None and back.identity.startswith("clip/ViT-S-32-alt/")
    assert "a red cube in the gripper" in (back.description or "")
    assert back.provenance["dataset"] == imported
    assert back.provenance["lerobot"]["camera"] == CAMERAS[0]
    # The same numbers as the CSV, by frame.
    with table.open() as fh:
        by_name = {row["frame"]: float(row["reward"]) for row in csv.DictReader(fh)}
    keyed = back.rewards_by_key()
    for f in frames:
        assert keyed[(f.episode, f.step)] == pytest.approx(by_name[f.name], abs=1e-6)


def test_score_of_a_windowed_reward_file_applies_the_window_per_episode(
    imported: str, tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from vlmrm_core.reward.file import load_reward, write_reward_file
    from vlmrm_core.reward.spec import ModelRef, RewardSpec
    from vlmrm_core.services.reward_export import read_rewards_parquet
    from vlmrm_core.store import load_pixels

    spec = RewardSpec(("a red cube in the gripper",), window=3)
    path = tmp_path / "windowed.json"
    write_reward_file(path, ModelRef("ViT-S-32-alt", str(tiny_checkpoint)), spec)
    out = tmp_path / "windowed.parquet"
    assert (
        run(["score", "--dataset", imported, "--reward", str(path), "--out", str(out)], capsys)[0]
        == 0
    )
    keyed = read_rewards_parquet(out).rewards_by_key()
    reward = load_reward(path, device="cpu")
    frames = frames_of(imported)
    for episode in range(len(LENGTHS)):
        ordered = sorted((f for f in frames if f.episode == episode), key=lambda f: f.step)
        expected = reward.score_episode(np.stack([load_pixels(f.hash) for f in ordered]))
        got = [keyed[(episode, f.step)] for f in ordered]
        np.testing.assert_allclose(got, expected, atol=1e-5)


def test_a_parquet_needs_a_dataset(data_dir: Path, tiny_checkpoint, tmp_path, capsys) -> None:
    image = tmp_path / "a.png"
    from PIL import Image

    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(image)
    argv = [
        "score",
        str(image),
        *prompt_args(tiny_checkpoint),
        "--out",
        str(tmp_path / "r.parquet"),
    ]
    assert "give --dataset NAME" in run_error(argv, capsys)


def write_labels(path: Path, frames, success_steps: dict[int, int]) -> Path:
    """Label the last frame of each episode: 1 for the episodes in ``success_steps``, else 0."""
    last = {}
    for f in frames:
        if f.episode not in last or f.step > last[f.episode].step:
            last[f.episode] = f
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["frame", "label"])
        for f in frames:
            if f is last[f.episode]:
                writer.writerow([f.name, 1.0 if f.episode in success_steps else 0.0])
            elif f.step == 0:
                writer.writerow([f.name, 0.0])
    return path


def spearman_mean(frames, rewards: dict[str, float], episodes) -> float:
    values = []
    for episode in episodes:
        group = sorted((f for f in frames if f.episode == episode), key=lambda f: f.step)
        values.append(spearmanr([f.step for f in group], [rewards[f.name] for f in group])[0])
    return float(np.mean(values))


def test_epic_json_has_voc_and_the_gap_to_a_reversed_copy(
    imported: str, tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rewards = tmp_path / "rewards.csv"
    argv = ["score", "--dataset", imported, *prompt_args(tiny_checkpoint), "--out", str(rewards)]
    assert run(argv, capsys)[0] == 0
    with rewards.open() as fh:
        by_name = {row["frame"]: float(row["reward"]) for row in csv.DictReader(fh)}
    frames = frames_of(imported)
    labels = write_labels(tmp_path / "labels.csv", frames, {0: 1, 2: 1})
    epic = ["epic", "--rewards", str(rewards), "--labels", str(labels), "--json"]

    code, out, _ = run(epic, capsys)  # no --dataset: no VOC
    assert code == 0 and "voc" not in json.loads(out)

    code, out, _ = run([*epic, "--dataset", imported], capsys)
    report = json.loads(out)
    assert code == 0 and report["epic_distance"] is not None
    voc = report["voc"]
    assert voc["n_episodes"] == 2  # the episodes whose last labelled frame is a success
    assert voc["mean"] == pytest.approx(spearman_mean(frames, by_name, (0, 2)), abs=1e-9)
    assert voc["ci_low"] <= voc["mean"] <= voc["ci_high"]
    assert "voc_gap" not in report  # no reversed copy yet

    code, out, _ = run([*epic, "--dataset", imported, "--demonstrations"], capsys)
    forward = json.loads(out)["voc"]
    assert forward["n_episodes"] == 3
    assert forward["mean"] == pytest.approx(spearman_mean(frames, by_name, (0, 1, 2)), abs=1e-9)

    code, out, _ = run(
        ["frames", "reverse", imported, "--out", "lr-rev", "--demonstrations"], capsys
    )
    assert code == 0 and f"lr-rev: {sum(LENGTHS)} frames" in out
    code, out, _ = run([*epic, "--dataset", imported, "--demonstrations"], capsys)
    gap = json.loads(out)["voc_gap"]  # the copy is found without being named
    assert gap["reversed_dataset"] == "lr-rev" and gap["n_pairs"] == 3
    # Played backwards, every episode's rank correlation flips sign.
    assert gap["reversed_voc"]["mean"] == pytest.approx(-forward["mean"], abs=1e-9)
    assert gap["gap"] == pytest.approx(2 * forward["mean"], abs=1e-9)

    named = [*epic, "--dataset", imported, "--demonstrations", "--reversed", "lr-rev"]
    assert json.loads(run(named, capsys)[1])["voc_gap"]["gap"] == pytest.approx(gap["gap"])
    code, out, _ = run([*epic[:-1], "--dataset", imported, "--demonstrations"], capsys)
    assert "VOC gap forward − reversed (lr-rev)" in out and "VOC " in out


def test_voc_errors_are_one_line(
    imported: str, tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rewards = tmp_path / "rewards.csv"
    argv = ["score", "--dataset", imported, *prompt_args(tiny_checkpoint), "--out", str(rewards)]
    assert run(argv, capsys)[0] == 0
    labels = write_labels(tmp_path / "labels.csv", frames_of(imported), {0: 1})
    epic = ["epic", "--rewards", str(rewards), "--labels", str(labels), "--json"]
    assert "no dataset named 'nope'" in run_error([*epic, "--dataset", "nope"], capsys)
    assert "--reversed needs --dataset" in run_error([*epic, "--reversed", "x"], capsys)
    assert "no dataset named" in run_error(["frames", "reverse", "nope", "--out", "x"], capsys)
    err = run_error(["frames", "reverse", imported, "--out", "copy"], capsys)
    assert "labelled successful" in err  # no labels in the store: nothing is copied


def test_window_option_defines_and_overrides_a_windowed_reward(
    data_dir: Path, tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "w.json"
    argv = ["reward", "export", *prompt_args(tiny_checkpoint), "--window", "3", "--out", str(path)]
    assert run(argv, capsys)[0] == 0
    data = json.loads(path.read_text())
    assert data["source"] == "clip" and data["reward"]["window"] == 3
    # A saved reward's window can be overridden, as α can; the command says so.
    again = tmp_path / "w5.json"
    code, _, err = run(
        ["reward", "export", "--reward", str(path), "--window", "5", "--out", str(again)], capsys
    )
    assert code == 0 and "window 5 instead of" in err
    assert json.loads(again.read_text())["reward"]["window"] == 5
    with pytest.raises(SystemExit) as usage:  # argparse: a usage error, status 2
        main([*argv[:-2], "--window", "0", "--out", str(path)])
    assert usage.value.code == 2 and "must be at least 1" in capsys.readouterr().err


def test_no_voc_for_a_dataset_without_episodes(
    data_dir: Path, tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image

    for i in range(3):
        Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(tmp_path / f"f{i}.png")
    files = [str(tmp_path / f"f{i}.png") for i in range(3)]
    assert run(["frames", "import", *files, "--dataset", "shots"], capsys)[0] == 0
    rewards = tmp_path / "rewards.csv"
    argv = ["score", "--dataset", "shots", *prompt_args(tiny_checkpoint), "--out", str(rewards)]
    assert run(argv, capsys)[0] == 0
    with rewards.open() as fh:
        names = [row["frame"] for row in csv.DictReader(fh)]
    labels = tmp_path / "labels.csv"
    labels.write_text("frame,label\n" + "".join(f"{n},{i % 2}\n" for i, n in enumerate(names)))
    epic = ["epic", "--rewards", str(rewards), "--labels", str(labels), "--json"]
    code, out, _ = run([*epic, "--dataset", "shots"], capsys)
    assert code == 0 and "voc" not in json.loads(out)


def test_epic_of_a_windowed_reward_is_scored_over_episodes_in_time_order(
    imported: str, tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`vlmrm score` then `vlmrm epic --dataset` of a window of 3: EPIC, AP, AUC and VOC are
    those of each episode scored by hand in time order, and the Evaluate page's service
    (:func:`~vlmrm_core.services.evaluation.evaluate_reward_over_time`) gives the same."""
    from vlmrm_core.metrics import reward_metrics
    from vlmrm_core.reward.file import load_reward, write_reward_file
    from vlmrm_core.reward.spec import ModelRef, RewardSpec
    from vlmrm_core.services import evaluation
    from vlmrm_core.services.episodes import dataset_voc
    from vlmrm_core.services.landscape import embed_dataset
    from vlmrm_core.store import init_db, load_pixels

    spec = RewardSpec(("a red cube in the gripper",), window=3)
    path = tmp_path / "windowed.json"
    write_reward_file(path, ModelRef("ViT-S-32-alt", str(tiny_checkpoint)), spec)
    rewards_csv = tmp_path / "rewards.csv"
    argv = ["score", "--dataset", imported, "--reward", str(path), "--out", str(rewards_csv)]
    assert run(argv, capsys)[0] == 0
    frames = frames_of(imported)
    labels_csv = write_labels(tmp_path / "labels.csv", frames, {0: 1, 2: 1})
    epic = ["epic", "--rewards", str(rewards_csv), "--labels", str(labels_csv), "--json"]
    code, out, _ = run([*epic, "--dataset", imported], capsys)
    assert code == 0
    report = json.loads(out)

    reward = load_reward(path, device="cpu")
    by_hand: dict[str, float] = {}
    for episode in range(len(LENGTHS)):
        ordered = sorted((f for f in frames if f.episode == episode), key=lambda f: f.step)
        values = reward.score_episode(np.stack([load_pixels(f.hash) for f in ordered]))
        by_hand.update({f.hash: float(v) for f, v in zip(ordered, values, strict=True)})
    with labels_csv.open() as fh:
        label_of = {row["frame"]: float(row["label"]) for row in csv.DictReader(fh)}
    by_hash = {f.hash: label_of[f.name] for f in frames if f.name in label_of}
    hashes = tuple(sorted(by_hash))
    y = np.array([by_hash[h] for h in hashes])
    want = reward_metrics(np.array([by_hand[h] for h in hashes]), y, n_boot=0)
    assert report["epic_distance"] == pytest.approx(want.epic_distance, abs=1e-5)
    assert report["roc_auc"] == pytest.approx(want.roc_auc, abs=1e-9)
    voc = dataset_voc(frames, [by_hand[f.hash] for f in frames], labels=by_hash, n_boot=1000)
    assert report["voc"]["mean"] == pytest.approx(voc.voc, abs=1e-5)

    # The Evaluate page's numbers, from the cached embeddings the CLI stored.
    embedded = embed_dataset(init_db(), reward.clip, imported)
    labelled = evaluation.LabelledFrames(imported, hashes, y)
    page = evaluation.evaluate_reward_over_time(
        reward.clip, embedded.frames, embedded.embeddings, labelled, spec, prompt_set="w", n_boot=0
    )
    assert page.metrics.epic_distance == pytest.approx(report["epic_distance"], abs=1e-5)
    assert page.metrics.average_precision == pytest.approx(report["average_precision"], abs=1e-9)

    # Each frame alone is another reward.
    alone = reward.reward(np.stack([load_pixels(h) for h in hashes]))
    assert reward_metrics(alone, y, n_boot=0).epic_distance != pytest.approx(
        want.epic_distance, abs=1e-4
    )


def test_epic_says_when_the_reversed_copy_reused_the_forward_rewards(
    imported: str, tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rewards = tmp_path / "rewards.csv"
    argv = ["score", "--dataset", imported, *prompt_args(tiny_checkpoint), "--out", str(rewards)]
    assert run(argv, capsys)[0] == 0
    labels = write_labels(tmp_path / "labels.csv", frames_of(imported), {0: 1, 2: 1})
    assert (
        run(["frames", "reverse", imported, "--out", "lr-rev", "--demonstrations"], capsys)[0] == 0
    )
    epic = ["epic", "--rewards", str(rewards), "--labels", str(labels), "--dataset", imported]
    code, out, _ = run([*epic, "--demonstrations", "--json"], capsys)
    assert code == 0 and json.loads(out)["voc_gap"]["reversed_rewards"] == "forward"
    code, out, _ = run([*epic, "--demonstrations"], capsys)
    assert "give --reversed-rewards" in out
    copied = tmp_path / "copied.csv"
    argv = ["score", "--dataset", "lr-rev", *prompt_args(tiny_checkpoint), "--out", str(copied)]
    assert run(argv, capsys)[0] == 0
    code, out, _ = run(
        [*epic, "--demonstrations", "--json", "--reversed-rewards", str(copied)], capsys
    )
    assert json.loads(out)["voc_gap"]["reversed_rewards"] == str(copied)
