"""Labelling orders: random (the store's shuffle), sequential (dataset position) and most
informative first (a ranking), as pure functions and through a LabelSession on real SQLite."""

from __future__ import annotations

import numpy as np
import pytest

from vlmrm_core.errors import InvalidInputError
from vlmrm_core.frames import FrameRecord, pixel_hash
from vlmrm_core.services.labeling import LabelSession, first_positions, labeler_seed, order_queue
from vlmrm_core.store import add_label, dataset_frames, ingest_frames, init_db, label_queue


def test_order_queue_keeps_the_frames_and_reorders_them() -> None:
    queue = ["c", "a", "d", "b"]
    assert order_queue(queue, "random") == queue
    positions = {"a": 0, "b": 1, "c": 2}  # "d" was added since: last
    assert order_queue(queue, "sequential", positions=positions) == ["a", "b", "c", "d"]
    ranking = ["b", "x", "d"]  # "x" is labelled already; "a", "c" unknown: queue order after
    assert order_queue(queue, "informative", ranking=ranking) == ["b", "d", "c", "a"]
    with pytest.raises(InvalidInputError, match="sequential"):
        order_queue(queue, "alphabetical")


def test_session_queue_follows_its_order(data_dir) -> None:
    engine = init_db()
    pixels = [np.full((6, 6, 3), 20 * i, np.uint8) for i in range(6)]
    records = [FrameRecord(p, "upload", name=f"f{i}.png") for i, p in enumerate(pixels)]
    ingest_frames(engine, "ds", records)
    hashes = [pixel_hash(p) for p in pixels]
    assert first_positions(dataset_frames(engine, "ds")) == {h: i for i, h in enumerate(hashes)}

    session = LabelSession("ds", "alice")
    assert session.queue(engine) == label_queue(engine, "ds", "alice", labeler_seed("alice"))
    session.order = "sequential"
    assert session.queue(engine) == hashes
    session.label(engine, hashes[0], 1.0)
    add_label(engine, "ds", hashes[3], "bob", 0.0)  # k = 1: bob's label takes it out too
    assert session.queue(engine) == [hashes[i] for i in (1, 2, 4, 5)]

    session.order, session.ranking = "informative", (hashes[5], hashes[0], hashes[2])
    assert session.queue(engine)[:2] == [hashes[5], hashes[2]]
    session.skip(hashes[5])  # skipping still moves a frame to the end
    assert session.queue(engine)[0] == hashes[2] and session.queue(engine)[-1] == hashes[5]
