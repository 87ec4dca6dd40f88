"""People may not use the machine labellers' prefix (``judge:``): their answers would be hidden
as a machine's. Every store path taking a person's name refuses it; a judge's path writes it."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Engine

from vlmrm_core.errors import VlmrmError
from vlmrm_core.frames import FrameRecord, pixel_hash
from vlmrm_core.store import add_label, get_or_create_labeler, ingest_frames
from vlmrm_core.store.comparisons import (
    add_comparison,
    current_comparisons,
    is_machine_labeler,
    people_only,
)
from vlmrm_core.store.labels import check_person_name, current_labels
from vlmrm_core.store.tasks import check_typed_name, create_task
from vlmrm_core.store.users import check_email

FIX = "choose a name that does not start with 'judge:'"


def _dataset(engine: Engine, make_frame: Callable[..., FrameRecord]) -> list[str]:
    ingest_frames(engine, "d", [make_frame(i) for i in range(3)])
    return [pixel_hash(make_frame(i).pixels) for i in range(3)]


@pytest.mark.parametrize(
    ("check", "name"),
    [
        (check_person_name, "ann"),
        (check_typed_name, "ann"),
        (check_email, "ann@example.org"),
    ],
    ids=["person", "typed", "email"],
)
def test_name_checks_refuse_the_machine_prefix_in_one_line(
    check: Callable[[str], str], name: str
) -> None:
    with pytest.raises(VlmrmError) as refused:
        check(f" judge:{name}")
    message = str(refused.value)
    assert "\n" not in message and FIX in message
    assert check(f"judges{name}") == f"judges{name}"  # only the prefix itself is reserved


def test_store_writes_refuse_a_person_named_like_a_machine(
    engine: Engine, make_frame: Callable[..., FrameRecord]
) -> None:
    h = _dataset(engine, make_frame)
    for write in (
        lambda: add_label(engine, "d", h[0], "judge:ann", 1),
        lambda: add_comparison(engine, "d", h[0], h[1], " judge:ann", "a"),
        lambda: get_or_create_labeler(engine, "judge:ann"),
        lambda: create_task(engine, "t", "d", "Which?", actor=None, assignees=["judge:ann"]),
    ):
        with pytest.raises(VlmrmError, match=FIX):
            write()
    assert current_labels(engine, "d").empty and current_comparisons(engine, "d").empty


def test_a_machine_writes_under_its_prefix_and_only_there(
    engine: Engine, make_frame: Callable[..., FrameRecord]
) -> None:
    h = _dataset(engine, make_frame)
    add_comparison(engine, "d", h[0], h[1], "judge:m#00000000", "a", machine=True)
    with pytest.raises(VlmrmError, match="not a machine labeller's name"):
        add_comparison(engine, "d", h[0], h[1], "ann", "a", machine=True)
    current = current_comparisons(engine, "d")
    assert current["labeler"].tolist() == ["judge:m#00000000"]
    assert is_machine_labeler(current["labeler"].iloc[0]) and people_only(current).empty
