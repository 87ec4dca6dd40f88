"""Revision 0011: clip comparisons (``comparisons.length``, ``position_a``, ``position_b``)."""

from __future__ import annotations

from sqlalchemy import inspect, text

from vlmrm_core.store import downgrade, get_engine, upgrade
from vlmrm_core.store.comparisons import Clip, add_comparison, current_comparisons

NOW = {"now": "2027-01-01 00:00:00+00:00"}


def _comparison_columns(engine: object) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns("comparisons")}


def test_clip_columns_up_and_down(db_url: str, settings: object) -> None:
    engine = get_engine(db_url)
    upgrade(engine, "0010")
    assert not {"length", "position_a", "position_b"} & _comparison_columns(engine)
    frames = [c * 64 for c in "abcd"]
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO datasets (id, name, description, kind, labels_required, graded, "
                "created_at, meta) VALUES (1, 'd', '', 'rollout', 1, false, :now, '{}')"
            ),
            NOW,
        )
        for i, h in enumerate(frames):  # two episodes of two steps
            conn.execute(
                text(
                    "INSERT INTO frames (hash, path, width, height, created_at) "
                    "VALUES (:h, 'x.png', 4, 4, :now)"
                ),
                {"h": h, **NOW},
            )
            conn.execute(
                text(
                    "INSERT INTO dataset_frames (dataset_id, position, frame_hash, source, "
                    "episode, step) VALUES (1, :i, :h, 'rollout', :e, :s)"
                ),
                {"i": i, "h": h, "e": i // 2, "s": i % 2},
            )
        conn.execute(
            text("INSERT INTO labelers (id, name, created_at) VALUES (1, 'ann', :now)"), NOW
        )
        conn.execute(
            text(
                "INSERT INTO comparisons (dataset_id, frame_a, frame_b, labeler_id, choice, "
                "created_at) VALUES (1, :a, :b, 1, 'b', :now)"
            ),
            {"a": frames[0], "b": frames[2], **NOW},
        )

    upgrade(engine, "0011")
    old = current_comparisons(engine, "d")  # the existing row compares two frames: length 1
    assert old[["length", "choice"]].values.tolist() == [[1, "b"]]
    assert old[["position_a", "position_b"]].isna().all(axis=None)
    add_comparison(engine, "d", Clip(0, 2), Clip(2, 2), "ann", "a")
    assert sorted(current_comparisons(engine, "d")["length"]) == [1, 2]

    downgrade(engine, "0010")
    assert not {"length", "position_a", "position_b"} & _comparison_columns(engine)
    with engine.connect() as conn:
        kept = conn.execute(text("SELECT frame_a, choice FROM comparisons")).all()
    assert [tuple(r) for r in kept] == [(frames[0], "b")]  # the clip row went, not the frames'
    upgrade(engine)
    assert current_comparisons(engine, "d")["length"].tolist() == [1]
