"""Revision 0008: the ``comparisons`` table, up and down, with the rows around it kept."""

from __future__ import annotations

from sqlalchemy import inspect, text

from vlmrm_core.store import current_labels, downgrade, get_engine, upgrade
from vlmrm_core.store.comparisons import current_comparisons


def test_comparisons_table_up_and_down(db_url: str, settings: object) -> None:
    engine = get_engine(db_url)
    upgrade(engine, "0007")
    assert "comparisons" not in inspect(engine).get_table_names()
    frames = ["a" * 64, "b" * 64]
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO datasets (id, name, description, kind, labels_required, graded, "
                "created_at, meta) VALUES (1, 'd', '', 'upload', 1, false, :now, '{}')"
            ),
            {"now": "2027-01-01 00:00:00+00:00"},
        )
        for i, h in enumerate(frames):
            conn.execute(
                text(
                    "INSERT INTO frames (hash, path, width, height, created_at) "
                    "VALUES (:h, 'x.png', 4, 4, :now)"
                ),
                {"h": h, "now": "2027-01-01 00:00:00+00:00"},
            )
            conn.execute(
                text(
                    "INSERT INTO dataset_frames (dataset_id, position, frame_hash, source) "
                    "VALUES (1, :i, :h, 'upload')"
                ),
                {"i": i, "h": h},
            )
        conn.execute(
            text("INSERT INTO labelers (id, name, created_at) VALUES (1, 'ann', :now)"),
            {"now": "2027-01-01 00:00:00+00:00"},
        )
        conn.execute(
            text(
                "INSERT INTO labels (dataset_id, frame_hash, labeler_id, value, created_at) "
                "VALUES (1, :h, 1, 1.0, :now)"
            ),
            {"h": frames[0], "now": "2027-01-01 00:00:00+00:00"},
        )

    upgrade(engine, "0008")
    assert "comparisons" in inspect(engine).get_table_names()
    # Raw SQL: the ORM writes the columns of later revisions (0011: clip comparisons).
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO comparisons (dataset_id, frame_a, frame_b, labeler_id, choice, "
                "created_at) VALUES (1, :a, :b, 1, 'a', :now)"
            ),
            {"a": frames[0], "b": frames[1], "now": "2027-01-01 00:00:00+00:00"},
        )
    upgrade(engine)  # to head: the row reads back with today's code
    assert current_comparisons(engine, "d")["choice"].tolist() == ["a"]

    downgrade(engine, "0007")
    assert "comparisons" not in inspect(engine).get_table_names()
    assert current_labels(engine, "d")["value"].tolist() == [1.0]  # labels untouched
    upgrade(engine)  # and forward again to head
    assert current_comparisons(engine, "d").empty
