"""The Tasks page (AppTest): a signed-in researcher creates a task, reviews disagreements,
adjudicates, and reads per-labeller statistics; the Label page then shows a labeller only
their task's dataset, under their email."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.studio._pages import page_path
from vlmrm_core.frames import FrameRecord, pixel_hash
from vlmrm_core.store import current_labels, ingest_frames, init_db
from vlmrm_core.store.tasks import add_label_as, final_labels, list_tasks
from vlmrm_core.store.users import ensure_admins, set_user_role
from vlmrm_studio.auth import IDENTITY, Identity, verified_email

ADMIN, RES, ALICE, BOB = "admin@x.org", "res@x.org", "alice@x.org", "bob@x.org"


def _setup() -> list[str]:
    db = init_db()
    records = [
        FrameRecord(np.full((8, 10, 3), 50 * i, np.uint8), "upload", f"f{i}") for i in range(3)
    ]
    ingest_frames(db, "cars", records)
    ingest_frames(db, "private", [FrameRecord(np.zeros((8, 10, 3), np.uint8), "upload", "p")])
    ensure_admins(db, [ADMIN])
    set_user_role(db, RES, "researcher", actor=ADMIN)
    set_user_role(db, ALICE, "labeller", actor=ADMIN)
    set_user_role(db, BOB, "labeller", actor=ADMIN)
    return [pixel_hash(r.pixels) for r in records]


def test_create_review_adjudicate(data_dir: Path) -> None:
    frames = _setup()
    at = AppTest.from_file(str(page_path("tasks")), default_timeout=60)
    at.session_state[IDENTITY] = Identity(email=RES, role="researcher")
    at.run()
    at.text_input[0].input("hill")
    at.selectbox[0].select("cars")
    at.number_input[0].set_value(2)
    at.multiselect[0].select(ALICE).select(BOB)
    at.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    (task,) = list_tasks(init_db())
    assert (task.dataset, task.overlap, task.assignees, task.created_by, task.show_state) == (
        "cars",
        2,
        (ALICE, BOB),
        RES,
        False,
    )
    db = init_db()
    add_label_as(db, ALICE, "cars", frames[0], 1.0)
    add_label_as(db, BOB, "cars", frames[0], 0.0)
    at.run()
    assert any("adjudicated label" in c.value for c in at.caption)
    at.selectbox(key="tasks-review-dataset").select("cars").run()
    at.selectbox(key="tasks-adjudicate-frame").select(frames[0])
    at.number_input(key="tasks-adjudicate-value").set_value(1.0)
    at.button(key="tasks-adjudicate").click().run()
    assert not at.exception
    final = final_labels(db, "cars").set_index("frame_hash")
    assert final.loc[frames[0], "source"] == "adjudicated"
    stats = at.dataframe[-1].value
    assert set(stats["labeler"]) == {ALICE, BOB}


def test_labeller_sees_only_task_datasets_and_labels_as_self(data_dir: Path) -> None:
    frames = _setup()
    from vlmrm_core.store.tasks import create_task

    create_task(init_db(), "hill", "cars", "On the hill?", actor=RES, assignees=[ALICE])
    at = AppTest.from_file(str(page_path("label")), default_timeout=60)
    at.session_state[IDENTITY] = Identity(email=ALICE, role="labeller")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="label-dataset").options == ["cars"]
    assert [t.key for t in at.text_input] == ["label-identity"]  # no free-text name
    assert any("On the hill" in h.value for h in at.subheader)  # the task's question
    assert at.image[0].captions[0].startswith("Frame ")  # the state caption is hidden
    at.button(key="label-success").click().run()
    labels = current_labels(init_db(), "cars")
    assert list(labels["labeler"]) == [ALICE] and labels["frame_hash"].iloc[0] in frames


def test_admin_page_manages_users_and_refuses_others(data_dir: Path) -> None:
    from vlmrm_core.store.users import get_user

    _setup()
    at = AppTest.from_file(str(page_path("admin")), default_timeout=60)
    at.session_state[IDENTITY] = Identity(email=RES, role="researcher")
    at.run()
    assert any("admin role" in i.value for i in at.info)
    assert not at.text_input  # no user management for a researcher

    at = AppTest.from_file(str(page_path("admin")), default_timeout=60)
    at.session_state[IDENTITY] = Identity(email=ADMIN, role="admin")
    at.run()
    at.text_input(key="admin-new-email").input("New@X.org")
    at.selectbox(key="admin-new-role").select("researcher")
    at.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert get_user(init_db(), "new@x.org").role == "researcher"
    assert any("new@x.org is now researcher" in s.value.replace("\\", "") for s in at.success)
    # The admin's own row cannot be removed from here.
    assert at.button(key=f"admin-remove-{ADMIN}").disabled


def test_task_form_picks_a_frame_subset_and_counts_it(data_dir: Path) -> None:
    frames = _setup()
    at = AppTest.from_file(str(page_path("tasks")), default_timeout=60)
    at.session_state[IDENTITY] = Identity(email=RES, role="researcher")
    at.run()
    at.selectbox(key="tasks-new-dataset").select("cars").run()
    assert any("whole dataset: 3 frame(s)" in c.value for c in at.caption)
    at.radio(key="tasks-new-scope").set_value("Frame range").run()
    at.number_input(key="tasks-new-first-cars").set_value(1).run()
    assert any("covers 2 of the dataset's 3" in c.value for c in at.caption)
    add_label_as(init_db(), RES, "cars", frames[1], 1.0)
    at.checkbox(key="tasks-new-unlabelled").check().run()
    assert any("covers 1 of the dataset's 3" in c.value for c in at.caption)
    at.text_input(key="tasks-new-name").input("last")
    at.multiselect(key="tasks-new-labellers").select(ALICE)
    at.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    (task,) = list_tasks(init_db())
    assert task.frame_hashes == (frames[2],)
    table = at.dataframe[0].value
    assert list(table["frames"]) == [1]


def test_labeller_picks_a_task_and_its_kind_sets_the_buttons(data_dir: Path) -> None:
    frames = _setup()  # "cars" is a binary dataset
    from vlmrm_core.store.tasks import create_task

    db = init_db()
    create_task(
        db, "a-first", "cars", "Red?", actor=RES, assignees=[ALICE], frame_hashes=frames[:1]
    )
    create_task(db, "b-graded", "cars", "How red?", actor=RES, graded=True, assignees=[ALICE])
    at = AppTest.from_file(str(page_path("label")), default_timeout=60)
    at.session_state[IDENTITY] = Identity(email=ALICE, role="labeller")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    picker = at.selectbox(key="label-task-cars")
    assert picker.options == ["a-first", "b-graded"]
    captions = " ".join(c.value for c in at.caption)
    assert "1 frame(s) left in your queue" in captions
    assert [b.key for b in at.button if b.key in ("label-success", "label-submit")] == [
        "label-success"
    ]
    picker.select("b-graded").run()
    assert any("How red" in h.value for h in at.subheader)
    assert "3 frame(s) left in your queue" in " ".join(c.value for c in at.caption)
    assert not [b for b in at.button if b.key == "label-success"]  # graded: a slider instead
    (slider,) = at.slider
    slider.set_value(0.3)
    at.button(key="label-submit").click().run()
    assert not at.exception, [e.value for e in at.exception]
    labels = current_labels(db, "cars")
    assert list(labels["labeler"]) == [ALICE]
    assert float(labels["value"].iloc[0]) == pytest.approx(
        0.3
    )  # the task's kind, not the dataset's


@pytest.mark.parametrize(
    ("email", "role", "visible"), [(RES, "researcher", False), (ADMIN, "admin", True)]
)
def test_frames_delete_shows_only_for_admins(
    data_dir: Path, email: str, role: str, visible: bool
) -> None:
    _setup()
    at = AppTest.from_file(str(page_path("frames")), default_timeout=60)
    at.session_state[IDENTITY] = Identity(email=email, role=role)
    at.run()
    at.selectbox(key="frames-dataset").set_value("cars").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.button(key="frames-save-settings")  # the dataset is open
    assert any(b.key == "frames-delete" for b in at.button) is visible
    assert any(e.label == "Delete dataset" for e in at.expander) is visible


@pytest.mark.parametrize(
    ("claims", "trust", "expected"),
    [
        ({"email": "A@X.org", "email_verified": True}, False, "a@x.org"),
        ({"email": "a@x.org", "email_verified": "true"}, False, "a@x.org"),
        ({"email": "a@x.org", "email_verified": False}, True, None),
        ({"email": "a@x.org"}, False, None),
        ({"email": "a@x.org"}, True, "a@x.org"),
        ({"email_verified": True}, True, None),
    ],
)
def test_verified_email_needs_the_claim_unless_trusted(
    claims: dict[str, object], trust: bool, expected: str | None
) -> None:
    assert verified_email(claims, trust_missing_claim=trust) == expected


def _signed_in_page() -> None:
    import streamlit as st

    from vlmrm_core.store import init_db
    from vlmrm_studio.auth import require_sign_in

    identity = require_sign_in(init_db())
    st.write(f"Welcome {identity.email}")


@pytest.mark.parametrize("trust", ["", "1"])
def test_a_missing_email_verified_claim_is_refused_unless_trusted(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, trust: str
) -> None:
    _setup()
    monkeypatch.setenv("VLMRM_TRUST_UNVERIFIED_EMAIL", trust)
    at = AppTest.from_function(_signed_in_page, default_timeout=60)
    at.secrets["auth"] = {"client_id": "x", "client_secret": "y", "redirect_uri": "http://l/c"}
    at.user = {"is_logged_in": True, "email": ALICE}  # no email_verified claim
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    shown = " ".join(m.value for m in at.markdown)
    if trust:
        assert f"Welcome {ALICE}" in shown and not at.error
    else:
        assert "Welcome" not in shown
        message = at.error[0].value.replace("\\", "")
        assert "has not confirmed that alice@x.org is yours" in message
        assert "VLMRM_TRUST_UNVERIFIED_EMAIL=1" in message
