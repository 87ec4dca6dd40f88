"""Revision 0009: pairwise labelling tasks (``labelling_tasks.pairwise``), up and down."""

from __future__ import annotations

from sqlalchemy import inspect, text

from vlmrm_core.store import downgrade, get_engine, upgrade
from vlmrm_core.store.tasks import create_task, get_task


def _task_columns(engine: object) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns("labelling_tasks")}


def test_pairwise_column_up_and_down(db_url: str, settings: object) -> None:
    engine = get_engine(db_url)
    upgrade(engine, "0008")
    assert "pairwise" not in _task_columns(engine)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO datasets (id, name, description, kind, labels_required, graded, "
                "created_at, meta) VALUES (1, 'd', '', 'upload', 1, false, :now, '{}')"
            ),
            {"now": "2027-01-01 00:00:00+00:00"},
        )
        conn.execute(
            text(
                "INSERT INTO labelling_tasks (name, dataset_id, question, instructions, graded, "
                "overlap, show_state, created_at) VALUES ('old', 1, 'Done?', '', true, 2, false, "
                ":now)"
            ),
            {"now": "2027-01-01 00:00:00+00:00"},
        )

    upgrade(engine, "0009")
    old = get_task(engine, "old")  # an existing task keeps its kind: not pairwise
    assert (old.pairwise, old.graded, old.kind, old.overlap) == (False, True, "graded", 2)
    new = create_task(engine, "pairs", "d", "Which is closer?", actor=None, pairwise=True)
    assert (get_task(engine, "pairs").kind, new.graded) == ("pairwise", False)

    downgrade(engine, "0008")
    assert "pairwise" not in _task_columns(engine)
    with engine.connect() as conn:
        names = sorted(conn.execute(text("SELECT name FROM labelling_tasks")).scalars())
    assert names == ["old", "pairs"]  # rows kept, only the column goes
    upgrade(engine)
    assert get_task(engine, "pairs").pairwise is False  # the column's default on the way up
