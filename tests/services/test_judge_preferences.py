"""Machine preferences: a tiny random-init VLM judge answers the pairwise question (both orders),
its answers are stored under a machine labeller, kept out of people's comparisons by default,
and measured against people's answers."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from tests.judge._tiny_judges import write_qwen2_5_vl
from tests.store.conftest import _make_frame
from vlmrm_core.errors import InvalidInputError
from vlmrm_core.frames import pixel_hash
from vlmrm_core.metrics.agreement import krippendorff_alpha
from vlmrm_core.services.preferences import (
    JUDGE_PAIR_ANSWERS,
    JUDGE_PAIR_QUESTION,
    comparison_data,
    export_preferences,
    fit_preference_reward,
    judge_agreement,
    judge_preferences,
    machine_labelers,
    preference_agreement,
    trl_rows,
)
from vlmrm_core.store import Engine, ingest_frames, init_db, load_pixels
from vlmrm_core.store.comparisons import (
    add_comparison,
    current_comparisons,
    is_machine_labeler,
    people_only,
)

MACHINE = "judge:test-model#0000abcd"


@pytest.fixture(scope="module")
def qwen_judge(tmp_path_factory: pytest.TempPathFactory):
    """A tiny Qwen2.5-VL judge (its byte-level tokenizer has the tokens 1 and 2), on CPU."""
    from vlmrm_core.judge import load_judge

    folder = write_qwen2_5_vl(tmp_path_factory.mktemp("judge") / "qwen")
    return load_judge(folder, device="cpu")


@pytest.fixture
def store(data_dir: Path) -> tuple[Engine, list[str]]:
    engine = init_db()
    frames = [_make_frame(i) for i in range(6)]
    ingest_frames(engine, "d", frames)
    return engine, [pixel_hash(f.pixels) for f in frames]


def test_judge_asks_both_orders_and_stores_a_machine_labeller(store, qwen_judge) -> None:
    from vlmrm_core.judge import JudgeReward

    engine, h = store
    pairs = [(h[0], h[1]), (h[2], h[3]), (h[4], h[1])]
    seen: list[tuple[int, int | None]] = []
    result = judge_preferences(
        engine, "d", qwen_judge, pairs, margin=0.0, progress=lambda d, t, _m: seen.append((d, t))
    )
    assert is_machine_labeler(result.labeler) and result.labeler.startswith("judge:qwen#")
    assert result.n_stored == 3 and seen[-1] == (3, 3)

    # Both orders, through the judge's own scoring path (two images, answers 1 / 2).
    direct = JudgeReward(qwen_judge, JUDGE_PAIR_QUESTION, JUDGE_PAIR_ANSWERS, frames=2)
    for judged in result.pairs:
        fa, fb = direct.features(
            [load_pixels(judged.frame_a), load_pixels(judged.frame_b)],
            [judged.frame_a, judged.frame_b],
        )
        first, second = direct.score_features([[fa, fb], [fb, fa]])
        assert judged.first == pytest.approx(float(first), abs=1e-5)
        assert judged.second == pytest.approx(float(second), abs=1e-5)
        assert judged.log_odds == pytest.approx((judged.first - judged.second) / 2)
        assert judged.choice == ("a" if judged.log_odds > 0 else "b")

    current = current_comparisons(engine, "d")
    stored = current[current["labeler"] == result.labeler]
    assert sorted(zip(stored["frame_a"], stored["frame_b"], stored["choice"], strict=True)) == (
        sorted((p.frame_a, p.frame_b, p.choice) for p in result.pairs)
    )
    assert machine_labelers(engine, "d") == [result.labeler]

    # Asking again skips what this judge and question answered; another question is another
    # labeller.
    again = judge_preferences(engine, "d", qwen_judge, pairs, margin=0.0)
    assert (again.n_already, again.n_stored, again.pairs) == (3, 0, [])
    other = judge_preferences(
        engine, "d", direct, pairs[:1], question="Is the robot kneeling? Answer 1 or 2."
    )
    assert other.labeler != result.labeler and is_machine_labeler(other.labeler)

    # Undecided (|log-odds| below the margin): no answer, or `equal` when asked to.
    none = judge_preferences(engine, "d", qwen_judge, pairs, margin=1e6, skip_answered=False)
    assert none.n_stored == 0 and {p.choice for p in none.pairs} == {None}
    ties = judge_preferences(
        engine, "d", qwen_judge, pairs, margin=1e6, ties="equal", skip_answered=False
    )
    assert ties.n_stored == 3
    latest = people_only(current_comparisons(engine, "d"))
    assert latest.empty  # nothing stored under a person's name


def test_judge_refuses_bad_input(store, qwen_judge) -> None:
    engine, h = store
    with pytest.raises(InvalidInputError, match="margin"):
        judge_preferences(engine, "d", qwen_judge, [(h[0], h[1])], margin=-1)
    with pytest.raises(InvalidInputError, match="ties"):
        judge_preferences(engine, "d", qwen_judge, [(h[0], h[1])], ties="coin")
    with pytest.raises(InvalidInputError, match="two different frames"):
        judge_preferences(engine, "d", qwen_judge, [(h[0], h[0])])
    with pytest.raises(InvalidInputError, match="not in dataset"):
        judge_preferences(engine, "d", qwen_judge, [(h[0], "f" * 64)])
    assert current_comparisons(engine, "d").empty


def test_only_admins_and_researchers_run_a_judge_when_signed_in(store) -> None:
    from vlmrm_core.store.users import AccessError, ensure_admins, set_user_role

    engine, h = store
    ensure_admins(engine, ["admin@lab.org"])
    set_user_role(engine, "lab@lab.org", "labeller", actor="admin@lab.org")
    # refused before any judge is loaded (the folder does not even exist)
    with pytest.raises(AccessError, match="labeller"):
        judge_preferences(engine, "d", "no/such/judge", [(h[0], h[1])], actor="lab@lab.org")
    with pytest.raises(AccessError, match="no access"):
        judge_preferences(engine, "d", "no/such/judge", [(h[0], h[1])], actor="who@else.org")
    assert current_comparisons(engine, "d").empty


def _people_and_machine(engine: Engine, h: list[str]) -> None:
    add_comparison(engine, "d", h[0], h[1], "ann", "a")
    add_comparison(engine, "d", h[2], h[3], "ann", "b")
    add_comparison(engine, "d", h[0], h[1], "bob", "a")
    # The machine agrees with ann on (h0, h1), disagrees on (h2, h3), and alone answers (h4, h5).
    add_comparison(engine, "d", h[1], h[0], MACHINE, "b", machine=True)
    add_comparison(engine, "d", h[2], h[3], MACHINE, "a", machine=True)
    add_comparison(engine, "d", h[4], h[5], MACHINE, "a", machine=True)


def test_machine_comparisons_are_left_out_unless_chosen(store, tmp_path: Path) -> None:
    engine, h = store
    _people_and_machine(engine, h)

    assert comparison_data(engine, "d").labelers == ("ann", "bob")
    assert comparison_data(engine, "d").n_pairs == 3
    everyone = comparison_data(engine, "d", include_machine=True)
    assert everyone.n_pairs == 6 and MACHINE in everyone.labelers
    assert comparison_data(engine, "d", labelers=[MACHINE]).n_pairs == 3  # named: chosen

    assert preference_agreement(engine, "d").percent_agreement == 1.0  # ann and bob agree
    assert preference_agreement(engine, "d", include_machine=True).percent_agreement < 1.0

    for fmt in ("csv", "jsonl"):
        people_file = export_preferences(engine, "d", tmp_path / f"p.{fmt}", fmt)
        all_file = export_preferences(
            engine, "d", tmp_path / f"all.{fmt}", fmt, include_machine=True
        )
        assert MACHINE not in people_file.read_text(encoding="utf-8")
        assert MACHINE in all_file.read_text(encoding="utf-8")
    with (tmp_path / "p.csv").open(encoding="utf-8") as fh:
        assert len(list(csv.DictReader(fh))) == 3
    assert {r["labeler"] for r in trl_rows(engine, "d")} == {"ann", "bob"}
    assert MACHINE in {r["labeler"] for r in trl_rows(engine, "d", include_machine=True)}
    trl = export_preferences(engine, "d", tmp_path / "t.jsonl", "trl")
    assert all(json.loads(line)["labeler"] != MACHINE for line in trl.read_text().splitlines())


def test_the_fit_ignores_machine_comparisons_by_default(store) -> None:
    engine, h = store
    add_comparison(engine, "d", h[0], h[1], MACHINE, "a", machine=True)
    # Only a machine labeller's comparisons: to the fit there are none (the check comes
    # before any model is loaded, so no model is needed here).
    with pytest.raises(InvalidInputError, match="no comparisons"):
        fit_preference_reward(engine, "d", None, None, started_from="x")  # type: ignore[arg-type]


def test_judge_agreement_matches_a_direct_computation(store) -> None:
    engine, h = store
    _people_and_machine(engine, h)
    report = judge_agreement(engine, "d", MACHINE)
    # Shared pairs: {h0,h1} (ann and bob: both agree with the machine), {h2,h3} (ann: no).
    assert (report.n_pairs, report.n_answers) == (2, 3)
    assert report.percent_agreement == pytest.approx(2 / 3)

    # α: each (pair, person) an item rated by the judge and the person; values said of the
    # pair's lower hash ("low" = the lower hash preferred).
    def low_wins(x: str, y: str) -> str:
        return "low" if x < y else "high"

    pref_01, pref_23_ann, pref_23_judge = (
        low_wins(h[0], h[1]),
        low_wins(h[3], h[2]),
        low_wins(h[2], h[3]),
    )
    judge_row = [pref_01, pref_01, pref_23_judge]
    people_row = [pref_01, pref_01, pref_23_ann]
    expected = krippendorff_alpha(np.asarray([judge_row, people_row], dtype=object))
    assert report.alpha == pytest.approx(expected)
    assert report.per_person["ann"].percent_agreement == 0.5
    assert report.per_person["ann"].n_shared == 2
    assert report.per_person["bob"].percent_agreement == 1.0

    with pytest.raises(InvalidInputError, match="not a machine labeller"):
        judge_agreement(engine, "d", "ann")
    empty = judge_agreement(engine, "d", "judge:nobody#00000000")
    assert empty.n_pairs == 0 and empty.percent_agreement is None


def test_machine_suggestions_are_seen_from_the_pair_shown(store) -> None:
    from vlmrm_core.services.preferences import machine_suggestions

    engine, h = store
    add_comparison(engine, "d", h[0], h[1], MACHINE, "a", machine=True)  # asked as (0, 1)
    add_comparison(engine, "d", h[2], h[1], "judge:other#00000001", "equal", machine=True)
    add_comparison(engine, "d", h[0], h[1], "ann", "b")  # a person: never a suggestion
    assert machine_suggestions(engine, "d", (h[0], h[1])) == {MACHINE: "a"}
    assert machine_suggestions(engine, "d", (h[1], h[0])) == {MACHINE: "b"}  # shown swapped
    assert machine_suggestions(engine, "d", (h[1], h[2])) == {"judge:other#00000001": "equal"}
    assert machine_suggestions(engine, "d", (h[3], h[4])) == {}
