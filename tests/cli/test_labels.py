"""Frame names in `vlmrm frames import`, `vlmrm labels import` and `vlmrm epic`.

Names do not depend on how a path was typed; a unique end of a name (the file name) finds its
frame; a refused name comes with examples of the expected names; the Label page's CSV export is
read by both commands.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vlmrm_core.cli.main import main
from vlmrm_core.store import dataset_frames, init_db
from vlmrm_core.store.labels import add_label, current_labels, export_labels


def _png(path: Path, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def _error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("vlmrm: error: "), err
    return err


@pytest.fixture
def shots(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Dataset 'd' imported from folder shots/: a/f0.png, a/f1.png, b/f0.png, notes.txt."""
    folder = tmp_path / "work" / "shots"
    _png(folder / "a" / "f0.png", 0)
    _png(folder / "a" / "f1.png", 1)
    _png(folder / "b" / "f0.png", 2)
    (folder / "notes.txt").write_text("not a frame\n")
    monkeypatch.chdir(tmp_path / "work")
    assert main(["frames", "import", "shots", "--dataset", "d"]) == 0
    return folder


def test_frame_names_do_not_depend_on_how_the_folder_was_typed(
    shots: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["frames", "import", str(shots.resolve()), "--dataset", "abs"]) == 0
    captured = capsys.readouterr()
    assert "1 rejected" in captured.out  # the skipped file is reported, as in a ZIP
    assert "rejected notes.txt: notes.txt is not an image" in captured.err
    engine = init_db()
    names = [f.name for f in dataset_frames(engine, "d")]
    assert names == ["a/f0.png", "a/f1.png", "b/f0.png"]
    assert [f.name for f in dataset_frames(engine, "abs")] == names


def test_labels_import_takes_unique_ends_of_names_and_refuses_the_rest_with_examples(
    shots: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = init_db()
    by_name = {f.name: f.hash for f in dataset_frames(engine, "d")}
    good = tmp_path / "good.csv"
    good.write_text("frame,label\nf1.png,1\nb/f0.png,0\n./shots/a/f0.png,1\n")
    argv = ["labels", "import", str(good), "--dataset", "d", "--labeler", "ann"]
    assert main(argv) == 0
    labels = current_labels(engine, "d").set_index("frame_hash")["value"].to_dict()
    assert labels == {by_name["a/f1.png"]: 1.0, by_name["b/f0.png"]: 0.0, by_name["a/f0.png"]: 1.0}

    ambiguous = tmp_path / "ambiguous.csv"
    ambiguous.write_text("frame,label\nf0.png,1\n")
    err = _error(["labels", "import", str(ambiguous), "--dataset", "d", "--labeler", "bo"], capsys)
    assert "'f0.png' could mean several frames" in err and "'a/f0.png', 'b/f0.png'" in err

    unknown = tmp_path / "unknown.csv"
    unknown.write_text("frame,label\nf9.png,1\n")
    err = _error(["labels", "import", str(unknown), "--dataset", "d", "--labeler", "bo"], capsys)
    assert "'f9.png'" in err and "named like 'a/f0.png', 'a/f1.png', 'b/f0.png'" in err

    err = _error(["labels", "import", str(good), "--dataset", "d"], capsys)
    assert "add --labeler NAME" in err


def test_labels_import_reads_the_label_pages_export(
    shots: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = init_db()
    frames = dataset_frames(engine, "d")
    add_label(engine, "d", frames[0].hash, "ann", 1)
    add_label(engine, "d", frames[1].hash, "ann", 0)
    add_label(engine, "d", frames[1].hash, "=bo", 1)  # written as '=bo in the CSV
    export = export_labels(engine, "d", tmp_path / "export.csv")
    assert main(["frames", "import", "shots", "--dataset", "copy"]) == 0
    assert main(["labels", "import", str(export), "--dataset", "copy"]) == 0
    assert "stored 3 labels by =bo, ann" in capsys.readouterr().out
    copied = current_labels(engine, "copy")[["frame_hash", "labeler", "value"]]
    original = current_labels(engine, "d")[["frame_hash", "labeler", "value"]]
    assert copied.to_dict("records") == original.to_dict("records")

    assert main(["frames", "import", "shots", "--dataset", "only-ann"]) == 0
    argv = ["labels", "import", str(export), "--dataset", "only-ann", "--labeler", "ann"]
    assert main(argv) == 0
    assert set(current_labels(engine, "only-ann")["labeler"]) == {"ann"}


def test_epic_matches_names_however_the_paths_were_typed(
    shots: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rewards = tmp_path / "rewards.csv"
    # As `vlmrm score` on the folder by absolute path writes them.
    rewards.write_text(
        "frame,reward\n"
        + "".join(
            f"{shots}/{n},{r}\n"
            for n, r in [("a/f0.png", 0.9), ("a/f1.png", 0.1), ("b/f0.png", 0.5)]
        )
    )
    labels = tmp_path / "labels.csv"
    labels.write_text("frame,label\na/f0.png,1\nf1.png,0\nb/f0.png,1\n")
    assert main(["epic", "--rewards", str(rewards), "--labels", str(labels), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 3 and report["unmatched_rewards"] == 0

    engine = init_db()
    for frame, value in zip(dataset_frames(engine, "d"), [1, 0, 1], strict=True):
        add_label(engine, "d", frame.hash, "ann", value)
    export = export_labels(engine, "d", tmp_path / "export.csv")
    assert main(["epic", "--rewards", str(rewards), "--labels", str(export), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 3

    unrelated = tmp_path / "unrelated.csv"
    unrelated.write_text("frame,label\nx.png,1\ny.png,0\n")
    err = _error(["epic", "--rewards", str(rewards), "--labels", str(unrelated)], capsys)
    assert "the labels like 'x.png', 'y.png'" in err and "shots/a/f0.png" in err

    ambiguous = tmp_path / "ambiguous.csv"
    ambiguous.write_text("frame,reward\nf0.png,0.3\nf1.png,0.2\n")
    err = _error(["epic", "--rewards", str(ambiguous), "--labels", str(labels)], capsys)
    assert "'f0.png' could mean several frames" in err


def test_labels_import_refuses_a_machine_labellers_name_before_storing_any(
    shots: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = init_db()
    good = tmp_path / "good.csv"
    good.write_text("frame,label\na/f0.png,1\na/f1.png,0\n")
    argv = ["labels", "import", str(good), "--dataset", "d", "--labeler", "judge:x"]
    assert "choose a name that does not start with 'judge:'" in _error(argv, capsys)
    # The Label page's export with a row under a machine's name: refused whole.
    frames = dataset_frames(engine, "d")
    add_label(engine, "d", frames[0].hash, "ann", 1)
    add_label(engine, "d", frames[1].hash, "bob", 0)
    export = export_labels(engine, "d", tmp_path / "export.csv")
    forged = tmp_path / "forged.csv"
    forged.write_text(export.read_text().replace(",bob,", ",judge:bob,"))
    assert main(["frames", "import", "shots", "--dataset", "copy"]) == 0
    capsys.readouterr()  # the import's report of the skipped notes.txt
    err = _error(["labels", "import", str(forged), "--dataset", "copy"], capsys)
    assert "'judge:bob' starts with 'judge:'" in err
    assert current_labels(engine, "copy").empty
