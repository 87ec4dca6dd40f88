"""The `vlmrm` command line, run in-process (``main``) and once as a real subprocess."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from vlmrm_core.cli.main import main


def write_png(path: Path, seed: int, size=(48, 64)) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)
    return path


def write_video(path: Path, n_frames: int = 6) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(n_frames):
            img = np.zeros((48, 64, 3), np.uint8)
            img[:, i * 8 : i * 8 + 8] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def read_csv(path: Path) -> list[dict]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def inputs(tmp_path):
    a = write_png(tmp_path / "a.png", 1)
    folder = tmp_path / "shots"
    folder.mkdir()
    write_png(folder / "x.png", 2)
    write_png(folder / "y.png", 3)
    video = write_video(tmp_path / "clip.mp4")
    return a, folder, video


def score_args(tiny_checkpoint, *extra):
    return [
        "--model", "ViT-S-32-alt", "--pretrained", str(tiny_checkpoint),
        "--goal", "pole vertically upright on top of the cart",
        "--baseline", "pole and cart", *extra,
    ]  # fmt: skip


def test_score_files_folders_and_video_in_input_order(data_dir, tiny_checkpoint, inputs, tmp_path):
    a, folder, video = inputs
    out = tmp_path / "rewards.csv"
    argv = [
        "score",
        str(a),
        str(folder),
        str(video),
        *score_args(tiny_checkpoint, "--alpha", "0.5"),
    ]
    assert main([*argv, "--out", str(out)]) == 0
    rows = read_csv(out)
    names = [r["frame"] for r in rows]
    # Named like imported frames: relative to the folder, a file by its name.
    assert names[:3] == [a.name, "x.png", "y.png"]
    assert names[3:] == [f"{video.name}#{i}" for i in range(len(names) - 3)] and len(names) > 5
    assert list(rows[0]) == ["frame", "reward"]
    rewards = [float(r["reward"]) for r in rows]
    assert all(np.isfinite(rewards)) and len(set(rewards)) > 1

    # second run: every embedding comes from the cache and the numbers are identical
    out2 = tmp_path / "again.csv"
    assert main([*argv, "--out", str(out2)]) == 0
    assert read_csv(out2) == rows


def test_score_contrastive_adds_probability(data_dir, tiny_checkpoint, inputs, tmp_path):
    a, folder, _ = inputs
    out = tmp_path / "c.csv"
    contrastive = [
        x for x in score_args(tiny_checkpoint) if x not in ("--baseline", "pole and cart")
    ]
    argv = ["score", str(a), str(folder), *contrastive, "--kind", "contrastive",
            "--negative", "pole fallen over", "--tau", "0.05", "--beta", "0.5", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    rows = read_csv(out)
    assert list(rows[0]) == ["frame", "reward", "probability"]
    for row in rows:
        p = float(row["probability"])
        assert 0 < p < 1 and float(row["reward"]) == float(p > 0.5)


def test_epic_json_matches_the_metric(tmp_path):
    rng = np.random.default_rng(0)
    frames = [f"f{i}.png" for i in range(200)]
    rewards = rng.standard_normal(200)
    labels = (rewards + rng.standard_normal(200) > 0).astype(int)
    with (tmp_path / "r.csv").open("w") as fh:
        fh.write(
            "frame,reward\n" + "".join(f"{f},{r}\n" for f, r in zip(frames, rewards, strict=True))
        )
    with (tmp_path / "l.csv").open("w") as fh:  # different order and an extra unlabelled frame
        fh.write(
            "frame,label\n"
            + "".join(f"{f},{y}\n" for f, y in reversed(list(zip(frames, labels, strict=True))))
        )
        fh.write("extra.png,1\n")
    code = subprocess.run(
        [sys.executable, "-m", "vlmrm_core.cli.main", "epic", "--rewards", str(tmp_path / "r.csv"),
         "--labels", str(tmp_path / "l.csv"), "--json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert code.returncode == 0, code.stderr
    report = json.loads(code.stdout)
    rho = np.corrcoef(rewards, labels)[0, 1]
    assert report["epic_distance"] == pytest.approx(np.sqrt((1 - rho) / 2), abs=1e-9)
    assert report["n"] == 200 and report["ci_low"] < report["epic_distance"] < report["ci_high"]
    assert 0.5 < report["roc_auc"] <= 1 and 0 < report["average_precision"] <= 1
    assert report["unmatched_labels"] == 1


def run_error(argv, capsys):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert len(err.splitlines()) == 1 and err.startswith("vlmrm: error: ")
    return err


def test_errors_are_one_clear_line(data_dir, tiny_checkpoint, tmp_path, capsys):
    good = write_png(tmp_path / "good.png", 0)
    err = run_error(["score", str(tmp_path / "missing.png"), *score_args(tiny_checkpoint)], capsys)
    assert "missing.png: no such file" in err
    fake = tmp_path / "fake.png"
    fake.write_text("hello, I am text")
    err = run_error(["score", str(fake), *score_args(tiny_checkpoint)], capsys)
    assert "fake.png" in err and "not an image" in err
    err = run_error(
        ["score", str(good), "--model", "ViT-Q-99", "--pretrained", "random", "--goal", "x"], capsys
    )
    assert "unknown model architecture" in err
    err = run_error(
        [
            "score",
            str(good),
            "--model",
            "ViT-B-32",
            "--pretrained",
            "laion2b_s34b_b79k",
            "--goal",
            "x",
        ],
        capsys,
    )
    assert "laion2b_s34b_b79k" in err and "local checkpoint" in err
    err = run_error(["score", str(good), *score_args(tiny_checkpoint)[:4], "--goal", "  "], capsys)
    assert "goal prompt 1 is empty" in err
    err = run_error(["score", "--dataset", "nope", *score_args(tiny_checkpoint)], capsys)
    assert "no dataset named 'nope'" in err
    labels = tmp_path / "l.csv"
    labels.write_text("frame,label\na,1\nb,1\nc,1\n")
    rewards = tmp_path / "r.csv"
    rewards.write_text("frame,reward\na,0.1\nb,0.2\nc,0.3\n")
    err = run_error(["epic", "--rewards", str(rewards), "--labels", str(labels)], capsys)
    assert "labels don't vary" in err
    wrong = tmp_path / "w.csv"
    wrong.write_text("name,score\na,1\n")
    err = run_error(["epic", "--rewards", str(wrong), "--labels", str(labels)], capsys)
    assert "needs columns 'frame' and 'reward'" in err


def test_output_file_is_not_half_written_on_error(data_dir, tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "keep.csv"
    out.write_text("frame,reward\nprevious,1\n")
    fake = tmp_path / "bad.png"
    fake.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    good = write_png(tmp_path / "ok.png", 4)
    run_error(
        ["score", str(good), str(fake), *score_args(tiny_checkpoint), "--out", str(out)], capsys
    )
    assert out.read_text() == "frame,reward\nprevious,1\n"


def test_frames_commands_then_score_a_dataset(data_dir, tiny_checkpoint, inputs, tmp_path, capsys):
    a, folder, video = inputs
    assert main(["frames", "import", str(a), str(folder), "--dataset", "mine"]) == 0
    assert "mine: 3 imported, 0 duplicates, 0 rejected" in capsys.readouterr().out
    assert main(["frames", "import", str(a), "--dataset", "mine"]) == 0  # re-import: nothing new
    assert "0 imported" in capsys.readouterr().out
    assert main(["frames", "sweep", "cartpole", "--points", "5", "--dataset", "sweep"]) == 0
    assert main(["frames", "rollout", "CartPole-v1", "--episodes", "1", "--steps", "4",
                 "--dataset", "roll"]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["frames", "list"]) == 0
    listing = capsys.readouterr().out
    assert "mine\tupload\t3 frames" in listing and "sweep\tsweep\t5 frames" in listing
    assert "roll\trollout\t5 frames" in listing  # the reset frame plus 4 steps

    out = tmp_path / "sweep.csv"
    assert (
        main(["score", "--dataset", "sweep", *score_args(tiny_checkpoint), "--out", str(out)]) == 0
    )
    rows = read_csv(out)
    assert [r["frame"] for r in rows][2] == "pole_angle=+0.000" and len(rows) == 5
    capsys.readouterr()

    err = run_error(["frames", "rollout", "CartPol-v1", "--dataset", "x"], capsys)
    assert "CartPole-v1" in err  # suggests the close match


def test_no_weights_message_is_whole(data_dir, tmp_path, capsys, monkeypatch):
    import vlmrm_core.clip.models as models

    monkeypatch.setattr(models, "default_model_choice", lambda *a, **k: None)
    good = write_png(tmp_path / "good.png", 0)
    err = run_error(["score", str(good), "--model", "ViT-B-32", "--goal", "x"], capsys)
    assert "no --pretrained given and no CLIP weights are available on this machine" in err
    assert "--pretrained random" in err


@pytest.mark.parametrize("bad", ["0", "-3", "many"])
def test_score_rejects_a_batch_size_below_one(bad, tmp_path, capsys):
    good = write_png(tmp_path / "good.png", 0)
    with pytest.raises(SystemExit) as exit_info:
        main(["score", str(good), "--pretrained", "random", "--goal", "x", "--batch-size", bad])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--batch-size" in err and ("at least 1" in err or "not a whole number" in err)


def write_rewards_and_labels(tmp_path, rewards, labels):
    frames = [f"f{i}.png" for i in range(len(rewards))]
    (tmp_path / "r.csv").write_text(
        "frame,reward\n" + "".join(f"{f},{r}\n" for f, r in zip(frames, rewards, strict=True))
    )
    (tmp_path / "l.csv").write_text(
        "frame,label\n" + "".join(f"{f},{y}\n" for f, y in zip(frames, labels, strict=True))
    )
    return ["epic", "--rewards", str(tmp_path / "r.csv"), "--labels", str(tmp_path / "l.csv")]


def test_epic_without_bootstrap_prints_no_interval(tmp_path, capsys):
    rng = np.random.default_rng(1)
    rewards = rng.standard_normal(50)
    labels = (rewards > 0).astype(int)
    argv = write_rewards_and_labels(tmp_path, rewards, labels)
    assert main([*argv, "--bootstrap", "0"]) == 0
    out = capsys.readouterr().out
    rho = np.corrcoef(rewards, labels)[0, 1]
    assert f"EPIC distance {np.sqrt((1 - rho) / 2):.4f} (no CI" in out
    assert "None" not in out
    assert main([*argv, "--bootstrap", "0", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ci_low"] is None and report["ci_high"] is None


def test_epic_binarises_graded_labels_like_the_app(tmp_path, capsys):
    from vlmrm_core.metrics.classification import average_precision, roc_auc

    rng = np.random.default_rng(2)
    rewards = rng.standard_normal(60)
    labels = np.clip(np.round((rewards + rng.standard_normal(60)) * 2) / 4 + 0.5, 0, 1)
    assert len(np.unique(labels)) > 2  # graded, not binary
    argv = write_rewards_and_labels(tmp_path, rewards, labels)
    assert main([*argv, "--json", "--bootstrap", "0"]) == 0
    report = json.loads(capsys.readouterr().out)
    success = (labels >= 0.5).astype(int)
    assert report["average_precision"] == pytest.approx(average_precision(rewards, success))
    assert report["roc_auc"] == pytest.approx(roc_auc(rewards, success))
    assert "0.5" in report["success_rule"]
    assert main([*argv, "--bootstrap", "0"]) == 0
    assert "label >= 0.5 counts as success" in capsys.readouterr().out


def test_epic_csvs_accept_a_bom_and_refuse_a_frame_twice(tmp_path, capsys):
    rewards = tmp_path / "rewards.csv"
    labels = tmp_path / "labels.csv"
    rewards.write_text("\ufeffframe,reward\na,0.1\nb,0.9\nc,0.5\n", encoding="utf-8")
    labels.write_text("\ufeffframe,label\na,0\nb,1\nc,1\n", encoding="utf-8")
    assert main(["epic", "--rewards", str(rewards), "--labels", str(labels), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["n"] == 3

    labels.write_text("frame,label\na,0\nb,1\na,1\n", encoding="utf-8")
    assert main(["epic", "--rewards", str(rewards), "--labels", str(labels)]) == 1
    err = capsys.readouterr().err
    assert "lists frame 'a' twice (lines 2 and 4)" in err and "keep one label per frame" in err
