"""The Frames page under Streamlit's AppTest: imports from every source, browsing, settings and
deletion, against a real SQLite store in a temporary data dir."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from tests.studio._pages import page_test
from vlmrm_core.frames import FrameRecord, pixel_hash
from vlmrm_core.store import (
    count_frames,
    dataset_frames,
    frame_path,
    get_dataset,
    ingest_frames,
    init_db,
    list_datasets,
)
from vlmrm_studio.widgets.text import md_escape


@pytest.fixture
def app(data_dir: Path) -> AppTest:
    return page_test("frames")


def png(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (24, 16), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def captions(at: AppTest) -> list[str]:
    return [c for image in at.image for c in image.captions]


def upload(at: AppTest, files: list[tuple[str, bytes]], name: str) -> AppTest:
    at.file_uploader[0].set_value([(n, data, "application/octet-stream") for n, data in files])
    at.text_input(key="frames-upload-name").set_value(name)
    return at.button(key="frames-upload-import").click().run()


def test_upload_images_zip_and_a_bad_file(app: AppTest) -> None:
    app.run()
    assert not app.exception
    assert "No datasets yet" in app.info[0].value
    red, blue, green = png((255, 0, 0)), png((0, 0, 255)), png((0, 255, 0))
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("a/green.png", green)
        z.writestr("a/red-copy.png", red)
    files = [
        ("red.png", red),
        ("blue.png", blue),
        ("more.zip", archive.getvalue()),
        ("notes.png", b"just some text pretending to be a PNG"),
    ]
    upload(app, files, "shots")
    assert not app.exception and not app.error
    got = metrics(app)
    assert got["Imported (new frames)"] == "3"
    assert got["Already stored"] == "1"  # "Duplicates" did not say of what
    assert got["Rejected"] == "1"
    assert got["Added to dataset"] == "4"
    rejected = app.table[0].value  # a static table: long reasons wrap, never cut off
    assert list(rejected.index) == [md_escape("notes.png")]
    assert "not an image" in rejected["reason"].iloc[0]

    engine = init_db()
    frames = dataset_frames(engine, "shots")
    assert [f.name for f in frames] == [
        "red.png",
        "blue.png",
        "a/green.png",
        "a/red-copy.png",
    ]
    assert count_frames(engine, "shots", distinct_frames=True) == 3
    # the new dataset is selected for browsing, with its summary and thumbnails
    assert app.selectbox(key="frames-dataset").value == "shots"
    assert got["Kind"] == "upload" and got["Frames"] == "4"
    assert captions(app) == [md_escape(f.name) for f in frames]
    # the uploader was emptied, so a second click cannot import the same files by accident
    assert not app.file_uploader[0].value

    upload(app, files, "shots")  # the same files again: duplicates, nothing added
    got = metrics(app)
    assert (got["Imported (new frames)"], got["Already stored"], got["Added to dataset"]) == (
        "0",
        "4",
        "0",
    )
    assert count_frames(engine, "shots") == 4


def test_upload_errors_are_shown(app: AppTest) -> None:
    app.run()
    upload(app, [("a.png", png((1, 2, 3)))], "   ")
    assert [e.value for e in app.error] == [md_escape("Enter a dataset name.")]
    app.file_uploader[0].set_value(None)
    app.text_input(key="frames-upload-name").set_value("x")
    app.button(key="frames-upload-import").click().run()
    assert "Choose at least one file" in app.error[0].value
    assert list_datasets(init_db()) == []


def test_a_fully_rejected_upload_creates_no_dataset(app: AppTest) -> None:
    app.run()
    upload(app, [("notes.txt", b"just text"), ("more.txt", b"more text")], "texts")
    assert not app.exception
    errors = " ".join(e.value for e in app.error).replace("\\", "")
    assert "was not created" in errors and "notes.txt" in errors
    assert not app.success
    assert list_datasets(init_db()) == []
    # adding a rejected file to an existing dataset is not an error: the dataset exists
    upload(app, [("ok.png", png((3, 4, 5)))], "texts")
    upload(app, [("notes.txt", b"just text")], "texts")
    assert not app.error
    assert get_dataset(init_db(), "texts").n_frames == 1


def test_hostile_file_names_are_escaped(app: AppTest) -> None:
    app.run()
    name = "[click](http://evil.example) **x** <b>.png"
    upload(app, [(name, png((9, 8, 7)))], "<i>ds</i>")
    assert not app.exception
    assert captions(app) == [md_escape(name)]
    assert md_escape("<i>ds</i>") in app.success[0].value
    assert dataset_frames(init_db(), "<i>ds</i>")[0].name == name


def test_rollout_and_sweep_tabs(app: AppTest) -> None:
    app.run()
    # Unknown env id: a clear error with a suggestion, nothing created.
    app.text_input(key="frames-rollout-env").set_value("CartPol-v1")
    app.text_input(key="frames-rollout-name").set_value("cp")
    app.button(key="frames-rollout-run").click().run()
    assert "Unknown gymnasium environment" in app.error[0].value
    assert "CartPole\\-v1" in app.error[0].value

    app.button_group(key="frames-rollout-suggestion").set_value("MountainCar-v0").run()
    assert app.text_input(key="frames-rollout-env").value == "MountainCar-v0"
    app.text_input(key="frames-rollout-env").set_value("CartPole-v1")
    app.number_input(key="frames-rollout-steps").set_value(2)
    app.button(key="frames-rollout-run").click().run()
    assert not app.error
    assert [(f.episode, f.step) for f in dataset_frames(init_db(), "cp")] == [
        (0, 0),
        (0, 1),
        (0, 2),
    ]

    app.selectbox(key="frames-sweep-kind").set_value("cartpole")
    app.number_input(key="frames-sweep-points").set_value(3)
    app.text_input(key="frames-sweep-name").set_value("angles")
    app.button(key="frames-sweep-run").click().run()
    assert not app.exception and not app.error
    assert app.selectbox(key="frames-dataset").value == "angles"
    assert captions(app) == [md_escape(f"pole_angle={v}") for v in ("-1.571", "+0.000", "+1.571")]
    assert metrics(app)["Kind"] == "sweep"

    # Humanoid poses: bad input is refused before MuJoCo is touched.
    app.multiselect(key="frames-humanoid-poses").set_value([])
    app.text_input(key="frames-humanoid-name").set_value("poses")
    app.button(key="frames-humanoid-run").click().run()
    assert "Choose at least one pose" in app.error[0].value


def _frames(n: int, start: int = 0) -> list[FrameRecord]:
    return [
        FrameRecord(pixels=np.full((8, 12, 3), i, np.uint8), source="rollout", name=f"f{i}", step=i)
        for i in range(start, start + n)
    ]


def test_browse_paging_settings_and_delete(app: AppTest) -> None:
    engine = init_db()
    ingest_frames(engine, "big", _frames(30), kind="rollout")
    ingest_frames(engine, "other", _frames(2), kind="rollout")  # shares f0 and f1 with "big"
    app.run()
    app.selectbox(key="frames-dataset").set_value("big").run()
    assert len(app.image) == 24
    assert captions(app)[:2] == ["f0 · step 0", "f1 · step 1"]
    app.number_input(key="frames-page-big").set_value(2).run()
    assert captions(app) == [f"f{i} · step {i}" for i in range(24, 30)]

    app.number_input(key="frames-k-big").set_value(3)
    app.toggle(key="frames-graded-big").set_value(True)
    app.button(key="frames-save-settings").click().run()
    summary = get_dataset(engine, "big")
    assert (summary.labels_required, summary.graded) == (3, True)
    assert "Saved" in app.success[0].value
    assert metrics(app)["Labels required (k)"] == "3"

    delete = app.button(key="frames-delete")
    assert delete.disabled  # nothing happens without the confirmation
    app.checkbox(key="frames-delete-confirm-big").check().run()
    app.button(key="frames-delete").click().run()
    assert not app.exception
    assert [d.name for d in list_datasets(engine)] == ["other"]
    assert "Deleted dataset" in app.success[0].value and "28 frame" in app.success[0].value
    shared = pixel_hash(_frames(1)[0].pixels)
    gone = pixel_hash(_frames(1, start=5)[0].pixels)
    assert frame_path(shared).exists() and not frame_path(gone).exists()
    assert app.selectbox(key="frames-dataset").value == "other"


def test_training_evaluations_are_grouped_under_their_run(app: AppTest) -> None:
    engine = init_db()

    def records(shade: int) -> list[FrameRecord]:
        return [FrameRecord(pixels=np.full((8, 8, 3), shade, np.uint8), source="rollout")]

    ingest_frames(engine, "mine", records(1), kind="upload")
    for i, name in enumerate(["run-1-eval-200", "run-2-eval-50", "run-1-eval-100"]):
        ingest_frames(engine, name, records(10 + i), kind="training-eval")
    app.run()
    assert not app.exception
    picker = app.selectbox(key="frames-dataset")
    assert picker.options == ["mine (1 frame)"]  # evaluations are not listed flat
    groups = [e.label for e in app.expander if e.label.startswith("run")]
    assert groups == [
        md_escape("run-1: 2 evaluations (steps 100, 200)"),
        md_escape("run-2: 1 evaluation (steps 50)"),
    ]
    assert "3 datasets from 2 runs" in " ".join(c.value for c in app.caption)

    app.button(key="frames-open-run-1-eval-200").click().run()
    assert not app.exception
    picker = app.selectbox(key="frames-dataset")
    assert picker.value == "run-1-eval-200"
    assert picker.options == ["mine (1 frame)", "run-1-eval-200 (1 frame)"]
    assert app.button(key="frames-open-run-1-eval-200").disabled
    assert app.metric[0].value == "training-eval"

    picker.set_value("mine").run()  # back to the user's datasets: the evaluation leaves the list
    assert app.selectbox(key="frames-dataset").options == ["mine (1 frame)"]
