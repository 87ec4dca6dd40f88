"""Users, roles, tasks and who may write or remove which labels (the service layer)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Engine, inspect, text

from tests.store.conftest import ADMIN, ALICE, BOB, RESEARCHER
from vlmrm_core.frames import FrameRecord, pixel_hash
from vlmrm_core.services.labeling import LabelSession
from vlmrm_core.store import add_label, current_labels, ingest_frames, undo_last_label
from vlmrm_core.store.runs import create_run
from vlmrm_core.store.tasks import (
    add_label_as,
    assigned_datasets,
    create_task,
    list_tasks,
    undo_label_as,
)
from vlmrm_core.store.users import (
    AccessError,
    admins_from_settings,
    ensure_admins,
    get_user,
    list_users,
    remove_user,
    require_role,
    set_user_role,
)

MakeFrame = Callable[..., FrameRecord]


def _dataset(engine: Engine, make_frame: MakeFrame, name: str, n: int = 4) -> list[str]:
    ingest_frames(engine, name, [make_frame(i + 100 * len(name)) for i in range(n)])
    return [pixel_hash(make_frame(i + 100 * len(name)).pixels) for i in range(n)]


def test_roles_and_admin_only_management(team: Engine) -> None:
    assert [(u.email, u.role) for u in list_users(team)] == [
        (ADMIN, "admin"),
        (RESEARCHER, "researcher"),
        (ALICE, "labeller"),
        (BOB, "labeller"),
    ]
    assert get_user(team, " Alice@X.org ").role == "labeller"  # emails compare lower-cased
    assert get_user(team, "stranger@x.org") is None
    with pytest.raises(AccessError, match="ask an admin"):
        require_role(team, "stranger@x.org")
    for actor in (RESEARCHER, ALICE, "stranger@x.org"):
        with pytest.raises(AccessError):
            set_user_role(team, BOB, "admin", actor=actor)
        with pytest.raises(AccessError):
            remove_user(team, BOB, actor=actor)
    assert get_user(team, BOB).role == "labeller"
    with pytest.raises(ValueError, match="last admin"):
        set_user_role(team, ADMIN, "labeller", actor=ADMIN)
    with pytest.raises(ValueError, match="not an email"):
        set_user_role(team, "no-at-sign", "labeller", actor=ADMIN)
    with pytest.raises(ValueError, match="unknown role"):
        set_user_role(team, BOB, "owner", actor=ADMIN)
    remove_user(team, BOB, actor=ADMIN)
    assert get_user(team, BOB) is None


def test_admins_setting(team: Engine) -> None:
    assert admins_from_settings({"VLMRM_ADMINS": " A@x.org, b@y.org ,"}) == ["a@x.org", "b@y.org"]
    assert ensure_admins(team, [ALICE, "new@x.org"]) == [ALICE, "new@x.org"]
    assert get_user(team, ALICE).role == "admin"
    assert ensure_admins(team, [ALICE]) == []


def test_labellers_write_only_their_own_labels_on_their_tasks(
    team: Engine, make_frame: MakeFrame
) -> None:
    mine = _dataset(team, make_frame, "cars")
    _dataset(team, make_frame, "secret")
    with pytest.raises(AccessError):
        create_task(team, "t", "cars", "Is the car on the hill?", actor=ALICE)
    create_task(
        team, "t", "cars", "Is the car on the hill?", actor=RESEARCHER, assignees=[ALICE, BOB]
    )
    assert [t.assignees for t in list_tasks(team)] == [(ALICE, BOB)]
    assert assigned_datasets(team, ALICE) == ["cars"]

    alice = LabelSession("cars", ALICE, signed_in=True)
    bob = LabelSession("cars", BOB, signed_in=True)
    alice.label(team, mine[0], 1.0)
    bob.label(team, mine[1], 0.0)
    # Bob's Undo removes his label, never Alice's; a second Undo finds nothing of his.
    assert bob.undo(team).frame_hash == mine[1]
    assert bob.undo(team) is None
    assert {(r.labeler, r.frame_hash) for r in current_labels(team, "cars").itertuples()} == {
        (ALICE, mine[0])
    }
    # Not assigned to "secret"; unknown people label nothing.
    with pytest.raises(AccessError, match="not in any of your labelling tasks"):
        add_label_as(team, ALICE, "secret", mine[0], 1.0)
    with pytest.raises(AccessError):
        add_label_as(team, "stranger@x.org", "cars", mine[0], 1.0)
    with pytest.raises(AccessError):
        undo_label_as(team, "stranger@x.org", "cars", session_id=alice.session_id)
    # Even with Alice's session id, Bob's undo is scoped to Bob's own labels.
    assert undo_label_as(team, BOB, "cars", session_id=alice.session_id) is None
    assert len(current_labels(team, "cars")) == 1


def test_undo_stays_in_its_own_session(engine: Engine, make_frame: MakeFrame) -> None:
    hashes = _dataset(engine, make_frame, "d")
    # Two browser sessions that typed the same name (no sign-in).
    first, second = LabelSession("d", "sam"), LabelSession("d", "sam")
    first.label(engine, hashes[0], 1.0)
    assert second.undo(engine) is None
    assert len(current_labels(engine, "d")) == 1
    assert first.undo(engine).frame_hash == hashes[0]


def test_label_ids_are_never_reused(engine: Engine, make_frame: MakeFrame) -> None:
    hashes = _dataset(engine, make_frame, "d")
    first = add_label(engine, "d", hashes[0], "sam", 1.0)
    undo_last_label(engine, "d", "sam")
    again = add_label(engine, "d", hashes[0], "sam", 1.0)
    assert again.id > first.id
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            sql = conn.execute(
                text("SELECT sql FROM sqlite_master WHERE name = 'labels'")
            ).scalar_one()
        assert "AUTOINCREMENT" in sql.upper()
    assert "session_id" in {c["name"] for c in inspect(engine).get_columns("labels")}


def test_per_user_run_quota(engine: Engine) -> None:
    def start(who: str | None) -> None:
        create_run(
            engine,
            name="r",
            env_id="CartPole-v1",
            algo="ppo",
            config={},
            total_steps=10,
            created_by=who,
            max_active_per_user=2,
        )

    start(ALICE)
    start(ALICE)
    with pytest.raises(ValueError, match="VLMRM_MAX_RUNS_PER_USER=2"):
        start(ALICE)
    start(BOB)  # the quota is per person
    start(None)  # no sign-in: no quota


def test_task_queue_overlap_review_stats_and_label_studio(
    team: Engine, make_frame: MakeFrame
) -> None:
    from vlmrm_core.store.tasks import (
        final_labels,
        label_studio_tasks,
        labeller_stats,
        set_adjudication,
        task_queue,
    )

    frames = _dataset(team, make_frame, "cars", n=5)
    create_task(
        team,
        "pairs",
        "cars",
        "Is the car on the hill?",
        actor=RESEARCHER,
        overlap=2,
        assignees=[ALICE, BOB],
        frame_hashes=frames[:4],
    )
    assert sorted(task_queue(team, "pairs", ALICE, seed=1)) == sorted(frames[:4])  # the subset
    add_label_as(team, ALICE, "cars", frames[2], 1.0)
    add_label_as(team, ALICE, "cars", frames[3], 0.0)
    # Bob gets the frames Alice labelled first (k = 2), and Alice no longer sees hers.
    bob_queue = task_queue(team, "pairs", BOB, seed=7)
    assert set(bob_queue[:2]) == {frames[2], frames[3]} and len(bob_queue) == 4
    assert set(task_queue(team, "pairs", ALICE)) == {frames[0], frames[1]}
    add_label_as(team, BOB, "cars", frames[2], 1.0)
    add_label_as(team, BOB, "cars", frames[3], 1.0)
    # Frames with k = 2 labels leave every queue.
    assert set(task_queue(team, "pairs", BOB)) == {frames[0], frames[1]}
    assert set(task_queue(team, "pairs", RESEARCHER)) == {frames[0], frames[1]}

    final = final_labels(team, "cars").set_index("frame_hash")
    assert final.loc[frames[2], "value"] == 1.0 and final.loc[frames[2], "source"] == "majority"
    assert final.loc[frames[3], "value"] == 0.5  # a tie
    with pytest.raises(AccessError):
        set_adjudication(team, "cars", frames[3], 1.0, actor=ALICE)
    set_adjudication(team, "cars", frames[3], 1.0, actor=RESEARCHER)
    final = final_labels(team, "cars").set_index("frame_hash")
    assert (final.loc[frames[3], "value"], final.loc[frames[3], "source"]) == (1.0, "adjudicated")
    assert len(current_labels(team, "cars")) == 4  # raw labels untouched

    stats = labeller_stats(team, "cars").set_index("labeler")
    assert stats.loc[ALICE, "labels"] == 2 and stats.loc[BOB, "labels"] == 2
    assert stats.loc[BOB, "agreement"] == 1.0 and stats.loc[ALICE, "agreement"] == 0.5
    assert stats.loc[ALICE, "median_seconds"] >= 0

    exported = label_studio_tasks(team, "cars")
    assert len(exported) == 2
    by_hash = {t["data"]["frame_hash"]: t for t in exported}
    choices = {
        a["completed_by"]["email"]: a["result"][0]["value"]["choices"]
        for a in by_hash[frames[3]]["annotations"]
    }
    assert choices == {ALICE: ["Failure"], BOB: ["Success"]}


def test_evaluation_uses_the_adjudicated_label(team: Engine, make_frame: MakeFrame) -> None:
    from vlmrm_core.services.evaluation import labelled_frames
    from vlmrm_core.store.tasks import set_adjudication

    frames = _dataset(team, make_frame, "cars", n=3)
    add_label(team, "cars", frames[0], ALICE, 1.0)
    add_label(team, "cars", frames[0], BOB, 0.0)
    add_label(team, "cars", frames[1], ALICE, 1.0)
    labelled = labelled_frames(team, "cars")
    before = dict(zip(labelled.hashes, labelled.labels, strict=True))
    assert before[frames[0]] == 0.5
    set_adjudication(team, "cars", frames[0], 0.0, actor=RESEARCHER)
    labelled = labelled_frames(team, "cars")
    after = dict(zip(labelled.hashes, labelled.labels, strict=True))
    assert after == {frames[0]: 0.0, frames[1]: 1.0}


def test_only_the_owner_or_an_admin_changes_a_thing(team: Engine) -> None:
    from vlmrm_core.store.users import require_owner_or_admin

    set_user_role(team, "other@x.org", "researcher", actor=ADMIN)
    require_owner_or_admin(team, RESEARCHER, RESEARCHER, "Prompt set 'p'")
    require_owner_or_admin(team, ADMIN, RESEARCHER, "Prompt set 'p'")
    require_owner_or_admin(team, "other@x.org", None, "Prompt set 'p'")  # made without sign-in
    require_owner_or_admin(team, None, RESEARCHER, "Prompt set 'p'")  # no sign-in: local user
    with pytest.raises(AccessError, match="belongs to res@x.org"):
        require_owner_or_admin(team, "other@x.org", RESEARCHER, "Prompt set 'p'")
    with pytest.raises(AccessError):
        require_owner_or_admin(team, ALICE, ALICE, "Prompt set 'p'")  # labellers change nothing


def test_only_admins_delete_datasets_with_sign_in(team: Engine, make_frame: MakeFrame) -> None:
    from vlmrm_core.store import list_datasets
    from vlmrm_core.store.tasks import delete_dataset_as, record_dataset_creator

    _dataset(team, make_frame, "a")
    _dataset(team, make_frame, "bb")
    record_dataset_creator(team, "a", RESEARCHER)
    record_dataset_creator(team, "a", ADMIN)  # the first creator stays
    assert {d.name for d in list_datasets(team)} == {"a", "bb"}
    for actor in (RESEARCHER, ALICE, "stranger@x.org"):
        with pytest.raises(AccessError):
            delete_dataset_as(team, actor, "a")
    delete_dataset_as(team, ADMIN, "a")
    delete_dataset_as(team, None, "bb")  # no sign-in: the local user
    assert list_datasets(team) == []
