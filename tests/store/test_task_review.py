"""The Tasks page's review numbers: per-labeller agreement with the final labels."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Engine

from tests.store.conftest import ALICE, BOB, RESEARCHER
from vlmrm_core.frames import FrameRecord, pixel_hash
from vlmrm_core.store import add_label, ingest_frames
from vlmrm_core.store.tasks import labeller_stats, set_adjudication


def _frames(engine: Engine, make_frame: Callable[..., FrameRecord], n: int) -> list[str]:
    records = [make_frame(i) for i in range(n)]
    ingest_frames(engine, "cars", records)
    return [pixel_hash(r.pixels) for r in records]


def test_two_labellers_who_disagree_do_not_both_agree_fully(
    team: Engine, make_frame: Callable[..., FrameRecord]
) -> None:
    frames = _frames(team, make_frame, 3)
    add_label(team, "cars", frames[0], ALICE, 1.0)  # both say success
    add_label(team, "cars", frames[0], BOB, 1.0)
    add_label(team, "cars", frames[1], ALICE, 1.0)  # they disagree: the final label is a tie
    add_label(team, "cars", frames[1], BOB, 0.0)
    add_label(team, "cars", frames[2], ALICE, 0.0)  # only Alice: nothing to agree with

    stats = labeller_stats(team, "cars").set_index("labeler")
    assert stats.loc[ALICE, "labels"] == 3 and stats.loc[BOB, "labels"] == 2
    assert stats.loc[ALICE, "compared"] == 2 and stats.loc[BOB, "compared"] == 2
    assert stats.loc[ALICE, "agreement"] == 0.5 and stats.loc[BOB, "agreement"] == 0.5

    # An adjudication decides the tie: whoever is on its side agrees there.
    set_adjudication(team, "cars", frames[1], 0.0, actor=RESEARCHER)
    stats = labeller_stats(team, "cars").set_index("labeler")
    assert stats.loc[ALICE, "agreement"] == 0.5 and stats.loc[BOB, "agreement"] == 1.0


def test_agreement_is_undefined_without_shared_frames(
    team: Engine, make_frame: Callable[..., FrameRecord]
) -> None:
    frames = _frames(team, make_frame, 2)
    add_label(team, "cars", frames[0], ALICE, 1.0)
    add_label(team, "cars", frames[1], BOB, 0.0)
    stats = labeller_stats(team, "cars").set_index("labeler")
    assert list(stats["compared"]) == [0, 0]
    assert stats["agreement"].isna().all()
    assert stats.loc[ALICE, "labels"] == pytest.approx(1)
