"""`vlmrm prefs import|export` and `vlmrm adapt --preferences`, end to end on a real store, a
real (random-init) CLIP, and a queued training run on the fitted reward file."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from tests._visible_object import render_visible_object
from vlmrm_core.cli.main import main
from vlmrm_core.frames import FrameRecord
from vlmrm_core.reward.file import read_reward_file
from vlmrm_core.store import get_run, ingest_frames, init_db
from vlmrm_core.store.comparisons import current_comparisons

MODEL = ["--model", "ViT-S-32-alt", "--pretrained", "random"]


@pytest.fixture
def discs(data_dir: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """A dataset ``discs`` of 16 episodes × 6 frames; returns frame names, labels, episodes."""
    data = render_visible_object(episodes=16, steps=6, seed=1)
    records = [
        FrameRecord(
            pixels=p,
            source="rollout",
            name=f"ep{e} t{i % 6}",
            env_id="Disc-v0",
            episode=int(e),
            step=i % 6,
        )  # fmt: skip
        for i, (p, e) in enumerate(zip(data.frames, data.episodes, strict=True))
    ]
    ingest_frames(init_db(), "discs", iter(records))
    return [str(r.name) for r in records], data.labels, data.episodes


def _write_pairs(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["frame_a", "frame_b", "choice"])
        writer.writerows(rows)
    return path


def _known_answers(
    names: list[str], labels: np.ndarray, episodes: np.ndarray, seed: int = 0
) -> list[tuple[str, str, str]]:
    """400 pairs answered from the labels: the disc frame is closer to the goal; two frames of
    the same kind are equal. Half the pairs are within an episode (always held out together)."""
    rng = np.random.default_rng(seed)
    rows: list[tuple[str, str, str]] = []
    seen = set()
    while len(rows) < 400:
        i, j = (int(v) for v in rng.integers(0, len(names), 2))
        if len(rows) % 2 == 0:  # a pair within i's episode
            j = int(rng.choice(np.flatnonzero(episodes == episodes[i])))
        if i == j or (min(i, j), max(i, j)) in seen:
            continue
        seen.add((min(i, j), max(i, j)))
        choice = "equal" if labels[i] == labels[j] else ("a" if labels[i] > labels[j] else "b")
        rows.append((names[i], names[j], choice))
    return rows


def test_prefs_import_and_export(discs, tmp_path: Path, capsys) -> None:
    names, labels, _ = discs
    rows = [(names[0], names[1], "a"), (names[2], names[3], "B"), (names[4], names[0], "equal")]
    source = _write_pairs(tmp_path / "p.csv", rows)
    argv = ["prefs", "import", str(source), "--dataset", "discs", "--labeler", "ann"]
    assert main(argv) == 0
    assert "stored 3 comparisons by ann" in capsys.readouterr().out
    current = current_comparisons(init_db(), "discs")
    assert current["choice"].tolist() == ["a", "b", "equal"]

    out = tmp_path / "out.csv"
    assert main(["prefs", "export", "--dataset", "discs", "--out", str(out)]) == 0
    # The export is itself importable (frames by hash), under another labeller.
    assert main(["prefs", "import", str(out), "--dataset", "discs", "--labeler", "bob"]) == 0
    both = current_comparisons(init_db(), "discs")
    assert sorted(both["labeler"].value_counts().tolist()) == [3, 3]

    jsonl = tmp_path / "out.jsonl"
    assert main(["prefs", "export", "--dataset", "discs", "--out", str(jsonl)]) == 0
    assert len(jsonl.read_text().splitlines()) == 6
    trl = tmp_path / "trl.jsonl"
    argv = ["prefs", "export", "--dataset", "discs", "--out", str(trl), "--format", "trl"]
    assert main([*argv, "--prompt", "Which shows the red disc?"]) == 0
    trl_rows = [json.loads(line) for line in trl.read_text().splitlines()]
    assert len(trl_rows) == 4  # equal answers have no chosen side
    first = trl_rows[0]
    assert first["prompt"] == "Which shows the red disc?"
    assert Path(first["chosen"]).is_file() and Path(first["rejected"]).is_file()
    assert first["images"] == [first["chosen"], first["rejected"]]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([("ep0 t0", "ep0 t1", "left")], "line 3: choice 'left' is not a, b or equal"),
        ([("ep0 t0", "nowhere.png", "a")], "not in dataset 'discs'"),
        ([("ep0 t0", "ep0 t0", "a")], "line 3: frame_a and frame_b are the same frame"),
    ],
)
def test_prefs_import_refuses_a_bad_file_whole(discs, tmp_path, capsys, rows, message) -> None:
    good = ("ep1 t0", "ep1 t1", "a")
    source = _write_pairs(tmp_path / "p.csv", [good, *rows])
    argv = ["prefs", "import", str(source), "--dataset", "discs", "--labeler", "ann"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err, err
    assert current_comparisons(init_db(), "discs").empty  # nothing half-imported


def test_prefs_import_refuses_a_machine_labellers_name(discs, tmp_path, capsys) -> None:
    names, _, _ = discs
    source = _write_pairs(tmp_path / "p.csv", [(names[0], names[1], "a")])
    argv = ["prefs", "import", str(source), "--dataset", "discs", "--labeler", " judge:x"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert "choose a name that does not start with 'judge:'" in err
    assert current_comparisons(init_db(), "discs").empty


def test_prefs_import_needs_the_columns(discs, tmp_path, capsys) -> None:
    source = tmp_path / "p.csv"
    source.write_text("frame,label\nep0 t0,1\n")
    assert main(["prefs", "import", str(source), "--dataset", "discs", "--labeler", "a"]) == 1
    assert "needs columns frame_a, frame_b and choice" in capsys.readouterr().err


@pytest.mark.slow
def test_adapt_preferences_json_and_the_reward_file_queues_a_run(
    discs, tmp_path: Path, capsys
) -> None:
    names, labels, episodes = discs
    source = _write_pairs(tmp_path / "p.csv", _known_answers(names, labels, episodes))
    assert main(["prefs", "import", str(source), "--dataset", "discs", "--labeler", "ann"]) == 0
    out = tmp_path / "bt.json"
    argv = ["adapt", "--dataset", "discs", *MODEL, "--goal", "a red disc", "--preferences",
            "--folds", "4", "--bootstrap", "200", "--out", str(out), "--json"]  # fmt: skip
    assert main(argv) == 0
    captured = capsys.readouterr()
    line = captured.out.strip().splitlines()[-1]
    result = json.loads(line, parse_constant=lambda name: pytest.fail(f"{name} in JSON"))
    assert result["n_pairs"] == 400 and result["folds"] == 4
    for key in ("zero_shot", "adapted"):
        acc = result[key]
        assert 0 <= acc["ci_low"] <= acc["pair_accuracy"] <= acc["ci_high"] <= 1
        assert acc["n_pairs"] > 10
    # A random-init CLIP cannot read "a red disc"; the comparisons teach the reward to see it.
    assert result["adapted"]["pair_accuracy"] > 0.8
    assert result["adapted"]["pair_accuracy"] > result["zero_shot"]["pair_accuracy"]
    assert any(row.startswith("adapted") for row in captured.err.splitlines())

    saved = read_reward_file(out)
    assert saved.reward.kind == "adapted" and len(saved.reward.weights) == 256
    assert saved.reward.bias == 0.0 and saved.reward.goal_prompts == ("a red disc",)
    assert saved.provenance is not None and saved.provenance.n_labels == 400
    prefs = saved.provenance.extra["preferences"]
    assert prefs["adapted"]["accuracy"] == result["adapted"]["pair_accuracy"]
    assert prefs["labelers"] == ["ann"]

    # Only one labeller's comparisons: someone with none is refused in one line.
    argv[argv.index("--preferences") + 1 : argv.index("--preferences") + 1] = ["nobody"]
    assert main(argv) == 1
    assert "no comparisons" in capsys.readouterr().err

    train = ["train", "start", "--reward", str(out), "--env", "CartPole-v1", "--algo", "dqn",
             "--steps", "1000", "--no-launch"]  # fmt: skip
    assert main(train) == 0
    config = get_run(init_db(), int(capsys.readouterr().out)).config
    assert config["reward"]["kind"] == "adapted"
    assert config["reward"]["weights"] == pytest.approx(list(saved.reward.weights))


def test_prefs_judge_prefills_a_machine_labeller_and_prints_agreement(
    data_dir: Path, tmp_path: Path, capsys
) -> None:
    from tests.judge._tiny_judges import write_qwen2_5_vl
    from tests.store.conftest import _make_frame
    from vlmrm_core.frames import pixel_hash
    from vlmrm_core.services.preferences import judge_agreement
    from vlmrm_core.store.comparisons import add_comparison, is_machine_labeler

    engine = init_db()
    frames = [_make_frame(i) for i in range(5)]
    ingest_frames(engine, "small", frames)
    h = [pixel_hash(f.pixels) for f in frames]
    add_comparison(engine, "small", h[0], h[1], "ann", "a")
    add_comparison(engine, "small", h[2], h[3], "ann", "b")
    folder = write_qwen2_5_vl(tmp_path / "qwen")
    argv = ["prefs", "judge", "--dataset", "small", "--judge", str(folder), "--device", "cpu"]
    assert main([*argv, "--pairs", "3", "--margin", "0"]) == 0
    out = capsys.readouterr().out
    current = current_comparisons(engine, "small")
    machine = sorted({n for n in current["labeler"] if is_machine_labeler(n)})
    assert len(machine) == 1 and f"comparisons by {machine[0]}" in out
    # Both of ann's pairs were asked, so the agreement is measured and printed.
    report = judge_agreement(engine, "small", machine[0])
    assert report.n_pairs == 2
    assert f"agreement with people on 2 pairs (2 answers): {report.percent_agreement:.3f}" in out
    assert "ann:" in out

    people_file, all_file = tmp_path / "people.csv", tmp_path / "all.csv"
    assert main(["prefs", "export", "--dataset", "small", "--out", str(people_file)]) == 0
    argv = ["prefs", "export", "--dataset", "small", "--out", str(all_file), "--include-machine"]
    assert main(argv) == 0
    assert machine[0] not in people_file.read_text() and machine[0] in all_file.read_text()
    capsys.readouterr()
    bad = ["prefs", "judge", "--dataset", "small", "--judge", str(folder), "--pairs", "-1"]
    assert main(bad) != 0
    assert "--pairs must be 0 or more" in capsys.readouterr().err


def _write_clip_rows(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_prefs_import_and_export_clips(discs, tmp_path: Path, capsys) -> None:
    header = ["frame_a", "frame_b", "choice", "length", "episode_a", "step_a", "episode_b",
              "step_b"]  # fmt: skip
    rows: list[list[object]] = [
        ["ep0 t0", "ep1 t2", "a", 3, "", "", "", ""],  # clips placed by their first frames
        ["ep2 t1", "ep3 t0", "b", 4, 2, 1, 3, 0],  # ...and by episode and step
        ["ep4 t0", "ep4 t1", "equal", "", "", "", "", ""],  # two frames
    ]
    source = _write_clip_rows(tmp_path / "clips.csv", header, rows)
    assert main(["prefs", "import", str(source), "--dataset", "discs", "--labeler", "ann"]) == 0
    assert "stored 3 comparisons by ann" in capsys.readouterr().out
    current = current_comparisons(init_db(), "discs")
    assert sorted(current["length"]) == [1, 3, 4]

    out = tmp_path / "out.csv"
    assert main(["prefs", "export", "--dataset", "discs", "--out", str(out)]) == 0
    with out.open(encoding="utf-8") as fh:
        exported = {r["choice"]: r for r in csv.DictReader(fh)}
    assert [exported["b"][c] for c in ("length", "episode_a", "step_a", "episode_b", "step_b")] == [
        "4", "2", "1", "3", "0",
    ]  # fmt: skip
    assert exported["a"]["name_a"] == "ep0 t0" and exported["equal"]["length"] == "1"
    assert exported["equal"]["episode_a"] == ""
    # The export reads back as the same clips, under another labeller.
    assert main(["prefs", "import", str(out), "--dataset", "discs", "--labeler", "bob"]) == 0
    both = current_comparisons(init_db(), "discs")
    columns = ["length", "position_a", "position_b", "choice"]
    mine = both[both["labeler"] == "ann"][columns].astype(str).values.tolist()
    theirs = both[both["labeler"] == "bob"][columns].astype(str).values.tolist()
    assert sorted(mine) == sorted(theirs)

    trl = tmp_path / "trl.jsonl"
    argv = ["prefs", "export", "--dataset", "discs", "--out", str(trl), "--format", "trl"]
    assert main(argv) == 0
    assert trl.read_text() == ""  # the clips have no single image per side; the frames tied


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (["ep0 t4", "ep1 t0", "a", "3", "", "", "", ""], "line 3: a clip of 3 frames from step 4"),
        (["ep0 t0", "ep1 t0", "a", "two", "", "", "", ""], "line 3: length 'two' is not a whole"),
        (["ep0 t0", "ep1 t0", "a", "0", "", "", "", ""], "line 3: length '0' must be 1"),
        (["ep0 t0", "ep1 t0", "a", "2", "0", "", "", ""], "give both episode_a and step_a"),
        (["ep0 t0", "ep1 t0", "a", "2", "0", "3", "", ""], "not the one named"),
        (["ep0 t0", "ep1 t0", "a", "2", "99", "0", "", ""], "no frame at episode 99 step 0"),
    ],
)
def test_prefs_import_refuses_bad_clip_rows_whole(discs, tmp_path, capsys, row, message) -> None:
    header = ["frame_a", "frame_b", "choice", "length", "episode_a", "step_a", "episode_b",
              "step_b"]  # fmt: skip
    good = ["ep1 t0", "ep2 t0", "a", "2", "", "", "", ""]
    source = _write_clip_rows(tmp_path / "p.csv", header, [good, row])
    argv = ["prefs", "import", str(source), "--dataset", "discs", "--labeler", "ann"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err, err
    assert current_comparisons(init_db(), "discs").empty
