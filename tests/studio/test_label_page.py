"""The Label page under Streamlit's AppTest: labelling with the buttons the keyboard shortcuts
trigger, undo and skip, the k-label queue rule, graded labels, agreement and export, against a
real SQLite store in a temporary data dir."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from tests.studio._pages import page_test
from vlmrm_core.frames import FrameRecord, pixel_hash
from vlmrm_core.services.labeling import labeler_seed
from vlmrm_core.store import (
    add_label,
    current_labels,
    ingest_frames,
    init_db,
    label_queue,
    update_dataset,
)
from vlmrm_studio.widgets.text import md_escape


@pytest.fixture
def app(data_dir: Path) -> AppTest:
    return page_test("label")


def make_dataset(n: int = 5, name: str = "ds") -> dict[str, str]:
    """A dataset of n frames named frame0.png …; returns hash → name."""
    records = [
        FrameRecord(
            pixels=np.full((10, 14, 3), 30 * i, np.uint8), source="upload", name=f"frame{i}.png"
        )
        for i in range(n)
    ]
    ingest_frames(init_db(), name, records)
    return {pixel_hash(r.pixels): r.name or "" for r in records}


def shown(at: AppTest) -> str:
    """The caption of the frame on screen."""
    return at.image[0].captions[0]


def labels(name: str = "ds") -> dict[tuple[str, str], float]:
    table = current_labels(init_db(), name)
    return {(r.frame_hash, r.labeler): r.value for r in table.itertuples()}


def test_label_undo_skip_until_done(app: AppTest) -> None:
    names = make_dataset(5)
    app.run()
    assert not app.exception
    assert "Enter your name" in app.info[0].value
    app.text_input(key="label-name").set_value("alice").run()
    order = label_queue(init_db(), "ds", "alice", labeler_seed("alice"))
    assert shown(app) == md_escape(names[order[0]])
    shortcuts = [b.proto.shortcut for b in app.button if b.proto.shortcut]
    assert shortcuts == ["s", "f", "k", "u"]

    app.button(key="label-success").click().run()
    app.button(key="label-failure").click().run()
    app.button(key="label-success").click().run()
    assert labels() == {
        (order[0], "alice"): 1.0,
        (order[1], "alice"): 0.0,
        (order[2], "alice"): 1.0,
    }
    assert shown(app) == md_escape(names[order[3]])
    assert "Yours: 3/5 images labelled" in [p.proto.text for p in app.get("progress")]

    app.button(key="label-undo").click().run()  # the last label goes, its frame comes back
    assert set(labels()) == {(order[0], "alice"), (order[1], "alice")}
    assert shown(app) == md_escape(names[order[2]])
    assert "Undid your label success" in app.caption[-1].value

    app.button(key="label-skip").click().run()  # skipped: to the end, not labelled
    assert shown(app) == md_escape(names[order[3]])
    assert len(labels()) == 2
    app.button(key="label-failure").click().run()
    app.button(key="label-failure").click().run()
    assert shown(app) == md_escape(names[order[2]])  # the skipped frame, last
    app.button(key="label-success").click().run()
    assert "All done" in app.success[0].value
    assert len(labels()) == 5 and labels()[(order[4], "alice")] == 0.0


def test_queue_skips_frames_with_k_labels_from_others(app: AppTest) -> None:
    hashes = list(make_dataset(4))
    engine = init_db()
    add_label(engine, "ds", hashes[0], "bob", 1)
    app.run()
    app.text_input(key="label-name").input("alice").run()
    assert "3 frame(s) left in your queue" in [c.value for c in app.caption]
    progress = [p.proto.text for p in app.get("progress")]
    assert progress == ["Yours: 0/4 images labelled", "Images with ≥ 1 label(s): 1/4"]

    update_dataset(engine, "ds", labels_required=2)
    app.run()
    assert "4 frame(s) left in your queue" in [c.value for c in app.caption]
    add_label(engine, "ds", hashes[0], "cat", 0)
    app.run()
    assert "3 frame(s) left in your queue" in [c.value for c in app.caption]


def test_graded_labels_with_slider(app: AppTest) -> None:
    names = make_dataset(2)
    update_dataset(init_db(), "ds", graded=True)
    app.run()
    app.text_input(key="label-name").set_value("gina").run()
    assert not app.button(key="label-submit").disabled
    assert app.button(key="label-submit").proto.shortcut == "enter"
    current = next(h for h, n in names.items() if shown(app) == md_escape(n))
    app.slider(key=f"label-grade-{current}").set_value(0.7)
    app.button(key="label-submit").click().run()
    assert labels() == {(current, "gina"): pytest.approx(0.7)}


def test_agreement_and_export(app: AppTest, monkeypatch: pytest.MonkeyPatch) -> None:
    hashes = list(make_dataset(4))
    engine = init_db()
    for h, a, b in zip(hashes, [1, 1, 0, 0], [1, 0, 0, 0], strict=True):
        add_label(engine, "ds", h, "alice", a)
        add_label(engine, "ds", h, "bob", b)
    # The export buttons build their files only when clicked (deferred callables registered
    # with Streamlit's media file manager); record them so the test can "click" them.
    deferred: dict[str, tuple[Callable[[], object], str | None]] = {}
    original = MediaFileManager.add_deferred

    def spy(self, data_callable, mimetype, coordinates, file_name=None, **kwargs):  # type: ignore[no-untyped-def]
        deferred[str(file_name)] = (data_callable, mimetype)
        return original(self, data_callable, mimetype, coordinates, file_name, **kwargs)

    monkeypatch.setattr(MediaFileManager, "add_deferred", spy)
    app.run()
    app.button(key="label-view-1").click().run()
    assert not app.exception
    got = {m.label: m.value for m in app.metric}
    assert got["Labelers"] == "2" and got["Frames with ≥ 2 labels"] == "4"
    # κ = 0.5 and α = 8/15 by hand (see tests/test_labeling.py)
    assert got["Krippendorff's α"] == "0.533"
    pairs = app.dataframe[0].value
    assert list(pairs[["labeler_a", "labeler_b"]].iloc[0]) == ["alice", "bob"]
    assert pairs["kappa"].iloc[0] == pytest.approx(0.5)
    disagreements = app.dataframe[1].value
    assert list(disagreements["frame"]) == ["frame1.png"]
    assert disagreements["labels"].iloc[0] == "alice: success, bob: failure"
    assert disagreements["thumbnail"].iloc[0].startswith("data:image/png;base64,")

    downloads = app.get("download_button")
    assert [d.label for d in downloads] == [
        "Download CSV",
        "Download JSONL",
        "Download Parquet",
        "Download Label Studio JSON",
    ]
    assert sorted(deferred) == [
        "labels-ds.csv",
        "labels-ds.jsonl",
        "labels-ds.label-studio.json",
        "labels-ds.parquet",
    ]
    make_ls, ls_mime = deferred["labels-ds.label-studio.json"]
    studio = json.loads(make_ls())  # type: ignore[arg-type]
    assert ls_mime == "application/json" and len(studio) == 4
    assert {len(t["annotations"]) for t in studio} == {2}
    make_csv, mime = deferred["labels-ds.csv"]
    csv = pd.read_csv(io.BytesIO(make_csv()))  # type: ignore[arg-type]
    assert mime == "text/csv" and len(csv) == 8
    by_key = {(r.frame_name, r.labeler): r.value for r in csv.itertuples()}
    assert by_key[("frame1.png", "alice")] == 1.0 and by_key[("frame1.png", "bob")] == 0.0
    parquet = pd.read_parquet(io.BytesIO(deferred["labels-ds.parquet"][0]()))  # type: ignore[arg-type]
    assert len(parquet) == 8


def test_training_evaluation_datasets_are_hidden_until_asked_for(app: AppTest) -> None:
    make_dataset(3, "mine")
    evals = [
        FrameRecord(pixels=np.full((8, 8, 3), 200 + i, np.uint8), source="training-eval", step=i)
        for i in range(2)
    ]
    ingest_frames(init_db(), "run-1-eval-150", evals, kind="training-eval")
    app.run()
    assert not app.exception
    assert app.selectbox(key="label-dataset").options == ["mine"]
    app.checkbox(key="label-show-evals").check().run()
    assert not app.exception
    assert app.selectbox(key="label-dataset").options == ["mine", "run-1-eval-150"]


def test_entering_the_name_replaces_the_box_and_k_is_explained(app: AppTest) -> None:
    """After Enter the name box leaves the page (so the focus leaves it too, without any script
    of ours): the next key press is a shortcut, not more letters of the name."""
    make_dataset(3)
    app.run()
    app.text_input(key="label-name").input("alice").run()
    assert not app.exception
    assert [t.key for t in app.text_input] == []  # no box left to type "s" or "u" into
    assert "Labelling as **alice**" in [m.value for m in app.markdown]
    assert not app.get("html")  # no script of ours runs in the page
    app.button(key="label-success").click().run()
    assert set(labels().values()) == {1.0} and {who for _, who in labels()} == {"alice"}

    app.button(key="label-change-name").click().run()  # the box comes back, with the name
    app.text_input(key="label-name").input("bob").run()
    assert "Labelling as **bob**" in [m.value for m in app.markdown]
    captions = " ".join(c.value for c in app.caption).replace("\\", "")
    assert "k = 1" in captions and "Frames → Browse → Labelling settings" in captions


def test_a_single_labeller_sees_no_green_no_disagreements(app: AppTest) -> None:
    names = make_dataset(3)
    for frame_hash in names:
        add_label(init_db(), "ds", frame_hash, "alice", 1.0)
    app.run()
    app.button(key="label-view-1").click().run()
    assert not app.exception
    assert not [s for s in app.success if "disagreement" in s.value.lower()]
    assert any("at least two labelers" in i.value for i in app.info)


def test_a_duplicate_image_under_two_names_is_counted_alike_on_every_page(
    app: AppTest,
) -> None:
    """One rule (vlmrm_studio.widgets.counts): a dataset's size is its memberships, with the distinct images
    named when they differ; Frames, Prompt Lab and Label all say "3 frames (2 distinct
    images)", and the Label progress counts images (labels belong to images)."""
    same = np.full((10, 14, 3), 77, np.uint8)
    records = [
        FrameRecord(pixels=same, source="upload", name="a.png"),
        FrameRecord(pixels=same.copy(), source="upload", name="zip/a-copy.png"),
        FrameRecord(pixels=np.zeros((10, 14, 3), np.uint8), source="upload", name="b.png"),
    ]
    ingest_frames(init_db(), "ds", records)
    wanted = "3 frames (2 distinct images)"

    app.run()
    app.text_input(key="label-name").set_value("alice").run()
    assert not app.exception
    captions = " ".join(c.value for c in app.caption).replace("\\", "")
    assert f"This dataset: {wanted}." in captions
    assert "Yours: 0/2 images labelled" in [p.proto.text for p in app.get("progress")]

    frames = page_test("frames").run()
    assert not frames.exception
    assert frames.selectbox(key="frames-dataset").options == [f"ds ({wanted})"]
    assert wanted in [c.value for c in frames.caption]

    lab = page_test("prompt_lab").run()
    assert not lab.exception
    assert lab.selectbox(key="lab-dataset").options == [f"ds ({wanted})"]


def test_a_typed_name_with_the_machine_prefix_is_refused(app: AppTest) -> None:
    make_dataset()
    app.run()
    app.text_input(key="label-name").set_value("judge:alice").run()
    assert not app.exception
    fix = md_escape("choose a name that does not start with 'judge:'")  # as the page shows it
    assert any(fix in i.value for i in app.info), [i.value for i in app.info]
    # no labelling controls: only the View switch; the name stays in its box to be corrected
    assert [b.key for b in app.button] == ["label-view-0", "label-view-1"]
    assert app.text_input(key="label-name").value == "judge:alice"
    assert labels() == {}
